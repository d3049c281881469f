"""Cobb-angle errors of segmentations against a data set's ``angles.csv``.

The angles of each predicted trimap are measured on its spine column's centre line
(:func:`~napari_spine_seg.spine.centreline.cobb_from_trimap`) and compared with the
reference angles: the mean absolute error (over all three angles, and per angle) and
the challenge's SMAPE (:func:`~napari_spine_seg.spine.cobb.smape`).

A trimap whose angles cannot be measured (no spine, or one too short) is not left out,
which would flatter the scores: it counts as predicted 0° for all three angles (for
SMAPE the worst an image can score, 100 %) and is listed under ``failed``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np

from ..errors import SpineSegError
from .centreline import cobb_from_trimap
from .cobb import ANGLE_NAMES, smape


def angle_scores(gt: np.ndarray, pred: np.ndarray) -> dict:
    """Mean absolute error and SMAPE of predicted Cobb angles.

    Parameters
    ----------
    gt, pred : (N, 3) array_like
        Reference and predicted angles in degrees, ``angles.csv`` order, one row per
        image.

    Returns
    -------
    dict
        ``n`` images, ``mae`` (degrees, over all angles), ``mae_per_angle``
        (``{"pt", "mt", "tl"}``), ``max_abs_error`` and ``smape`` (percent). With no
        image, the scores are None.

    Examples
    --------
    >>> s = angle_scores([[10, 20, 30]], [[12, 20, 30]])
    >>> s["mae"], round(s["smape"], 3), s["mae_per_angle"]["pt"]
    (0.6666666666666666, 1.639, 2.0)
    """
    gt_arr = np.asarray(gt, dtype=np.float64).reshape(-1, 3)
    pred_arr = np.asarray(pred, dtype=np.float64).reshape(-1, 3)
    if gt_arr.shape != pred_arr.shape:
        raise ValueError(f"angle arrays differ in shape: {gt_arr.shape} and {pred_arr.shape}")
    n = int(gt_arr.shape[0])
    if n == 0:
        return {
            "n": 0,
            "mae": None,
            "mae_per_angle": dict.fromkeys(ANGLE_NAMES),
            "max_abs_error": None,
            "smape": None,
        }
    err = np.abs(gt_arr - pred_arr)
    return {
        "n": n,
        "mae": float(err.mean()),
        "mae_per_angle": {k: float(v) for k, v in zip(ANGLE_NAMES, err.mean(axis=0), strict=True)},
        "max_abs_error": float(err.max()),
        "smape": smape(gt_arr, pred_arr),
    }


def order_note(cobb: dict) -> str:
    """One sentence on the images whose angles' order is in doubt.

    Parameters
    ----------
    cobb : dict
        A :func:`cobb_errors` report with at least one ``order_doubtful`` image.

    Returns
    -------
    str
        How many images, and the SMAPE of the others.
    """
    k, n = len(cobb["order_doubtful"]), cobb["n_images"]
    rest = cobb["smape_order_clear"]
    tail = f"; SMAPE on the other {n - k}: {rest:.2f} %" if rest is not None else ""
    return (
        f"{k} of {n} image(s) with two curves within a few degrees of each other, which the "
        f"reference may order otherwise{tail}"
    )


def _trimap(
    value, name: str, read: Callable[[str | os.PathLike], np.ndarray] | None
) -> tuple[np.ndarray, str | os.PathLike | None]:
    """The trimap array of `value` (an array, or a file that `read` reads)."""
    if isinstance(value, str | os.PathLike):
        if read is None:
            raise TypeError(f"{value}: a trimap file needs read= (e.g. data.masks.read_trimap_png)")
        return read(value), value
    return np.asarray(value), name


def _measure(name: str, trimap, source, reference, outline: str) -> dict:
    """One image's entry of :func:`cobb_errors`; a trimap that cannot be measured counts as
    0° and its entry holds the ``problem``."""
    reference = np.asarray(reference, dtype=np.float64).reshape(3)
    problem = None
    try:
        result = cobb_from_trimap(trimap, outline=outline, source=source)
    except SpineSegError as exc:
        problem = exc.problem
        measured, warnings, doubtful = np.zeros(3), [exc.problem], False
    else:
        measured, warnings = result.angles, list(result.warnings)
        doubtful = result.order_doubtful
    return {
        "name": name,
        "angles": [float(a) for a in measured],
        "reference": [float(a) for a in reference],
        "abs_error": [float(abs(a - b)) for a, b in zip(measured, reference, strict=True)],
        "warnings": warnings,
        "order_doubtful": doubtful,
        "problem": problem,
    }


def cobb_errors(
    pred_trimaps: Mapping[str, np.ndarray | str | os.PathLike],
    angles: Mapping[str, np.ndarray],
    *,
    outline: str = "predicted",
    read: Callable[[str | os.PathLike], np.ndarray] | None = None,
) -> dict:
    """Cobb angles of predicted trimaps and their errors against reference angles.

    Parameters
    ----------
    pred_trimaps : mapping of str to (H, W) array or path-like
        Image name → its predicted trimap (1 spine, 2 background, 3 border; 0 counts
        as background), or the path of a trimap file, read by `read` when its turn
        comes (so that a whole split need not be held in memory).
    angles : mapping of str to (3,) array_like
        Image name → reference angles (degrees, ``angles.csv`` order), as
        :attr:`napari_spine_seg.data.dataset.Dataset.angles` holds them. Names are
        matched exactly.
    outline : {"predicted", "auto"}
        How the trimaps are measured (see
        :func:`~napari_spine_seg.spine.centreline.centre_line`): as a network's
        predictions (the default), or ``"auto"`` for trimaps of any origin, such as
        corrected ones.
    read : callable, optional
        Reads a trimap file given as a path, e.g.
        :func:`napari_spine_seg.data.masks.read_trimap_png` (passed in, so that this
        geometry module does not depend on the file readers above it).

    Returns
    -------
    dict
        JSON-ready:

        - ``n_images``: images scored (those with both a trimap and reference angles);
        - ``mae``, ``mae_per_angle``, ``max_abs_error``, ``smape``: as
          :func:`angle_scores`, over the scored images;
        - ``images``: per scored image ``name``, ``angles``, ``reference``,
          ``abs_error``, ``warnings`` (a broken column, pieces ignored, a column cut
          by the image's edge: see :func:`~napari_spine_seg.spine.centreline.cobb_from_trimap`)
          and ``order_doubtful`` (two curves of about one size: the angles' order may
          differ from the reference's);
        - ``order_doubtful``: the names of those images, and ``smape_order_clear``: the
          SMAPE of the others (None when there is none);
        - ``failed``: ``{"name", "problem"}`` of trimaps that could not be measured;
          they are scored as 0° predictions;
        - ``without_reference``: trimaps whose name has no reference angles (not
          scored);
        - ``without_trimap``: reference names with no trimap (not scored).

    Raises
    ------
    SpineSegError
        When a trimap PNG cannot be read (a bad file, not a bad segmentation).

    Examples
    --------
    >>> t = np.full((400, 150), 2, np.uint8); t[40:360, 60:90] = 1
    >>> r = cobb_errors({"a.jpg": t}, {"a.jpg": [0.0, 0.0, 0.0]})
    >>> r["n_images"], r["mae"], r["smape"], r["failed"]
    (1, 0.0, 0.0, [])
    """
    images, failed = [], []
    for name, value in pred_trimaps.items():
        if name in angles:
            trimap, source = _trimap(value, name, read)
            image = _measure(name, trimap, source, angles[name], outline)
            problem = image.pop("problem")
            if problem is not None:
                failed.append({"name": name, "problem": problem})
            images.append(image)
    gt_rows = [im["reference"] for im in images]
    pred_rows = [im["angles"] for im in images]
    gt_arr, pred_arr = np.array(gt_rows).reshape(-1, 3), np.array(pred_rows).reshape(-1, 3)
    scores = angle_scores(gt_arr, pred_arr)
    n = scores.pop("n")
    clear = np.array([not im["order_doubtful"] for im in images], dtype=bool)
    return {
        "n_images": n,
        **scores,
        "order_doubtful": [im["name"] for im in images if im["order_doubtful"]],
        "smape_order_clear": smape(gt_arr[clear], pred_arr[clear]) if clear.any() else None,
        "images": images,
        "failed": failed,
        "without_reference": [name for name in pred_trimaps if name not in angles],
        "without_trimap": [name for name in angles if name not in pred_trimaps],
    }
