"""The plugin's docks in a window that fits the screen: one tab group per side, scrolling.

napari stacks dock widgets of one side of the window in a column, and the window
grows to the sum of their heights: with every widget of this plugin open it was
2072 px tall, its lower buttons off a 1920 × 1080 screen. Here each dock of this
plugin is put into a tab of the plugin's docks already on its side (the newest one
shown), and its contents scroll once they are taller than :data:`MAX_MIN_HEIGHT`,
so that a small screen still holds the window.

A widget calls :func:`arrange_when_docked` from its ``__init__``; once it is docked,
its window is watched, so that the plugin's docks opened later (by any widget) join
the tabs too. A dock the person floats or drags elsewhere is left where it goes.
"""

from __future__ import annotations

from functools import cache, partial

#: Qt property names set on the plugin's docks and scroll areas
_TABBED = "spine_seg_tabbed"
_SCROLL = "spine_seg_scroll"
_WATCHED = "spine_seg_watched"
#: a dock's contents ask for at most this height; taller contents scroll
MAX_MIN_HEIGHT = 420
#: pixels a tab adds around its name, and the most width the tab names may claim
TAB_PADDING = 26
MAX_TABS_WIDTH = 640
#: package whose widgets are arranged
_PACKAGE = "napari_spine_seg."


def arrange_when_docked(widget) -> None:
    """Tab and scroll `widget`'s dock (and the plugin's others) once napari has docked it.

    Parameters
    ----------
    widget : magicgui.widgets.Widget or QWidget
        A widget of this plugin, about to be docked (napari docks it right after
        constructing it; the arranging waits for the event loop).
    """
    native = getattr(widget, "native", widget)
    _soon(native, partial(_arrange_window_of, native))


def _arrange_window_of(native) -> None:
    arrange_window(native.window())


def _soon(owner, function) -> None:
    """Call `function` once the event loop turns, unless `owner` (a QObject) is gone by then."""
    from qtpy.QtCore import QTimer

    timer = QTimer(owner)
    timer.setSingleShot(True)
    timer.timeout.connect(function)
    timer.timeout.connect(timer.deleteLater)
    timer.start(0)


def _inner(dock):
    inner = dock.widget()
    return getattr(inner, "_magic_widget", inner)


def is_plugin_dock(dock) -> bool:
    """Whether `dock` (a QDockWidget) holds a widget of this plugin."""
    return type(_inner(dock)).__module__.startswith(_PACKAGE)


def make_scrolling(dock) -> None:
    """Put the contents of `dock` into a scroll area (once), at most :data:`MAX_MIN_HEIGHT` tall.

    napari finds a dock's widget as ``dock.widget()._magic_widget`` (or the widget
    itself); the scroll area carries the same attribute, so that lookup still finds it.
    """
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QScrollArea

    inner = dock.widget()
    if inner is None or inner.property(_SCROLL):
        return
    scroll = QScrollArea()
    scroll.setProperty(_SCROLL, True)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    if hasattr(inner, "_magic_widget"):
        scroll._magic_widget = inner._magic_widget
    hint = inner.minimumSizeHint()
    dock.setWidget(scroll)  # hides and releases the old contents …
    scroll.setWidget(inner)  # … which live on inside the scroll area
    inner.show()
    bar = scroll.verticalScrollBar().sizeHint().width()
    scroll.setMinimumWidth(hint.width() + bar)
    scroll.setMinimumHeight(min(hint.height(), MAX_MIN_HEIGHT))


def arrange_window(window) -> None:
    """Scroll and tab the plugin's docks in `window` (a QMainWindow); watch it for more.

    Docks already arranged stay where they are (the person may have moved them); each
    new one joins a tab group of the plugin's docks on its side, and the last new one
    is shown.
    """
    from qtpy.QtWidgets import QDockWidget, QMainWindow, QTabWidget

    if not isinstance(window, QMainWindow):
        return  # not docked (yet): nothing to arrange
    _watch(window)
    docks = [d for d in window.findChildren(QDockWidget) if is_plugin_dock(d)]
    new = [d for d in docks if not d.property(_TABBED)]
    for dock in new:
        make_scrolling(dock)
        # the tab shows the window title: the widget's name, without "(napari-spine-seg)"
        dock.setWindowTitle(dock.windowTitle().split(" (")[0])
        if not dock.isFloating():
            area = window.dockWidgetArea(dock)
            partner = next(
                (
                    d
                    for d in docks
                    if d.property(_TABBED)
                    and not d.isFloating()
                    and d.toggleViewAction().isChecked()
                    and window.dockWidgetArea(d) == area
                ),
                None,
            )
            if partner is not None:
                window.setTabPosition(area, QTabWidget.North)  # the tabs' names in full
                window.tabifyDockWidget(partner, dock)
        dock.setProperty(_TABBED, True)
    if new:
        _room_for_tab_names(window, docks)
        new[-1].show()
        new[-1].raise_()
        fit_to_screen(window)


def _room_for_tab_names(window, docks) -> None:
    """Make the docks of each tab group wide enough for their tabs' names in full."""
    groups: dict[int, list] = {}
    for dock in docks:
        if not dock.isFloating():
            groups.setdefault(int(window.dockWidgetArea(dock)), []).append(dock)
    for group in groups.values():
        if len(group) < 2:
            continue
        metrics = group[0].fontMetrics()
        needed = sum(metrics.horizontalAdvance(d.windowTitle()) + TAB_PADDING for d in group)
        for dock in group:
            dock.setMinimumWidth(min(needed, MAX_TABS_WIDTH))


def fit_to_screen(window) -> None:
    """Shrink `window` back onto its screen if the docks, stacked before, made it taller.

    Qt grows a window to its minimum size but never shrinks it when that minimum
    falls again; a window already on the screen keeps its size.
    """
    screen = window.screen() if hasattr(window, "screen") else None
    if screen is None or window.isMaximized() or window.isFullScreen():
        return
    free = screen.availableGeometry()
    frame, inner = window.frameGeometry(), window.geometry()
    extra_w, extra_h = frame.width() - inner.width(), frame.height() - inner.height()
    width = min(inner.width(), free.width() - extra_w)
    height = min(inner.height(), free.height() - extra_h)
    if (width, height) == (inner.width(), inner.height()):
        return
    window.resize(max(width, window.minimumWidth()), max(height, window.minimumHeight()))
    top_left = frame.topLeft()
    x = min(max(top_left.x(), free.left()), free.right() + 1 - window.frameGeometry().width())
    y = min(max(top_left.y(), free.top()), free.bottom() + 1 - window.frameGeometry().height())
    window.move(max(x, free.left()), max(y, free.top()))


def _watch(window) -> None:
    """Arrange `window` again whenever a dock widget is added to it."""
    if not window.property(_WATCHED):
        window.installEventFilter(_dock_watcher_class()(window))
        window.setProperty(_WATCHED, True)


def _arrange_later(window) -> None:
    _soon(window, partial(arrange_window, window))


@cache
def _dock_watcher_class():
    """The event filter class (built on first use: Qt is imported only inside functions)."""
    from qtpy.QtCore import QEvent, QObject
    from qtpy.QtWidgets import QDockWidget

    class DockWatcher(QObject):
        """Arranges its window once a dock widget is added to it (not yet in its area)."""

        def eventFilter(self, obj, event):
            if event.type() == QEvent.ChildAdded and isinstance(event.child(), QDockWidget):
                _arrange_later(obj)
            return False

    return DockWatcher
