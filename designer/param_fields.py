"""One editor widget per declared parameter type (used by the inspector).

Every editor is built from a :class:`simulation.params.Param`; none is written by
hand for a particular kind. An editor emits ``edited(value)`` when the user
commits a value; the inspector validates it with ``check_value`` and shows the
reason beside the field when it is refused.
"""
from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout,
                               QLabel, QLineEdit, QSpinBox, QWidget)

from simulation.params import FormatError, Param, check_value

INT32_MAX = 2**31 - 1


def choice_text(choice: str) -> str:
    return choice.replace("_", " ")


def tooltip(param: Param) -> str:
    parts = [f"<b>{param.title}</b> <code>{param.name}</code><br>{param.help}"]
    rng = param.range_text()
    if rng:
        parts.append(f"<br>Allowed: {rng}{(' ' + param.unit) if param.unit else ''}")
    parts.append("<br><i>F1 in the field: more in the glossary</i>")
    return "".join(parts)


def _parse_number(text: str) -> float | None:
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class NumberSpinBox(QDoubleSpinBox):
    """A spin box for a declared float or int: the declared range for the arrows,
    but typing any number is allowed, so that a value outside the range is not
    silently swallowed: it is handed on and refused with the reason."""

    outOfRange = Signal(float)

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._integer = param.type == "int"
        self.setDecimals(0 if self._integer else 6)
        low = param.minimum if param.minimum is not None else -1e12
        high = param.maximum if param.maximum is not None else 1e12
        self.setRange(low, high)
        self.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        self.setKeyboardTracking(False)
        self.setAccelerated(True)
        if param.unit:
            self.setSuffix(f" {param.unit}")
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToPreviousValue)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        if self._integer:
            return str(int(round(value)))
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        value = _parse_number(self._strip(text))
        return self.value() if value is None else value

    def _strip(self, text: str) -> str:
        text = text.strip()
        if self.suffix() and text.endswith(self.suffix().strip()):
            text = text[: -len(self.suffix().strip())]
        return text.strip()

    def validate(self, text: str, pos: int) -> object:
        body = self._strip(text)
        if body in ("", "-", "+", ".", "-.", "e", "E") or body.endswith(("e", "E", "e-", "E-")):
            return QValidator.State.Intermediate, text, pos
        return (QValidator.State.Acceptable if _parse_number(body) is not None
                else QValidator.State.Invalid), text, pos

    def _check_typed(self) -> None:
        value = _parse_number(self._strip(self.lineEdit().text()))
        if value is not None and not (self.minimum() <= value <= self.maximum()):
            self.outOfRange.emit(value)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._check_typed()
        super().keyPressEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._check_typed()
        super().focusOutEvent(event)


class FieldEditor(QObject):
    """The widget for one parameter, with ``set_value``/``edited``."""

    edited = Signal(object)

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param = param
        self.widget = self._build(param, parent)
        self.widget.setToolTip(tooltip(param))
        self.widget.setObjectName(f"field_{param.name}")

    def _build(self, p: Param, parent: QWidget | None) -> QWidget:
        if p.type in ("float", "int") and not (p.type == "int" and (p.maximum or 0) > INT32_MAX):
            w = NumberSpinBox(p, parent)
            w.valueChanged.connect(lambda v: self.edited.emit(int(round(v)) if p.type == "int" else float(v)))
            w.outOfRange.connect(lambda v: self.edited.emit(int(v) if p.type == "int" and v.is_integer() else v))
            return w
        if p.type == "choice":
            w = QComboBox(parent)
            for c in p.choices:
                w.addItem(choice_text(c), c)
            w.activated.connect(lambda i: self.edited.emit(w.itemData(i)))
            return w
        if p.type == "bool":
            w = QCheckBox(parent)
            w.toggled.connect(lambda on: self.edited.emit(bool(on)))
            return w
        # Large ints (the seed), lists of numbers: plain text.
        w = QLineEdit(parent)
        if p.type == "floats":
            w.setPlaceholderText("numbers separated by commas")
        elif p.type == "names":
            w.setPlaceholderText("names separated by commas, e.g. users, flights")
        elif p.type == "weights":
            w.setPlaceholderText("name: weight, ... e.g. users: 0.3, flights: 0.7")
        w.editingFinished.connect(lambda: self.edited.emit(self._parse_text(w.text())))
        return w

    def _parse_text(self, text: str) -> Any:
        if self.param.type == "names":
            return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
        if self.param.type == "weights":   # "users: 0.3, flights: 0.7"; a bad weight stays text (the check says so)
            out: dict[str, Any] = {}
            for part in text.replace(";", ",").split(","):
                name, _, weight = part.partition(":")
                if name.strip():
                    number = _parse_number(weight.strip())
                    out[name.strip()] = weight.strip() if number is None else number
            return out
        if self.param.type == "floats":
            values = []
            for part in text.replace(";", ",").split(","):
                part = part.strip()
                if part:
                    number = _parse_number(part)
                    values.append(part if number is None else number)
            return values
        number = _parse_number(text)
        if number is None:
            return text.strip()
        return int(number) if self.param.type == "int" and number.is_integer() else number

    def set_value(self, value: Any) -> None:
        """Show ``value`` without emitting ``edited``."""
        w = self.widget
        w.blockSignals(True)
        try:
            if isinstance(w, NumberSpinBox):
                w.setValue(float(value))
            elif isinstance(w, QComboBox):
                w.setCurrentIndex(max(0, w.findData(value)))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QLineEdit):
                if isinstance(value, dict):
                    w.setText(", ".join(f"{k}: {v:g}" for k, v in value.items()))
                elif isinstance(value, list):
                    w.setText(", ".join(v if isinstance(v, str) else f"{v:g}" for v in value))
                else:
                    w.setText(str(value))
        finally:
            w.blockSignals(False)


class FieldRow(QObject):
    """A label, an editor and an error line beside it, in a QFormLayout."""

    committed = Signal(str, object)   # name, checked value

    def __init__(self, param: Param, form: QFormLayout, parent: QWidget, where: str = "") -> None:
        super().__init__(parent)
        self.param = param
        self.where = where or param.name
        self.editor = FieldEditor(param, parent)
        self.label = QLabel(param.title + ":", parent)
        self.label.setToolTip(tooltip(param))
        self.error = QLabel(parent)
        self.error.setObjectName(f"error_{param.name}")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c62828;")
        self.error.hide()
        box = QWidget(parent)
        from PySide6.QtWidgets import QVBoxLayout
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.editor.widget)
        lay.addWidget(self.error)
        form.addRow(self.label, box)
        self.editor.edited.connect(self._on_edited)
        self._value: Any = None

    def set_value(self, value: Any, mixed: bool = False) -> None:
        self._value = value
        self.editor.set_value(value)
        font = self.label.font()
        font.setItalic(mixed)
        self.label.setFont(font)
        self.label.setText(self.param.title + (" (mixed):" if mixed else ":"))

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))

    def revert(self) -> None:
        self.editor.set_value(self._value)

    def _on_edited(self, value: Any) -> None:
        try:
            checked = check_value(self.param, value, self.where)
        except FormatError as err:
            self.show_error(f"Refused: {err.message}")
            self.revert()
            return
        self.show_error("")
        self.committed.emit(self.param.name, checked)
