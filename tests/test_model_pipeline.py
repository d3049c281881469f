"""Input pipeline: fitting to the network input, the on-disk cache, augmentation, batches."""

from __future__ import annotations

import os
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest

from _files import synthetic_landmarks, synthetic_xray, write_aasce_layout, write_folder_layout
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.model.pipeline import (
    ArrayCache,
    Augmentation,
    BatchSource,
    InputSpec,
    augment,
    cache_key,
    decode_sample,
)
from napari_spine_seg.model.preprocess import (
    fit_image,
    fit_trimap,
    placement,
    probabilities_to_trimap,
    unfit_probabilities,
    unfit_to_trimap,
)
from napari_spine_seg.trimap import trimap_from_landmarks


def _xray(shape=(300, 120), curve=0.1):
    lm = synthetic_landmarks(*shape, curve=curve)
    return synthetic_xray(lm, shape), trimap_from_landmarks(lm, shape)


def test_fit_image_normalises_any_dtype_to_the_unit_range():
    image, _ = _xray()
    a = fit_image(image, (64, 32))
    b = fit_image(image.astype(np.uint16) * 257 + 1000, (64, 32))  # 16-bit, offset
    assert a.shape == (64, 32) and a.dtype == np.float32
    assert a.min() == 0.0 and a.max() == 1.0
    np.testing.assert_allclose(a, b, atol=1e-3)  # the same picture whatever the bit depth


def test_letterbox_keeps_the_aspect_ratio_and_pads_with_background():
    image, trimap = _xray((300, 60))  # 5:1, taller than the 2:1 input
    place = placement(image.shape, (64, 32), "letterbox")
    top, left, rows, cols = place.box
    assert (top, rows) == (0, 64) and cols == round(60 * 64 / 300) and left == (32 - cols) // 2
    x = fit_image(image, (64, 32), "letterbox")
    t = fit_trimap(trimap, (64, 32), "letterbox")
    assert np.all(x[:, :left] == 0) and np.all(t[:, :left] == 2)
    assert (t[:, left : left + cols] == 1).any()


def test_fit_trimap_keeps_all_three_classes_where_they_are():
    _, trimap = _xray((600, 240))
    small = fit_trimap(trimap, (128, 48))
    assert set(np.unique(small)) == {1, 2, 3}
    # the spine's centre column stays spine, the corners background
    assert small[64, 24] == 1 and small[0, 0] == 2 and small[-1, -1] == 2


def test_probabilities_go_back_to_the_original_size_before_argmax():
    _, trimap = _xray((300, 120))
    place = placement(trimap.shape, (64, 32), "resize")
    small = fit_trimap(trimap, (64, 32))
    probs = np.eye(3, dtype=np.float32)[small - 1]  # one-hot "prediction" at network size
    full = unfit_probabilities(probs, place)
    assert full.shape == (300, 120, 3)
    back = probabilities_to_trimap(full)
    assert back.shape == trimap.shape
    assert np.mean((back == 1) == (trimap == 1)) > 0.95
    # the fast path prediction uses gives the same trimap and spine probability
    soft = np.random.default_rng(0).dirichlet((1, 1, 1), size=(64, 32)).astype(np.float32)
    fast_trimap, fast_spine = unfit_to_trimap(soft, place)
    np.testing.assert_array_equal(
        fast_trimap, probabilities_to_trimap(unfit_probabilities(soft, place))
    )
    np.testing.assert_array_equal(fast_spine, unfit_probabilities(soft, place)[..., 0])


def test_cache_is_written_once_reused_and_invalidated_when_the_file_changes(tmp_path):
    ds = open_dataset(write_aasce_layout(tmp_path / "set", n_train=2, n_test=0))
    spec = InputSpec((64, 32))
    cache = ArrayCache(tmp_path / "cache")
    first = cache.get(ds[0], spec)
    assert first.shape == (2, 64, 32) and first.dtype == np.uint8
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    again = cache.get(ds[0], spec)
    assert (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, decode_sample(ds[0], spec))
    key = cache_key(ds[0], spec)
    assert cache_key(ds[0], InputSpec((64, 32), fit="letterbox")) != key
    st = os.stat(ds[0].image_path)
    os.utime(ds[0].image_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache_key(ds[0], spec) != key
    cache.get(ds[0], spec)
    assert cache.misses == 2


def test_an_unwritable_cache_folder_warns_and_carries_on(tmp_path):
    ds = open_dataset(write_aasce_layout(tmp_path / "set", n_train=1, n_test=0))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ArrayCache(blocker / "cache")
    with pytest.warns(UserWarning, match="cannot write the cache"):
        arr = cache.get(ds[0], InputSpec((64, 32)))
    assert arr.shape == (2, 64, 32) and cache.folder is None


def test_augmentation_moves_image_and_trimap_together_and_is_seeded():
    image, trimap = _xray((128, 48), curve=0.15)
    x0 = fit_image(image, (128, 48))
    changed = 0
    for seed in range(6):
        xa, ta = augment(x0, trimap, np.random.default_rng(seed))
        xb, tb = augment(x0, trimap, np.random.default_rng(seed))
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ta, tb)
        assert xa.dtype == np.float32 and 0 <= xa.min() and xa.max() <= 1
        assert set(np.unique(ta)) <= {1, 2, 3}
        # the spine is the bright column: the augmented image is brighter under the
        # augmented spine than elsewhere, i.e. the two still line up
        assert xa[ta == 1].mean() > xa[ta == 2].mean() + 0.1
        changed += not np.array_equal(ta, trimap)
    assert changed >= 5


def test_no_up_down_flip_and_left_right_flip_keeps_the_label_true():
    image, trimap = _xray((128, 48), curve=0.2)
    x0 = fit_image(image, (128, 48))
    still = replace(Augmentation.off(), flip_lr=True)
    flips = 0
    for seed in range(10):
        xa, ta = augment(x0, trimap, np.random.default_rng(seed), still)
        if np.array_equal(ta, trimap):
            np.testing.assert_allclose(xa, x0, atol=1e-6)
        else:
            np.testing.assert_array_equal(ta, trimap[:, ::-1])
            np.testing.assert_allclose(xa, x0[:, ::-1], atol=1e-6)
            flips += 1
        assert not np.array_equal(ta, trimap[::-1]) or np.array_equal(trimap, trimap[::-1])
    assert 0 < flips < 10


def test_batches_have_the_network_shapes_and_class_indices(tmp_path):
    ds = open_dataset(write_folder_layout(tmp_path / "set", n=5, size=(120, 48)))
    source = BatchSource(
        ds.samples,
        InputSpec((64, 32), channels=3),
        batch_size=2,
        cache=ArrayCache(None),
        augmentation=Augmentation(),
        shuffle=True,
    )
    assert len(source) == 3
    x, y = source.batch(0)
    assert x.shape == (2, 64, 32, 3) and x.dtype == np.float32
    assert y.shape == (2, 64, 32) and y.dtype == np.int32 and set(np.unique(y)) <= {0, 1, 2}
    x_last, _ = source.batch(2)
    assert len(x_last) == 1
    order = source.order().tolist()
    source.next_epoch()
    assert sorted(source.order().tolist()) == sorted(order)


def test_memory_stays_flat_as_the_set_grows(tmp_path):
    """Iterating an epoch holds one batch, not the set: peak memory does not grow with it."""
    peaks = {}
    for n in (8, 64):
        root = tmp_path / f"set{n}"
        lm = synthetic_landmarks(240, 96)
        write_aasce_layout(root, n_train=1, n_test=0)
        # copy the one image n times (fast), each with its own landmarks file
        data, labels = root / "data" / "training", root / "labels" / "training"
        src = next(data.glob("*.jpg"))
        mat = labels / f"{src.name}.mat"
        for i in range(n - 1):
            (data / f"copy {i}.jpg").write_bytes(src.read_bytes())
            (labels / f"copy {i}.jpg.mat").write_bytes(mat.read_bytes())
        for f in labels.glob("*.csv"):
            f.unlink()
        ds = open_dataset(root)
        assert len(ds) == n and lm.shape == (68, 2)
        source = BatchSource(
            ds.samples,
            InputSpec((128, 64)),
            batch_size=4,
            cache=ArrayCache(tmp_path / f"c{n}"),
            augmentation=Augmentation(),
        )
        source.prepare()
        tracemalloc.start()
        for i in range(len(source)):
            source.batch(i)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # holding the set would add 56 x 16 kB of arrays; a batch with its augmentation is ~0.5 MB
    print(peaks)
    assert peaks[64] < peaks[8] + 300_000
