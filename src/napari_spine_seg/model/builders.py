"""U-Net builders in Keras 3 (``keras.layers`` only, so TensorFlow and JAX both run them).

Two presets:

``"pets"``
    The keras-io "oxford pets" U-Net exactly as the seed paper used it: an
    Xception-like encoder (32 → 64 → 128 → 256, separable convolutions, residual
    shortcuts), a decoder of transposed convolutions (256 → 128 → 64 → 32) and a
    softmax over three classes; 2,058,979 parameters at 160 × 160 × 3. Kept as the
    baseline the benchmark compares against.
``"unet"``
    A Ronneberger-style U-Net: two 3 × 3 convolutions (each followed by a
    normalisation and ReLU) per level, max-pooling down, transposed convolutions up,
    skip connections by concatenation. Depth, base filters and the normalisation are
    options; the defaults were chosen by measurement (``docs/performance.md``).

Classes: the model's class ``k`` is trimap value ``k + 1`` (0 spine, 1 background,
2 border), the Oxford-IIIT Pets convention minus one, as the seed trained it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import SpineSegError
from .config import PRESET_CHANNELS, PRESETS, UNET_DEPTH, default_input_shape

#: default model input channels of the "unet" preset (sizes: ``config.PRESET_SIZES``)
DEFAULT_CHANNELS = PRESET_CHANNELS["unet"]
#: default options of the "unet" preset
UNET_DEFAULTS = {"depth": UNET_DEPTH, "filters": 16, "norm": "batch", "dropout": 0.0}
#: the seed's input channels
PETS_CHANNELS = PRESET_CHANNELS["pets"]


def build_model(
    preset: str = "unet",
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 3,
    **options: Any,
):
    """Build an uncompiled Keras U-Net.

    Parameters
    ----------
    preset : {"unet", "pets"}
        The architecture (see the module docstring).
    input_shape : (rows, cols, channels), optional
        Default: ``(384, 144, 1)`` for "unet", ``(160, 160, 3)`` for "pets". Rows and
        columns must be divisible by ``2 ** depth`` ("unet") or by 16 ("pets").
    num_classes : int
        Number of output classes (3 for trimaps).
    **options
        For "unet": ``depth`` (levels below the top, default 4), ``filters`` (of the
        top level, doubled at each level down, default 16), ``norm`` ("batch",
        "group" or None) and ``dropout`` (before the bottleneck's convolutions).
        "pets" takes none.

    Returns
    -------
    keras.Model
        Input ``(rows, cols, channels)`` float, output ``(rows, cols, num_classes)``
        softmax probabilities in float32 (also under a mixed-precision policy).

    Raises
    ------
    SpineSegError
        For an unknown preset, an unknown option or a size the network cannot take.
    """
    builder = _BUILDERS.get(preset)
    if builder is None:
        raise SpineSegError(
            None, f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}"
        )
    return builder(input_shape, num_classes, **options)


def _check_shape(input_shape, multiple: int, preset: str) -> tuple[int, int, int]:
    try:
        rows, cols, channels = (int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise SpineSegError(
            None, f"input shape must be (rows, cols, channels), got {input_shape!r}"
        ) from None
    if rows < multiple or cols < multiple or rows % multiple or cols % multiple:
        raise SpineSegError(
            None,
            f"preset {preset!r} needs rows and columns divisible by {multiple}, got {rows}x{cols}",
        )
    if channels not in (1, 3):
        raise SpineSegError(None, f"input channels must be 1 or 3, got {channels}")
    return rows, cols, channels


def _pets(input_shape, num_classes: int, **options):
    """The keras-io oxford pets U-Net (F. Chollet, 2020), layer for layer."""
    import keras
    from keras import layers

    if options:
        raise SpineSegError(
            None, f"preset 'pets' takes no options, got {', '.join(sorted(options))}"
        )
    shape = _check_shape(input_shape or default_input_shape("pets"), 16, "pets")
    inputs = keras.Input(shape=shape)

    # entry block
    x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x

    def convolve_twice(x, conv, filters):
        """The body of each block: ReLU, `conv`, batch norm, twice."""
        for _ in range(2):
            x = layers.Activation("relu")(x)
            x = conv(filters, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
        return x

    for filters in (64, 128, 256):
        x = convolve_twice(x, layers.SeparableConv2D, filters)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        previous = x

    for filters in (256, 128, 64, 32):
        x = convolve_twice(x, layers.Conv2DTranspose, filters)
        x = layers.UpSampling2D(2)(x)
        residual = layers.UpSampling2D(2)(previous)
        residual = layers.Conv2D(filters, 1, padding="same")(residual)
        x = layers.add([x, residual])
        previous = x

    x = layers.Conv2D(num_classes, 3, padding="same")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="pets_unet")


def _norm_layer(norm: str | None, filters: int) -> Callable | None:
    from keras import layers

    if norm in (None, "none"):
        return None
    if norm == "batch":
        # momentum 0.9, not Keras' 0.99: with a few hundred steps per run the moving
        # statistics used at validation and prediction must settle quickly
        return layers.BatchNormalization(momentum=0.9)
    if norm == "group":
        return layers.GroupNormalization(groups=min(8, filters))
    raise SpineSegError(None, f"unknown normalisation {norm!r}; choose batch, group or none")


def _conv_block(x, filters: int, norm: str | None):
    from keras import layers

    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=norm in (None, "none"))(x)
        layer = _norm_layer(norm, filters)
        if layer is not None:
            x = layer(x)
        x = layers.Activation("relu")(x)
    return x


def _unet(input_shape, num_classes: int, **options):
    """A Ronneberger-style U-Net (same-padded, so the output has the input's size)."""
    import keras
    from keras import layers

    unknown = set(options) - set(UNET_DEFAULTS)
    if unknown:
        raise SpineSegError(
            None,
            f"unknown option(s) for preset 'unet': {', '.join(sorted(unknown))} "
            f"(known: {', '.join(UNET_DEFAULTS)})",
        )
    opts = {**UNET_DEFAULTS, **options}
    depth, filters, norm = int(opts["depth"]), int(opts["filters"]), opts["norm"]
    if not 1 <= depth <= 6:
        raise SpineSegError(None, f"depth must be between 1 and 6, got {depth}")
    if filters < 1:
        raise SpineSegError(None, f"filters must be positive, got {filters}")
    _norm_layer(norm, filters)  # validate before building
    shape = _check_shape(input_shape or default_input_shape("unet"), 2**depth, "unet")

    inputs = keras.Input(shape=shape)
    x = inputs
    skips = []
    for level in range(depth):
        x = _conv_block(x, filters * 2**level, norm)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    if opts["dropout"]:
        x = layers.Dropout(float(opts["dropout"]))(x)
    x = _conv_block(x, filters * 2**depth, norm)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(filters * 2**level, 2, strides=2, padding="same")(x)
        x = layers.Concatenate()([x, skips[level]])
        x = _conv_block(x, filters * 2**level, norm)
    x = layers.Conv2D(num_classes, 1)(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="unet")


_BUILDERS = {"unet": _unet, "pets": _pets}
