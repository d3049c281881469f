"""``spine-seg synth`` and ``spine-seg trimaps`` end to end, through ``cli.main``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from skimage.draw import polygon as draw_polygon

from napari_spine_seg.cli import main


def column_mask_independent(p2: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The spine column (left corners down, right corners up) rasterised by scikit-image."""
    g = p2.reshape(17, 4, 2)
    outline = np.concatenate([g[:, [0, 2]].reshape(-1, 2), g[::-1, [3, 1]].reshape(-1, 2)])
    mask = np.zeros(shape, bool)
    rr, cc = draw_polygon(outline[:, 1], outline[:, 0], shape)
    mask[rr, cc] = True
    return mask


def spine_iou_outside_band(trimap: np.ndarray, p2: np.ndarray) -> float:
    keep = trimap != 3
    truth = column_mask_independent(p2, trimap.shape) & keep
    drawn = (trimap == 1) & keep
    return (truth & drawn).sum() / (truth | drawn).sum()


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"spine-seg {command}: error: ") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "phantoms"
    assert main(["synth", str(root), "--train", "4", "--test", "2", "--seed", "3"]) == 0
    return root


def test_synth_writes_the_counts_it_says(phantom_set, capsys):
    for split, n in (("training", 4), ("test", 2)):
        images = sorted((phantom_set / "data" / split).glob("*.jpg"))
        assert len(images) == n and all(" " in p.name for p in images)
        mats = sorted((phantom_set / "labels" / split).glob("*.jpg.mat"))
        assert [m.name for m in mats] == [f"{p.name}.mat" for p in images]
    out = phantom_set.parent / "again"
    assert main(["synth", str(out), "--train", "1", "--test", "0"]) == 0
    said = capsys.readouterr().out
    assert "1 training and 0 test" in said and str(out) in said


def test_trimaps_match_the_landmark_polygon(phantom_set, tmp_path, capsys):
    out = tmp_path / "trimaps"
    assert main(["trimaps", str(phantom_set), "--out", str(out)]) == 0
    assert "wrote 6 trimaps" in capsys.readouterr().out
    for split in ("training", "test"):
        images = sorted((phantom_set / "data" / split).glob("*.jpg"))
        pngs = sorted((out / split).iterdir())
        assert [p.name for p in pngs] == [p.name[: -len(".jpg")] + ".png" for p in images]
        for image, png in zip(images, pngs, strict=True):
            with Image.open(png) as im:
                assert im.mode == "L" and im.format == "PNG"
                trimap = np.asarray(im)
            with Image.open(image) as im:
                assert trimap.shape == (im.height, im.width)
            assert set(np.unique(trimap).tolist()) == {1, 2, 3}
            p2 = scipy.io.loadmat(phantom_set / "labels" / split / f"{image.name}.mat")["p2"]
            assert spine_iou_outside_band(trimap, p2) >= 0.97


def test_trimaps_of_one_split_folder_are_flat_and_border_is_honoured(phantom_set, tmp_path):
    thin, wide = tmp_path / "thin", tmp_path / "wide"
    split = phantom_set / "data" / "training"
    assert main(["trimaps", str(split), "--out", str(thin), "--border", "1", "--jobs", "1"]) == 0
    assert main(["trimaps", str(split), "--out", str(wide), "--border", "6", "--jobs", "1"]) == 0
    names = sorted(p.name for p in thin.iterdir())
    assert len(names) == 4 and all(n.endswith(" AP.png") for n in names)
    for name in names:
        a, b = (np.asarray(Image.open(d / name)) for d in (thin, wide))
        assert (b == 3).sum() > 3 * (a == 3).sum() > 0


def test_trimaps_in_two_processes_equal_one_process(tmp_path):
    root = tmp_path / "eight"
    assert main(["synth", str(root), "--train", "8", "--test", "0", "--seed", "1"]) == 0
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["trimaps", str(root), "--out", str(one), "--jobs", "1"]) == 0
    assert main(["trimaps", str(root), "--out", str(two), "--jobs", "2"]) == 0
    files = sorted(p.name for p in one.iterdir())
    assert len(files) == 8 and files == sorted(p.name for p in two.iterdir())
    for name in files:
        assert np.array_equal(
            np.asarray(Image.open(one / name)), np.asarray(Image.open(two / name))
        )


def test_unwritable_out_folders_are_one_line_errors(phantom_set, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["synth", str(blocker / "set"), "--train", "1", "--test", "0"]) == 2
    assert str(blocker) in one_line_error(capsys, "synth")
    assert main(["trimaps", str(phantom_set), "--out", str(blocker / "t")]) == 2
    assert str(blocker) in one_line_error(capsys, "trimaps")


def test_the_data_sets_own_folders_are_refused(phantom_set, capsys):
    labels = phantom_set / "labels" / "training"
    before = sorted(p.name for p in labels.iterdir())
    for inside in (labels, phantom_set / "labels" / "x", phantom_set / "data" / "test"):
        assert main(["trimaps", str(phantom_set), "--out", str(inside)]) == 2
        assert "data set's own folder" in one_line_error(capsys, "trimaps")
    assert sorted(p.name for p in labels.iterdir()) == before
    assert not (phantom_set / "labels" / "x").exists()
    assert not list((phantom_set / "data" / "test").glob("*.png"))


def test_bad_inputs_exit_2_with_one_line(phantom_set, tmp_path, capsys):
    assert main(["trimaps", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in one_line_error(capsys, "trimaps")
    assert main(["trimaps", str(phantom_set), "--out", str(tmp_path / "o"), "--border", "-1"]) == 2
    one_line_error(capsys, "trimaps")
    assert main(["synth", str(tmp_path / "s"), "--train", "-3"]) == 2
    assert "--train" in one_line_error(capsys, "synth")
    # a landmark file that is not a MAT file: named in the one line
    broken = tmp_path / "broken"
    assert main(["synth", str(broken), "--train", "2", "--test", "0"]) == 0
    capsys.readouterr()
    mat = sorted((broken / "labels" / "training").glob("*.mat"))[0]
    mat.write_bytes(b"garbage")
    assert main(["trimaps", str(broken), "--out", str(tmp_path / "t"), "--jobs", "1"]) == 2
    assert mat.name in one_line_error(capsys, "trimaps")
    # and a synth into another data set's folder is refused, leaving it alone
    assert main(["synth", str(broken), "--train", "1", "--test", "0"]) == 0
    Path(broken / "phantom-set.json").unlink()
    assert main(["synth", str(broken), "--train", "1", "--test", "0"]) == 2
    assert "not a phantom set" in one_line_error(capsys, "synth")
