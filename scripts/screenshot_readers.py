"""Make docs/screenshots/aasce-dataset.png: a phantom AASCE split opened in napari.

Writes a small phantom set in the AASCE layout (:func:`write_phantom_set`), opens its
training split with this plugin's reader in a real napari window (the X-ray stack,
landmarks and ground-truth trimaps, aligned slice by slice), and saves a screenshot of
the whole window. napari needs an OpenGL context, so run it under Xvfb::

    xvfb-run -a python scripts/screenshot_readers.py [--out docs/screenshots/aasce-dataset.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _fit_slice(viewer, shape) -> None:
    """Centre and zoom the camera on one slice (the stack is padded to the largest image)."""
    rows, cols = shape
    viewer.reset_view()
    canvas_rows, canvas_cols = viewer.canvas.size  # what reset_view fits to (napari >= 0.7)
    viewer.scene.camera.center = (rows / 2 - 0.5, cols / 2 - 0.5)
    viewer.scene.camera.zoom = 0.95 * min(canvas_rows / rows, canvas_cols / cols)


def main(argv: list[str] | None = None) -> int:
    """Write the screenshot; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "screenshots" / "aasce-dataset.png"
    )
    parser.add_argument("--seed", type=int, default=0, help="phantom set seed")
    parser.add_argument("--slice", type=int, default=2, help="slice of the split to show")
    args = parser.parse_args(argv)

    import napari
    import napari._qt.qt_main_window as qt_main_window

    # napari's toast about the PyQt5 binding would cover the picture; not ours to show
    qt_main_window.SHOW_QT_WARNING = False

    from napari_spine_seg.atomic import atomic_output
    from napari_spine_seg.data.phantom import write_phantom_set

    with tempfile.TemporaryDirectory() as tmp:
        root = write_phantom_set(Path(tmp) / "phantoms", n_train=6, n_test=2, seed=args.seed)
        viewer = napari.Viewer(title="napari-spine-seg: AASCE data set", show=True)
        viewer.window.resize(1100, 900)
        layers = viewer.open(str(root / "data" / "training"), plugin="napari-spine-seg")
        image, labels, points = layers
        viewer.dims.set_current_step(0, args.slice)
        viewer.layers.selection.active = labels
        napari.qt.get_qapp().processEvents()
        _fit_slice(viewer, image.metadata["spine_seg"]["shapes"][args.slice])
        napari.qt.get_qapp().processEvents()
        with atomic_output(args.out) as tmp_png:
            viewer.screenshot(str(tmp_png), canvas_only=False)
        viewer.close()
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
