"""Parameter declarations: one place that says what each parameter is.

A :class:`Param` carries the type, default, range, unit and help text of one
parameter. The same declaration validates files (:func:`check_value`), fills
defaults, produces the JSON Schema (``schema.py``), documents the format and
builds the designer's inspector widgets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class FormatError(ValueError):
    """A problem with a document, with the place it was found.

    ``str(err)`` reads like ``nodes[3].params.capacity_rps: must be > 0, got -5``.
    """

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class Param:
    """One declared parameter.

    ``type`` is one of ``"float"``, ``"int"``, ``"bool"``, ``"choice"``,
    ``"floats"`` (a list of numbers), ``"names"`` (a list of distinct names, e.g. tables), ``"weights"`` (an
    object of name → number ≥ 0, e.g. a table mix) or ``"object"`` (an object whose shape is declared by
    ``fields``, selected by its ``"type"`` member: used for traffic patterns).
    """

    name: str
    type: str
    default: Any
    help: str
    label: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    group: str = ""
    # For type "object": variant name -> tuple of Params of that variant.
    variants: dict[str, tuple["Param", ...]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def range_text(self) -> str:
        """Human-readable range, e.g. ``> 0 and ≤ 1000000``."""
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '≥'} {_fmt(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"≤ {_fmt(self.maximum)}")
        return " and ".join(parts)


def _fmt(v: float) -> str:
    """A number as a person reads it: ``5``, ``2.5``, ``1e+308``; never a 309-digit integer."""
    if isinstance(v, int) and not isinstance(v, bool):
        if abs(v) < 10**20:  # exact, up to the largest seed
            return str(v)
        return f"{float(v):g}" if v.bit_length() < 1000 else f"a number with {int(math.log10(abs(v))) + 1:,} digits"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v)}"
    return f"{v:g}"


def _describe(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= 1e20:
        return _fmt(value)
    return repr(value)


def check_number(value: Any, where: str, *, integer: bool, minimum: float | None,
                 maximum: float | None, exclusive_minimum: bool = False) -> float | int:
    """Validate a JSON number and return it (as ``int`` when ``integer``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if integer else "a number"
        raise FormatError(where, f"must be {kind}, got {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FormatError(where, f"must be a finite number, got {value}")
    if integer:
        if isinstance(value, float):
            if not value.is_integer():
                raise FormatError(where, f"must be an integer, got {value:g}")
            value = int(value)
    if minimum is not None:
        if exclusive_minimum and not value > minimum:
            raise FormatError(where, f"must be > {_fmt(minimum)}, got {_fmt(value)}")
        if not exclusive_minimum and value < minimum:
            raise FormatError(where, f"must be ≥ {_fmt(minimum)}, got {_fmt(value)}")
    if maximum is not None and value > maximum:
        raise FormatError(where, f"must be ≤ {_fmt(maximum)}, got {_fmt(value)}")
    return value


def check_value(param: Param, value: Any, where: str) -> Any:
    """Validate ``value`` against ``param``; return the normalised value.

    Raises :class:`FormatError` naming ``where`` on any problem.
    """
    t = param.type
    if t in ("float", "int"):
        return check_number(value, where, integer=(t == "int"), minimum=param.minimum,
                            maximum=param.maximum, exclusive_minimum=param.exclusive_minimum)
    if t == "bool":
        if not isinstance(value, bool):
            raise FormatError(where, f"must be true or false, got {_describe(value)}")
        return value
    if t == "choice":
        if not isinstance(value, str) or value not in param.choices:
            options = ", ".join(f'"{c}"' for c in param.choices)
            raise FormatError(where, f"must be one of {options}, got {_describe(value)}")
        return value
    if t == "object":
        return check_object(param, value, where)
    if t == "floats":
        if not isinstance(value, list):
            raise FormatError(where, f"must be a list of numbers, got {_describe(value)}")
        if not 1 <= len(value) <= 1000:
            raise FormatError(where, f"must hold 1 to 1000 numbers, got {len(value)}")
        return [check_number(v, f"{where}[{i}]", integer=False, minimum=param.minimum,
                             maximum=param.maximum) for i, v in enumerate(value)]
    if t == "names":
        return check_names(value, where, int(param.maximum or 1000))
    if t == "weights":
        return check_weights(value, where)
    raise AssertionError(f"unknown param type {t}")


NAME_MAX = 64   # characters of a table name


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise FormatError(where, f"must be a non-empty name, got {_describe(name)}")
    if len(name) > NAME_MAX:
        raise FormatError(where, f"must be at most {NAME_MAX} characters, got {len(name)}")
    return name.strip()


def check_names(value: Any, where: str, most: int = 1000) -> list[str]:
    """A list of distinct names (e.g. the tables a database holds)."""
    if not isinstance(value, list):
        raise FormatError(where, f"must be a list of names, got {_describe(value)}")
    if len(value) > most:
        raise FormatError(where, f"must hold at most {most} names, got {len(value)}")
    out = [_check_name(v, f"{where}[{i}]") for i, v in enumerate(value)]
    for i, n in enumerate(out):
        if n in out[:i]:
            raise FormatError(f"{where}[{i}]", f'"{n}" is listed twice')
    return out


def check_weights(value: Any, where: str) -> dict[str, float]:
    """An object of name → weight ≥ 0 (e.g. a client's table mix); not all zero."""
    if not isinstance(value, dict):
        raise FormatError(where, f"must be an object of name: weight, got {_describe(value)}")
    if len(value) > 1000:
        raise FormatError(where, f"must hold at most 1000 names, got {len(value)}")
    out: dict[str, float] = {}
    for k, v in value.items():
        name = _check_name(k, where)
        try:
            out[name] = float(check_number(v, where, integer=False, minimum=0, maximum=1e9))
        except FormatError as e:
            raise FormatError(where, f'the weight of "{name}" {e.message}') from None
    if out and not sum(out.values()) > 0:
        raise FormatError(where, "the weights must not all be 0")
    return out


def check_object(param: Param, value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise FormatError(where, f"must be an object, got {_describe(value)}")
    variant = value.get("type")
    if not isinstance(variant, str) or variant not in param.variants:
        options = ", ".join(f'"{v}"' for v in param.variants)
        raise FormatError(f"{where}.type", f"must be one of {options}, got {_describe(variant)}")
    fields = {p.name: p for p in param.variants[variant]}
    out: dict[str, Any] = {"type": variant}
    for key, sub in value.items():
        if key == "type":
            continue
        if key not in fields:
            from .file_input import field_name   # (here: file_input imports this module)
            known = ", ".join(fields) or "no other fields"
            raise FormatError(f"{where}.{field_name(str(key))}",
                              f'unknown field for a "{variant}" {param.name} (known: {known})')
        out[key] = check_value(fields[key], sub, f"{where}.{key}")
    return out


def object_with_defaults(param: Param, value: dict) -> dict:
    """Fill the defaults of an object-typed parameter's variant."""
    out = {"type": value["type"]}
    for p in param.variants[value["type"]]:
        out[p.name] = value.get(p.name, p.default)
    return out
