"""What the plugin's docks share: how one starts, rows of buttons, keys and timers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from magicgui.widgets import Container
from qtpy.QtCore import QEvent, QObject, QTimer

from ._layout import _soon, arrange_when_docked
from ._state import viewer_state


class Dock(Container):
    """A dock of this plugin: labelled fields, tabbed beside the plugin's other docks.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer):
        super().__init__(labels=True)
        arrange_when_docked(self)  # tabs beside the plugin's other docks; scrolls
        self.viewer = viewer
        #: what the docks of one viewer share: the current model, the open review
        self.state = viewer_state(viewer)
        #: running workers, held here so that they live until they finish
        self._workers: set = set()
        #: True once the viewer's window is closed: a worker that ends later must not
        #: touch the viewer (its Qt side is gone, adding a layer raises in napari)
        self.viewer_closed = False
        _soon(self.native, self._watch_window)

    def _watch_window(self) -> None:
        window = self.native.window()
        if window is not self.native:  # docked: watch the viewer's main window
            _CloseWatch(window, self._window_closed)

    def _window_closed(self) -> None:
        """The viewer's window closed; a dock that keeps timers stops them here."""
        self.viewer_closed = True


class _CloseWatch(QObject):
    """Calls `on_close` once `window` closes (when napari closes the viewer, or when the
    person closes the window and no dialog keeps it open). Dies with the window."""

    def __init__(self, window, on_close: Callable[[], None]):
        super().__init__(window)
        self._on_close = on_close
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Close:
            if not event.spontaneous():  # napari's own close: nothing can cancel it
                self._on_close()
            else:  # the person's click: a confirmation dialog may keep the window
                _soon(self, lambda: obj.isHidden() and self._on_close())
        return False


def button_row(*widgets) -> Container:
    """`widgets` side by side in one row, without labels or margins."""
    row = Container(widgets=list(widgets), layout="horizontal", labels=False)
    row.margins = (0, 0, 0, 0)
    return row


def key_handler(
    owner, method: str, title: str = "", ready: Callable[[], bool] | None = None
) -> Callable:
    """A napari key handler that calls ``owner.method()`` (when `ready()` says so).

    `title` starts the handler's docstring, which napari shows in its key bindings list.
    """

    def handler(_target):
        if ready is None or ready():
            getattr(owner, method)()

    if title:
        handler.__doc__ = f"{title}: {method.replace('_', ' ')}"
    return handler


def bind_keys(target, keys: Mapping[str, tuple[str, str]], handler_for: Callable) -> None:
    """Bind each key of `keys` (key → (what it does, method name)) on `target`, a viewer
    or a layer, to ``handler_for(method)``."""
    for key, (_, method) in keys.items():
        target.bind_key(key, handler_for(method), overwrite=True)


def qt_timer(owner, ms: int, slot: Callable, *, single_shot: bool = False):
    """A QTimer owned by `owner`'s Qt object (so it dies with it) that calls `slot`."""
    timer = QTimer(owner.native)
    timer.setSingleShot(single_shot)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    return timer
