"""Make docs/screenshots/vertebrae.png: vertebrae, landmarks and Cobb end plates in napari.

Draws one phantom with an S-shaped spine (:func:`make_phantom`), opens it in a real
napari window with the layers the Predict widget adds for a vertebra model that found
all 17 vertebrae (``<image> vertebrae``, ``<image> landmarks``; here the phantom's own,
as such a model gives them), docks the Spine curve widget, measures the vertebrae layer
(its landmarks: the end plates of each angle's end vertebrae, the three Cobb angles),
puts the cursor over T7 (the status bar names it) and saves a screenshot of the whole
window. napari needs an OpenGL context, so run it
under Xvfb::

    xvfb-run -a -s "-screen 0 1920x1080x24" python scripts/screenshot_vertebrae.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Write the screenshot; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots" / "vertebrae.png")
    parser.add_argument("--seed", type=int, default=6, help="phantom seed")
    parser.add_argument("--cobb", type=float, default=40.0, help="main curve, degrees")
    args = parser.parse_args(argv)

    import napari
    import napari._qt.qt_main_window as qt_main_window

    # napari's toast about the PyQt5 binding would cover the picture; not ours to show
    qt_main_window.SHOW_QT_WARNING = False

    from napari.layers import Layer

    from napari_spine_seg._napari._layers import image_layer
    from napari_spine_seg._napari._widgets._vertebra_layers import (
        VertebraOutputs,
        vertebra_layers,
    )
    from napari_spine_seg._napari._widgets.spine_curve_widget import SpineCurveWidget
    from napari_spine_seg.atomic import atomic_output
    from napari_spine_seg.data.phantom import make_phantom
    from napari_spine_seg.spine.vertebra_labels import vertebra_labels

    phantom = make_phantom(args.seed, height=800, curve=("S", args.cobb), artefacts=())
    shape = phantom.image.shape
    meta = {"image_shape": list(shape), "predicted": True, "prediction": "screenshot"}
    viewer = napari.Viewer(title="napari-spine-seg: vertebrae", show=True)
    viewer.window.resize(1200, 900)
    data, kwargs, _ = image_layer(phantom.image, name="phantom", metadata=meta)
    viewer.add_image(data, **kwargs)
    outputs = VertebraOutputs(vertebra_labels(phantom.landmarks, shape), phantom.landmarks)
    for layer_tuple, _role in vertebra_layers("phantom", [outputs], None, metadata=meta):
        viewer.add_layer(Layer.create(*layer_tuple))
    widget = SpineCurveWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Spine curve", area="right")
    vertebrae = viewer.layers["phantom vertebrae"]
    widget.layer.value = vertebrae
    widget.draw()
    vertebrae.opacity = 0.35
    app = napari.qt.get_qapp()
    app.processEvents()
    viewer.reset_view()
    # the cursor over T7: the status bar names the vertebra under it, as when hovering
    t7 = phantom.landmarks.reshape(17, 4, 2)[6].mean(axis=0)
    viewer.mouse_over_canvas = True
    viewer.cursor.position = (float(t7[1]), float(t7[0]))
    viewer.update_status_from_cursor()
    app.processEvents()
    with atomic_output(args.out) as tmp_png:
        viewer.screenshot(str(tmp_png), canvas_only=False)
    print(f"{args.out}: {widget.angles.value} (reference {phantom.angles.round(1).tolist()})")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
