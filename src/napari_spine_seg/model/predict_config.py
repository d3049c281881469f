"""The settings of one prediction over files: :class:`PredictConfig`, checked once when made.

Importable without Keras: the command line and a job build and check a config before
TensorFlow loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpineSegError
from ..outputs import check_output
from .config_json import JsonConfig
from .defaults import PREDICT_BATCH_SIZE


def check_batch_size(batch_size) -> int:
    """Return `batch_size` when it is a whole number of images, 1 or more.

    Raises
    ------
    SpineSegError
        For 0, a negative or a non-integer batch size.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise SpineSegError(None, f"the batch size must be a whole number, not {batch_size!r}")
    if batch_size < 1:
        raise SpineSegError(None, f"the batch size must be 1 or more images, not {batch_size}")
    return int(batch_size)


@dataclass(frozen=True)
class PredictConfig(JsonConfig):
    """Every setting of a prediction over files (``spine-seg predict``), checked when made.

    Attributes
    ----------
    model : Path
        The ``.keras`` model file.
    inputs : tuple of Path
        Image files, folders of images, or AASCE roots or splits.
    out : Path
        The output folder (one trimap PNG per image).
    batch_size : int
        Images per forward pass, 1 or more.
    tta : bool
        Also predict the mirrored image and average the probabilities.
    probability : bool
        Also write ``<stem>.probability.tif`` spine probability maps.
    """

    WHAT = "prediction"

    model: Path
    inputs: tuple[Path, ...]
    out: Path
    batch_size: int = PREDICT_BATCH_SIZE
    tta: bool = False
    probability: bool = False

    def __post_init__(self):
        set_ = object.__setattr__
        if isinstance(self.inputs, str | os.PathLike):
            set_(self, "inputs", (self.inputs,))
        set_(self, "model", Path(self.model))
        set_(self, "inputs", tuple(Path(p) for p in self.inputs))
        set_(self, "out", Path(self.out))
        set_(self, "tta", bool(self.tta))
        set_(self, "probability", bool(self.probability))
        self.validate()

    def validate(self) -> None:
        """Check every setting before any image is read; raise a one-line SpineSegError.

        The batch size, then the output folder (never an input, inside an input folder
        or over the model: :func:`~napari_spine_seg.outputs.check_output`), then that
        each input exists.
        """
        set_ = object.__setattr__
        set_(self, "batch_size", check_batch_size(self.batch_size))
        if not self.inputs:
            raise SpineSegError(None, "name at least one image, folder or data set to predict")
        check_output(self.out, list(self.inputs), folder=True, keep=[self.model])
        for path in self.inputs:
            if not path.exists():
                raise SpineSegError(path, "does not exist")
