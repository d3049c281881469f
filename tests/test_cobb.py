"""Cobb angles: the reference computation, checked against an independent implementation."""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
import pytest
import scipy.io
from PIL import Image

from napari_spine_seg.cli import main
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.spine.cobb import cobb_angles, cobb_details, is_s_shaped, smape
from napari_spine_seg.trimap import trimap_from_landmarks

# ---------------------------------------------------------------------------------------
# A small generator of realistic spines (also used by the other spine tests)
# ---------------------------------------------------------------------------------------


def make_spine(rng, *, kind=None, cobb=None, height=None, ratio=None, tilt=None, noise=0.0):
    """Landmarks of 17 rectangular vertebrae along a smooth curve x(y), and the image shape.

    Parameters
    ----------
    rng : numpy.random.Generator
    kind : {"C", "S", "straight"}, optional
        Shape of the curve (random when None).
    cobb : float, optional
        Rough size of the largest curve in degrees (random 0–70 when None).
    height : int, optional
        Image height in pixels (random 500–1100 when None).
    ratio : float, optional
        Height / width (random 2–3 when None).
    tilt : float, optional
        Overall lean of the spine in degrees (random ±8 when None).
    noise : float
        Standard deviation of a jitter added to each corner, in pixels.

    Returns
    -------
    landmarks : (68, 2) ndarray
        ``(x, y)``; corners TL, TR, BL, BR; vertebrae top to bottom; each vertebra
        perpendicular to the curve (tilt = curve slope), on average about 4 % of the
        image's height tall, growing from top to bottom by a random factor of 1.3–2.
    shape : (int, int)
        ``(rows, cols)`` of the image.
    """
    kind = kind or rng.choice(["C", "S", "straight"], p=[0.4, 0.45, 0.15])
    height = int(height or rng.integers(500, 1100))
    width = int(round(height / (ratio or rng.uniform(2.0, 3.0))))
    cobb = 0.0 if kind == "straight" else float(rng.uniform(0, 70) if cobb is None else cobb)
    tilt = float(rng.uniform(-8, 8) if tilt is None else tilt)
    top, bottom = rng.uniform(0.05, 0.12) * height, rng.uniform(0.84, 0.92) * height
    span = bottom - top
    # lumbar vertebrae and discs are taller than the upper thoracic ones
    grading = np.linspace(1.0, rng.uniform(1.3, 2.0), 17)
    heights = height * rng.uniform(0.035, 0.042) * grading / grading.mean()
    discs = (heights[:-1] + heights[1:]) / 2
    discs *= (span - heights.sum()) / discs.sum()
    starts = top + np.concatenate([[0], np.cumsum(heights[:-1] + discs)])
    centres_y = starts + heights / 2

    # half-waves over the column, and where they start: the curves' end vertebrae
    # (steepest tilt) fall anywhere along the column, not only at its ends
    freq = rng.uniform(0.8, 1.5) if kind == "C" else rng.uniform(1.5, 2.6)
    skew = rng.uniform(-1.2, 1.2) if kind == "S" else rng.uniform(-0.4, 0.4)
    phase = rng.uniform(-0.6, 0.6)
    sign = rng.choice([-1.0, 1.0])
    # slope amplitude so that the tilt at the curve's ends differs by about `cobb`
    amp = math.tan(math.radians(cobb) / 2) * span / (math.pi * freq) if kind != "straight" else 0

    def x_of(y):
        t = (y - top) / span
        bend = sign * amp * np.sin(math.pi * freq * t + phase) * (1 + skew * (t - 0.5))
        return bend + math.tan(math.radians(tilt)) * (y - top)

    xs = x_of(centres_y)
    eps = 1e-3 * span
    slopes = (x_of(centres_y + eps) - x_of(centres_y - eps)) / (2 * eps)
    widths = heights * np.linspace(1.25, 1.7, 17)
    xs = xs - (xs.min() + xs.max()) / 2 + width / 2

    corners = []
    for xc, yc, s, h, w in zip(xs, centres_y, slopes, heights, widths, strict=True):
        n = math.hypot(s, 1.0)
        down = np.array([s, 1.0]) / n  # along the spine
        across = np.array([1.0, -s]) / n  # along the vertebra, pointing right
        c = np.array([xc, yc])
        for dy, dx in [(-1, -1), (-1, 1), (1, -1), (1, 1)]:  # TL, TR, BL, BR
            corners.append(c + dx * across * w / 2 + dy * down * h / 2)
    landmarks = np.array(corners)
    if noise:
        landmarks = landmarks + rng.normal(0, noise, landmarks.shape)
    return landmarks, (height, width)


# ---------------------------------------------------------------------------------------
# An independent implementation, written from docs/aasce-format.md with loops and math
# ---------------------------------------------------------------------------------------


def _angle_deg_between(a, b):
    c = (a[0] * b[0] + a[1] * b[1]) / (math.hypot(*a) * math.hypot(*b))
    return math.acos(min(1.0, max(0.0, c)))


def _first_argmax(values):
    best = 0
    for k, v in enumerate(values):
        if v > values[best]:
            best = k
    return best


def _s_shaped(mid):
    n = len(mid)
    xl, yl = mid[n - 1]
    dx, dy = mid[0][0] - xl, mid[0][1] - yl
    if abs(dx) < 1e-9 or abs(dy) < 1e-9:  # the documented degenerate case
        offs = [(m[0] - xl) if abs(dx) < 1e-9 else (m[1] - yl) for m in mid[: n - 2]]
        return any(o > 0 for o in offs) and any(o < 0 for o in offs)
    ll = [(mid[i][1] - yl) / dy - (mid[i][0] - xl) / dx for i in range(n - 2)]
    total = 0.0
    total_abs = 0.0
    for a in ll:
        for b in ll:
            total += a * b
            total_abs += abs(a * b)
    return abs(total - total_abs) >= 1e-4


def reference_cobb(points, image_height):
    p = [tuple(map(float, q)) for q in points]
    vectors = []
    for v in range(17):
        tl, tr, bl, br = p[4 * v : 4 * v + 4]
        left = ((tl[0] + bl[0]) / 2, (tl[1] + bl[1]) / 2)
        right = ((tr[0] + br[0]) / 2, (tr[1] + br[1]) / 2)
        vectors.append((right[0] - left[0], right[1] - left[1]))
    ang = [[_angle_deg_between(vectors[i], vectors[j]) for j in range(17)] for i in range(17)]
    pos1 = [_first_argmax(row) for row in ang]
    maxt = [ang[i][pos1[i]] for i in range(17)]
    pos2 = _first_argmax(maxt)
    first = maxt[pos2]
    mid = [
        ((p[2 * k][0] + p[2 * k + 1][0]) / 2, (p[2 * k][1] + p[2 * k + 1][1]) / 2)
        for k in range(34)
    ]
    q = pos1[pos2]
    if not _s_shaped(mid):
        branch = "C"
        second, third = ang[0][pos2], ang[16][q]
    elif mid[2 * pos2][1] + mid[2 * q][1] < image_height:
        branch = "S-upper"
        second = max(ang[pos2][: pos2 + 1])
        third = max(ang[q][q:17])
    else:
        branch = "S-lower"
        row = ang[pos2][: pos2 + 1]
        k = _first_argmax(row)
        second = row[k]
        third = max(ang[k][: k + 1])
    return [math.degrees(first), math.degrees(second), math.degrees(third)], branch


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------


def _random_case(rng, i):
    kind = ["C", "S", "straight", "S", "C"][i % 5]
    noise = [0.0, 0.0, 0.5, 2.0][i % 4]
    return make_spine(rng, kind=kind, noise=noise)


def test_matches_independent_implementation_on_1000_spines():
    rng = np.random.default_rng(1234)
    branches = {"C": 0, "S-upper": 0, "S-lower": 0}
    worst = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(1200):
            landmarks, (h, _) = _random_case(rng, i)
            expected, branch = reference_cobb(landmarks, h)
            result = cobb_details(landmarks, h)
            worst = max(worst, float(np.max(np.abs(result.angles - expected))))
            assert result.s_shaped == (branch != "C")
            branches[branch] += 1
    assert worst < 0.01
    # every branch of the reference was exercised
    assert min(branches.values()) >= 50, branches


def test_matches_independent_implementation_on_arbitrary_landmarks():
    # random quadrilaterals: not spine-like at all, exercises ties and clipping at 90°
    rng = np.random.default_rng(7)
    for _ in range(200):
        centres = np.cumsum(rng.uniform(5, 40, (17, 2)) * [rng.choice([-1, 1]), 1], axis=0)
        landmarks = np.repeat(centres, 4, axis=0) + rng.normal(0, 15, (68, 2))
        h = float(rng.uniform(100, 2000))
        expected, _ = reference_cobb(landmarks, h)
        np.testing.assert_allclose(cobb_angles(landmarks, h), expected, atol=0.01)


def _tilted_spine(tilts_deg, x0=300.0, spacing=40.0, half_width=15.0, half_height=10.0):
    """Rectangular vertebrae tilted by `tilts_deg`, each perpendicular to the column.

    The centres walk down the column, each step along the mean direction of the two
    vertebrae it joins, so the endplate mid-points lie on a smooth curve.
    """
    rows = []
    centre = np.array([x0, 50.0])
    previous_down = None
    for tilt in tilts_deg:
        c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
        across, down = np.array([c, s]), np.array([-s, c])
        if previous_down is not None:
            step = previous_down + down
            centre = centre + spacing * step / np.linalg.norm(step)
        previous_down = down
        for dy, dx in [(-1, -1), (-1, 1), (1, -1), (1, 1)]:
            rows.append(centre + dx * half_width * across + dy * half_height * down)
    return np.array(rows)


def test_known_tilt_gives_known_angle():
    # top 8 vertebrae level, the rest tilted by 17°: a single 17° curve
    tilts = [0.0] * 8 + [17.0] * 9
    angles = cobb_angles(_tilted_spine(tilts), 900)
    assert angles[0] == pytest.approx(17.0, abs=1e-9)


def test_c_curve_angles_and_pairs():
    # tilt rising from -20° at the top to +25° at the bottom: a C curve of 45°
    tilts = np.linspace(-20, 25, 17)
    result = cobb_details(_tilted_spine(tilts), 900)
    assert not result.s_shaped
    np.testing.assert_allclose(result.angles, [45.0, 0.0, 0.0], atol=1e-9)
    assert result.pairs == ((0, 16), (0, 0), (16, 16))


def test_s_curve_two_opposite_curves():
    # a 30° curve over the top half, then a 50° curve back over the bottom half
    tilts = [-15.0] * 3 + [0, 5, 10, 15] + [15.0] * 3 + [0, -10, -20, -30] + [-35.0] * 3
    result = cobb_details(_tilted_spine(tilts), 2000)
    assert result.s_shaped
    assert result.angles[0] == pytest.approx(50.0)
    assert result.pairs[0][1] >= 7


@pytest.mark.parametrize("lean", [0.0, 12.0, -30.0])
def test_straight_spine_gives_zero_without_warnings(lean):
    # a perfectly straight column, vertical (chord exactly vertical: x_0 == x_last) or leaning
    rows = _tilted_spine([lean] * 17, half_width=12.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = cobb_details(rows, 1000)
    assert np.all(np.isfinite(result.angles))
    np.testing.assert_allclose(result.angles, 0.0, atol=1e-5)
    assert not result.s_shaped


def test_vertical_chord_is_judged_by_side():
    mid = np.zeros((34, 2))
    mid[:, 1] = np.arange(34) * 10.0
    assert not is_s_shaped(mid)
    mid[5:12, 0] = 3.0  # bulges right only: C
    assert not is_s_shaped(mid)
    mid[20:28, 0] = -3.0  # then left: S
    assert is_s_shaped(mid)


def test_rejects_bad_landmarks():
    with pytest.raises(SpineSegError, match="68 x 2"):
        cobb_angles(np.zeros((67, 2)), 100)
    rows = _tilted_spine([0.0] * 17)
    rows[8 * 4 : 8 * 4 + 4, 0] = 100.0  # vertebra 9 has no width
    with pytest.raises(SpineSegError, match="vertebra 9"):
        cobb_angles(rows, 1000, source="a.mat")


def test_smape_values():
    assert smape([10, 20, 30], [10, 20, 30]) == 0.0
    # 10 / 130 and 0 / 60: mean 3.846 %
    got = smape([[10, 20, 30], [10, 10, 10]], [[20, 20, 30], [10, 10, 10]])
    assert got == pytest.approx(100 * (10 / 130) / 2)
    assert smape([[0, 0, 0]], [[0, 0, 0]]) == 0.0
    assert smape([[10, 0, 0]], [[0, 0, 0]]) == pytest.approx(100.0)
    # symmetric in its arguments
    a, b = np.array([[12.0, 3.0, 40.0]]), np.array([[8.0, 5.0, 33.0]])
    assert smape(a, b) == pytest.approx(smape(b, a))


def test_smape_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        smape(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        smape([np.nan, 1, 1], [1, 1, 1])


# ---------------------------------------------------------------------------------------
# spine-seg cobb
# ---------------------------------------------------------------------------------------


def _write_aasce(root, split, spines):
    """A tiny AASCE layout: JPEGs, <name>.mat with p2, filenames/landmarks/angles CSVs."""
    data, labels = root / "data" / split, root / "labels" / split
    data.mkdir(parents=True)
    labels.mkdir(parents=True)
    names, rows, angles = [], [], []
    for i, (landmarks, (h, w)) in enumerate(spines):
        name = f"sunhl-1th-0{i}-Jan-2017-16{i} A AP.jpg"
        Image.fromarray(np.full((h, w), 40 + i, np.uint8)).save(data / name, quality=90)
        scipy.io.savemat(labels / f"{name}.mat", {"p2": landmarks})
        names.append(name)
        rows.append(np.concatenate([landmarks[:, 0] / w, landmarks[:, 1] / h]))
        angles.append(reference_cobb(landmarks, h)[0])
    (labels / "filenames.csv").write_text("".join(f"{n}\n" for n in names))
    np.savetxt(labels / "landmarks.csv", np.array(rows), delimiter=",")
    np.savetxt(labels / "angles.csv", np.array(angles), delimiter=",")
    return names, np.array(angles)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_cli_cobb_on_an_aasce_layout(tmp_path, capsys):
    rng = np.random.default_rng(31)
    spines = [make_spine(rng, height=300, kind=k) for k in ("C", "S", "straight")]
    names, expected = _write_aasce(tmp_path / "boost", "training", spines)
    out = tmp_path / "angles.csv"
    assert main(["cobb", str(tmp_path / "boost"), "--csv", str(out)]) == 0
    table = _read_csv(out)
    assert table[0] == ["file", "pt", "mt", "tl"]
    assert [r[0] for r in table[1:]] == sorted(names)
    got = {r[0]: np.array(r[1:], float) for r in table[1:]}
    for name, angles in zip(names, expected, strict=True):
        np.testing.assert_allclose(got[name], angles, atol=1e-3)
    stdout = capsys.readouterr().out
    assert "against angles.csv (3 images): MAE 0.00 deg" in stdout
    assert names[0] in stdout
    # one split folder works too
    assert main(["cobb", str(tmp_path / "boost" / "data" / "training")]) == 0


def test_cli_cobb_on_a_folder_of_trimaps(tmp_path, capsys):
    rng = np.random.default_rng(32)
    folder = tmp_path / "trimaps"
    folder.mkdir()
    expected = {}
    for i in range(3):
        landmarks, shape = make_spine(rng, kind="C", cobb=20 + 15 * i, height=600)
        trimap = trimap_from_landmarks(landmarks, shape)
        if i == 2:  # a broken column
            rows = np.flatnonzero((trimap == 1).any(axis=1))
            mid = (rows[0] + rows[-1]) // 2
            trimap[mid : mid + 40] = 2
        Image.fromarray(trimap).save(folder / f"img {i}.png")
        expected[f"img {i}.png"] = cobb_angles(landmarks, shape[0])
    out = tmp_path / "out" / "cobb.csv"
    assert main(["cobb", str(folder), "--csv", str(out)]) == 0
    table = _read_csv(out)
    assert table[0] == ["file", "pt", "mt", "tl"]
    assert [r[0] for r in table[1:]] == ["img 0.png", "img 1.png", "img 2.png"]
    for row in table[1:3]:
        assert float(row[1]) == pytest.approx(expected[row[0]][0], abs=3)
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "warning" in line]
    assert len(warned) == 1 and "img 2.png" in warned[0] and "broken column" in warned[0]


def test_cli_cobb_measures_predicted_trimaps_as_a_networks_outline(tmp_path, capsys):
    from napari_spine_seg.data.masks import write_trimap_png
    from napari_spine_seg.spine.centreline import cobb_from_trimap

    landmarks, shape = make_spine(np.random.default_rng(33), kind="S", cobb=35, height=600)
    trimap = trimap_from_landmarks(landmarks, shape)
    drawn = cobb_from_trimap(trimap).angles
    predicted = cobb_from_trimap(trimap, outline="predicted").angles
    assert np.abs(drawn - predicted).max() > 0.01  # the two ways differ on this spine
    folder = tmp_path / "trimaps"
    write_trimap_png(folder / "marked.png", trimap, predicted=True)  # as spine-seg predict
    write_trimap_png(folder / "plain.png", trimap)
    out = tmp_path / "cobb.csv"
    assert main(["cobb", str(folder), "--csv", str(out)]) == 0
    rows = {r[0]: np.array(r[1:], float) for r in _read_csv(out)[1:]}
    np.testing.assert_allclose(rows["marked.png"], predicted, atol=1e-4)
    np.testing.assert_allclose(rows["plain.png"], drawn, atol=1e-4)
    assert main(["cobb", str(folder), "--csv", str(out), "--predicted"]) == 0
    rows = {r[0]: np.array(r[1:], float) for r in _read_csv(out)[1:]}
    np.testing.assert_allclose(rows["plain.png"], predicted, atol=1e-4)
    capsys.readouterr()


def test_cli_cobb_bad_source_is_one_line_exit_2(tmp_path, capsys):
    assert main(["cobb", str(tmp_path / "nothing here")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spine-seg cobb: error: ")
    assert "nothing here" in err[0]


def test_cli_cobb_bad_landmark_file_names_it(tmp_path, capsys):
    rng = np.random.default_rng(33)
    names, _ = _write_aasce(tmp_path, "test", [make_spine(rng, height=300)])
    bad = tmp_path / "labels" / "test" / f"{names[0]}.mat"
    scipy.io.savemat(bad, {"p2": np.zeros((10, 2))})
    assert main(["cobb", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
