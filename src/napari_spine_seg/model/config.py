"""The settings of one training: :class:`TrainConfig`, checked once before any work.

Importable without Keras (the CLI builds a config before TensorFlow loads). The input
size of each preset lives here and nowhere else.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpineSegError
from .config_json import JsonConfig
from .defaults import TRAIN_DEFAULTS
from .preprocess import FITS

#: input (rows, cols) per preset. "unet": tall like the X-rays (8:3); 384 × 144 rather
#: than 256 × 96 because the finer outline measures Cobb angles closer to the reference
#: (SMAPE 8.0-9.1 % against 9.4-10.4 % over 240 phantoms, ``docs/performance.md``).
#: "pets": the seed's.
PRESET_SIZES = {"unet": (384, 144), "pets": (160, 160)}
#: input channels per preset
PRESET_CHANNELS = {"unet": 1, "pets": 3}
PRESETS = tuple(PRESET_SIZES)
LOSSES = ("ce", "ce+dice")
#: how the learning rate falls: "plateau" halves it when the validation loss stalls for
#: 4 epochs; "cosine" follows a half cosine to 1e-5 over the epochs (or over the time
#: budget, whichever ends first), the same for every run
LR_SCHEDULES = ("plateau", "cosine")
#: what a model learns: "trimap" (spine / background / border) or "vertebrae" (each
#: vertebra's body / the spaces between them / background, the trimap derived from it);
#: "auto": vertebrae when every training sample has landmarks, else trimap
OUTPUTS = ("auto", "trimap", "vertebrae")
#: levels of the "unet" preset when its options name no depth
UNET_DEPTH = 4
#: most tilt (degrees) the bending augmentation may add
MAX_BEND_DEG = 45.0
#: how a run ends, as ``TrainResult.stopped`` and the history's ``stopped`` column say
STOP_REASONS = ("completed", "early_stopping", "cancelled", "time_budget")


def default_size(preset: str) -> tuple[int, int]:
    """The input (rows, cols) of `preset`."""
    return PRESET_SIZES.get(preset, PRESET_SIZES["unet"])


def default_input_shape(preset: str) -> tuple[int, int, int]:
    """The input (rows, cols, channels) a preset is built with when none is given."""
    return (*default_size(preset), PRESET_CHANNELS.get(preset, 1))


def downsampling(preset: str, options: dict | None = None) -> int:
    """What rows and columns of the input must be divisible by, for `preset`."""
    if preset == "pets":
        return 16
    depth = (options or {}).get("depth", UNET_DEPTH)
    try:
        return 2 ** int(depth)
    except (TypeError, ValueError):
        raise SpineSegError(None, f"depth must be an integer, got {depth!r}") from None


def parse_size(text) -> tuple[int, int]:
    """Parse ``"RxC"`` (rows × columns), e.g. ``"384x144"``, or a (rows, cols) pair.

    Raises
    ------
    SpineSegError
        When it is not two positive integers separated by ``x``.
    """
    if isinstance(text, str):
        parts = text.strip().lower().replace("×", "x").split("x")
    else:
        parts = list(text)
    try:
        rows, cols = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise SpineSegError(None, f"size must be ROWSxCOLS like 384x144, got {text!r}") from None
    if rows <= 0 or cols <= 0:
        raise SpineSegError(None, f"size must be positive, got {text!r}")
    return rows, cols


def _path_or_none(value):
    return None if value is None or value == "" else Path(value)


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """Every setting of :func:`~napari_spine_seg.model.train.train`, checked when made.

    Attributes
    ----------
    dataset : path-like or Dataset
        What ``open_dataset`` opens (AASCE root or split, image + trimap folder, Pets),
        or an open :class:`~napari_spine_seg.data.dataset.Dataset` (not JSON-able).
    out : Path
        The model file (``.keras``).
    preset : {"unet", "pets"}
    size : (rows, cols)
        Network input; None (or omitted) takes the preset's (:data:`PRESET_SIZES`).
        "RxC" text is parsed.
    epochs : int
        Total epochs (when resuming, including those already run).
    batch_size : int
    learning_rate : float
    loss : {"ce", "ce+dice"}
    val_fraction : float
        In [0, 1): held out when the dataset has no validation split.
    seed : int
    patience : int or None
        Early stopping after this many epochs without improvement; None or 0: off.
    fit : {"letterbox", "resize"}
    options : dict
        Builder options (``depth``, ``filters``, ...).
    augment : bool
    bend_deg : float
        With `augment`: the largest tilt (degrees, at most :data:`MAX_BEND_DEG`) that
        bending the spine adds to a training sample (:mod:`.bend`); 0 is off.
    cache : path-like, "auto" or None
        Folder for decoded arrays.
    mixed_precision : bool or None
        None: on when a GPU or TPU is present.
    workers : int
    resume : Path or None
        Continue an interrupted run from its checkpoint: its network, optimizer, settings,
        history and best score.
    init_from : Path or None
        Start from this model's weights (fine-tuning): its network and settings, a new
        history and no best score, so the first epoch is this run's best so far. With
        `resume` too (a fine-tune interrupted and requeued), `resume` wins.
    max_minutes : float or None
        Stop at the end of the epoch that crosses this many minutes of training.
    outputs : {"auto", "trimap", "vertebrae"}
        What the network learns (:data:`OUTPUTS`). "vertebrae" needs landmarks; "auto"
        takes it when every training sample has landmarks and no trimap file. With
        `resume` or `init_from` the starting model's outputs are kept.
    zoom_pass : bool or None
        A vertebrae model also learns column tiles at the X-ray's own resolution, and
        predicts them in a second pass after the whole image (:mod:`.zoom`); recorded
        in the model's training settings. None (the default): on for a vertebrae model
        (it halved the landmark Cobb error, docs/performance.md); True is refused with
        ``outputs="trimap"``.
    lr_schedule : {"plateau", "cosine"}
        How the learning rate falls (:data:`LR_SCHEDULES`).
    """

    WHAT = "training"

    dataset: object
    out: Path
    preset: str = TRAIN_DEFAULTS["preset"]
    size: tuple[int, int] | None = None
    epochs: int = TRAIN_DEFAULTS["epochs"]
    batch_size: int = TRAIN_DEFAULTS["batch_size"]
    learning_rate: float = TRAIN_DEFAULTS["learning_rate"]
    loss: str = TRAIN_DEFAULTS["loss"]
    val_fraction: float = TRAIN_DEFAULTS["val_fraction"]
    seed: int = 0
    patience: int | None = TRAIN_DEFAULTS["patience"]
    fit: str = TRAIN_DEFAULTS["fit"]
    options: dict = field(default_factory=dict)
    augment: bool = True
    bend_deg: float = TRAIN_DEFAULTS["bend_deg"]
    cache: str | Path | None = "auto"
    mixed_precision: bool | None = None
    workers: int = 1
    resume: Path | None = None
    init_from: Path | None = None
    max_minutes: float | None = None
    outputs: str = "auto"
    zoom_pass: bool | None = None
    lr_schedule: str = TRAIN_DEFAULTS["lr_schedule"]

    def __post_init__(self):
        set_ = object.__setattr__
        if isinstance(self.dataset, str | os.PathLike):
            set_(self, "dataset", Path(self.dataset))
        set_(self, "out", Path(self.out))
        set_(self, "size", parse_size(self.size) if self.size is not None else None)
        set_(self, "options", dict(self.options or {}))
        set_(self, "resume", _path_or_none(self.resume))
        set_(self, "init_from", _path_or_none(self.init_from))
        set_(self, "patience", int(self.patience) if self.patience else None)
        set_(self, "bend_deg", float(self.bend_deg))
        if self.cache is not None and self.cache != "auto":
            set_(self, "cache", Path(self.cache))
        self.validate()

    @property
    def input_size(self) -> tuple[int, int]:
        """`size`, or the preset's when none was given."""
        return self.size if self.size is not None else default_size(self.preset)

    @property
    def channels(self) -> int:
        """Input channels of the preset."""
        return PRESET_CHANNELS[self.preset]

    def validate(self) -> None:
        """Check every setting (no file is read); raise a one-line SpineSegError."""
        if self.out.suffix != ".keras":
            raise SpineSegError(self.out, "a model file name must end in .keras")
        if self.out.is_dir():
            raise SpineSegError(self.out, "is a folder; name a model file (.keras)")
        self._check_checkpoints()
        if isinstance(self.dataset, Path) and not self.dataset.exists():
            raise SpineSegError(self.dataset, "does not exist")
        if self.preset not in PRESETS:
            raise SpineSegError(
                None, f"unknown model preset {self.preset!r}; choose one of {', '.join(PRESETS)}"
            )
        if self.fit not in FITS:
            raise SpineSegError(None, f"unknown fit {self.fit!r}; choose one of {', '.join(FITS)}")
        if self.outputs not in OUTPUTS:
            raise SpineSegError(
                None, f"unknown outputs {self.outputs!r}; choose one of {', '.join(OUTPUTS)}"
            )
        if self.zoom_pass is True and self.outputs == "trimap":
            raise SpineSegError(
                None, "the zoom pass is for a model with vertebrae, not for outputs trimap"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise SpineSegError(
                None,
                f"unknown learning-rate schedule {self.lr_schedule!r}; "
                f"choose one of {', '.join(LR_SCHEDULES)}",
            )
        if self.loss not in LOSSES:
            raise SpineSegError(None, f"unknown loss {self.loss!r}; choose ce or ce+dice")
        if self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise SpineSegError(None, "epochs, batch size and learning rate must be positive")
        if not 0 <= self.val_fraction < 1:
            raise SpineSegError(
                None, f"validation fraction must be in [0, 1), got {self.val_fraction}"
            )
        if self.patience is not None and self.patience < 0:
            raise SpineSegError(None, f"patience must be 0 or more, got {self.patience}")
        if self.workers < 1:
            raise SpineSegError(None, f"workers must be 1 or more, got {self.workers}")
        if self.max_minutes is not None and not (
            math.isfinite(self.max_minutes) and self.max_minutes > 0
        ):
            raise SpineSegError(None, f"max minutes must be positive, got {self.max_minutes}")
        if not (math.isfinite(self.bend_deg) and 0 <= self.bend_deg <= MAX_BEND_DEG):
            raise SpineSegError(
                None, f"bend must be 0 to {MAX_BEND_DEG:g} degrees, got {self.bend_deg}"
            )
        if self.size is not None and self.resume is None and self.init_from is None:
            factor = downsampling(self.preset, self.options)
            rows, cols = self.size
            if rows < factor or cols < factor or rows % factor or cols % factor:
                raise SpineSegError(
                    None,
                    f"preset {self.preset!r} needs rows and columns divisible by {factor}, "
                    f"got {rows}x{cols}",
                )

    def _check_checkpoints(self) -> None:
        """`resume` and `init_from` are readable models; `resume` has epochs left to run."""
        from .files import read_metadata  # lazy: cycle (files imports config's preset sizes)

        for name in ("resume", "init_from"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise SpineSegError(path, "does not exist (a .keras checkpoint is needed)")
        if self.resume is not None:
            done = int(read_metadata(self.resume).training.get("epoch", 0))
            if self.epochs <= done:
                raise SpineSegError(
                    self.resume,
                    f"has trained {done} epochs already; ask for more (epochs > {done}) "
                    "to continue",
                )

    def to_dict(self) -> dict:
        """The settings as JSON values (paths as text, the size as ``[rows, cols]``)."""
        if not isinstance(self.dataset, Path):
            raise SpineSegError(None, "a config with an open dataset cannot be written as JSON")
        return super().to_dict()
