"""What nodes and edges look like: geometry, colours, and how live numbers map onto them."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QFontMetricsF

GRID = 20.0
CARD = QRectF(-30, -30, 60, 60)          # the node's rounded card, centred on its position
ICON = QRectF(-20, -20, 40, 40)
LABEL = QRectF(-75, 35, 150, 18)        # the label's first line (where a double-click renames)
LABEL_AREA = QRectF(-95, 33, 190, 47)   # where a label may be drawn: down to the card of a node 110 below,
#                                         and short of the label of a node 200 to the side
HANDLE_CENTER = QPointF(38, 0)
HANDLE_RADIUS = 6.0
NODE_BOUNDS = QRectF(-98, -50, 196, 130)  # everything a node may paint (stack, badges, label)
LABEL_PT = 9.0          # a node label's size at zoom 1 (× the presenter scale)
MIN_LABEL_PT = 8.5      # ... and the least size it is drawn at on screen, however far out the view is

IDLE_FILL = QColor("#ffffff")
FAILED_FILL = QColor("#dee2e6")
BORDER = QColor("#868e96")
SELECTED = QColor("#1c7ed6")
SPOF = QColor("#e03131")             # full single point of failure: solid outline
SPOF_PARTIAL = QColor("#f08c00")     # partial one (loses a share): dashed outline
EDGE_IDLE = QColor("#868e96")
EDGE_FLOW = QColor("#1971c2")
REFUSED = QColor("#e03131")
GRID_MINOR = QColor("#eef0f3")
GRID_MAJOR = QColor("#dfe3e8")
BACKGROUND = QColor("#fbfbfc")
LABEL_HALO = QColor(251, 251, 252, 215)   # behind node labels: lines under them stay faintly visible

TEXT_SCALE = 1.0    # presenter mode: node labels and badges this many times larger
BADGE_SCALE = 1.0   # badges grow with it up to MAX_BADGE_SCALE (wider ones would cover the neighbours)
MAX_BADGE_SCALE = 1.75
BADGE_PT = 7.5      # a badge's font at scale 1, bold
BADGE_H = 16.0      # its height at scale 1
BADGE_MAX_W = 80.0  # the widest badge at scale 1 ("×3 primaries" is about 66)
TOP_BADGE_EDGE = -26.0      # the bottom edge of the badges above the card (they grow upwards)
BOTTOM_BADGE_EDGE = 32.0    # the bottom edge of the badges at the card's foot (they grow upwards, over the card)


def set_text_scale(scale: float) -> None:
    """Grow the node labels (font, first-line box) by ``scale``; they are still drawn in
    ``LABEL_AREA`` (two lines, then one, then elided) so that neighbours never run into each other."""
    global TEXT_SCALE, BADGE_SCALE, LABEL, NODE_BOUNDS
    TEXT_SCALE = float(scale)
    BADGE_SCALE = min(TEXT_SCALE, MAX_BADGE_SCALE)
    wide = min(TEXT_SCALE, 1.4)
    LABEL = QRectF(-75 * wide, 35, 150 * wide, 18 * TEXT_SCALE)
    reach = BADGE_MAX_W * BADGE_SCALE + 12     # badges grow outwards from x = ±4..12 (node_item._badge)
    badges = QRectF(-reach, TOP_BADGE_EDGE - BADGE_H * BADGE_SCALE - 2, 2 * reach, BADGE_H * BADGE_SCALE + 2)
    NODE_BOUNDS = QRectF(-98, -50, 196, 130).united(LABEL.adjusted(-3, 0, 3, 0)).united(badges)



def label_point_size(zoom: float) -> float:
    """A node label's font size in scene points at view ``zoom``: 9 pt × the presenter
    scale, and larger when zoomed out so that it never shows below 8.5 pt × that scale."""
    return max(LABEL_PT, MIN_LABEL_PT / max(zoom, 1e-6)) * TEXT_SCALE


def label_lines(text: str, metrics: QFontMetricsF, width: float, max_lines: int) -> list[str]:
    """``text`` wrapped at words into lines at most ``width`` wide, at most ``max_lines``
    of them; what does not fit is elided with "…" (a word longer than a line too)."""
    from PySide6.QtCore import Qt
    if max_lines < 1 or not text:
        return []
    lines: list[str] = []
    words: list[str] = []
    for word in text.split():      # a number keeps its unit ("5 s", "100 ms") on its line
        if words and len(word) <= 2 and word.isalpha() and words[-1][-1:].isdigit():
            words[-1] = f"{words[-1]}\u00a0{word}"
        else:
            words.append(word)
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and metrics.horizontalAdvance(f"{line} {words[0]}") <= width:
            line = f"{line} {words.pop(0)}"
        if words and len(lines) == max_lines - 1:      # the last line: the rest, elided
            line = f"{line} {' '.join(words)}"
            words = []
        lines.append(metrics.elidedText(line, Qt.TextElideMode.ElideRight, width))
    return lines


LOD_LABELS = 0.45   # below this zoom, handles and badges are not drawn (labels: while a line fits, see node_item)
LOD_ICONS = 0.18    # below this zoom, nodes are plain coloured squares


def snap(value: float, grid: float = GRID) -> float:
    return round(value / grid) * grid


def utilization_color(u: float) -> QColor:
    """Green (idle) → yellow (half busy) → red (saturated), light enough to read the icon on."""
    u = min(max(float(u), 0.0), 1.0)
    return QColor.fromHsvF((1.0 - u) * 120.0 / 360.0, 0.55, 0.98)


def flow_width(flow: float, max_flow: float) -> float:
    """Edge pen width: 1.5 px idle up to 8 px for the busiest edge."""
    if max_flow <= 0 or flow <= 0:
        return 1.5
    return 2.0 + 6.0 * min(flow / max_flow, 1.0)


def fmt_rate(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}"
