"""Make docs/screenshots/layout.png: every widget of the plugin open at once, on a full-HD screen.

Opens a phantom AASCE split with this plugin's reader, then every widget the manifest
lists from the Plugins menu's path (``add_plugin_dock_widget``): the docks share one
tab group on the right (see ``_napari/_widgets/_layout.py``), the window stays
1920 × 1080. The Spine curve tab, opened last, shows the curve of the slice shown.
napari needs an OpenGL context, so run it under Xvfb with a full-HD screen::

    xvfb-run -a -s "-screen 0 1920x1080x24" python scripts/screenshot_layout.py \\
        [--out docs/screenshots/layout.png]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Write the screenshot; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots" / "layout.png")
    parser.add_argument("--slice", type=int, default=1, help="slice of the split to show")
    args = parser.parse_args(argv)

    import napari
    import napari._qt.qt_main_window as qt_main_window
    from npe2 import PluginManifest

    # napari's toast about the PyQt5 binding would cover the picture; not ours to show
    qt_main_window.SHOW_QT_WARNING = False

    from napari_spine_seg.atomic import atomic_output
    from napari_spine_seg.data.phantom import write_phantom_set

    app = napari.qt.get_qapp()

    def settle(seconds: float = 0.5) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    manifest = PluginManifest.from_distribution("napari-spine-seg")
    names = [w.display_name for w in manifest.contributions.widgets or []]
    with tempfile.TemporaryDirectory() as tmp:
        root = write_phantom_set(Path(tmp) / "phantoms", n_train=4, n_test=2, seed=3)
        viewer = napari.Viewer(title="napari-spine-seg: every widget open", show=True)
        viewer.window.resize(1920, 1080)
        image, labels, _points = viewer.open(
            str(root / "data" / "training"), plugin="napari-spine-seg"
        )
        viewer.dims.set_current_step(0, args.slice)
        widgets = {}
        for name in names:
            _dock, widgets[name] = viewer.window.add_plugin_dock_widget("napari-spine-seg", name)
            settle(0.2)
        window = viewer.window._qt_window
        window.resize(1920, 1080)  # what a maximised window gets (Xvfb has no window manager)
        settle(0.5)
        frame = window.frameGeometry()
        if frame.width() > 1920 or frame.height() > 1080:
            raise SystemExit(f"screenshot_layout: the window is {frame.width()}x{frame.height()}")
        curve = widgets["Spine curve"]
        curve.layer.value = labels
        curve.draw()
        viewer.layers.selection.active = labels
        viewer.reset_view()
        settle(1.0)
        with atomic_output(args.out) as tmp_png:
            viewer.screenshot(str(tmp_png), canvas_only=False)
        print(f"wrote {args.out} ({frame.width()}x{frame.height()} window)")
        viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
