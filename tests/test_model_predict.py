"""Prediction: original-size trimaps and probabilities, TTA, `spine-seg predict`."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from _files import synthetic_landmarks, synthetic_xray, write_aasce_layout, write_folder_layout
from napari_spine_seg.cli import main
from napari_spine_seg.data.masks import is_predicted_trimap, read_trimap_png
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.model.builders import build_model
from napari_spine_seg.model.files import ModelInfo, load_model, save_model
from napari_spine_seg.model.predict import collect_inputs, predict_images
from napari_spine_seg.trimap import trimap_from_landmarks


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """An untrained (random) tiny model: prediction plumbing does not need a good one."""
    path = tmp_path_factory.mktemp("model") / "m.keras"
    keras_model = build_model("unet", (64, 32, 1), depth=2, filters=4)
    info = ModelInfo(preset="unet", options={"depth": 2, "filters": 4}, input_size=(64, 32))
    return save_model(keras_model, path, info)


def test_predictions_are_at_each_images_own_size(model_path):
    model = load_model(model_path)
    images = [
        np.random.default_rng(0).integers(0, 255, (300, 120), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 4000, (97, 41), dtype=np.uint16),  # odd size, 12-bit
        np.random.default_rng(2).random((64, 32)).astype(np.float32),
    ]
    preds = predict_images(model, images, batch_size=2)
    assert [p.trimap.shape for p in preds] == [(300, 120), (97, 41), (64, 32)]
    for p in preds:
        assert p.trimap.dtype == np.uint8 and set(np.unique(p.trimap)) <= {1, 2, 3}
        assert p.probability.dtype == np.float32 and p.probability.shape == p.trimap.shape
        assert 0.0 <= p.probability.min() and p.probability.max() <= 1.0
    # the trimap is the argmax at full size: spine exactly where its probability wins
    p = preds[0]
    assert np.all(p.probability[p.trimap == 1] >= 1 / 3 - 1e-6)


def test_batching_does_not_change_the_result(model_path):
    images = [
        np.random.default_rng(i).integers(0, 255, (200, 80), dtype=np.uint8) for i in range(5)
    ]
    one = predict_images(model_path, images, batch_size=1)
    many = predict_images(model_path, images, batch_size=4)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_allclose(a.probability, b.probability, atol=1e-5)


def test_flip_tta_is_symmetric(model_path):
    image = np.random.default_rng(3).integers(0, 255, (128, 64), dtype=np.uint8)
    plain = predict_images(model_path, [image])[0]
    tta = predict_images(model_path, [image], tta=True)[0]
    tta_mirror = predict_images(model_path, [image[:, ::-1]], tta=True)[0]
    assert not np.allclose(plain.probability, tta.probability)
    # with TTA, predicting the mirror image gives the mirror prediction
    np.testing.assert_allclose(tta_mirror.probability, tta.probability[:, ::-1], atol=1e-5)


def test_collect_inputs_from_files_folders_and_aasce_splits(tmp_path):
    root = write_aasce_layout(tmp_path / "aasce", n_train=2, n_test=3)
    assert len(collect_inputs([root / "data" / "test"])) == 3
    assert len(collect_inputs([root])) == 5
    folder = write_folder_layout(tmp_path / "beside", n=2, where="beside")
    assert [p.suffix for p in collect_inputs([folder])] == [".jpg", ".jpg"]  # trimaps skipped
    one = next((root / "data" / "training").iterdir())
    assert collect_inputs([one]) == [one]
    with pytest.raises(SpineSegError, match="does not exist"):
        collect_inputs([tmp_path / "nope"])
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(SpineSegError, match="not an image"):
        collect_inputs([text])


def test_cli_predict_writes_one_trimap_per_image_named_after_it(model_path, tmp_path, capsys):
    root = write_aasce_layout(tmp_path / "aasce", n_train=1, n_test=2, size=(180, 72))
    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                str(model_path),
                str(root / "data" / "test"),
                "--out",
                str(out),
                "--probability",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in (root / "data" / "test").iterdir())
    trimaps = sorted(out.glob("*.png"))
    assert [p.name for p in trimaps] == [n.replace(".jpg", ".png") for n in names]
    assert read_trimap_png(trimaps[0]).shape == (180, 72)
    assert all(is_predicted_trimap(p) for p in trimaps)  # measured as a network's outline
    prob = tifffile.imread(out / names[0].replace(".jpg", ".probability.tif"))
    assert prob.shape == (180, 72) and prob.dtype == np.float32
    assert "wrote 2 trimap(s)" in capsys.readouterr().out


def test_cli_predict_bad_model_or_input_is_one_line_exit_2(model_path, tmp_path, capsys):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"nope")
    image = tmp_path / "x.png"
    from PIL import Image

    lm = synthetic_landmarks(120, 48)
    Image.fromarray(synthetic_xray(lm, (120, 48))).save(image)
    assert main(["predict", str(junk), str(image), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spine-seg predict: error: ") and str(junk) in err and "\n" not in err
    assert (
        main(
            [
                "predict",
                str(model_path),
                str(tmp_path / "missing.jpg"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_a_trained_model_finds_the_spine(tmp_path):
    """End to end on tiny data: train a few epochs, predict a new image, check the overlap."""
    from napari_spine_seg.model.train import train

    root = write_aasce_layout(tmp_path / "set", n_train=8, n_test=1, size=(160, 64))
    result = train(
        root,
        tmp_path / "m.keras",
        epochs=4,
        size=(64, 32),
        options={"depth": 2, "filters": 8},
        batch_size=2,
        learning_rate=3e-3,
        augment=False,
        patience=None,
        seed=1,
        cache=None,
    )
    lm = synthetic_landmarks(200, 80, curve=0.08)  # a new size and curve
    image = synthetic_xray(lm, (200, 80), seed=99)
    pred = predict_images(result.model_path, [image])[0]
    from napari_spine_seg.spine.metrics import spine_dice

    assert spine_dice(trimap_from_landmarks(lm, (200, 80)), pred.trimap) > 0.8
