"""What the plugin's docks share: how one starts, rows of buttons, keys and timers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from magicgui.widgets import Container
from qtpy.QtCore import QTimer

from ._layout import arrange_when_docked


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
        #: running workers, held here so that they live until they finish
        self._workers: set = set()


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
