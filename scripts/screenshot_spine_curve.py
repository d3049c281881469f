"""Make docs/screenshots/spine-curve.png: the Spine curve widget on a phantom X-ray.

Draws one phantom with an S-shaped spine (:func:`make_phantom`), opens it in a real
napari window with its ground-truth trimap, docks the Spine curve widget, measures the
trimap (centre line, virtual vertebrae, the three Cobb angles) and saves a screenshot
of the whole window. napari needs an OpenGL context, so run it under Xvfb::

    xvfb-run -a python scripts/screenshot_spine_curve.py [--out docs/screenshots/spine-curve.png]

``--seed 4 --cobb 40 --out docs/screenshots/spine-curve-tie.png`` makes the docs' second
one: two curves of about one size, and the widget's warning that their order may swap.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Write the screenshot; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "screenshots" / "spine-curve.png"
    )
    parser.add_argument("--seed", type=int, default=3, help="phantom seed")
    parser.add_argument("--cobb", type=float, default=45.0, help="main curve, degrees")
    args = parser.parse_args(argv)

    import napari
    import napari._qt.qt_main_window as qt_main_window

    # napari's toast about the PyQt5 binding would cover the picture; not ours to show
    qt_main_window.SHOW_QT_WARNING = False

    from napari_spine_seg._napari._layers import image_layer, trimap_layer
    from napari_spine_seg._napari._widgets.spine_curve_widget import SpineCurveWidget
    from napari_spine_seg.atomic import atomic_output
    from napari_spine_seg.data.phantom import make_phantom
    from napari_spine_seg.trimap import trimap_from_landmarks

    phantom = make_phantom(args.seed, height=800, curve=("S", args.cobb), artefacts=())
    shape = phantom.image.shape
    trimap = trimap_from_landmarks(phantom.landmarks, shape)
    viewer = napari.Viewer(title="napari-spine-seg: spine curve", show=True)
    viewer.window.resize(1200, 900)
    for data, kwargs, kind in (
        image_layer(phantom.image, name="phantom", metadata={"image_shape": list(shape)}),
        trimap_layer(trimap, name="phantom trimap", metadata={"image_shape": list(shape)}),
    ):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget = SpineCurveWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Spine curve", area="right")
    widget.layer.value = viewer.layers["phantom trimap"]
    widget.draw()
    viewer.layers["phantom trimap"].opacity = 0.35
    app = napari.qt.get_qapp()
    app.processEvents()
    viewer.reset_view()
    app.processEvents()
    with atomic_output(args.out) as tmp_png:
        viewer.screenshot(str(tmp_png), canvas_only=False)
    print(f"{args.out}: {widget.angles.value} (reference {phantom.angles.round(1).tolist()})")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
