"""U-Net builders: the seed's pets model exactly, the configurable unet, bad requests, JAX."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.model.builders import build_model


def test_pets_preset_is_the_keras_io_model_with_its_parameter_count():
    model = build_model("pets", (160, 160, 3))
    # the keras-io oxford pets U-Net the seed used: 2,058,979 parameters at 160x160x3
    assert model.count_params() == 2_058_979
    assert tuple(model.output_shape) == (None, 160, 160, 3)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"SeparableConv2D", "Conv2DTranspose", "UpSampling2D", "Add"} <= kinds


def test_unet_is_configurable_and_keeps_the_input_size():
    small = build_model("unet", (64, 32, 1), depth=2, filters=4)
    deeper = build_model("unet", (64, 32, 1), depth=3, filters=4)
    wider = build_model("unet", (64, 32, 1), depth=2, filters=8)
    grouped = build_model("unet", (64, 32, 1), depth=2, filters=4, norm="group")
    assert tuple(small.output_shape) == (None, 64, 32, 3)
    assert small.count_params() < deeper.count_params()
    assert small.count_params() < wider.count_params()
    assert any(type(layer).__name__ == "GroupNormalization" for layer in grouped.layers)
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in grouped.layers)
    out = np.asarray(small(np.random.default_rng(0).random((2, 64, 32, 1), dtype=np.float32)))
    assert out.shape == (2, 64, 32, 3)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, atol=1e-4)  # softmax over 3 classes


def test_default_unet_is_tall_and_single_channel():
    model = build_model()
    assert tuple(model.input_shape) == (None, 384, 144, 1)


@pytest.mark.parametrize(
    ("preset", "shape", "options", "words"),
    [
        ("vgg", None, {}, "unknown model preset"),
        ("unet", (64, 30, 1), {"depth": 2}, "divisible by 4"),
        ("unet", (64, 32, 2), {}, "channels must be 1 or 3"),
        ("unet", (64, 32, 1), {"depht": 2}, "unknown option"),
        ("unet", (64, 32, 1), {"norm": "layer"}, "unknown normalisation"),
        ("pets", (160, 160, 3), {"depth": 3}, "takes no options"),
    ],
)
def test_bad_requests_are_one_line_errors(preset, shape, options, words):
    with pytest.raises(SpineSegError) as info:
        build_model(preset, shape, **options)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


# the JAX backend (build, forward pass, training in bf16) is tested in test_model_train.py


def test_importing_the_package_and_the_model_modules_does_not_import_keras():
    code = (
        "import sys, napari_spine_seg, napari_spine_seg.model.train, napari_spine_seg.model.predict, "
        "napari_spine_seg.model.files, napari_spine_seg.evaluate, napari_spine_seg.demo, "
        "napari_spine_seg.cli.train, napari_spine_seg.cli.predict; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'matplotlib') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
