"""The canvas: a QGraphicsScene that projects the document, and the view users work in.

``CanvasView`` and ``CanvasScene`` are imported lazily so that ``designer.controller``
can use ``designer.canvas.clipboard`` without importing the scene.
"""
from __future__ import annotations

from typing import Any

__all__ = ["CanvasView", "CanvasScene", "KIND_MIME"]

KIND_MIME = "application/x-scalelab-kind"


def __getattr__(name: str) -> Any:
    if name == "CanvasView":
        from .view import CanvasView
        return CanvasView
    if name == "CanvasScene":
        from .scene import CanvasScene
        return CanvasScene
    raise AttributeError(name)
