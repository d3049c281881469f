"""Scores of predicted landmarks against a data set's: corner error and vertebrae found.

An image's predicted landmarks exist only when its 17 vertebrae were found
(``spine-seg predict`` writes no landmark file otherwise), so the share of images with
landmarks is the vertebra-count accuracy, and the corner error is over those images.
The Cobb angles of the landmarks are scored by
:func:`napari_spine_seg.spine.cobb_eval.landmark_cobb_errors`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .vertebrae import corner_error


def corner_scores(
    pred_landmarks: Mapping[str, np.ndarray | None],
    truth: Mapping[str, np.ndarray | None],
    heights: Mapping[str, float],
) -> dict:
    """Mean corner error of predicted landmarks, in pixels and in % of the image height.

    Parameters
    ----------
    pred_landmarks : mapping of str to (68, 2) array_like or None
        Image name → predicted corners (``(x, y)`` pixels, data set order), or None
        when the image has none.
    truth : mapping of str to (68, 2) array_like or None
        Image name → the data set's corners, in the same order (None: no landmarks).
    heights : mapping of str to float
        Image name → the image's height in pixels.

    Returns
    -------
    dict
        JSON-ready: ``n_images`` (images with both predicted and true landmarks),
        ``mean_px`` and ``mean_percent_height`` (mean over those images of each one's
        mean corner distance (:func:`~napari_spine_seg.spine.vertebrae.corner_error`),
        and of that distance as a percentage of its image's height), ``max_px`` (the
        worst image's), and ``images``: ``{"name", "px", "percent_height"}`` each. The
        means are None with no image.

    Examples
    --------
    >>> t = np.zeros((68, 2)); p = t + [3.0, 4.0]
    >>> s = corner_scores({"a": p, "b": None}, {"a": t, "b": t}, {"a": 1000, "b": 1000})
    >>> s["n_images"], s["mean_px"], s["mean_percent_height"]
    (1, 5.0, 0.5)
    """
    images = []
    for name, pred in pred_landmarks.items():
        true = truth.get(name)
        if pred is None or true is None:
            continue
        px = corner_error(pred, true)
        images.append({"name": name, "px": px, "percent_height": 100.0 * px / float(heights[name])})
    if not images:
        return {
            "n_images": 0,
            "mean_px": None,
            "mean_percent_height": None,
            "max_px": None,
            "images": [],
        }
    return {
        "n_images": len(images),
        "mean_px": float(np.mean([im["px"] for im in images])),
        "mean_percent_height": float(np.mean([im["percent_height"] for im in images])),
        "max_px": float(max(im["px"] for im in images)),
        "images": images,
    }


def count_scores(
    pred_landmarks: Mapping[str, np.ndarray | None],
    counts: Mapping[str, int] | None = None,
) -> dict:
    """Vertebra-count accuracy: the share of images whose 17 vertebrae were found.

    Parameters
    ----------
    pred_landmarks : mapping of str to (68, 2) array_like or None
        Every image scored → its predicted landmarks, None when it has none.
    counts : mapping of str to int, optional
        Image name → the number of vertebral bodies found, where the prediction
        recorded it; reported beside each image that has no landmarks.

    Returns
    -------
    dict
        JSON-ready: ``n_images``, ``n_found`` (images with landmarks), ``found_rate``
        (their share, None with no image) and ``not_found``: ``{"name", "count"}`` of
        each image without landmarks (``count`` None when not recorded).

    Examples
    --------
    >>> count_scores({"a": np.zeros((68, 2)), "b": None}, {"b": 16})
    {'n_images': 2, 'n_found': 1, 'found_rate': 0.5, 'not_found': [{'name': 'b', 'count': 16}]}
    """
    counts = counts or {}
    not_found = [
        {"name": name, "count": counts.get(name)}
        for name, pred in pred_landmarks.items()
        if pred is None
    ]
    n = len(pred_landmarks)
    return {
        "n_images": n,
        "n_found": n - len(not_found),
        "found_rate": (n - len(not_found)) / n if n else None,
        "not_found": not_found,
    }
