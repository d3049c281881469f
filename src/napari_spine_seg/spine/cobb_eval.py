"""Cobb-angle errors of segmentations and of predicted landmarks against reference angles.

The angles of each predicted trimap are measured on its spine column's centre line
(:func:`~napari_spine_seg.spine.centreline.cobb_from_trimap`) and compared with the
reference angles: the mean absolute error (over all three angles, and per angle) and
the challenge's SMAPE (:func:`~napari_spine_seg.spine.cobb.smape`).

A trimap whose angles cannot be measured (no spine, or one too short) is not left out,
which would flatter the scores: it counts as predicted 0° for all three angles (for
SMAPE the worst an image can score, 100 %) and is listed under ``failed``.

Predicted landmarks (:func:`landmark_cobb_errors`) are measured with the challenge's
reference computation itself (:func:`~napari_spine_seg.spine.cobb.cobb_angles`). An image
without landmarks (its 17 vertebrae were not found) is likewise scored as 0° and listed
under ``missing``; the scores over the images that have landmarks are given beside.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np

from ..errors import SpineSegError
from .centreline import cobb_from_trimap
from .cobb import ANGLE_NAMES, ORDER_MARGIN, cobb_angles, order_warning, smape


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
    return {
        **_summary(images),
        "images": images,
        "failed": failed,
        "without_reference": [name for name in pred_trimaps if name not in angles],
        "without_trimap": [name for name in angles if name not in pred_trimaps],
    }


def _summary(images: list[dict]) -> dict:
    """The scores of measured images (``angles``, None for one not measured, as 0°)."""
    gt_arr = np.array([im["reference"] for im in images]).reshape(-1, 3)
    pred_arr = np.array([im["angles"] or [0.0] * 3 for im in images]).reshape(-1, 3)
    scores = angle_scores(gt_arr, pred_arr)
    n = scores.pop("n")
    clear = np.array([not im["order_doubtful"] for im in images], dtype=bool)
    return {
        "n_images": n,
        **scores,
        "order_doubtful": [im["name"] for im in images if im["order_doubtful"]],
        "smape_order_clear": smape(gt_arr[clear], pred_arr[clear]) if clear.any() else None,
    }


def landmark_cobb_errors(
    pred_landmarks: Mapping[str, np.ndarray | None],
    angles: Mapping[str, np.ndarray],
    heights: Mapping[str, float],
    *,
    sources: Mapping[str, str | os.PathLike] | None = None,
) -> dict:
    """Cobb angles of predicted landmarks and their errors against reference angles.

    Parameters
    ----------
    pred_landmarks : mapping of str to (68, 2) array_like or None
        Image name → its predicted corners (``(x, y)`` pixels, data set order, vertebrae
        top to bottom), or None when the image has none (its 17 vertebrae were not
        found). Every image that should have landmarks must be a key: an image that is
        not is only listed under ``without_landmarks``.
    angles : mapping of str to (3,) array_like
        Image name → reference angles (degrees, ``angles.csv`` order).
    heights : mapping of str to float
        Image name → the image's height in pixels (the reference computation uses it),
        for every name that has landmarks and reference angles.
    sources : mapping of str to path-like, optional
        Image name → the file its landmarks came from, named in ``failed``'s problems.

    Returns
    -------
    dict
        JSON-ready, with the keys of :func:`cobb_errors` (``n_images``, ``mae``,
        ``mae_per_angle``, ``max_abs_error``, ``smape``, ``order_doubtful``,
        ``smape_order_clear``, ``images``, ``failed``, ``without_reference``) and:

        - ``missing``: scored images without landmarks, scored as 0° predictions (their
          ``images`` entry has ``angles`` None and ``missing`` True);
        - ``found``: :func:`angle_scores` over the images with measured landmarks only
          (``n``, ``mae``, ``mae_per_angle``, ``max_abs_error``, ``smape``);
        - ``without_landmarks``: reference names that are not keys of `pred_landmarks`
          (not scored).

        ``order_doubtful`` marks measured angles whose two largest are within
        :data:`~napari_spine_seg.spine.cobb.ORDER_MARGIN` of each other
        (:func:`~napari_spine_seg.spine.cobb.order_warning`).

    Examples
    --------
    >>> v = np.array([[20 + 40 * (i % 2), 12 + 14 * k + 8 * (i // 2)]
    ...               for k in range(17) for i in range(4)], dtype=float)
    >>> r = landmark_cobb_errors({"a.jpg": v, "b.jpg": None},
    ...                          {"a.jpg": [0, 0, 0], "b.jpg": [10, 5, 5]},
    ...                          {"a.jpg": 260, "b.jpg": 260})
    >>> r["n_images"], r["missing"], r["smape"], r["found"]["smape"]
    (2, ['b.jpg'], 50.0, 0.0)
    """
    images, failed = [], []
    for name, landmarks in pred_landmarks.items():
        if name in angles:
            source = sources.get(name) if sources else None
            height = None if landmarks is None else float(heights[name])
            image = _measure_landmarks(name, landmarks, height, source, angles[name])
            problem = image.pop("problem")
            if problem is not None:
                failed.append({"name": name, "problem": problem})
            images.append(image)
    unmeasured = {f["name"] for f in failed}
    measured = [im for im in images if not im["missing"] and im["name"] not in unmeasured]
    gt_found = np.array([im["reference"] for im in measured]).reshape(-1, 3)
    pred_found = np.array([im["angles"] for im in measured]).reshape(-1, 3)
    return {
        **_summary(images),
        "found": angle_scores(gt_found, pred_found),
        "images": images,
        "missing": [im["name"] for im in images if im["missing"]],
        "failed": failed,
        "without_reference": [name for name in pred_landmarks if name not in angles],
        "without_landmarks": [name for name in angles if name not in pred_landmarks],
    }


def _measure_landmarks(name: str, landmarks, height, source, reference) -> dict:
    """One image's entry of :func:`landmark_cobb_errors`; landmarks that are missing or
    cannot be measured count as 0° (``angles`` None when missing; ``problem`` set when
    they cannot be measured)."""
    reference = np.asarray(reference, dtype=np.float64).reshape(3)
    measured, problem, warnings, doubtful = np.zeros(3), None, [], False
    if landmarks is None:
        warnings.append("no landmarks: 17 vertebrae were not found")
    else:
        try:
            measured = cobb_angles(landmarks, height, source=source)
        except SpineSegError as exc:
            problem = exc.problem
            warnings.append(exc.problem)
        else:
            warning = order_warning(measured, ORDER_MARGIN)
            doubtful = warning is not None
            warnings += [warning] if warning else []
    return {
        "name": name,
        "angles": None if landmarks is None else [float(a) for a in measured],
        "reference": [float(a) for a in reference],
        "abs_error": [float(abs(a - b)) for a, b in zip(measured, reference, strict=True)],
        "warnings": warnings,
        "order_doubtful": doubtful,
        "missing": landmarks is None,
        "problem": problem,
    }
