"""Phantom X-rays: reproducible, anatomically ordered landmarks on the drawn bodies, real curves,
and a phantom set written exactly in the AASCE layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
from PIL import Image

from napari_spine_seg.data.phantom import (
    ARTEFACTS,
    MARKER,
    make_phantom,
    phantom_name,
    write_phantom_set,
)
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.spine.cobb import cobb_details
from napari_spine_seg.trimap import polygon_mask, sort_landmarks


def reference_cobb(p: np.ndarray, height: float) -> np.ndarray:
    """docs/aasce-format.md's reference computation, written out independently."""
    g = np.asarray(p, float).reshape(17, 4, 2)
    vec = (g[:, 1] + g[:, 3]) / 2 - (g[:, 0] + g[:, 2]) / 2
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    ang = np.degrees(np.arccos(np.clip(unit @ unit.T, 0, 1)))
    pos1, maxt = ang.argmax(axis=1), ang.max(axis=1)
    pos2 = int(maxt.argmax())
    mid = (p[0::2] + p[1::2]) / 2
    first, last = mid[0], mid[-1]
    ll = np.array(
        [
            (m[1] - last[1]) / (first[1] - last[1]) - (m[0] - last[0]) / (first[0] - last[0])
            for m in mid[:-2]
        ]
    )
    prod = np.outer(ll, ll)
    if abs(prod.sum() - np.abs(prod).sum()) < 1e-4:
        return np.array([maxt[pos2], ang[0, pos2], ang[16, pos1[pos2]]])
    second = ang[pos2, : pos2 + 1].max()
    if mid[2 * pos2, 1] + mid[2 * pos1[pos2], 1] < height:
        return np.array([maxt[pos2], second, ang[pos1[pos2], pos1[pos2] :].max()])
    k = int(ang[pos2, : pos2 + 1].argmax())
    return np.array([maxt[pos2], second, ang[k, : k + 1].max()])


def quad_masks(landmarks: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    groups = landmarks.reshape(17, 4, 2)
    return [polygon_mask(g[[0, 1, 3, 2]], shape) for g in groups]


@pytest.fixture(scope="module")
def fifty():
    """50 phantoms at random, small, as the set writer draws them."""
    return [make_phantom(np.random.default_rng([7, k]), height=520) for k in range(50)]


def test_same_seed_same_phantom_other_seed_other_phantom():
    a, b = make_phantom(11), make_phantom(np.random.default_rng(11))
    c = make_phantom(12)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.landmarks, b.landmarks)
    assert a.meta == b.meta
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)
    assert not np.allclose(a.landmarks[: min(68, len(c.landmarks))], c.landmarks)


def test_image_is_tall_8bit_grayscale_of_the_size_asked():
    p = make_phantom(0, height=640, width=256, curve=("S", 40.0), artefacts=())
    assert p.image.dtype == np.uint8 and p.image.shape == (640, 256)
    assert p.meta["shape"] == [640, 256] and p.meta["curve"] == "S"
    assert p.meta["artefacts"] == []
    q = make_phantom(1)
    h, w = q.image.shape
    assert 500 <= h <= 900 and 200 <= w <= 400 and 2.0 <= h / w <= 3.05


@pytest.mark.parametrize("kind", ["straight", "C", "S"])
def test_landmarks_are_ordered_corners_inside_the_image(kind):
    for seed in range(4):
        p = make_phantom(seed, curve=(kind, 70.0 if kind != "straight" else 3.0))
        lm = p.landmarks
        h, w = p.image.shape
        assert lm.shape == (68, 2) and lm.dtype == np.float64
        assert np.all((lm[:, 0] >= 0) & (lm[:, 0] < w) & (lm[:, 1] >= 0) & (lm[:, 1] < h))
        # TL, TR, BL, BR per vertebra and vertebrae top to bottom: re-sorting changes nothing
        assert np.array_equal(sort_landmarks(lm), lm)
        g = lm.reshape(17, 4, 2)
        assert np.all(np.diff(g.mean(axis=1)[:, 1]) > 0)
        # the column outline is simple: down the left side and down the right side
        left, right = g[:, [0, 2], 1].reshape(-1), g[:, [1, 3], 1].reshape(-1)
        assert np.all(np.diff(left) > 0) and np.all(np.diff(right) > 0)
        # bodies grow downwards: L5 at least 1.5x the area of T1
        side_a, side_b = g[:, 1] - g[:, 0], g[:, 2] - g[:, 0]
        area = np.abs(side_a[:, 0] * side_b[:, 1] - side_a[:, 1] * side_b[:, 0])
        assert area[-1] > 1.5 * area[0]


def test_vertebrae_are_drawn_where_the_landmarks_are():
    for seed in range(3):
        p = make_phantom(seed, curve=("C", 50.0), artefacts=())
        img = p.image.astype(float)
        masks = quad_masks(p.landmarks, img.shape)
        g = p.landmarks.reshape(17, 4, 2)
        brighter = 0
        for i, m in enumerate(masks):
            inside = img[m].mean()
            # the same quad moved sideways by 1.3 widths, both ways: beside the column
            width = np.linalg.norm(g[i, 1] - g[i, 0])
            across = (g[i, 1] - g[i, 0]) / width
            beside = [
                img[polygon_mask(g[i][[0, 1, 3, 2]] + s * 1.3 * width * across, img.shape)].mean()
                for s in (-1, 1)
            ]
            brighter += inside > max(beside) + 15
        assert brighter >= 15, brighter
        # and the body fills its quad: the corners' quad is bright right to its edges
        shrunk = g.mean(axis=1, keepdims=True) + 0.8 * (g - g.mean(axis=1, keepdims=True))
        ring = [
            m & ~polygon_mask(s[[0, 1, 3, 2]], img.shape)
            for m, s in zip(masks, shrunk, strict=True)
        ]
        ring_mean = np.mean([img[r].mean() for r in ring])
        quad_mean = np.mean([img[m].mean() for m in masks])
        assert ring_mean > 0.85 * quad_mean


def test_angles_are_the_reference_computation(fifty):
    for p in fifty:
        assert np.allclose(p.angles, reference_cobb(p.landmarks, p.image.shape[0]), atol=1e-4)


def test_curves_span_straight_to_beyond_60_degrees_c_and_s(fifty):
    cobb = np.array([p.angles[0] for p in fifty])
    kinds = [p.meta["curve"] for p in fifty]
    assert cobb.min() < 8 and cobb.max() >= 60
    assert np.sum(cobb >= 40) >= 5
    assert {"straight", "C", "S"} <= set(kinds)
    # the drawn Cobb angle is what the curve was drawn with, give or take the jitter
    amp = np.array([p.meta["amplitude"] for p in fifty])
    curved = np.array([k != "straight" for k in kinds])
    assert np.all(np.abs(cobb[curved] - amp[curved]) < 5)
    # an S-curve is S-shaped to the reference test, a large C-curve is not
    s_shaped = [cobb_details(p.landmarks, p.image.shape[0]).s_shaped for p in fifty]
    assert any(s for s, k in zip(s_shaped, kinds, strict=True) if k == "S")
    assert any(not s for s, k, c in zip(s_shaped, kinds, cobb, strict=True) if k == "C" and c > 30)


def test_every_artefact_shows_and_each_is_drawn_at_random(fifty):
    seen = {name for p in fifty for name in p.meta["artefacts"]}
    assert seen == set(ARTEFACTS)
    clean = make_phantom(5, curve=("C", 30.0), artefacts=())
    rods = make_phantom(5, curve=("C", 30.0), artefacts=("rods",))
    column = np.logical_or.reduce(quad_masks(clean.landmarks, clean.image.shape))
    assert np.array_equal(clean.landmarks, rods.landmarks)
    # the rods are metal: nearly white over the column where the clean spine is not
    assert np.sum(rods.image[column] >= 245) > 5 * max(1, np.sum(clean.image[column] >= 245))
    noisy = make_phantom(5, curve=("C", 30.0), artefacts=("noise",))
    blurred = make_phantom(5, curve=("C", 30.0), artefacts=("blur",))

    def roughness(img):
        return np.abs(np.diff(img.astype(float), axis=1)).mean()

    assert roughness(noisy.image) > 1.5 * roughness(clean.image)
    assert roughness(blurred.image) < 0.9 * roughness(clean.image)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="curve kind"):
        make_phantom(0, curve="Z")
    with pytest.raises(ValueError, match="amplitude"):
        make_phantom(0, curve=("C", 120.0))
    with pytest.raises(ValueError, match="artefact"):
        make_phantom(0, artefacts=("cat",))
    with pytest.raises(ValueError, match="at least"):
        make_phantom(0, height=50, width=20)


def test_names_look_like_the_real_set_and_are_unique():
    rng = np.random.default_rng(0)
    names = [phantom_name(i, rng) for i in range(300)]
    assert len(set(names)) == 300
    assert all(" " in n and n.endswith(" AP.jpg") and n.startswith("phantom-") for n in names)


def test_set_is_written_in_the_aasce_layout(tmp_path):
    root = write_phantom_set(tmp_path / "set", n_train=3, n_test=2, seed=5, jobs=1)
    assert root == tmp_path / "set"
    marker = json.loads((root / MARKER).read_text())
    for split, n in (("training", 3), ("test", 2)):
        labels = root / "labels" / split
        names = (labels / "filenames.csv").read_text().splitlines()
        assert len(names) == n and all(" " in name for name in names)
        assert sorted(p.name for p in (root / "data" / split).iterdir()) == sorted(names)
        norm = np.loadtxt(labels / "landmarks.csv", delimiter=",", ndmin=2)
        angles = np.loadtxt(labels / "angles.csv", delimiter=",", ndmin=2)
        assert norm.shape == (n, 136) and angles.shape == (n, 3)
        assert np.all((norm >= 0) & (norm <= 1))
        for name, row, ang in zip(names, norm, angles, strict=True):
            with Image.open(root / "data" / split / name) as im:
                assert im.format == "JPEG" and im.mode == "L"
                w, h = im.size
            p2 = scipy.io.loadmat(labels / f"{name}.mat")["p2"]
            assert p2.shape == (68, 2) and p2.dtype == np.float64
            assert np.allclose(row[:68] * w, p2[:, 0]) and np.allclose(row[68:] * h, p2[:, 1])
            assert np.allclose(ang, reference_cobb(p2, h), atol=1e-4)
            assert marker["images"][f"{split}/{name}"]["shape"] == [h, w]


def test_set_is_the_same_in_one_or_two_processes(tmp_path):
    one = write_phantom_set(tmp_path / "one", n_train=3, n_test=1, seed=9, jobs=1)
    two = write_phantom_set(tmp_path / "two", n_train=3, n_test=1, seed=9, jobs=2)
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix != ".mat":  # .mat headers carry a time stamp
            assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
        else:
            assert np.array_equal(
                scipy.io.loadmat(one / rel)["p2"], scipy.io.loadmat(two / rel)["p2"]
            )


def test_rewriting_a_phantom_set_replaces_it_and_other_data_is_refused(tmp_path):
    root = tmp_path / "set"
    write_phantom_set(root, n_train=3, n_test=2, seed=1, jobs=1)
    write_phantom_set(root, n_train=2, n_test=0, seed=2, jobs=1)
    train = (root / "labels" / "training" / "filenames.csv").read_text().splitlines()
    assert sorted(p.name for p in (root / "data" / "training").iterdir()) == sorted(train)
    assert not any((root / "data" / "test").iterdir())
    assert not any((root / "labels" / "test").iterdir())

    other = tmp_path / "other"
    (other / "data" / "training").mkdir(parents=True)
    (other / "data" / "training" / "x.jpg").write_bytes(b"not ours")
    with pytest.raises(SpineSegError, match="not a phantom set"):
        write_phantom_set(other, n_train=1, n_test=0)
    assert (other / "data" / "training" / "x.jpg").read_bytes() == b"not ours"


def test_unwritable_folder_is_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpineSegError) as info:
        write_phantom_set(blocker / "set", n_train=1, n_test=0)
    assert "\n" not in str(info.value) and str(blocker) in str(info.value)
