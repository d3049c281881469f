"""Model files: metadata inside the .keras file, safe loading, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.model.builders import build_model
from napari_spine_seg.model.files import (
    METADATA_MEMBER,
    ModelInfo,
    load_model,
    read_metadata,
    save_model,
)


def _info(**changes):
    info = ModelInfo(
        preset="unet",
        options={"depth": 2, "filters": 4},
        input_size=(64, 32),
        channels=1,
        training_set={"fingerprint": "abc123", "n_train": 5},
        metrics={"val_spine_dice": 0.5},
    )
    for k, v in changes.items():
        setattr(info, k, v)
    return info


@pytest.fixture(scope="module")
def tiny_model():
    return build_model("unet", (64, 32, 1), depth=2, filters=4)


def _one_line_error(path, match):
    with pytest.raises(SpineSegError) as err:
        load_model(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text
    assert match in text, text
    return text


def test_metadata_travels_inside_the_single_file(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "a" / "m.keras", _info())
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.keras"]  # nothing beside it
    copy = tmp_path / "elsewhere" / "copied.keras"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    path.unlink()
    info = read_metadata(copy)
    assert info.input_size == (64, 32) and info.channels == 1 and info.fit == "resize"
    assert info.normalisation == "percentile-1-99"
    assert [c["name"] for c in info.classes] == ["spine", "background", "border"]
    assert [c["trimap"] for c in info.classes] == [1, 2, 3]
    assert info.training_set["fingerprint"] == "abc123"
    assert info.metrics == {"val_spine_dice": 0.5}
    assert {"napari_spine_seg", "keras", "backend", "python", "numpy"} <= set(info.versions)
    loaded = load_model(copy)
    x = np.random.default_rng(0).random((1, 64, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(
        np.asarray(loaded.keras_model(x)), np.asarray(tiny_model(x)), atol=1e-5
    )


def test_reading_metadata_needs_no_keras(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "m.keras", _info())
    code = (
        "import sys; from napari_spine_seg.model.files import read_metadata; "
        f"i = read_metadata({str(path)!r}); print(i.input_size, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "(64, 32) False", out.stderr[-1000:]


def test_a_file_name_must_end_in_keras(tiny_model, tmp_path):
    with pytest.raises(SpineSegError, match="must end in .keras"):
        save_model(tiny_model, tmp_path / "m.h5", _info())


def test_missing_and_corrupt_files_are_one_line_errors(tiny_model, tmp_path):
    _one_line_error(tmp_path / "nothing.keras", "no such model file")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"this is not a zip archive at all" * 10)
    _one_line_error(junk, "corrupt or truncated")
    good = save_model(tiny_model, tmp_path / "good.keras", _info())
    cut = tmp_path / "cut.keras"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _one_line_error(cut, "corrupt or truncated")


def test_damaged_weights_are_a_one_line_error(tiny_model, tmp_path):
    good = save_model(tiny_model, tmp_path / "good.keras", _info())
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith(".h5"):
                data = data[:100]  # cut the weights file inside an intact archive
            dst.writestr(item, data)
    _one_line_error(bad, "cannot be loaded")


def test_a_lambda_layer_is_refused_in_safe_mode(tmp_path):
    import keras

    inputs = keras.Input((64, 32, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Conv2D(3, 1, activation="softmax")(x)
    path = save_model(keras.Model(inputs, outputs), tmp_path / "lambda.keras", _info())
    _one_line_error(path, "Lambda layer")


def test_a_plain_keras_file_and_newer_formats_are_refused(tiny_model, tmp_path):
    plain = tmp_path / "plain.keras"
    tiny_model.save(plain)
    _one_line_error(plain, "no napari-spine-seg metadata")
    newer = tmp_path / "newer.keras"
    shutil.copyfile(plain, newer)
    with zipfile.ZipFile(newer, "a") as zf:
        zf.writestr(METADATA_MEMBER, json.dumps({**_info().to_json(), "format_version": 99}))
    _one_line_error(newer, "newer napari-spine-seg")


def test_a_network_that_does_not_match_its_metadata_is_incompatible(tiny_model, tmp_path):
    wrong_size = save_model(tiny_model, tmp_path / "size.keras", _info(input_size=(128, 48)))
    _one_line_error(wrong_size, "incompatible")
    two_class = build_model("unet", (64, 32, 1), num_classes=2, depth=2, filters=4)
    wrong_classes = save_model(two_class, tmp_path / "classes.keras", _info())
    _one_line_error(wrong_classes, "output classes")


@pytest.mark.parametrize("preset", ["unet", "pets"])
def test_the_allow_list_admits_every_object_of_our_own_compiled_models(preset, tmp_path):
    import keras

    from napari_spine_seg.model.files import check_config_objects
    from napari_spine_seg.model.objects import make_loss, make_metrics

    shape = (64, 32, 1) if preset == "unet" else (32, 32, 3)
    network = build_model(preset, shape)
    network.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("ce+dice"), metrics=make_metrics()
    )
    path = tmp_path / "m.keras"
    network.save(path)
    check_config_objects(json.loads(zipfile.ZipFile(path).read("config.json")), path)


@pytest.mark.parametrize(
    "obj, named",
    [
        ({"module": "os", "class_name": "system"}, "'os.system'"),
        ({"module": "keras.utils", "class_name": "get_file"}, "'keras.utils.get_file'"),
        ({"module": "keras.src.saving", "class_name": "x"}, "'keras.src.saving.x'"),
        ({"module": "my_lab", "class_name": "Layer"}, "'my_lab.Layer'"),
        (
            {"module": "builtins", "class_name": "function", "config": "eval"},
            None,  # a plain name is Keras's own function ("relu"): allowed
        ),
        (
            {"module": "builtins", "class_name": "function", "config": "os.system"},
            "'os.system'",
        ),
        ({"module": "keras.layers", "class_name": "a.b"}, "'a.b'"),
        ({"module": "keras.layers", "class_name": "Dense", "registered_name": "x>y>z"}, "x>y>z"),
        ({"module": "keras.layers", "class_name": "TFOpLambda"}, "TFOpLambda layer"),
        ({"module": "napari_spine_seg.model.objects", "class_name": "SpineDice"}, None),
    ],
)
def test_the_allow_list_names_the_offending_object(obj, named):
    from napari_spine_seg.model.files import check_config_objects

    config = {"class_name": "Functional", "config": {"layers": [{"config": {"x": obj}}]}}
    if named is None:
        check_config_objects(config, "m.keras")
        return
    with pytest.raises(SpineSegError) as err:
        check_config_objects(config, "m.keras")
    assert str(err.value).startswith("m.keras: ") and named in str(err.value)
