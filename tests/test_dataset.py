"""Opening DATASET folders: AASCE root and split, folders with trimaps, Pets; real files."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from _files import (
    aasce_name,
    synthetic_landmarks,
    write_aasce_layout,
    write_folder_layout,
    write_jpeg,
    write_many_samples,
    write_pets_layout,
    write_png,
    write_trimap,
)
from napari_spine_seg.data.dataset import Dataset, Sample, open_dataset
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.trimap import trimap_from_landmarks

SIZE = (120, 48)


@pytest.fixture
def aasce(tmp_path):
    return write_aasce_layout(tmp_path / "boostnet labeldata", n_train=3, n_test=2, size=SIZE)


def test_aasce_root_all_splits(aasce):
    ds = open_dataset(aasce)
    assert isinstance(ds, Dataset) and ds.kind == "aasce" and ds.root == aasce
    assert ds.splits == ("training", "test")
    assert len(ds) == 5 and [s.split for s in ds] == ["training"] * 3 + ["test"] * 2
    names = [s.name for s in ds if s.split == "training"]
    assert names == sorted(names) and " A AP.jpg" in names[0]
    sample = ds[0]
    assert isinstance(sample, Sample)
    assert sample.image_path == aasce / "data" / "training" / sample.name
    assert sample.landmarks_path == aasce / "labels" / "training" / f"{sample.name}.mat"
    assert sample.trimap_path is None and sample.has_labels
    assert set(ds.angles) == set(ds.names) and ds.angles[sample.name].shape == (3,)
    assert "samples=5" in repr(ds)


def test_sample_loads_image_landmarks_trimap(aasce):
    sample = open_dataset(aasce)[aasce_name("training", 1)]
    assert sample.image_shape() == SIZE
    assert sample.load_image().pixels.shape == SIZE
    landmarks = sample.load_landmarks()
    np.testing.assert_allclose(landmarks, synthetic_landmarks(*SIZE, curve=-0.08))
    trimap = sample.load_trimap(border=2)
    np.testing.assert_array_equal(trimap, trimap_from_landmarks(landmarks, SIZE, border=2))
    assert set(np.unique(trimap)) == {1, 2, 3}


def test_one_split_folder(aasce):
    ds = open_dataset(aasce / "data" / "test")
    assert ds.root == aasce and ds.splits == ("test",) and len(ds) == 2
    assert all(s.split == "test" for s in ds) and set(ds.angles) == set(ds.names)


def test_split_method(aasce):
    ds = open_dataset(aasce)
    test = ds.split("test")
    assert test.names == tuple(s.name for s in ds if s.split == "test")
    assert test.splits == ("test",) and set(test.angles) == set(test.names)
    with pytest.raises(SpineSegError, match=r"has no split 'val' \(splits: training, test\)"):
        ds.split("val")
    with pytest.raises(SpineSegError, match="has no image named 'nope.jpg'"):
        ds["nope.jpg"]


def test_train_val_test_splits(tmp_path):
    root = write_aasce_layout(tmp_path, splits={"train": 2, "val": 1, "test": 1}, size=SIZE)
    ds = open_dataset(root)
    assert ds.splits == ("train", "val", "test") and len(ds) == 4


def test_image_without_labels_names_image(aasce):
    name = aasce_name("training", 1)
    (aasce / "labels" / "training" / f"{name}.mat").unlink()
    (aasce / "labels" / "training" / "landmarks.csv").unlink()
    with pytest.raises(SpineSegError, match=f"{name}: has no landmarks"):
        open_dataset(aasce)
    ds = open_dataset(aasce, require_labels=False)
    sample = ds[name]
    assert sample.landmarks_path is None and not sample.has_labels
    assert sample.load_landmarks() is None
    with pytest.raises(SpineSegError, match=f"{name}: has no labels"):
        sample.load_trimap()


def test_missing_mat_falls_back_to_landmarks_csv(aasce):
    name = aasce_name("training", 2)
    mat = aasce / "labels" / "training" / f"{name}.mat"
    mat.unlink()
    sample = open_dataset(aasce)[name]
    assert sample.landmarks_path == aasce / "labels" / "training" / "landmarks.csv"
    np.testing.assert_allclose(
        sample.load_landmarks(), synthetic_landmarks(*SIZE, curve=0.10), atol=1e-6
    )


def test_labels_without_image_names_mat(aasce):
    name = aasce_name("test", 0)
    (aasce / "data" / "test" / name).unlink()
    with pytest.raises(SpineSegError, match=f"{name}.mat: has no image"):
        open_dataset(aasce)
    assert len(open_dataset(aasce, require_labels=False)) == 4


def test_bad_mat_is_reported_when_loaded_not_when_opened(aasce):
    name = aasce_name("training", 0)
    mat = aasce / "labels" / "training" / f"{name}.mat"
    mat.write_bytes(mat.read_bytes()[:200])
    sample = open_dataset(aasce)[name]
    with pytest.raises(SpineSegError, match=f"{name}.mat: is truncated"):
        sample.load_landmarks()


def test_empty_and_unknown_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpineSegError, match="empty: is empty"):
        open_dataset(tmp_path / "empty")
    (tmp_path / "odd" / "sub").mkdir(parents=True)
    (tmp_path / "odd" / "notes.txt").write_text("hi")
    with pytest.raises(SpineSegError, match="odd: holds no images and is not a data set"):
        open_dataset(tmp_path / "odd")
    with pytest.raises(SpineSegError, match="missing: does not exist"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(SpineSegError, match="notes.txt: is a file"):
        open_dataset(tmp_path / "odd" / "notes.txt")


def test_empty_split_folder(aasce):
    shutil.rmtree(aasce / "data" / "test")
    (aasce / "data" / "test").mkdir()
    with pytest.raises(SpineSegError, match=r"test.* A AP.jpg.mat: has no image"):
        open_dataset(aasce)
    shutil.rmtree(aasce / "labels" / "test")
    (aasce / "labels" / "test").mkdir()
    ds = open_dataset(aasce)  # an empty split of a root is left out
    assert ds.splits == ("training",) and len(ds) == 3
    with pytest.raises(SpineSegError, match="test: holds no images"):
        open_dataset(aasce / "data" / "test")
    for folder in ("data", "labels"):
        shutil.rmtree(aasce / folder / "training")
        (aasce / folder / "training").mkdir()
    with pytest.raises(SpineSegError, match="data: holds no images"):
        open_dataset(aasce)


@pytest.mark.parametrize("where", ["trimaps", "masks", "beside"])
def test_folder_with_trimaps(tmp_path, where):
    root = write_folder_layout(tmp_path / "my xrays", n=3, size=SIZE, where=where)
    ds = open_dataset(root)
    assert ds.kind == "folder" and ds.splits == () and ds.angles == {}
    assert ds.names == ("xray 0.jpg", "xray 1.jpg", "xray 2.jpg")
    sample = ds[1]
    expected_dir = root if where == "beside" else root / where
    assert sample.trimap_path == expected_dir / "xray 1.png"
    lm = synthetic_landmarks(*SIZE, curve=0.05)
    np.testing.assert_array_equal(sample.load_trimap(), trimap_from_landmarks(lm, SIZE))
    assert sample.load_landmarks() is None


def test_folder_png_images_with_trimaps_subfolder(tmp_path):
    root = write_folder_layout(tmp_path, n=2, size=SIZE, where="trimaps", suffix=".png")
    ds = open_dataset(root)
    assert ds.names == ("xray 0.png", "xray 1.png")
    assert ds[0].trimap_path == root / "trimaps" / "xray 0.png"


def test_images_subfolder_with_masks(tmp_path):
    root = write_folder_layout(tmp_path / "x", n=2, size=SIZE, where="masks")
    (root / "images").mkdir()
    for image in root.glob("*.jpg"):
        image.rename(root / "images" / image.name)
    ds = open_dataset(root)
    assert ds.kind == "folder" and len(ds) == 2
    assert ds[0].image_path.parent == root / "images"


def test_beside_told_apart_by_content(tmp_path):
    root = write_folder_layout(tmp_path, n=2, size=SIZE, where="beside")
    # a second X-ray saved as PNG beside a JPEG of the same stem is not a trimap
    rng = np.random.default_rng(0)
    write_jpeg(root / "other.jpg", rng.integers(0, 255, SIZE, dtype=np.uint8))
    write_png(root / "other.png", rng.integers(0, 255, SIZE, dtype=np.uint8))
    ds = open_dataset(root, require_labels=False)
    assert ds.names == ("other.jpg", "other.png", "xray 0.jpg", "xray 1.jpg")
    assert ds["other.jpg"].trimap_path is None and ds["xray 0.jpg"].trimap_path is not None
    with pytest.raises(SpineSegError, match="other.jpg: has no trimap"):
        open_dataset(root)


def test_folder_image_without_trimap(tmp_path):
    root = write_folder_layout(tmp_path, n=2, size=SIZE, where="trimaps")
    (root / "trimaps" / "xray 1.png").unlink()
    with pytest.raises(SpineSegError, match="xray 1.jpg: has no trimap"):
        open_dataset(root)
    assert open_dataset(root, require_labels=False)[1].trimap_path is None


def test_folder_trimap_without_image(tmp_path):
    root = write_folder_layout(tmp_path, n=2, size=SIZE, where="masks")
    (root / "xray 0.jpg").unlink()
    with pytest.raises(SpineSegError, match="xray 0.png: is a trimap without an image"):
        open_dataset(root)
    beside = write_folder_layout(tmp_path / "b", n=2, size=SIZE, where="beside")
    (beside / "xray 0.jpg").unlink()
    with pytest.raises(SpineSegError, match="xray 0.png: is a trimap without an image"):
        open_dataset(beside)


def test_trimap_with_stray_values_reported_on_load(tmp_path):
    root = write_folder_layout(tmp_path, n=1, size=SIZE, where="trimaps")
    bad = np.full(SIZE, 2, np.uint8)
    bad[5, 5] = 7
    write_trimap(root / "trimaps" / "xray 0.png", bad)
    with pytest.raises(SpineSegError, match=r"xray 0.png: is not a trimap.*found 7"):
        open_dataset(root)[0].load_trimap()


def test_trimap_of_wrong_size(tmp_path):
    root = write_folder_layout(tmp_path, n=1, size=SIZE, where="trimaps")
    write_trimap(root / "trimaps" / "xray 0.png", np.full((10, 10), 2))
    with pytest.raises(SpineSegError, match=r"xray 0.png: is 10 x 10 pixels but its image"):
        open_dataset(root)[0].load_trimap()


def test_colour_mask_in_masks_folder(tmp_path):
    root = write_folder_layout(tmp_path, n=1, size=SIZE, where="masks")
    rgb = np.zeros((*SIZE, 3), np.uint8)
    rgb[..., 1] = 255
    rgb[40:80, 10:30] = (255, 0, 0)
    write_png(root / "masks" / "xray 0.png", rgb)
    trimap = open_dataset(root)[0].load_trimap()
    assert trimap[50, 20] == 1 and trimap[0, 0] == 2


def test_pets_layout(tmp_path):
    root = write_pets_layout(tmp_path / "oxford pets", n=3, size=(48, 64))
    ds = open_dataset(root)
    assert ds.kind == "pets" and len(ds) == 3  # the hidden ._*.png files are ignored
    assert ds.splits == ("trainval", "test")
    assert [s.split for s in ds] == ["trainval", "trainval", "test"]
    sample = ds["Abyssinian_1.jpg"]
    assert sample.trimap_path == root / "annotations" / "trimaps" / "Abyssinian_1.png"
    assert sample.load_image().pixels.shape == (48, 64)
    assert set(np.unique(sample.load_trimap())) == {1, 2, 3}
    assert len(ds.split("test")) == 1


def test_481_image_split_opens_fast(tmp_path):
    root = write_many_samples(tmp_path / "big", n=481)
    # this process's CPU time, not wall time: on a shared 2-core machine other processes
    # stretch the wall clock, never the work done here (decoding 481 images would take
    # several CPU seconds; listing and matching the names takes a few tens of ms)
    start = time.process_time()
    ds = open_dataset(root / "data" / "training")
    elapsed = time.process_time() - start
    assert len(ds) == 481 and all(s.landmarks_path is not None for s in ds)
    assert elapsed < 1.0, f"open_dataset took {elapsed:.2f} s of CPU time"


def test_landmarks_a_little_beyond_the_edge_are_kept_far_beyond_refused(aasce):
    from _files import write_mat
    from napari_spine_seg.trimap import LANDMARK_MARGIN

    sample = open_dataset(aasce)[0]
    rows, cols = SIZE
    lm = synthetic_landmarks(rows, cols)
    lm[-1, 1] = rows - 1 + 0.9 * LANDMARK_MARGIN * rows  # a corner cut by the image's edge
    write_mat(sample.landmarks_path, p2=lm)
    np.testing.assert_allclose(sample.load_landmarks(), lm)
    lm[-1, 1] = rows - 1 + 1.5 * LANDMARK_MARGIN * rows
    write_mat(sample.landmarks_path, p2=lm)
    with pytest.raises(SpineSegError, match=r"\.mat: 1 of 68 landmarks lie outside the 120 x 48"):
        sample.load_landmarks()


def test_filenames_csv_naming_an_image_that_is_not_there_is_an_error(aasce):
    listing = aasce / "labels" / "test" / "filenames.csv"
    listing.write_text(listing.read_text() + "lost.jpg\n")
    with pytest.raises(SpineSegError, match=r"filenames.csv: names lost.jpg, which is not an"):
        open_dataset(aasce)


def test_a_trimap_beside_its_image_with_a_stray_value_is_named_with_the_value(tmp_path):
    root = write_folder_layout(tmp_path / "beside", n=2, size=SIZE, where="beside")
    trimap = np.full(SIZE, 2, np.uint8)
    trimap[3, 3] = 7
    write_trimap(root / "xray 1.png", trimap)
    ds = open_dataset(root)
    assert [s.name for s in ds] == ["xray 0.jpg", "xray 1.jpg"]
    with pytest.raises(SpineSegError, match=r"xray 1.png: is not a trimap.*found 7"):
        ds[1].load_trimap()
