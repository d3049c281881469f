"""Segmentation scores on hand-made trimaps whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from napari_spine_seg.spine.metrics import (
    hd95,
    pixel_accuracy,
    score_trimaps,
    spine_dice,
    spine_iou,
)


def _trimap(shape, spine=(), border=()):
    t = np.full(shape, 2, dtype=np.uint8)
    for sl in border:
        t[sl] = 3
    for sl in spine:
        t[sl] = 1
    return t


def test_pixel_accuracy_counts_all_three_classes():
    gt = np.array([[1, 1, 2, 3], [2, 2, 3, 1]])
    pred = np.array([[1, 2, 2, 3], [0, 2, 1, 1]])  # 0 means background
    assert pixel_accuracy(gt, pred) == pytest.approx(6 / 8)
    assert pixel_accuracy(gt, gt) == 1.0
    # a border pixel predicted as spine is an error for accuracy
    assert pixel_accuracy([[3]], [[1]]) == 0.0
    # 0 in the ground truth is background too
    assert pixel_accuracy([[0, 2]], [[2, 0]]) == 1.0


def test_dice_and_iou_ignore_ground_truth_border():
    gt = np.array([[1, 1, 1, 1, 3, 3, 2, 2]])
    pred = np.array([[1, 1, 1, 2, 1, 2, 1, 2]])
    # ignoring the two border pixels: G = 4, P = 4 (cols 0-2, 6), overlap 3
    assert spine_dice(gt, pred) == pytest.approx(2 * 3 / (4 + 4))
    assert spine_iou(gt, pred) == pytest.approx(3 / 5)
    # counting them: P = 5
    assert spine_dice(gt, pred, ignore_border=False) == pytest.approx(6 / 9)
    assert spine_iou(gt, pred, ignore_border=False) == pytest.approx(3 / 6)


def test_dice_iou_extremes():
    gt = _trimap((10, 10), spine=[np.s_[2:8, 3:6]])
    assert spine_dice(gt, gt) == 1.0 and spine_iou(gt, gt) == 1.0
    empty = _trimap((10, 10))
    assert spine_dice(gt, empty) == 0.0 and spine_iou(gt, empty) == 0.0
    # no spine anywhere: complete agreement
    assert spine_dice(empty, empty) == 1.0 and spine_iou(empty, empty) == 1.0
    # border in the prediction is not spine
    assert spine_dice(gt, np.where(gt == 1, 3, gt)) == 0.0


def test_dice_iou_relation_on_random_trimaps():
    rng = np.random.default_rng(3)
    for _ in range(20):
        gt, pred = rng.integers(0, 4, (2, 30, 20))
        d, j = spine_dice(gt, pred), spine_iou(gt, pred)
        assert d == pytest.approx(2 * j / (1 + j))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        spine_dice(np.ones((3, 4)), np.ones((4, 3)))
    with pytest.raises(ValueError):
        pixel_accuracy(np.ones((3, 4)), np.ones((3, 4, 1)))


def test_hd95_single_pixels():
    gt = _trimap((20, 20), spine=[np.s_[2, 3]])
    pred = _trimap((20, 20), spine=[np.s_[5, 7]])
    assert hd95(gt, pred) == pytest.approx(5.0)
    assert hd95(gt, pred, spacing=(2.0, 1.0)) == pytest.approx(math.hypot(6, 4))
    assert hd95(gt, gt) == 0.0


def test_hd95_shifted_rectangle():
    gt = _trimap((60, 40), spine=[np.s_[10:50, 10:20]])
    pred = _trimap((60, 40), spine=[np.s_[10:50, 14:24]])
    # most outline pixels (the long sides) are 4 px from the other outline
    assert hd95(gt, pred) == pytest.approx(4.0)


def test_hd95_empty_masks():
    gt = _trimap((10, 10), spine=[np.s_[2:5, 2:5]])
    empty = _trimap((10, 10), border=[np.s_[0:3, :]])
    assert hd95(gt, empty) == math.inf
    assert hd95(empty, gt) == math.inf
    assert hd95(empty, empty) == 0.0


def _brute_hd95(a, b):
    def outline(m):
        pts = []
        for r, c in zip(*np.nonzero(m), strict=True):
            for dr, dc in [(-1, 0), (1, 0), (0, -1), (0, 1)]:
                rr, cc = r + dr, c + dc
                if not (0 <= rr < m.shape[0] and 0 <= cc < m.shape[1]) or not m[rr, cc]:
                    pts.append((r, c))
                    break
        return np.array(pts, float)

    pa, pb = outline(a == 1), outline(b == 1)
    d = cdist(pa, pb)
    return max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95))


def test_hd95_matches_brute_force_including_image_edges():
    rng = np.random.default_rng(11)
    for _ in range(15):
        gt = np.full((40, 30), 2)
        pred = np.full((40, 30), 2)
        for t in (gt, pred):
            for _ in range(rng.integers(1, 4)):
                r, c = rng.integers(0, 40), rng.integers(0, 30)
                t[max(r - 6, 0) : r + 6, max(c - 4, 0) : c + 4] = 1
        assert hd95(gt, pred) == pytest.approx(_brute_hd95(gt, pred))


def test_score_trimaps_returns_all_scores():
    gt = _trimap((30, 30), spine=[np.s_[5:25, 10:20]], border=[np.s_[4:26, 9:21]])
    scores = score_trimaps(gt, gt)
    assert scores == {"pixel_accuracy": 1.0, "spine_dice": 1.0, "spine_iou": 1.0, "hd95": 0.0}
    pred = gt.copy()
    pred[5:25, 10:15] = 2
    scores = score_trimaps(gt, pred)
    assert scores["spine_dice"] == pytest.approx(2 * 100 / 300)
    assert scores["spine_iou"] == pytest.approx(0.5)
    assert scores["pixel_accuracy"] == pytest.approx(1 - 100 / 900)
    assert scores["hd95"] == pytest.approx(5.0)
