"""Every widget of the manifest open at once: the window fits a 1920 × 1080 screen.

The docks of the plugin share one tab group (the newest shown) and scroll when the
screen is short; every button of every widget can be reached: its tab raised and the
dock scrolled to it, it is on the screen.
"""

from __future__ import annotations

import pytest
from npe2 import PluginManifest

pytestmark = pytest.mark.gui

SCREEN = (1920, 1080)
WIDGETS = [
    w.display_name
    for w in PluginManifest.from_distribution("napari-spine-seg").contributions.widgets or []
]


def open_every_widget(viewer, qtbot):
    docks = {}
    for name in WIDGETS:
        dock, _widget = viewer.window.add_plugin_dock_widget("napari-spine-seg", name)
        docks[name] = dock
        qtbot.wait(20)  # the docks are arranged once the event loop turns
    qtbot.wait(100)
    return docks


def new_window(make_napari_viewer):
    # not a fixture: napari checks for a leaked viewer while pytest still holds fixture values
    from qtpy.QtWidgets import QApplication

    screen = QApplication.primaryScreen().geometry()
    assert (screen.width(), screen.height()) >= SCREEN, (
        "the Xvfb screen is too small: pyproject's xvfb_width/xvfb_height set it to 1920x1080"
    )
    viewer = make_napari_viewer(show=True)
    return viewer, viewer.window._qt_window


def test_every_widget_open_fits_the_screen(make_napari_viewer, qtbot):
    viewer, qt_window = new_window(make_napari_viewer)
    docks = open_every_widget(viewer, qtbot)
    assert len(docks) >= 5
    qt_window.showMaximized()
    qtbot.wait(100)
    frame = qt_window.frameGeometry()
    assert frame.width() <= SCREEN[0] and frame.height() <= SCREEN[1], frame
    minimum = qt_window.minimumSizeHint().expandedTo(qt_window.minimumSize())
    assert minimum.width() <= SCREEN[0] and minimum.height() <= SCREEN[1], minimum
    # one tab group: every dock of the plugin is tabbed with the others
    for dock in docks.values():
        assert {d for d in qt_window.tabifiedDockWidgets(dock)} == set(docks.values()) - {dock}
    # the last one opened is the one shown
    assert docks[WIDGETS[-1]].isVisible()


def test_every_button_can_be_reached(make_napari_viewer, qtbot):
    from qtpy.QtCore import QRect
    from qtpy.QtWidgets import QAbstractButton, QScrollArea

    viewer, qt_window = new_window(make_napari_viewer)
    docks = open_every_widget(viewer, qtbot)
    qt_window.resize(1200, 700)  # a short window: the tallest dock must scroll
    qtbot.wait(100)
    screen = QRect(0, 0, *SCREEN)
    for name, dock in docks.items():
        dock.raise_()
        qtbot.wait(50)
        scroll = dock.widget()
        assert isinstance(scroll, QScrollArea), name
        buttons = [b for b in scroll.widget().findChildren(QAbstractButton) if b.isVisibleTo(dock)]
        assert buttons, name
        for button in buttons:
            scroll.ensureWidgetVisible(button)
            qtbot.wait(10)
            assert button.isVisible(), (name, button.text())
            assert not button.visibleRegion().isEmpty(), (name, button.text())
            where = QRect(button.mapToGlobal(button.rect().topLeft()), button.size())
            assert qt_window.frameGeometry().contains(where.center()), (name, button.text())
            assert screen.contains(where.center()), (name, button.text())


def test_the_plugins_widget_is_still_found_by_name(make_napari_viewer, qtbot):
    """napari's own lookup of a dock's widget, and opening it again, still work."""
    viewer, _ = new_window(make_napari_viewer)
    docks = open_every_widget(viewer, qtbot)
    for name, dock in docks.items():
        again, widget = viewer.window.add_plugin_dock_widget("napari-spine-seg", name)
        assert again is dock
        assert type(widget).__module__.startswith("napari_spine_seg.")
        assert widget.native.window() is viewer.window._qt_window


@pytest.mark.parametrize(
    "names",
    [
        ["Train or load model", "Review queue"],
        ["Review queue", "Train or load model"],
        ["Landmark review", "Train or load model"],
    ],
)
def test_train_and_review_opened_alone_are_tabbed_and_fit(make_napari_viewer, qtbot, names):
    """Each widget arranges its own dock: no other widget of the plugin need be open."""
    from qtpy.QtWidgets import QScrollArea

    viewer, qt_window = new_window(make_napari_viewer)
    docks = {}
    for name in names:
        docks[name], _ = viewer.window.add_plugin_dock_widget("napari-spine-seg", name)
        qtbot.wait(20)
    qtbot.wait(100)
    first, second = (docks[n] for n in names)
    assert qt_window.tabifiedDockWidgets(first) == [second]
    assert all(isinstance(d.widget(), QScrollArea) for d in docks.values())
    assert second.isVisible()  # the newest one is shown
    qt_window.showMaximized()
    qtbot.wait(100)
    frame = qt_window.frameGeometry()
    assert frame.width() <= SCREEN[0] and frame.height() <= SCREEN[1], frame
    minimum = qt_window.minimumSizeHint().expandedTo(qt_window.minimumSize())
    assert minimum.width() <= SCREEN[0] and minimum.height() <= SCREEN[1], minimum
