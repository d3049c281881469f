"""A vertebra model in the widgets: Load names its outputs, Predict adds the vertebrae and
landmarks layers and says which images' vertebrae are not 17.

The model is a tiny untrained one with the vertebra classes (body, space, background):
it finds no 17 vertebrae, which is what the fault notification is for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _widget_helpers import new_widget
from napari_spine_seg.data.phantom import make_phantom

pytestmark = pytest.mark.gui

_TINY_VERTEBRA_MODEL = textwrap.dedent(
    """
    import sys
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, save_model
    from napari_spine_seg.model.targets import MODEL_OUTPUTS, VERTEBRA_CLASSES, VERTEBRAE

    options = {"depth": 2, "filters": 4}
    model = build_model("unet", (64, 32, 1), 3, **options)
    info = ModelInfo(
        preset="unet",
        options=options,
        input_size=(64, 32),
        channels=1,
        classes=[dict(c) for c in VERTEBRA_CLASSES],
        outputs=list(MODEL_OUTPUTS[VERTEBRAE]),
    )
    save_model(model, sys.argv[1], info)
    """
)


@pytest.fixture(scope="module")
def vertebra_model(tmp_path_factory):
    """Written by a child process: TensorFlow stays out of napari's."""
    path = tmp_path_factory.mktemp("model") / "vertebrae.keras"
    code = [sys.executable, "-c", _TINY_VERTEBRA_MODEL, os.fspath(path)]
    subprocess.run(code, check=True, timeout=300)
    return path


def test_load_and_predict_with_a_vertebra_model(
    make_napari_viewer, qtbot, vertebra_model, napari_notifications
):
    from napari.layers import Labels, Points

    viewer = make_napari_viewer()
    train = new_widget(viewer, "train_widget:TrainWidget")
    train.model_file.value = vertebra_model
    train.load_button.clicked()
    qtbot.waitUntil(lambda: train.state.model is not None, timeout=120_000)
    assert "\noutputs: trimap, vertebrae\n" in train.model_info.value + "\n"

    image = viewer.add_image(make_phantom(0, height=128, width=64).image, name="x")
    predict = new_widget(viewer, "predict_widget:PredictWidget")
    predict.images.value = [image]
    predict.predict()
    qtbot.waitUntil(lambda: "x landmarks" in viewer.layers, timeout=120_000)
    vertebrae, landmarks = viewer.layers["x vertebrae"], viewer.layers["x landmarks"]
    assert isinstance(vertebrae, Labels) and isinstance(landmarks, Points)
    assert vertebrae.data.shape == image.data.shape
    meta = {
        n: viewer.layers[n].metadata["spine_seg"]
        for n in ("x predicted trimap", "x vertebrae", "x landmarks")
    }
    assert len({m["prediction"] for m in meta.values()}) == 1  # one prediction, paired
    assert meta["x vertebrae"]["role"] == "vertebrae" and meta["x landmarks"]["role"] == "landmarks"
    # an untrained network finds no 17 vertebrae: no corners are guessed, and it says so
    n_bodies = int(np.max(vertebrae.data))
    assert n_bodies != 17 and len(landmarks.data) == 0
    qtbot.waitUntil(
        lambda: any("vertebrae: x: found" in str(n.message) for n in napari_notifications),
        timeout=5000,
    )
    assert "T1" not in list(vertebrae.features["vertebra"])
