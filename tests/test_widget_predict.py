"""Predict in a real viewer: single images, a dataset stack, results landing on their image, no stall."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from _widget_helpers import StallProbe, new_widget, write_tiny_model
from napari_spine_seg.data.aasce import write_landmarks_mat
from napari_spine_seg.data.phantom import make_phantom

WIDGET = "predict_widget:PredictWidget"

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture
def viewer_with_model(make_napari_viewer, tiny_model):
    from napari_spine_seg._napari._widgets._state import ModelRef, viewer_state
    from napari_spine_seg.model.files import read_metadata

    viewer = make_napari_viewer()
    viewer_state(viewer).set_model(ModelRef(tiny_model, read_metadata(tiny_model)))
    return viewer


def phantom(seed, shape=(128, 64)):
    return make_phantom(np.random.default_rng(seed), height=shape[0], width=shape[1])


def test_predicts_the_chosen_images_where_they_were_when_asked(viewer_with_model, qtbot):
    viewer = viewer_with_model
    a = viewer.add_image(phantom(0).image, name="a", scale=(0.5, 0.5))
    b = viewer.add_image(phantom(1, (144, 48)).image, name="b")
    widget = new_widget(viewer, WIDGET)
    viewer.layers.selection.active = a
    assert widget.images.value == [a]  # follows the selection
    widget.predict_button.clicked()
    viewer.layers.selection.active = b  # the person moves on at once …
    a.name = "a renamed"  # … and renames the image being predicted
    qtbot.waitUntil(lambda: "a renamed predicted probability" in viewer.layers, timeout=60_000)
    trimap = viewer.layers["a renamed predicted trimap"]
    probability = viewer.layers["a renamed predicted probability"]
    assert trimap.data.shape == a.data.shape and trimap.data.dtype == np.uint8
    assert set(np.unique(trimap.data)) <= {1, 2, 3}
    assert tuple(trimap.scale) == (0.5, 0.5)
    assert trimap.metadata["spine_seg"]["predicted"] is True  # for the Spine curve widget
    assert probability.visible is False
    assert probability.data.shape == a.data.shape
    assert 0.0 <= probability.data.min() and probability.data.max() <= 1.0
    assert not any(layer.name.startswith("b ") for layer in viewer.layers)
    assert viewer.layers.selection.active is b  # the selection stays on what the person had
    assert set(viewer.layers.selection) == {b}
    from napari_spine_seg.trimap import LABEL_COLORS

    assert np.allclose(trimap.colormap.map(np.array([3]))[0], LABEL_COLORS[3])


def test_predicts_every_image_of_a_dataset_stack(viewer_with_model, qtbot, tmp_path):
    viewer = viewer_with_model
    root = tmp_path / "set"
    for sub in ("data/training", "labels/training"):
        (root / sub).mkdir(parents=True)
    shapes = [(144, 64), (128, 48)]
    for i, shape in enumerate(shapes):
        ph = phantom(i, shape)
        Image.fromarray(ph.image).save(root / "data" / "training" / f"p {i}.jpg", quality=95)
        write_landmarks_mat(root / "labels" / "training" / f"p {i}.jpg.mat", ph.landmarks)
    viewer.open(root, plugin="napari-spine-seg")
    stack = next(
        layer for layer in viewer.layers if layer.data.ndim == 3 and "trimap" not in layer.name
    )
    truth = viewer.layers[f"{stack.name} trimap"]  # the reader's: drawn from the landmarks
    truth_before = np.asarray(truth.data).copy()
    viewer.layers.selection.active = truth
    widget = new_widget(viewer, WIDGET)
    widget.images.value = [stack]
    widget.predict()
    name = f"{stack.name} predicted probability"
    qtbot.waitUntil(lambda: name in viewer.layers, timeout=60_000)
    trimaps = viewer.layers[f"{stack.name} predicted trimap"].data
    assert viewer.layers[f"{stack.name} trimap"] is truth  # the ground truth stays beside it
    assert np.array_equal(np.asarray(truth.data), truth_before)
    assert "predicted" not in truth.metadata["spine_seg"]
    assert viewer.layers.selection.active is truth
    assert trimaps.shape == (2, 144, 64)
    assert np.all(trimaps[1, 128:] == 0) and np.all(trimaps[1, :, 48:] == 0)  # padding kept empty
    assert set(np.unique(trimaps[1, :128, :48])) <= {1, 2, 3}


def test_prediction_never_stalls_the_gui(viewer_with_model, qtbot):
    """The event loop keeps turning while the model works, and while results land.

    Adding a layer is napari's own work on the GUI thread (its controls, its visuals:
    seconds on a loaded machine with software OpenGL), not ours to speed up; so the
    first run is judged until napari starts inserting the first result layer, and a
    second run, which updates the layers in place, from start to end.
    """
    viewer = viewer_with_model
    layers = [viewer.add_image(phantom(i, (384, 160)).image, name=f"x{i}") for i in range(4)]
    widget = new_widget(viewer, WIDGET)
    widget.images.value = layers
    inserting = []
    viewer.layers.events.inserting.connect(lambda _: inserting.append(time.perf_counter()))
    with StallProbe() as first:
        widget.predict()  # starts the model process, loads TensorFlow and the model there
        qtbot.waitUntil(lambda: bool(inserting), timeout=120_000)
    qtbot.waitUntil(lambda: widget.predict_button.enabled, timeout=120_000)
    before = viewer.layers["x3 predicted trimap"]
    with StallProbe() as again:
        widget.predict()
        qtbot.waitUntil(lambda: not widget.predict_button.enabled, timeout=5_000)
        qtbot.waitUntil(lambda: widget.predict_button.enabled, timeout=120_000)
        # enough turns of the loop after the run to judge it by (on a loaded machine
        # a fixed 100 ms wait may see fewer than ten)
        qtbot.waitUntil(lambda: len(again.ticks) > 10, timeout=5_000)
    assert viewer.layers["x3 predicted trimap"] is before  # updated in place
    # 200 ms of this process's work inside one pause of the event loop (its CPU time:
    # on a loaded 2-core machine the wall time of a pause grows with other processes' work)
    model_work = first.longest_busy(until=inserting[0])
    assert model_work < 200, f"the event loop stalled: {first.report(until=inserting[0])}"
    assert again.longest_busy() < 200, f"the event loop stalled: {again.report()}"


def test_never_takes_over_a_layer_of_the_same_name(viewer_with_model, qtbot):
    """A layer that happens to bear the prediction's name (a trimap PNG of that name,
    opened by the reader) is left as it is; the prediction lands beside it."""
    viewer = viewer_with_model
    image = viewer.add_image(phantom(3).image, name="c")
    theirs = viewer.add_labels(np.full(image.data.shape, 2, np.uint8), name="c predicted trimap")
    widget = new_widget(viewer, WIDGET)
    widget.images.value = [image]
    viewer.layers.selection.active = image
    widget.predict()
    qtbot.waitUntil(lambda: "c predicted probability" in viewer.layers, timeout=60_000)
    ours = [
        layer for layer in viewer.layers if layer.metadata.get("spine_seg", {}).get("predicted")
    ]
    assert [layer.name for layer in ours] == ["c predicted trimap [1]", "c predicted probability"]
    assert np.all(theirs.data == 2)
    assert viewer.layers.selection.active is image
    from napari_spine_seg._napari._widgets.gaps_widget import probability_layer_for

    # the gap inspector pairs the renamed trimap with its probability by their metadata
    assert probability_layer_for(viewer, ours[0]) is ours[1]
    assert probability_layer_for(viewer, theirs) is None
    qtbot.waitUntil(lambda: widget.predict_button.enabled, timeout=60_000)
    first = ours[0]
    widget.predict()  # again: the widget's own layers are updated, nothing new is added
    qtbot.waitUntil(lambda: not widget.predict_button.enabled, timeout=5_000)
    qtbot.waitUntil(lambda: widget.predict_button.enabled, timeout=60_000)
    assert len(viewer.layers) == 4 and theirs.name == "c predicted trimap"
    assert viewer.layers["c predicted trimap [1]"] is first
