"""Shared by the widget tests: a docked plugin widget, a tiny model file, and a probe of
the Qt event loop."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path


def new_widget(viewer, widget: str):
    """Build and dock one of the plugin's widgets as napari hands it to plugins.

    Parameters
    ----------
    viewer : napari.Viewer
    widget : str
        ``"<module>:<class>"`` under ``napari_spine_seg._napari._widgets``, e.g.
        ``"review_widget:ReviewWidget"`` (imported here: test modules load no Qt).
    """
    from napari.utils._proxies import PublicOnlyProxy

    module, name = widget.split(":")
    cls = getattr(importlib.import_module(f"napari_spine_seg._napari._widgets.{module}"), name)
    made = cls(PublicOnlyProxy(viewer))  # as napari hands it to plugins
    viewer.window.add_dock_widget(made)
    return made


_TINY_MODEL = textwrap.dedent(
    """
    import sys
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, save_model

    options = {"depth": 2, "filters": 4}
    model = build_model("unet", (64, 32, 1), 3, **options)
    info = ModelInfo(preset="unet", options=options, input_size=(64, 32), channels=1)
    save_model(model, sys.argv[1], info)
    """
)


def write_tiny_model(path: Path) -> Path:
    """An untrained but complete model file: 64 x 32 input, two levels, four filters.

    Written by a child process: TensorFlow must not load into a process with napari's
    OpenGL (see ``jobs/model_process.py``).
    """
    subprocess.run([sys.executable, "-c", _TINY_MODEL, os.fspath(path)], check=True, timeout=300)
    return path


class StallProbe:
    """Measures how long the Qt event loop stops turning: a 10 ms timer notes each run.

    A pause counts as a stall when this process was working through it (its CPU time
    grew by at least half the pause): the viewer was busy. A pause in which the
    process hardly ran at all is the machine's doing (other processes had the CPUs;
    here, several developers share two cores), not the viewer's.
    """

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.ticks: list[tuple[float, float]] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        self.ticks.append((time.perf_counter(), time.process_time()))

    def __enter__(self):
        self.ticks = []
        self._tick()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.stop()

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.ticks]

    def pauses(self, until: float = float("inf")) -> list[tuple[float, float]]:
        """``(wall ms, CPU ms)`` of each pause between ticks up to `until`."""
        ticks = [t for t in self.ticks if t[0] <= until]
        return [
            (1000 * (b[0] - a[0]), 1000 * (b[1] - a[1]))
            for a, b in zip(ticks, ticks[1:], strict=False)
        ]

    def longest_stall(self, until: float = float("inf")) -> float:
        """The longest pause (ms) in which the process was busy, up to `until`."""
        busy = [wall for wall, cpu in self.pauses(until) if cpu >= 0.5 * wall]
        return max(busy, default=0.0)

    def longest_busy(self, until: float = float("inf")) -> float:
        """Like :meth:`longest_stall`, measured by this process's CPU time in the pause (ms).

        The work that held the event loop up, whatever the load: when other processes
        take the CPUs a pause's wall time grows, its CPU time does not (capped at the
        pause's wall time, since several threads of this process add up).
        """
        busy = [min(wall, cpu) for wall, cpu in self.pauses(until) if cpu >= 0.5 * wall]
        return max(busy, default=0.0)

    def report(self, until: float = float("inf")) -> str:
        worst = sorted(self.pauses(until), reverse=True)[:3]
        return ", ".join(f"{w:.0f} ms (CPU {c:.0f} ms)" for w, c in worst)


def tree_checksums(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root` by relative path (and every folder, as "dir"):
    equal before and after means nothing in the tree was written, added or removed."""
    import hashlib

    root = Path(root)
    sums = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        sums[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return sums
