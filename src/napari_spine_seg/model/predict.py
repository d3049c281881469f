"""Predict trimaps at each image's own size, in batches, with optional flip TTA.

Each image is prepared exactly as in training (:mod:`.preprocess`: fitted to the
network input and normalised), the network's class probabilities are resized back to
the original size (bilinear), and the trimap is their argmax there, so that the
outline is as smooth as the probabilities, not blocky at the network's resolution.

A model with vertebrae (``ModelInfo.outputs``, :mod:`.targets`) gives, besides: the
bodies found, numbered top to bottom, and, when exactly 17 were found, their 68
corners fitted from the body probability at the image's own size
(:func:`~napari_spine_seg.spine.vertebrae.fit_vertebrae`). Its trimap is the column
(body ∪ space probability ≥ ½, without pieces beside it:
:func:`~napari_spine_seg.spine.vertebrae.spine_column`) with the border band drawn at
the width a trimap drawn from landmarks has (:func:`~napari_spine_seg.trimap.trimap_from_mask`).
A model trained with the zoom pass (its training settings' ``zoom_pass``) predicts, after
the whole image, column tiles cut from the X-ray at its own resolution around that
column, and pastes their body and background probabilities over the first pass's
before the column and the corners are drawn (:mod:`.zoom`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_output, check_writable_folder
from ..data.aasce import LANDMARKS_FOLDER, aasce_splits, find_aasce_root, write_landmarks_mat
from ..data.images import is_image_file, read_xray
from ..data.masks import is_trimap_image, trimap_name, write_trimap_png
from ..errors import SpineSegError
from ..outputs import check_output, check_output_names
from ..spine.vertebra_count import VERTEBRAE_FILE, count_entry, update_vertebra_counts
from ..spine.vertebrae import fit_vertebrae, spine_column
from ..trimap import trimap_from_landmarks, trimap_from_mask
from .files import LoadedModel, load_model
from .predict_config import PredictConfig, check_batch_size
from .preprocess import Placement, _resize_float, fit_image, placement, unfit_to_trimap
from .targets import BACKGROUND_CLASS, BODY_CLASS
from .zoom import FEATHER, column_tiles, model_tiles


@dataclass(frozen=True)
class Prediction:
    """The prediction for one image, at the image's original size.

    Attributes
    ----------
    trimap : (H, W) uint8
        1 spine, 2 background, 3 border: the network's column, or for a vertebrae
        model with `landmarks` the column they outline.
    probability : (H, W) float32
        Spine probability in [0, 1].
    name : str or None
        The image's file name when it came from a file.
    vertebrae : (H, W) int32 or None
        The vertebral bodies found, numbered 1, 2, … top to bottom (1…17 = T1…L5
        when 17 were found), 0 elsewhere; None for a model without vertebrae.
    landmarks : (68, 2) float64 or None
        The fitted corners, ``(x, y)`` in the image's pixels, the data set's corner
        order, vertebrae top to bottom; None unless exactly 17 vertebrae were found and
        fitted (then `vertebra_faults` says why).
    vertebra_faults : tuple of str
        Why there are no landmarks (one sentence each); empty when there are, or for a
        model without vertebrae.
    """

    trimap: np.ndarray
    probability: np.ndarray
    name: str | None = None
    vertebrae: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    vertebra_faults: tuple[str, ...] = ()


def _as_model(model) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, str | os.PathLike):
        return load_model(model)
    raise TypeError("model must be a LoadedModel (from load_model) or a path to a .keras file")


def _pixels(image) -> tuple[np.ndarray, str | None]:
    """Pixels and name of an array, an XRay, a Sample or a path."""
    if isinstance(image, np.ndarray):
        return image, None
    if isinstance(image, str | os.PathLike):
        return read_xray(image).pixels, Path(image).name
    if hasattr(image, "load_image"):  # a Sample
        return image.load_image().pixels, image.name
    if hasattr(image, "pixels"):  # an XRay
        path = getattr(image, "path", None)
        return image.pixels, None if path is None else Path(path).name
    return np.asarray(image), None


def predict_images(
    model,
    images: Iterable,
    *,
    batch_size: int = 4,
    tta: bool = False,
) -> list[Prediction]:
    """Predict a trimap and a spine-probability map for each image.

    Parameters
    ----------
    model : LoadedModel or path-like
        From :func:`~napari_spine_seg.model.files.load_model`, or a model file.
    images : iterable
        2-D arrays (any size and dtype), :class:`~napari_spine_seg.data.images.XRay`,
        dataset samples or image file paths.
    batch_size : int
        Images per forward pass.
    tta : bool
        Also predict the left–right mirrored image and average the probabilities.

    Returns
    -------
    list of Prediction
        In the order of `images`, each at its image's original size.
    """
    return list(iter_predictions(model, images, batch_size=batch_size, tta=tta))


def iter_predictions(
    model, images: Iterable, *, batch_size: int = 4, tta: bool = False
) -> Iterator[Prediction]:
    """Like :func:`predict_images`, yielding one prediction at a time (flat memory)."""
    batch_size = check_batch_size(batch_size)
    loaded = _as_model(model)
    info = loaded.info
    size = tuple(info.input_size)
    zoom = info.has_vertebrae and bool(info.training.get("zoom_pass", False))
    batch: list[tuple[np.ndarray, object, str | None, np.ndarray]] = []

    def flush():
        probs = _network(loaded, [b[0] for b in batch], batch_size, tta)
        for (_, place, name, arr), p in zip(batch, probs, strict=True):
            if not info.has_vertebrae:
                trimap, spine = unfit_to_trimap(p, place)
                yield Prediction(trimap, spine, name)
                continue
            body, background = _body_and_background(p, place)
            first = None
            if zoom:
                first, body = body, zoom_pass(loaded, arr, body, background, tta=tta)
            yield vertebra_maps_prediction(body, background, name, image=arr, first_pass=first)

    for image in images:
        try:
            arr, name = _prepared(image)
        except SpineSegError:
            if batch:  # the images read before the bad one are still predicted, in order
                yield from flush()
            raise
        fitted = fit_image(arr, size, info.fit)
        kept = arr if info.has_vertebrae else None  # the zoom pass and the end plates read it
        batch.append((fitted, placement(arr.shape, size, info.fit), name, kept))
        if len(batch) == batch_size:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def _network(loaded: LoadedModel, fitted: Sequence[np.ndarray], batch_size: int, tta: bool):
    """The network's class probabilities of fitted images (mirror-averaged with `tta`)."""
    x = np.stack(fitted)[..., None]
    if loaded.info.channels == 3:
        x = np.repeat(x, 3, axis=-1)
    probs = _forward(loaded.keras_model, x, batch_size)
    if tta:
        probs = 0.5 * (probs + _forward(loaded.keras_model, x[:, :, ::-1], batch_size)[:, :, ::-1])
    return probs


def _body_and_background(probs: np.ndarray, place: Placement) -> tuple[np.ndarray, np.ndarray]:
    """Body and background probabilities of network output, at the image's size."""
    top, left, ph, pw = place.box
    crop = np.asarray(probs, dtype=np.float32)[top : top + ph, left : left + pw]
    h, w = place.shape
    return (_resize_float(crop[..., k], h, w) for k in (BODY_CLASS, BACKGROUND_CLASS))


def zoom_pass(
    model, image: np.ndarray, body: np.ndarray, background: np.ndarray, *, tta: bool = False
) -> np.ndarray:
    """The second pass: column tiles predicted, their bodies pasted over the first pass's.

    Parameters
    ----------
    model : LoadedModel or path-like
    image : (H, W) array
        The X-ray.
    body, background : (H, W) float32
        The first pass's probabilities at the image's size.
    tta : bool

    Returns
    -------
    body : (H, W) float32
        Inside the tiles (:func:`~.zoom.column_tiles` of the first pass's column, as
        many and as tall as the model learnt: :func:`~.zoom.model_tiles`) their
        mean over the tiles, fading into the first pass's over each tile's edge
        (:data:`~.zoom.FEATHER`); elsewhere the first pass's. The column (and so the
        trimap) stays the first pass's: the tiles' own made the trimap's Dice worse
        (docs/performance.md).
    """
    loaded = _as_model(model)
    info = loaded.info
    size = tuple(info.input_size)
    tiles, span = model_tiles(info.training, loaded.path)
    boxes = column_tiles(spine_column(background <= 0.5), size, tiles=tiles, span=span)
    if not boxes:
        return body
    cuts = [(slice(top, bottom), slice(left, right)) for top, left, bottom, right in boxes]
    crops = [image[cut] for cut in cuts]
    probs = _network(loaded, [fit_image(c, size, info.fit) for c in crops], len(crops), tta)
    weighted = np.zeros(body.shape, dtype=np.float32)
    weights = np.zeros(body.shape, dtype=np.float32)
    for i, (cut, crop, p) in enumerate(zip(cuts, crops, probs, strict=True)):
        tile_body, _ = _body_and_background(p, placement(crop.shape, size, info.fit))
        ramp = _feather(crop.shape, top=i > 0, bottom=i < len(cuts) - 1)
        weighted[cut] += ramp * tile_body
        weights[cut] += ramp
    # the tiles' edges fade into the first pass: no seam across a body at a tile's edge
    first = np.clip(1.0 - weights, 0.0, 1.0)
    return (weighted + first * body) / np.maximum(weights + first, 1e-6)


def _feather(shape: tuple[int, int], *, top: bool = True, bottom: bool = True) -> np.ndarray:
    """A tile's weight: 1 inside, 0 at its edges (top, bottom: if asked) over ``FEATHER``."""
    ramps = []
    for axis, n in enumerate(shape):
        k = np.arange(n, dtype=np.float32)
        width = max(FEATHER * n, 1.0)
        rise, fall = (k + 0.5) / width, (n - k - 0.5) / width
        if axis == 0:
            rise, fall = (rise if top else np.inf), (fall if bottom else np.inf)
        ramps.append(np.clip(np.minimum(rise, fall), 0.0, 1.0))
    return np.outer(*ramps)


def vertebra_prediction(
    probs: np.ndarray,
    place: Placement,
    name: str | None = None,
    *,
    image: np.ndarray | None = None,
) -> Prediction:
    """The prediction of a vertebrae model for one image, from its network output.

    Parameters
    ----------
    probs : (rows, cols, 3) float array
        Body, space and background probabilities at the network's size.
    place : Placement
        Where the image lies in the network input.
    name : str, optional
    image : (rows, cols) array_like, optional
        The image itself: its end plates then read its own edges
        (:func:`vertebra_maps_prediction`).

    Returns
    -------
    Prediction
        With `vertebrae`, and `landmarks` or `vertebra_faults`.
    """
    return vertebra_maps_prediction(*_body_and_background(probs, place), name, image=image)


def vertebra_maps_prediction(
    body: np.ndarray,
    background: np.ndarray,
    name: str | None = None,
    *,
    image: np.ndarray | None = None,
    first_pass: np.ndarray | None = None,
) -> Prediction:
    """:func:`vertebra_prediction` from the body and background maps at the image's size.

    Given the `image` itself, each end plate is averaged with the image's own edge
    along it (:func:`~napari_spine_seg.spine.image_plates.image_plates`).

    Where 17 bodies were fitted, the trimap is drawn from their corners, as a data set's
    is drawn from its landmarks (:func:`~napari_spine_seg.trimap.trimap_from_landmarks`).
    The network's own column lies a pixel or so wider or narrower than that outline,
    differently from one training to the next, and so does its border band
    (``docs/performance.md``, "The trimap from the corners"). Elsewhere the trimap is
    the network's column.

    `body` may be the zoom pass's (:func:`zoom_pass`) and `first_pass` the whole
    image's body map it refined. When the zoom pass's bodies give no landmarks (not 17
    of them) and the first pass's do, the first pass's are fitted: a tile split a body
    or added a piece that the whole image did not (``docs/performance.md``, "When the
    zoom pass splits a body").
    """
    spine = 1.0 - background
    # the column's pieces away from it (a marker letter painted as bone) are not spine
    column = spine_column(spine >= 0.5)
    fit = fit_vertebrae(body, column=column, image=image)
    if fit.landmarks is None and first_pass is not None:
        whole = fit_vertebrae(first_pass, column=column, image=image)
        if whole.landmarks is not None:
            fit = whole
    if fit.landmarks is not None:
        trimap = trimap_from_landmarks(fit.landmarks, column.shape)
    else:
        trimap = trimap_from_mask(column)
    return Prediction(
        trimap,
        np.clip(spine, 0.0, 1.0),
        name,
        vertebrae=fit.instances.astype(np.int32, copy=False),
        landmarks=fit.landmarks,
        vertebra_faults=tuple(fit.faults),
    )


def _prepared(image) -> tuple[np.ndarray, str | None]:
    """A 2-D array of the image's pixels (colour averaged) and its name."""
    pixels, name = _pixels(image)
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3].mean(axis=-1)
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise SpineSegError(name, f"cannot predict on an image of shape {np.shape(pixels)}")
    return arr, name


def _forward(keras_model, x: np.ndarray, batch_size: int) -> np.ndarray:
    import keras

    out = (
        keras_model.predict_on_batch(x)
        if len(x) <= batch_size
        else keras_model.predict(x, verbose=0)
    )
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files named by `inputs`: files, folders (their images), or an AASCE split/root.

    An AASCE root or split folder contributes its ``data/<split>`` images; any other
    folder the image files directly in it (trimap PNGs beside images are skipped).

    Raises
    ------
    SpineSegError
        For a missing input, a file that is not an image, nothing to predict, or two
        images whose trimaps would have one name (``x.jpg`` and ``x.png``, or names
        that differ only in letter case).
    """
    files: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise SpineSegError(path, "does not exist")
        if path.is_file():
            if not is_image_file(path):
                raise SpineSegError(path, "is not an image file this program reads")
            files.append(path)
            continue
        found = find_aasce_root(path)
        if found is not None:
            root, split = found
            splits = (split,) if split is not None else aasce_splits(root)
            folders = [root / "data" / s for s in splits]
        else:
            folders = [path / "images"] if (path / "images").is_dir() else [path]
        for folder in folders:
            entries = sorted(
                p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
            )
            images = [p for p in entries if is_image_file(p)]
            stems = {trimap_name(p.name) for p in images if p.suffix.lower() != ".png"}
            files.extend(
                p
                for p in images
                if not (p.name in stems and p.suffix.lower() == ".png" and is_trimap_image(p))
            )
    if not files:
        raise SpineSegError(Path(inputs[0]) if inputs else None, "holds no images to predict")
    check_output_names(files, output_name)
    return files


def output_name(image_name: str) -> str:
    """The trimap file name of an image (its extension replaced by ``.png``)."""
    return trimap_name(image_name)


def landmarks_name(image_name: str) -> str:
    """The landmark file of an image, in the data set's own naming: ``<image name>.mat``."""
    return f"{image_name}.mat"


def probability_name(image_name: str) -> str:
    """The probability map's file name of an image: ``<stem>.probability.tif``."""
    stem = output_name(image_name)[: -len(".png")]
    return f"{stem}.probability.tif"


def predict_files(
    model,
    inputs: Sequence[str | os.PathLike] | None = None,
    out: str | os.PathLike | None = None,
    *,
    batch_size: int = 4,
    tta: bool = False,
    probability: bool = False,
    progress: Callable[[Iterable, int], Iterable] | None = None,
    report: Callable[[str], None] | None = None,
) -> list[Path]:
    """Predict every image of `inputs` and write one trimap PNG each into `out`.

    A model with vertebrae also writes ``out/landmarks/<image name>.mat`` (``p2``, the
    data set's format) for each image where 17 vertebrae were found, reports each
    image where they were not, and records every image's count and faults in
    ``out/vertebrae.json`` (:mod:`~napari_spine_seg.spine.vertebra_count`; a model
    without vertebrae drops its images from an earlier run's file).

    Parameters
    ----------
    model : PredictConfig, LoadedModel or path-like
        A :class:`~.predict_config.PredictConfig` holds every setting (then give none of
        the others but `progress` and `report`); otherwise the model, loaded or its file.
    inputs : sequence of path-like
        Files, folders or AASCE splits (see :func:`collect_inputs`).
    out : path-like
        Output folder; trimaps are named after their images (``x.jpg`` → ``x.png``).
    batch_size : int
    tta : bool
    probability : bool
        Also write the spine probability as a float32 TIFF ``<stem>.probability.tif``.
    progress : callable, optional
        ``progress(iterable, total)`` wrapping the iteration over images.
    report : callable, optional
        Called with one line for each image that got no landmarks (a model with
        vertebrae only): its name and why. Default: a warning.

    Returns
    -------
    list of Path
        The trimap files written.

    Raises
    ------
    SpineSegError
        Before anything is written: a bad input, a batch size under 1, two images
        with one trimap name, or an `out` that is an input, lies inside an input
        folder or a data set's own folders (:func:`~napari_spine_seg.outputs.check_output`).
        When an image fails to read or a trimap fails to write mid-way: one line
        naming that file and saying how many trimaps were written, and up to which image.
    """
    if isinstance(model, PredictConfig):
        c = model
        model, inputs, out, batch_size = c.model, c.inputs, c.out, c.batch_size
        tta, probability = c.tta, c.probability
    if inputs is None or out is None:
        raise TypeError("predict_files needs a PredictConfig, or inputs and out")
    check_batch_size(batch_size)
    files = collect_inputs(inputs)
    keep = [model] if isinstance(model, str | os.PathLike) else []
    check_output(out, [*inputs, *files], folder=True, keep=keep)
    out = check_writable_folder(out)
    loaded = _as_model(model)
    written: list[Path] = []
    stream: Iterable = iter_predictions(loaded, files, batch_size=batch_size, tta=tta)
    if progress is not None:
        stream = progress(stream, len(files))
    counts: dict[str, dict] = {}
    try:
        for pred in stream:
            _write_prediction(pred, out, probability)
            written.append(out / output_name(pred.name))
            if loaded.info.has_vertebrae:
                _write_landmarks(pred, out, report)
                counts[pred.name] = count_entry(_n_bodies(pred.vertebrae), pred.vertebra_faults)
    except SpineSegError as exc:
        raise _partial_failure(exc, files, written, out) from exc
    finally:  # the counts of what was written, even when a later image failed
        drop = [] if loaded.info.has_vertebrae else [p.name for p in files]
        if counts or (out / VERTEBRAE_FILE).exists():
            update_vertebra_counts(out / VERTEBRAE_FILE, counts, drop)
    return written


def _n_bodies(vertebrae: np.ndarray | None) -> int:
    """The number of bodies in a map numbered 1, 2, … (0 elsewhere)."""
    return 0 if vertebrae is None or not np.size(vertebrae) else int(np.max(vertebrae))


def _write_prediction(pred: Prediction, out: Path, probability: bool) -> None:
    write_trimap_png(out / output_name(pred.name), pred.trimap, predicted=True)
    if probability:
        import tifffile

        with atomic_output(out / probability_name(pred.name)) as tmp:
            tifffile.imwrite(tmp, pred.probability.astype(np.float32))


def _write_landmarks(pred: Prediction, out: Path, report: Callable[[str], None] | None) -> None:
    """Write the landmark file of `pred`, or report why there is none."""
    if pred.landmarks is not None:
        folder = out / LANDMARKS_FOLDER
        if not folder.is_dir():
            check_writable_folder(folder)
        write_landmarks_mat(folder / landmarks_name(pred.name), pred.landmarks)
        return
    # a file from an earlier run would pass for this run's landmarks
    stale = out / LANDMARKS_FOLDER / landmarks_name(pred.name)
    if stale.is_file():
        stale.unlink()
    line = f"{pred.name}: no landmarks written: {'; '.join(pred.vertebra_faults)}"
    if report is None:
        import warnings

        warnings.warn(line, stacklevel=3)
    else:
        report(line)


def _partial_failure(
    exc: SpineSegError, files: Sequence[Path], written: Sequence[Path], out: Path
) -> SpineSegError:
    """The error of a batch that stopped: what failed, what was written, what was not."""
    done = len(written)
    rest = len(files) - done
    if done:
        last = files[done - 1].name
        what = f"wrote the trimaps of the first {done} image(s) (up to {last}) to {out}"
    else:
        what = f"wrote no trimap to {out}"
    return SpineSegError(
        exc.path, f"{exc.problem}; stopped: {what}, none for the other {rest} image(s)"
    )
