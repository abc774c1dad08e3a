"""The palette: five kinds with icons and descriptions; drags carry the kind; Enter adds one."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from designer.canvas import KIND_MIME
from designer.palette import PaletteWidget
from simulation.kinds import KINDS


def test_palette_lists_every_kind_with_icon_and_description(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    assert palette.kinds() == list(KINDS)
    for i, kind in enumerate(KINDS.values()):
        item = palette.list.item(i)
        assert item.text() == kind.label
        assert not item.icon().isNull()
        assert kind.description in item.toolTip()


def test_a_drag_carries_the_kind_name(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    item = palette.list.item(2)
    mime = palette.list.mimeData([item])
    assert bytes(mime.data(KIND_MIME).data()) == b"server"


def test_enter_and_double_click_ask_to_add_a_node(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.show()
    qtbot.waitExposed(palette)
    palette.list.setFocus()
    palette.list.setCurrentRow(3)
    with qtbot.waitSignal(palette.addRequested) as blocker:
        QTest.keyClick(palette.list, Qt.Key.Key_Return)
    assert blocker.args == ["database"]
    rect = palette.list.visualItemRect(palette.list.item(4))
    QTest.mouseClick(palette.list.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    with qtbot.waitSignal(palette.addRequested) as blocker:
        QTest.mouseDClick(palette.list.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                          rect.center())
    assert blocker.args == ["cache"]


def test_kind_icons_are_distinct_svgs():
    from designer.canvas.icons import icon_image, icon_path
    images = []
    for kind in KINDS:
        assert icon_path(kind).read_text().lstrip().startswith("<svg")
        image = icon_image(kind, 48)
        opaque = sum(image.pixelColor(x, y).alpha() > 0 for x in range(48) for y in range(48))
        assert opaque > 300, f"{kind} icon is nearly empty"
        images.append(image)
    assert len({img.cacheKey() for img in images}) == len(images)
    assert all(images[i] != images[j] for i in range(len(images)) for j in range(i + 1, len(images)))
