"""Vertebrae in a real viewer: the vertebrae and landmarks layers of a prediction, and the
Spine curve widget measuring those landmarks on their end plates, redrawn after a move.

The vertebrae and corners here are a phantom's ground truth, as a vertebra model that
found all 17 would give them (``model.predict.Prediction``'s ``vertebrae`` and
``landmarks``).
"""

from __future__ import annotations

import numpy as np
import pytest

from _widget_helpers import new_widget, write_tiny_model
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.spine.centreline import cobb_from_trimap
from napari_spine_seg.spine.cobb import cobb_angles, cobb_details
from napari_spine_seg.spine.vertebra_labels import VERTEBRA_NAMES, end_plates, vertebra_labels
from napari_spine_seg.trimap import rowcol_to_xy, trimap_from_landmarks, xy_to_rowcol

pytestmark = pytest.mark.gui

CURVE = "spine_curve_widget:SpineCurveWidget"


@pytest.fixture(scope="module")
def spine():
    phantom = make_phantom(3, height=600, curve=("S", 35.0), artefacts=())
    return phantom.image, phantom.landmarks


def _add_prediction(viewer, image, landmarks, *, found=True, name="x"):
    """The layers Predict makes from a vertebra model's prediction of `image`."""
    from napari.layers import Layer

    from napari_spine_seg._napari._layers import trimap_layer
    from napari_spine_seg._napari._widgets._vertebra_layers import (
        VertebraOutputs,
        vertebra_layers,
    )

    shape = image.shape
    meta = {"image_shape": list(shape), "predicted": True, "prediction": f"id-{name}"}
    viewer.add_image(image, name=name)
    trimap = trimap_from_landmarks(landmarks, shape)
    viewer.add_layer(
        Layer.create(*trimap_layer(trimap, name=f"{name} predicted trimap", metadata=meta))
    )
    outputs = VertebraOutputs(vertebra_labels(landmarks, shape), landmarks if found else None)
    for layer_tuple, _role in vertebra_layers(name, [outputs], None, metadata=meta):
        viewer.add_layer(Layer.create(*layer_tuple))
    return viewer.layers[f"{name} predicted trimap"], trimap


def test_vertebrae_and_landmarks_layers(make_napari_viewer, spine):
    from napari.layers import Labels, Points

    image, landmarks = spine
    viewer = make_napari_viewer()
    _add_prediction(viewer, image, landmarks)
    vertebrae, points = viewer.layers["x vertebrae"], viewer.layers["x landmarks"]
    assert isinstance(vertebrae, Labels) and isinstance(points, Points)
    assert vertebrae.data.shape == image.shape
    assert set(np.unique(vertebrae.data)) == set(range(18))  # background and 17 bodies
    assert list(vertebrae.features["vertebra"][1:]) == list(VERTEBRA_NAMES)
    assert VERTEBRA_NAMES[0] == "T1" and VERTEBRA_NAMES[-1] == "L5"
    # hovering a body shows its name: the middle of T7's four corners
    corners = landmarks.reshape(17, 4, 2)
    for k in (0, 6, 16):
        row, col = xy_to_rowcol(corners[k].mean(axis=0))
        assert vertebrae.data[int(round(row)), int(round(col))] == k + 1
        status = vertebrae.get_status((row, col), world=True)["coordinates"]
        assert f"vertebra: {VERTEBRA_NAMES[k]}" in status
    # 17 distinct colours, background transparent
    colours = vertebrae.colormap.map(np.arange(18))
    assert colours[0][3] == 0 and len({tuple(np.round(c, 3)) for c in colours[1:]}) == 17

    assert points.data.shape == (68, 2) and points.editable
    np.testing.assert_allclose(rowcol_to_xy(points.data), landmarks)
    assert list(points.features["vertebra"][:5]) == [1, 1, 1, 1, 2]
    assert list(points.features["name"][-4:]) == ["L5"] * 4
    assert list(points.features["corner"][:4]) == [
        "top-left",
        "top-right",
        "bottom-left",
        "bottom-right",
    ]
    # the three layers of one prediction are paired by their metadata
    ids = {
        viewer.layers[n].metadata["spine_seg"]["prediction"]
        for n in ("x predicted trimap", "x vertebrae", "x landmarks")
    }
    assert ids == {"id-x"}


def test_a_stack_keeps_each_images_vertebrae_on_its_slice(make_napari_viewer, qtbot, spine):
    from napari.layers import Layer

    from napari_spine_seg._napari._widgets._vertebra_layers import (
        VertebraOutputs,
        fault_lines,
        vertebra_layers,
    )

    image, landmarks = spine
    small = make_phantom(5, height=400, curve=("C", 20.0), artefacts=())
    shapes = [image.shape, small.image.shape]
    outputs = [
        VertebraOutputs(
            vertebra_labels(landmarks, image.shape), None, ("found 16 vertebral bodies",)
        ),
        VertebraOutputs(vertebra_labels(small.landmarks, small.image.shape), small.landmarks),
    ]
    full = (2, *image.shape)
    viewer = make_napari_viewer()
    meta = {"shapes": [list(s) for s in shapes], "prediction": "id-s", "predicted": True}
    for layer_tuple, _ in vertebra_layers("s", outputs, shapes, full_shape=full, metadata=meta):
        viewer.add_layer(Layer.create(*layer_tuple))
    vertebrae, points = viewer.layers["s vertebrae"], viewer.layers["s landmarks"]
    assert vertebrae.data.shape == full
    rows, cols = small.image.shape
    assert set(np.unique(vertebrae.data[1, :rows, :cols])) == set(range(18))
    assert not vertebrae.data[1, rows:].any() and not vertebrae.data[1, :, cols:].any()
    # landmarks only where 17 were found: all 68 on slice 1
    assert points.data.shape == (68, 3) and np.all(points.data[:, 0] == 1)
    np.testing.assert_allclose(rowcol_to_xy(points.data[:, 1:]), small.landmarks)
    assert fault_lines(["a.jpg", "b.jpg"], outputs) == ["a.jpg: found 16 vertebral bodies"]
    # one image's count was not 17: no body is named as if it were
    assert list(vertebrae.features["vertebra"][[1, 17]]) == ["body 1", "body 17"]

    # the Spine curve widget measures the slice shown: its landmarks where it has them
    widget = new_widget(viewer, CURVE)
    widget.layer.value = vertebrae
    viewer.dims.set_current_step(0, 1)
    widget.draw()
    np.testing.assert_allclose(widget.drawing.angles, cobb_angles(small.landmarks, rows))
    curve = viewer.layers["s landmarks curve"]
    assert all(np.all(d[:, 0] == 1) for d in curve.data)
    viewer.dims.set_current_step(0, 0)  # no landmarks there: said, nothing drawn
    qtbot.waitUntil(lambda: widget.drawing is None, timeout=5000)
    assert "17 vertebrae were not found" in widget.message.value
    assert len(curve.data) == 0


def _plate_rowcol(landmarks, vertebra: int, upper: bool) -> np.ndarray:
    upper_plates, lower_plates = end_plates(landmarks)
    return xy_to_rowcol((upper_plates if upper else lower_plates)[vertebra])


def _assert_on_plate(line: np.ndarray, plate: np.ndarray) -> None:
    """`line` (two ends) runs along `plate`, centred on it, longer than it."""
    np.testing.assert_allclose(line.mean(axis=0), plate.mean(axis=0), atol=1e-3)
    d_line, d_plate = line[1] - line[0], plate[1] - plate[0]
    assert abs(d_line[0] * d_plate[1] - d_line[1] * d_plate[0]) < 1e-3 * np.hypot(*d_line) ** 2
    assert np.hypot(*d_line) > 2 * np.hypot(*d_plate)


def _curve(viewer, name):
    layer = viewer.layers[name]
    return (
        list(layer.shape_type),
        [np.asarray(d) for d in layer.data],
        list(layer.features["label"]),
        list(layer.features["end_plate"]),
    )


def test_spine_curve_measures_a_predictions_landmarks_on_their_end_plates(
    make_napari_viewer, qtbot, spine
):
    image, landmarks = spine
    height = image.shape[0]
    viewer = make_napari_viewer()
    trimap_layer, trimap = _add_prediction(viewer, image, landmarks)
    points = viewer.layers["x landmarks"]
    widget = new_widget(viewer, CURVE)
    widget.layer.value = trimap_layer  # the predicted trimap is chosen …
    widget.draw()
    expected = cobb_angles(landmarks, height)
    assert expected[0] > 15  # a real curve
    np.testing.assert_allclose(widget.drawing.angles, expected)  # … its landmarks measured
    assert widget.drawing.source == "landmarks"
    assert "landmarks of 'x landmarks'" in widget.message.value
    types, data, texts, plates = _curve(viewer, "x landmarks curve")
    details = cobb_details(landmarks, height)
    # each angle: the upper end plate of its upper end vertebra, the lower end plate of
    # its lower one, in that angle's colour; the upper one labelled with spine.cobb's value
    for name, angle, (upper, lower) in zip(
        ("PT", "MT", "TL/L"), details.angles, details.pairs, strict=True
    ):
        top = f"{VERTEBRA_NAMES[upper]} upper end plate"
        assert top in plates
        _assert_on_plate(data[plates.index(top)], _plate_rowcol(landmarks, upper, True))
        if lower != upper:
            bottom = f"{VERTEBRA_NAMES[lower]} lower end plate"
            assert bottom in plates
            _assert_on_plate(data[plates.index(bottom)], _plate_rowcol(landmarks, lower, False))
        text = f"{name} {angle:.1f}°"
        box = next(i for i, t in enumerate(texts) if text in t)
        assert types[box] == "rectangle"
        labelled = viewer.layers["x landmarks curve"].features["labels_line"][box]
        assert plates[labelled] == top
    assert widget.angles.value == "  ".join(
        f"{n} {a:.1f}°" for n, a in zip(("PT", "MT", "TL/L"), expected, strict=True)
    )

    # moving the PT upper end vertebra's top-left corner redraws the angles
    upper = details.pairs[0][0]
    moved = np.asarray(points.data).copy()
    moved[4 * upper, 0] -= 12  # its top-left corner up: the vertebra tilts more
    points.data = moved
    qtbot.waitUntil(lambda: not np.allclose(widget.drawing.angles, expected), timeout=5000)
    np.testing.assert_allclose(widget.drawing.angles, cobb_angles(rowcol_to_xy(moved), height))
    _, data, _, plates = _curve(viewer, "x landmarks curve")
    top = f"{VERTEBRA_NAMES[upper]} upper end plate"
    _assert_on_plate(
        data[plates.index(top)], xy_to_rowcol(end_plates(rowcol_to_xy(moved))[0][upper])
    )

    # the vertebrae layer is measured on the same landmarks
    widget.layer.value = viewer.layers["x vertebrae"]
    widget.draw()
    np.testing.assert_allclose(widget.drawing.angles, cobb_angles(rowcol_to_xy(moved), height))

    # without the link, the trimap is measured on its centre line, as before
    widget.linked.value = False
    widget.layer.value = trimap_layer
    widget.draw()
    np.testing.assert_allclose(
        widget.drawing.angles, cobb_from_trimap(trimap, outline="predicted").angles
    )
    assert widget.drawing.source == "trimap" and "x predicted trimap curve" in viewer.layers


def test_vertebrae_without_17_found_are_not_measured_as_a_trimap(
    make_napari_viewer, spine, napari_notifications
):
    image, landmarks = spine
    viewer = make_napari_viewer()
    trimap_layer, trimap = _add_prediction(viewer, image, landmarks, found=False, name="y")
    assert len(viewer.layers["y landmarks"].data) == 0
    assert "T1" not in list(viewer.layers["y vertebrae"].features["vertebra"])
    widget = new_widget(viewer, CURVE)
    widget.layer.value = viewer.layers["y vertebrae"]
    widget.draw()
    assert widget.drawing is None
    assert "17 vertebrae were not found" in widget.message.value
    assert any("y vertebrae" in str(n.message) for n in napari_notifications)
    widget.layer.value = trimap_layer  # the trimap is then measured on its centre line
    widget.draw()
    np.testing.assert_allclose(
        widget.drawing.angles, cobb_from_trimap(trimap, outline="predicted").angles
    )


def test_load_shows_which_outputs_a_model_has(make_napari_viewer, qtbot, tmp_path):
    model = write_tiny_model(tmp_path / "old.keras")  # written without vertebrae
    viewer = make_napari_viewer()
    widget = new_widget(viewer, "train_widget:TrainWidget")
    widget.model_file.value = model
    widget.load_button.clicked()
    qtbot.waitUntil(lambda: widget.state.model is not None, timeout=120_000)
    assert "\noutputs: trimap\n" in widget.model_info.value + "\n"
