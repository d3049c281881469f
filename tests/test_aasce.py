"""AASCE landmark files (.mat v5 and v7.3, CSVs) and layout detection, written for real."""

from __future__ import annotations

import numpy as np
import pytest

from _files import (
    synthetic_landmarks,
    truncate_file,
    write_aasce_layout,
    write_label_csvs,
    write_mat,
    write_mat_v73,
)
from napari_spine_seg.data.aasce import (
    aasce_splits,
    find_aasce_root,
    label_path,
    read_angles_csv,
    read_filenames_csv,
    read_landmarks_csv,
    read_landmarks_mat,
    write_landmarks_mat,
)
from napari_spine_seg.errors import SpineSegError

LM = synthetic_landmarks(240, 96, 0.08)


def test_read_mat_v5(tmp_path):
    path = write_mat(tmp_path / "sunhl-1th-02-Jan-2017-162 A AP.jpg.mat", p2=LM)
    out = read_landmarks_mat(path)
    assert out.shape == (68, 2) and out.dtype == np.float64
    np.testing.assert_array_equal(out, LM)


def test_read_mat_integer_p2(tmp_path):
    out = read_landmarks_mat(write_mat(tmp_path / "i.mat", p2=np.rint(LM).astype(np.int32)))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.rint(LM))


def test_read_mat_v73_is_transposed_back(tmp_path):
    path = write_mat_v73(tmp_path / "new.jpg.mat", p2=LM)
    assert path.read_bytes()[512:516] == b"\x89HDF"
    np.testing.assert_array_equal(read_landmarks_mat(path), LM)


def test_write_then_read(tmp_path):
    path = write_landmarks_mat(tmp_path / "labels" / "x y.jpg.mat", LM)
    np.testing.assert_array_equal(read_landmarks_mat(path), LM)
    with pytest.raises(SpineSegError, match="68 x 2"):
        write_landmarks_mat(tmp_path / "bad.mat", LM[:5])


@pytest.mark.parametrize("keep", [0.0, 0.05, 0.5, 0.95])
def test_truncated_mat(tmp_path, keep):
    path = truncate_file(write_mat(tmp_path / "cut.jpg.mat", p2=LM), keep)
    with pytest.raises(SpineSegError, match=r"cut.jpg.mat: .*(truncated|empty)"):
        read_landmarks_mat(path)


def test_truncated_mat_v73(tmp_path):
    path = truncate_file(write_mat_v73(tmp_path / "cut73.mat", p2=LM), 0.6)
    with pytest.raises(SpineSegError, match="cut73.mat: is truncated or corrupt"):
        read_landmarks_mat(path)


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "text.mat"
    path.write_text("this is not MATLAB " * 20)
    with pytest.raises(SpineSegError, match="text.mat: is not a MATLAB .mat file"):
        read_landmarks_mat(path)


def test_missing_mat(tmp_path):
    with pytest.raises(SpineSegError, match="none.mat: does not exist"):
        read_landmarks_mat(tmp_path / "none.mat")


def test_mat_without_p2(tmp_path):
    path = write_mat(tmp_path / "q.jpg.mat", landmarks=LM, other=1)
    with pytest.raises(
        SpineSegError, match=r"q.jpg.mat: has no variable 'p2' \(variables: landmarks, other\)"
    ):
        read_landmarks_mat(path)
    path73 = write_mat_v73(tmp_path / "q73.mat", landmarks=LM)
    with pytest.raises(SpineSegError, match="q73.mat: has no variable 'p2'"):
        read_landmarks_mat(path73)


@pytest.mark.parametrize("shape", [(67, 2), (2, 68), (68, 3), (136,)])
def test_p2_wrong_shape(tmp_path, shape):
    path = write_mat(tmp_path / "s.mat", p2=np.zeros(shape))
    with pytest.raises(SpineSegError, match=r"s.mat: variable 'p2' is .*, expected 68 x 2"):
        read_landmarks_mat(path)


def test_p2_with_nan(tmp_path):
    bad = LM.copy()
    bad[10, 1] = np.nan
    with pytest.raises(SpineSegError, match="n.mat: variable 'p2' holds NaN"):
        read_landmarks_mat(write_mat(tmp_path / "n.mat", p2=bad))


def test_p2_not_numeric(tmp_path):
    path = write_mat(tmp_path / "t.mat", p2="sixty-eight points")
    with pytest.raises(SpineSegError, match="t.mat: variable 'p2' is not a numeric array"):
        read_landmarks_mat(path)


def test_csvs(tmp_path):
    names = ["a b.jpg", "c d.jpg"]
    lms = [LM, synthetic_landmarks(300, 100)]
    shapes = [(240, 96), (300, 100)]
    write_label_csvs(tmp_path, names, lms, shapes, angles=[[1, 2, 3], [4, 5, 6]])
    assert read_filenames_csv(tmp_path) == names
    landmarks = read_landmarks_csv(tmp_path)
    assert list(landmarks) == names
    np.testing.assert_allclose(landmarks["a b.jpg"] * [96, 240], LM, atol=1e-6)
    assert landmarks["c d.jpg"].max() <= 1
    angles = read_angles_csv(tmp_path)
    np.testing.assert_array_equal(angles["c d.jpg"], [4, 5, 6])


def test_csv_errors(tmp_path):
    write_label_csvs(
        tmp_path, ["a.jpg", "b.jpg"], [LM, LM], [(240, 96)] * 2, angles=[[1, 2, 3]] * 2
    )
    (tmp_path / "angles.csv").write_text("1,2,3\n")
    with pytest.raises(SpineSegError, match=r"angles.csv: has 1 rows but filenames.csv names 2"):
        read_angles_csv(tmp_path)
    (tmp_path / "angles.csv").write_text("1,2\n3,4\n")
    with pytest.raises(SpineSegError, match=r"angles.csv: row 1 has 2 columns, expected 3 numbers"):
        read_angles_csv(tmp_path)
    (tmp_path / "angles.csv").write_text("1,2,x\n3,4,5\n")
    with pytest.raises(SpineSegError, match=r"angles.csv: row 1, column 3 is not a number: 'x'"):
        read_angles_csv(tmp_path)
    (tmp_path / "landmarks.csv").unlink()
    with pytest.raises(SpineSegError, match="landmarks.csv: does not exist"):
        read_landmarks_csv(tmp_path)


def test_find_root_and_splits(tmp_path):
    root = write_aasce_layout(tmp_path / "boost net", n_train=1, n_test=1, size=(60, 24))
    assert find_aasce_root(root) == (root, None)
    assert find_aasce_root(root / "data") == (root, None)
    assert find_aasce_root(root / "data" / "test") == (root, "test")
    assert find_aasce_root(root / "labels") is None
    assert find_aasce_root(tmp_path) is None
    assert aasce_splits(root) == ("training", "test")
    (root / "data" / "orphan").mkdir()  # no labels/orphan: not a split
    assert aasce_splits(root) == ("training", "test")
    assert find_aasce_root(root / "data" / "orphan") is None


def test_renamed_splits(tmp_path):
    root = write_aasce_layout(tmp_path, splits={"test": 1, "val": 1, "train": 1}, size=(60, 24))
    assert aasce_splits(root) == ("train", "val", "test")


def test_label_path_keeps_full_image_name(tmp_path):
    path = label_path(tmp_path, "training", "sunhl-1th-02-Jan-2017-162 A AP.jpg")
    assert path == tmp_path / "labels" / "training" / "sunhl-1th-02-Jan-2017-162 A AP.jpg.mat"
