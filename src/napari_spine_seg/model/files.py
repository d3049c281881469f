"""Model files: a Keras ``.keras`` archive with our metadata inside it.

A ``.keras`` file is a zip archive (``config.json``, ``metadata.json``,
``model.weights.h5``). After Keras has written it, :func:`save_model` adds one more
member, ``napari_spine_seg.json``, holding what prediction and review need to use the
model correctly and what a reader needs to trust it: input size, channels, how images
are fitted and normalised, what each class means, a fingerprint of the training set,
the final metrics, the training settings and history, and the versions that made it.
Keras ignores members it does not know, so the file stays an ordinary Keras model, and
the metadata travels with the single file when it is copied.

:func:`read_metadata` reads only that member (no Keras import). :func:`load_model`
loads with Keras ``safe_mode=True`` and turns every failure into one
:class:`~napari_spine_seg.errors.SpineSegError` line: not a model file, corrupt or
truncated, unsafe, or incompatible.

Before Keras sees a file, its ``config.json`` is checked against an allow-list
(:func:`check_config_objects`): every object it names must be a Keras layer, initializer,
optimizer, metric, loss, … (``keras.layers``, ``keras.optimizers``, …) or one of this
package's own, and no ``Lambda`` layer (arbitrary code). Keras's safe mode had published
bypasses (CVE-2025-1550, CVE-2025-8747, CVE-2025-9906, fixed in Keras 3.11, which is the
minimum this package needs); the allow-list refuses such files whatever the Keras.
"""

from __future__ import annotations

import json
import os
import platform
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_output
from ..errors import SpineSegError
from ..trimap import BACKGROUND, BORDER, SPINE
from .config import PRESET_SIZES
from .objects import custom_objects
from .targets import MODEL_OUTPUTS, TRIMAP, VERTEBRAE

METADATA_MEMBER = "napari_spine_seg.json"
FORMAT = "napari-spine-seg model"
FORMAT_VERSION = 1
#: model class index → (trimap value, name)
CLASSES = [
    {"index": 0, "trimap": SPINE, "name": "spine"},
    {"index": 1, "trimap": BACKGROUND, "name": "background"},
    {"index": 2, "trimap": BORDER, "name": "border"},
]
#: class names that mark a layer as able to run arbitrary code when loaded
UNSAFE_LAYERS = ("Lambda", "TFOpLambda")
#: Keras sub-packages (``keras.<name>`` or ``keras.src.<name>...``) whose objects a model's
#: config.json may name; utils, saving, config, backend, ops, … may not
KERAS_MODULES = frozenset(
    "layers initializers regularizers constraints optimizers metrics losses activations "
    "models dtype_policies".split()
)
#: this package, whose registered objects (loss, metrics) a model names
PACKAGE = "napari_spine_seg"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class ModelInfo:
    """What travels inside a model file besides the network.

    Attributes
    ----------
    preset : str
        Builder preset ("unet", "pets").
    options : dict
        Builder options (depth, filters, norm, ...).
    input_size : (rows, cols)
        Network input size.
    channels : int
        Input channels (1, or 3 for the seed's RGB preset; gray is repeated).
    fit : str
        How an image is fitted to the input ("resize" or "letterbox").
    normalisation : str
        How pixels are scaled (see :mod:`napari_spine_seg.model.preprocess`).
    classes : list of dict
        Model class index → trimap value and name.
    training_set : dict
        Root, kind, number of samples and a fingerprint of the names and sizes.
    training : dict
        Settings (epochs, batch size, learning rate, loss, seed, ...) and the last
        completed epoch (``epoch``), used to resume.
    metrics : dict
        Metrics of the saved weights (validation ones where there was validation).
    history : list of dict
        Per-epoch metrics so far.
    versions : dict
        Package, Keras, backend, Python and numpy versions that wrote the file.
    outputs : list of str
        What the model predicts: ``["trimap"]``, or ``["trimap", "vertebrae"]`` for a
        model that learned the vertebrae (its classes are body, space, background and
        its trimap is derived, :mod:`.targets`). A file without the key is trimap-only.
    """

    preset: str
    options: dict = field(default_factory=dict)
    input_size: tuple[int, int] = PRESET_SIZES["unet"]
    channels: int = 1
    fit: str = "resize"
    normalisation: str = "percentile-1-99"
    classes: list = field(default_factory=lambda: [dict(c) for c in CLASSES])
    training_set: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    versions: dict = field(default_factory=dict)
    outputs: list = field(default_factory=lambda: list(MODEL_OUTPUTS[TRIMAP]))

    @property
    def has_vertebrae(self) -> bool:
        """Whether the model predicts the vertebrae (and derives its trimap from them)."""
        return VERTEBRAE in self.outputs

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in the file (with format name and version)."""
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str | os.PathLike | None = None) -> ModelInfo:
        """Rebuild from :meth:`to_json` output; raise SpineSegError when it is not ours."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SpineSegError(source, "is not a napari-spine-seg model (unknown metadata)")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise SpineSegError(
                source,
                f"was written by a newer napari-spine-seg (model format {version}, "
                f"this version reads {FORMAT_VERSION}); upgrade napari-spine-seg",
            )
        names = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in names}
        try:
            info = cls(**kwargs)
            info.input_size = (int(info.input_size[0]), int(info.input_size[1]))
            info.channels = int(info.channels)
            info.outputs = [str(o) for o in info.outputs]
        except (TypeError, ValueError, IndexError) as exc:
            raise SpineSegError(
                source, f"has unreadable napari-spine-seg metadata ({exc})"
            ) from None
        if info.outputs not in list(MODEL_OUTPUTS.values()):
            raise SpineSegError(
                source,
                f"has unknown outputs {info.outputs!r} (this version knows trimap, vertebrae)",
            )
        return info


def versions() -> dict[str, str]:
    """Versions of what writes a model now (imports Keras)."""
    import keras
    import numpy

    out = {
        "napari_spine_seg": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    backend = out["backend"]
    if backend in ("tensorflow", "jax", "torch"):
        import importlib

        try:
            out[backend] = importlib.import_module(backend).__version__
        except Exception:
            pass
    return out


def save_model(model, path: str | os.PathLike, info: ModelInfo) -> Path:
    """Save `model` with `info` inside the ``.keras`` file, atomically.

    Parameters
    ----------
    model : keras.Model
    path : path-like
        Must end in ``.keras``.
    info : ModelInfo
        Metadata; ``versions`` is filled in when empty.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise SpineSegError(path, "a model file name must end in .keras")
    if not info.versions:
        info.versions = versions()
    payload = json.dumps(info.to_json(), indent=1, default=_json_default)
    with atomic_output(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(METADATA_MEMBER, payload)
    return path


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise SpineSegError(path, "no such model file")
    if path.is_dir():
        raise SpineSegError(path, "is a folder, not a .keras model file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise SpineSegError(
            path, "is not a readable .keras model file (corrupt or truncated)"
        ) from None


def read_metadata(path: str | os.PathLike) -> ModelInfo:
    """Read the metadata of a model file without loading the network (no Keras).

    Raises
    ------
    SpineSegError
        When the file is not a zip archive or holds no napari-spine-seg metadata.
    """
    path = Path(path)
    with _open_zip(path) as zf:
        try:
            raw = zf.read(METADATA_MEMBER)
        except KeyError:
            raise SpineSegError(
                path, "has no napari-spine-seg metadata (not written by spine-seg train)"
            ) from None
        except (zipfile.BadZipFile, OSError, EOFError):
            raise SpineSegError(path, "is corrupt (the metadata cannot be read)") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SpineSegError(path, "has corrupt napari-spine-seg metadata (not JSON)") from None
    return ModelInfo.from_json(data, path)


def _allowed_module(module: object) -> bool:
    if module is None:
        return True
    if not isinstance(module, str):
        return False
    if module == PACKAGE or module.startswith(PACKAGE + "."):
        return True
    parts = module.split(".")
    if parts[0] != "keras":
        return False
    if len(parts) == 1:
        return True
    if parts[1] == "src":
        return len(parts) > 2 and parts[2] in KERAS_MODULES
    return parts[1] in KERAS_MODULES


def _allowed_function(name: object) -> bool:
    """A function a config names by string: Keras's own (``"relu"``) or ours."""
    if not isinstance(name, str):
        return False
    if name.startswith(PACKAGE + ">"):
        return bool(_IDENTIFIER.fullmatch(name[len(PACKAGE) + 1 :]))
    return bool(_IDENTIFIER.fullmatch(name))


def _object_problem(obj: dict) -> str | None:
    """Why one serialised object of a config.json may not be loaded, or None."""
    module = obj.get("module")
    class_name = obj.get("class_name")
    registered = obj.get("registered_name")
    shown = f"{module}.{class_name}" if module else str(class_name)
    if class_name in UNSAFE_LAYERS:
        return f"contains a {class_name} layer (arbitrary code)"
    if module == "builtins" and class_name == "function" and registered in (None, "function"):
        # a function named by string, e.g. our loss: "napari_spine_seg>ce_dice_loss"
        if _allowed_function(obj.get("config")):
            return None
        return f"names the function {str(obj.get('config'))[:80]!r}, outside Keras and {PACKAGE}"
    if not _allowed_module(module):
        return f"names {shown[:80]!r}, an object outside Keras and {PACKAGE}"
    if class_name is not None and not (
        isinstance(class_name, str) and _IDENTIFIER.fullmatch(class_name)
    ):
        return f"names the class {str(class_name)[:80]!r}, which is not a plain class name"
    if registered is not None and registered != class_name:
        if not (
            isinstance(registered, str)
            and registered.split(">")[0] in ("keras", PACKAGE)
            and _IDENTIFIER.fullmatch(registered.split(">")[-1])
            and registered.count(">") == 1
        ):
            return (
                f"names the registered object {str(registered)[:80]!r}, outside Keras and {PACKAGE}"
            )
    return None


def check_config_objects(config: Any, path: str | os.PathLike | None = None) -> None:
    """Refuse a model configuration that names anything outside Keras and this package.

    Every object in the configuration (a dict with ``module``, ``class_name`` or
    ``registered_name``) must come from an allowed Keras sub-package
    (:data:`KERAS_MODULES`) or from napari_spine_seg, by a plain class name; a function
    named by string must be Keras's or registered by napari_spine_seg; no ``Lambda``.

    Parameters
    ----------
    config : object
        The parsed ``config.json`` of a ``.keras`` file.
    path : path-like, optional
        The model file, named in the error.

    Raises
    ------
    SpineSegError
        One line naming the model file and the first offending object.
    """
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if any(key in item for key in ("module", "class_name", "registered_name")):
                problem = _object_problem(item)
                if problem is not None:
                    raise SpineSegError(path, f"{problem}; refusing to load it")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


@dataclass
class LoadedModel:
    """A Keras model with its metadata.

    Attributes
    ----------
    keras_model : keras.Model
    info : ModelInfo
    path : pathlib.Path or None
    """

    keras_model: Any
    info: ModelInfo
    path: Path | None = None


def load_model(path: str | os.PathLike, *, compile: bool = False) -> LoadedModel:
    """Load a model file in Keras safe mode and check that it fits its metadata.

    Parameters
    ----------
    path : path-like
        A ``.keras`` file written by :func:`save_model`.
    compile : bool
        Also restore the loss, metrics and optimizer state (to resume training).

    Returns
    -------
    LoadedModel

    Raises
    ------
    SpineSegError
        One line for a missing, corrupt, unsafe or incompatible file.
    """
    path = Path(path)
    info = read_metadata(path)
    with _open_zip(path) as zf:
        try:
            config = json.loads(zf.read("config.json"))
        except KeyError:
            raise SpineSegError(path, "is not a Keras model file (no config.json inside)") from None
        except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError):
            raise SpineSegError(
                path, "is corrupt (its model configuration cannot be read)"
            ) from None
    check_config_objects(config, path)

    import keras

    objects = custom_objects()
    try:
        model = keras.saving.load_model(
            path, compile=compile, safe_mode=True, custom_objects=objects
        )
    except Exception as exc:
        text = " ".join(str(exc).split())
        if "safe_mode" in text or "unsafe" in text.lower() or "lambda" in text.lower():
            raise SpineSegError(
                path, "contains code that Keras safe mode refuses to load"
            ) from None
        raise SpineSegError(
            path, f"cannot be loaded as a Keras model (corrupt or incompatible: {text[:160]})"
        ) from None
    _check_compatible(model, info, path)
    return LoadedModel(model, info, path)


def _check_compatible(model, info: ModelInfo, path: Path) -> None:
    try:
        in_shape = tuple(model.inputs[0].shape)
        out_shape = tuple(model.outputs[0].shape)
    except (AttributeError, IndexError, TypeError):
        raise SpineSegError(
            path, "is not a single-input, single-output segmentation model"
        ) from None
    if (
        len(model.inputs) != 1
        or len(model.outputs) != 1
        or len(in_shape) != 4
        or len(out_shape) != 4
    ):
        raise SpineSegError(path, "is not a single-input, single-output 2-D segmentation model")
    expected_in = (*info.input_size, info.channels)
    if tuple(in_shape[1:]) != expected_in:
        raise SpineSegError(
            path,
            f"is incompatible: the network takes {in_shape[1:]} but its metadata says {expected_in}",
        )
    if out_shape[-1] != len(info.classes):
        names = ", ".join(str(c.get("name")) for c in info.classes if isinstance(c, dict))
        raise SpineSegError(
            path,
            f"is incompatible: the network has {out_shape[-1]} output classes, "
            f"expected {len(info.classes)} ({names})",
        )
    if tuple(out_shape[1:3]) != tuple(in_shape[1:3]):
        raise SpineSegError(path, "is incompatible: its output is not the size of its input")
