"""Export the canvas and the plots as pictures (PNG at 2×, SVG), and a lesson
snapshot (title + canvas + plots in one PNG, for a slide).

Every write is atomic: the picture is rendered to bytes first, then written by
``simulation.outputs`` (symlinks written through, never half a file). A canvas
whose nodes lie far apart is drawn smaller, so that the picture stays within
:data:`MAX_SIDE` pixels a side and :data:`MAX_PIXELS` in all: never gigabytes,
never an empty image. ``render_headless`` renders without a display for
``scalelab export FILE --png OUT [--svg OUT] [--run S]``.

Every PNG carries the lesson it shows (``simulation.png_embed``: the ``.scalelab``
text in an iTXt chunk), so opening or dropping the picture restores the topology.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPoint, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QWidget

from simulation.outputs import Target, plan, write_bytes, write_outputs
from simulation.png_embed import embed

SNAPSHOT_WIDTH = 2400      # pixels: a 16:9 slide at 2×
PLOTS_SIZE = (1400, 520)   # logical size of the plots when rendered headless
MAX_SIDE = 8000            # pixels: a canvas picture is scaled down to stay within this a side...
MAX_PIXELS = 40_000_000    # ...and this in all (160 MB of RGBA while drawing)


def image_bytes(image: QImage, fmt: str = "PNG") -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buf, fmt):
        raise OSError(f"could not encode the image as {fmt}")
    buf.close()
    return bytes(data.data())


def with_topology(png: bytes, document: Any) -> bytes:
    """``png`` carrying ``document`` (unchanged when there is none or it is too large to embed)."""
    if document is None:
        return png
    from simulation.fileformat import dumps
    try:
        return embed(png, dumps(document))
    except ValueError:
        return png


def save_image(image: QImage, path: str | os.PathLike, document: Any = None) -> None:
    """Write ``image`` as a PNG (carrying ``document``, when given) atomically."""
    if image.isNull():
        raise OSError("nothing to export: the image is empty")
    write_bytes(path, with_topology(image_bytes(image), document))


def fitting_scale(width: float, height: float, scale: float) -> float:
    """``scale``, or less so that a ``width`` × ``height`` picture stays within the pixel budget."""
    width, height = max(width, 1.0), max(height, 1.0)
    return min(scale, MAX_SIDE / width, MAX_SIDE / height, math.sqrt(MAX_PIXELS / (width * height)))


def canvas_image(canvas: Any, scale: float = 2.0, transparent: bool = False) -> QImage:
    """The canvas at ``scale``× (less when the topology is very large, see :func:`fitting_scale`)."""
    from .canvas.export import export_rect
    rect = export_rect(canvas.canvas_scene)
    image = canvas.render_to_image(scale=fitting_scale(rect.width(), rect.height(), scale), transparent=transparent)
    if image.isNull():
        raise OSError("nothing to export: the image is empty")
    return image


def export_canvas_png(canvas: Any, path: str | os.PathLike, scale: float = 2.0, transparent: bool = False,
                      document: Any = None) -> None:
    save_image(canvas_image(canvas, scale, transparent), path, document)


def canvas_svg(canvas: Any) -> bytes:
    """The canvas as SVG bytes (Qt writes SVG to a file: a private temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="scalelab-svg-") as folder:
        tmp = Path(folder) / "canvas.svg"
        canvas.render_to_svg(str(tmp))
        data = tmp.read_bytes()
    if not data:
        raise OSError("the canvas produced an empty SVG")
    return data


def export_canvas_svg(canvas: Any, path: str | os.PathLike) -> None:
    """The canvas as SVG, written atomically."""
    write_bytes(path, canvas_svg(canvas))


def widget_image(widget: QWidget, scale: float = 2.0) -> QImage:
    """Render a widget (e.g. the plots) at ``scale`` × its size, on white."""
    size = widget.size()
    image = QImage(int(size.width() * scale), int(size.height() * scale), QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    image.setDevicePixelRatio(scale)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    try:
        widget.render(painter, QPoint(0, 0))
    finally:
        painter.end()
    image.setDevicePixelRatio(1.0)
    return image


def plots_image(plots: QWidget, scale: float = 2.0) -> QImage:
    """The plots as they should look on a slide (smooth curves, no hover crosshair)."""
    prepare = getattr(plots, "for_export", None)
    if prepare:
        prepare(True)
    try:
        return widget_image(plots, scale)
    finally:
        if prepare:
            prepare(False)


def export_plots_png(plots: QWidget, path: str | os.PathLike, scale: float = 2.0, document: Any = None) -> None:
    save_image(plots_image(plots, scale), path, document)


def snapshot_image(title: str, canvas: Any, plots: QWidget | None, width: int = SNAPSHOT_WIDTH) -> QImage:
    """Title on top, the canvas below it, then the plots, on white, ``width`` pixels wide."""
    margin = width // 60
    inner = width - 2 * margin
    canvas_img = canvas_image(canvas, 2.0, transparent=True)
    if canvas_img.width() > inner or canvas_img.height() > inner * 0.55:
        canvas_img = canvas_img.scaled(inner, int(inner * 0.55), Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation)
    plots_img = None
    if plots is not None:
        plots_img = plots_image(plots, 2.0)
        plots_img = plots_img.scaledToWidth(inner, Qt.TransformationMode.SmoothTransformation)
    title_h = int(width / 28) if title else 0
    height = margin + title_h + canvas_img.height() + margin
    if plots_img is not None:
        height += plots_img.height() + margin
    image = QImage(width, height, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    y = margin
    if title:
        font = QFont()
        font.setPixelSize(int(title_h * 0.6))
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor("#222"))
        painter.drawText(QRectF(margin, y, inner, title_h), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         title)
        y += title_h
    painter.drawImage(margin + (inner - canvas_img.width()) // 2, y, canvas_img)
    y += canvas_img.height() + margin
    if plots_img is not None:
        painter.drawImage(margin, y, plots_img)
    painter.end()
    return image


def export_snapshot_png(title: str, canvas: Any, plots: QWidget | None, path: str | os.PathLike,
                        with_plots: bool = True, document: Any = None) -> None:
    save_image(snapshot_image(title, canvas, plots if with_plots else None), path, document)


def _quiet_offscreen(mode: Any, context: Any, message: str) -> None:
    """Drop the offscreen plugin's harmless chatter; pass everything else on to stderr."""
    if "propagateSizeHints" not in message:
        sys.stderr.write(message + "\n")


def ensure_app() -> Any:
    """A QApplication, offscreen when there is no display."""
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance()
    if app is None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
            qInstallMessageHandler(_quiet_offscreen)
        app = QApplication(["scalelab-export"])
    return app


def render_headless(document: Any, run_seconds: float | None = None,
                    svg: bool = False) -> tuple[bytes, bytes | None]:
    """Render a document without a window: the PNG's bytes, and the SVG's when ``svg``.

    Without ``run_seconds``: the canvas at 2× on white. With it: the simulation runs
    that long first, the canvas shows its live state, and the PNG is a lesson
    snapshot (title, canvas, plots) whose plots end at that same instant, with the
    app's markers for the lesson's events that happened before it (an event due
    exactly at ``run_seconds`` happens when a run goes on: neither the canvas nor the
    plots show it yet). Raises ``SimulationError`` (a ValueError) if the
    document cannot be simulated and ``OSError`` if nothing could be drawn.
    """
    ensure_app()
    from .canvas import CanvasView
    from .controller import DocumentController
    controller = DocumentController(document)
    view = CanvasView(controller)
    view.resize(1200, 800)
    plots = None
    try:
        if run_seconds:
            from simulation.engine import Simulation
            from .events_editor import describe
            from .plots import PlotsPanel, node_labels
            sim = Simulation(document)
            sim.advance(float(run_seconds))
            view.set_live_state(sim.node_states(), sim.edge_flows())
            plots = PlotsPanel()
            plots.resize(*PLOTS_SIZE)
            plots.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
            plots.show()
            plots.set_node_labels(node_labels(document))
            events = list(document.events)
            # The app's markers: the lesson's events (plots_image keeps those before sim.now).
            plots.set_events([ev.at_s for ev in events], lambda i: describe(document, events[i]))
            plots.set_reached(sim.now)     # the time axis ends where the canvas's state is
            plots.refresh(sim.metrics)
            ensure_app().processEvents()
        view.fit_to_view()
        if plots is not None:
            title = str(document.meta.get("title", "") or "")
            image = snapshot_image(title, view, plots)
        else:
            image = canvas_image(view, 2.0, transparent=False)
        if image.isNull():
            raise OSError("nothing to export: the image is empty")
        return with_topology(image_bytes(image), document), (canvas_svg(view) if svg else None)
    finally:
        if plots is not None:
            plots.close()
            plots.deleteLater()
        view.deleteLater()


def export_headless(document: Any, png_path: str | os.PathLike, svg_path: str | os.PathLike | None = None,
                    run_seconds: float | None = None) -> None:
    """Render (see :func:`render_headless`) and write the PNG (and SVG) together, atomically."""
    targets: list[Target] = [plan(png_path)] + ([plan(svg_path)] if svg_path else [])
    png, svg = render_headless(document, run_seconds, svg=bool(svg_path))
    write_outputs([(targets[0], png)] + ([(targets[1], svg or b"")] if svg_path else []))
