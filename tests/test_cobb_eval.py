"""Cobb errors of predicted trimaps against angles.csv (the core of ``spine-seg evaluate``)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_spine_seg.data.masks import read_trimap_png, write_trimap_png
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.spine.centreline import cobb_from_trimap
from napari_spine_seg.spine.cobb import cobb_angles, smape
from napari_spine_seg.spine.cobb_eval import angle_scores, cobb_errors, order_note
from napari_spine_seg.trimap import trimap_from_landmarks
from test_cobb import make_spine


def _cases(n, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for k in range(n):
        landmarks, shape = make_spine(rng, kind=("C", "S")[k % 2], cobb=20 + 10 * k, height=500)
        out[f"img {k}.jpg"] = (
            trimap_from_landmarks(landmarks, shape),
            cobb_angles(landmarks, shape[0]),
        )
    return out


def test_angle_scores_by_hand():
    gt = [[10.0, 20.0, 30.0], [40.0, 0.0, 20.0]]
    pred = [[12.0, 20.0, 27.0], [40.0, 4.0, 20.0]]
    s = angle_scores(gt, pred)
    assert s["n"] == 2
    assert s["mae"] == pytest.approx((2 + 3 + 4) / 6)
    assert s["mae_per_angle"] == pytest.approx({"pt": 1.0, "mt": 2.0, "tl": 1.5})
    assert s["max_abs_error"] == 4.0
    assert s["smape"] == pytest.approx((5 / 119 + 4 / 124) / 2 * 100)
    empty = angle_scores(np.empty((0, 3)), np.empty((0, 3)))
    assert empty["n"] == 0 and empty["mae"] is None and empty["smape"] is None
    with pytest.raises(ValueError, match="shape"):
        angle_scores([[1, 2, 3]], [[1, 2, 3], [1, 2, 3]])


def test_arrays_and_png_paths_give_the_measured_errors(tmp_path):
    cases = _cases(3, seed=2)
    angles = {name: gt for name, (_, gt) in cases.items()}
    trimaps = {}
    for k, (name, (trimap, _)) in enumerate(cases.items()):
        if k == 0:  # one given as a trimap PNG, read when its turn comes
            trimaps[name] = write_trimap_png(tmp_path / "a.png", trimap)
        else:
            trimaps[name] = trimap
    report = cobb_errors(trimaps, angles, outline="auto", read=read_trimap_png)
    measured = np.array([cobb_from_trimap(t).angles for t, _ in cases.values()])
    gt = np.array(list(angles.values()))
    # predictions by default: measured as a network's outline
    as_predicted = cobb_errors(trimaps, angles, read=read_trimap_png)
    np.testing.assert_allclose(
        [im["angles"] for im in as_predicted["images"]],
        [cobb_from_trimap(t, outline="predicted").angles for t, _ in cases.values()],
    )
    assert report["n_images"] == 3
    assert report["mae"] == pytest.approx(np.abs(measured - gt).mean())
    assert report["smape"] == pytest.approx(smape(gt, measured))
    assert [im["name"] for im in report["images"]] == list(cases)
    np.testing.assert_allclose([im["angles"] for im in report["images"]], measured)
    np.testing.assert_allclose([im["reference"] for im in report["images"]], gt)
    assert report["failed"] == [] and report["without_reference"] == []
    assert report["without_trimap"] == []
    assert report["mae"] <= 3.0  # ground-truth trimaps of clean curves


def test_a_trimap_without_spine_is_scored_as_zero_and_listed():
    cases = _cases(2, seed=4)
    angles = {name: gt for name, (_, gt) in cases.items()}
    names = list(cases)
    trimaps = {names[0]: cases[names[0]][0], names[1]: np.full((500, 200), 2, np.uint8)}
    report = cobb_errors(trimaps, angles)
    assert report["n_images"] == 2
    assert report["failed"] == [
        {"name": names[1], "problem": "has no spine (label 1): no Cobb angle can be measured"}
    ]
    assert report["images"][1]["angles"] == [0.0, 0.0, 0.0]
    # SMAPE of an image predicted all zero is 100 %: it is not left out
    assert report["smape"] >= 50.0
    np.testing.assert_allclose(report["images"][1]["abs_error"], angles[names[1]])


def test_unmatched_names_are_reported_not_scored(tmp_path):
    cases = _cases(2, seed=5)
    names = list(cases)
    trimaps = {names[0]: cases[names[0]][0], "stray.jpg": cases[names[1]][0]}
    angles = {names[0]: cases[names[0]][1], "absent.jpg": [10.0, 5.0, 2.0]}
    report = cobb_errors(trimaps, angles)
    assert report["n_images"] == 1
    assert report["without_reference"] == ["stray.jpg"]
    assert report["without_trimap"] == ["absent.jpg"]
    nothing = cobb_errors({}, angles)
    assert nothing["n_images"] == 0 and nothing["mae"] is None
    assert nothing["mae_per_angle"] == {"pt": None, "mt": None, "tl": None}


def test_warnings_travel_with_each_image_and_bad_files_raise(tmp_path):
    cases = _cases(1, seed=6)
    name, (trimap, gt) = next(iter(cases.items()))
    broken = trimap.copy()
    rows = np.flatnonzero((trimap == 1).any(axis=1))
    mid = (rows[0] + rows[-1]) // 2
    broken[mid : mid + 40] = 2
    report = cobb_errors({name: broken}, {name: gt}, read=read_trimap_png)
    assert any("broken column" in w for w in report["images"][0]["warnings"])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(SpineSegError):
        cobb_errors({name: bad}, {name: gt}, read=read_trimap_png)


def test_images_whose_order_is_in_doubt_are_listed_and_scored_apart():
    from test_centreline import _sine_column

    trimaps = {"equal S.jpg": _sine_column(1.0, 40.0), "one C.jpg": _sine_column(0.5, 60.0)}
    measured = {k: cobb_from_trimap(t, outline="predicted").angles for k, t in trimaps.items()}
    # references 2° off each measured angle, so that both images have errors to score
    angles = {k: a + 2.0 for k, a in measured.items()}
    report = cobb_errors(trimaps, angles)
    assert report["order_doubtful"] == ["equal S.jpg"]
    flags = {im["name"]: im["order_doubtful"] for im in report["images"]}
    assert flags == {"equal S.jpg": True, "one C.jpg": False}
    expected = smape(angles["one C.jpg"], measured["one C.jpg"])
    assert report["smape_order_clear"] == pytest.approx(expected)
    assert report["smape_order_clear"] != pytest.approx(report["smape"])
    note = order_note(report)
    assert note.startswith("1 of 2 image(s) with two curves") and f"{expected:.2f} %" in note
    # with every image in doubt there is nothing to score apart
    alone = cobb_errors({"equal S.jpg": trimaps["equal S.jpg"]}, angles)
    assert alone["order_doubtful"] == ["equal S.jpg"] and alone["smape_order_clear"] is None
