"""``spine-seg check``: faults injected into phantom landmark sets are found, certain fixes
restore the clean corners, clean (strongly curved, strongly wedged) spines raise no false
alarms, and the data set is never written to.

The sets are written by ``benchmarks/landmark_fault_sets.py`` from three sources: the
project's phantoms, the second generator's spines and wedged phantom spines.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from _files import synthetic_landmarks, truncate_file, write_aasce_layout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import landmark_fault_sets as sets
from napari_spine_seg.cli import main
from napari_spine_seg.data.aasce import read_landmarks_csv, read_landmarks_mat
from napari_spine_seg.data.images import image_shape
from napari_spine_seg.data.landmark_check import check_dataset
from napari_spine_seg.data.phantom import write_phantom_set
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.spine.landmark_faults import KINDS, apply_fixes, find_faults

#: every kind, three times per source
FAULTY = KINDS * 3
#: rows of the test images: the check works in units of the vertebra spacing, so small
#: images test it as well as large ones, and fast
HEIGHT = 320


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root`, by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def found_at(truth: dict, report: dict) -> tuple[int, int]:
    """(injected faults found at the right image and vertebra ±1, injected faults)."""
    hits = total = 0
    for key, item in truth.items():
        fault = item["fault"]
        if fault is None:
            continue
        total += 1
        reported = report.get(key, [])
        if fault.kind == "angles_mismatch":  # a fault of the image, not of one vertebra
            hits += any(f["kind"] == "angles_mismatch" for f in reported)
        else:
            hits += any(
                f["vertebra"] is not None and abs(f["vertebra"] - 1 - fault.vertebra) <= 1
                for f in reported
            )
    return hits, total


@pytest.fixture(scope="module")
def faulty_sets(tmp_path_factory):
    """One set per source with every kind injected three times, and its truth."""
    out = {}
    for n, source in enumerate(sets.SOURCES):
        root = tmp_path_factory.mktemp(f"faulty-{source}")
        truth = sets.write_set(
            root, len(FAULTY), seed=10 + n, source=source, kinds=FAULTY, height=HEIGHT
        )
        out[source] = (root, truth)
    return out


@pytest.mark.parametrize("source", sets.SOURCES)
def test_injected_faults_are_found_at_their_vertebra(faulty_sets, source):
    root, truth = faulty_sets[source]
    report = check_dataset(root).to_json()
    hits, total = found_at(truth, report)
    assert total == len(FAULTY)
    assert hits / total >= 0.95, f"{hits} of {total} found"
    # every kind is reported under its own name at least once
    kinds = {f["kind"] for faults in report.values() for f in faults}
    assert set(KINDS) <= kinds


@pytest.mark.parametrize("source", sets.SOURCES)
def test_clean_strongly_curved_and_wedged_spines_raise_no_false_alarms(tmp_path, source):
    truth = sets.write_set(
        tmp_path, 40, seed=30, source=source, max_cobb=75.0, max_wedge=15.0, height=HEIGHT
    )
    check = check_dataset(tmp_path)
    assert len(check.images) == len(truth) == 40
    alarms = sum(len(image.faults) for image in check.images)
    assert alarms / len(check.images) <= 0.05, check.to_json()


def test_the_phantom_sets_and_the_test_layout_are_clean(tmp_path):
    write_phantom_set(tmp_path / "synth", n_train=10, n_test=4, seed=5, jobs=1)
    write_aasce_layout(tmp_path / "tiny", n_train=4, n_test=2)
    for name in ("synth", "tiny"):
        check = check_dataset(tmp_path / name)
        assert check.to_json() == {}, name


def test_certain_fixes_restore_the_clean_corners(faulty_sets, tmp_path):
    root, truth = faulty_sets["phantom"]
    before = tree_digest(root)
    out = tmp_path / "fixed"
    assert main(["check", str(root), "--fix", "--out", str(out)]) == 0
    assert tree_digest(root) == before
    fixes = json.loads((out / "fixes.json").read_text())
    csv = read_landmarks_csv(out / "labels" / "training")
    certain = 0
    for key, item in truth.items():
        fault, name = item["fault"], Path(key).name
        assert (out / key).read_bytes() == (root / key).read_bytes()
        fixed = read_landmarks_mat(out / "labels" / "training" / f"{name}.mat")
        stored = read_landmarks_mat(root / "labels" / "training" / f"{name}.mat")
        if fault is not None and fault.certain:
            certain += 1
            assert key in fixes["fixed"]
            assert np.abs(fixed - item["clean"]).max() < 0.5, key
            rows, cols = image_shape(out / key)
            np.testing.assert_allclose(csv[name] * [cols, rows], item["clean"], atol=0.5)
        elif fault is None or fault.kind not in ("mat_csv_mismatch", "angles_mismatch"):
            # uncertain faults are listed as left and the landmarks kept as they were
            np.testing.assert_array_equal(fixed, stored)
            if fault is not None:
                assert key in fixes["left"]
    assert certain >= 9
    # the corrected copy has none of the fixed faults left
    again = check_dataset(out).to_json()
    assert not any(
        f["fix"] for faults in again.values() for f in faults if f["kind"] != "angles_mismatch"
    )


def test_json_report_and_exit_status(faulty_sets, tmp_path, capsys):
    root, truth = faulty_sets["other"]
    before = tree_digest(root)
    report = tmp_path / "faults.json"
    assert main(["check", str(root), "--json", str(report)]) == 0
    assert tree_digest(root) == before
    data = json.loads(report.read_text())
    assert set(data) <= set(truth)
    for faults in data.values():
        for fault in faults:
            assert list(fault) == ["vertebra", "corner", "kind", "reason", "fix"]
            assert fault["vertebra"] is None or 1 <= fault["vertebra"] <= 17
            assert fault["corner"] in (None, "TL", "TR", "BL", "BR")
            assert fault["kind"] in KINDS and isinstance(fault["fix"], bool)
            assert "\n" not in fault["reason"]
    printed = capsys.readouterr().out
    assert "worst images:" in printed and "vertebra_order" in printed
    # the worst image is printed first
    worst = max(data, key=lambda k: len(data[k]))
    shown = [k for k in data if k in printed and len(data[k]) < len(data[worst])]
    assert shown and printed.index(worst) < min(printed.index(k) for k in shown)


def test_clean_set_exits_0(tmp_path, capsys):
    write_aasce_layout(tmp_path / "set", n_train=2, n_test=1)
    assert main(["check", str(tmp_path / "set")]) == 0
    assert "0 faults in 0 images" in capsys.readouterr().out


def test_out_inside_the_data_set_is_refused_before_writing(tmp_path, capsys):
    root = write_aasce_layout(tmp_path / "set", n_train=2, n_test=0)
    before = tree_digest(root)
    for out in (root, root / "fixed", root / "labels" / "copy"):
        assert main(["check", str(root), "--fix", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        where = "is the data set folder" if out == root else "is inside the data set folder"
        assert len(err.strip().splitlines()) == 1 and where in err
    # a copy whose labels/ folder would be the data set itself
    split = root / "data" / "training"
    assert main(["check", str(split), "--fix", "--out", str(root.parent)]) == 2
    assert tree_digest(root) == before
    assert main(["check", str(root), "--json", str(root / "labels" / "faults.json")]) == 2
    assert "inside the data set" in capsys.readouterr().err
    assert tree_digest(root) == before
    assert main(["check", str(root), "--fix"]) == 2
    assert "--fix and --out" in capsys.readouterr().err


def test_unreadable_input_exits_2(tmp_path, capsys):
    root = write_aasce_layout(tmp_path / "set", n_train=2, n_test=0)
    mat = next((root / "labels" / "training").glob("*.mat"))
    truncate_file(mat, 0.3)
    assert main(["check", str(root)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and mat.name in err
    assert main(["check", str(tmp_path / "missing")]) == 2


def test_last_vertebra_listed_first_is_fixed_exactly():
    clean = synthetic_landmarks(600, 240, 0.12)
    rolled = np.roll(clean.reshape(17, 4, 2), 1, axis=0).reshape(68, 2)
    faults = find_faults(rolled, (600, 240))
    assert [(f.kind, f.vertebra, f.fix) for f in faults] == [("vertebra_order", 1, True)]
    assert "last vertebra" in faults[0].reason
    np.testing.assert_array_equal(apply_fixes(rolled, faults), clean)


def test_mat_and_csv_disagreeing_and_wrong_angles(tmp_path):
    root = write_aasce_layout(tmp_path / "set", n_train=3, n_test=0, size=(480, 192))
    labels = root / "labels" / "training"
    rows = (labels / "landmarks.csv").read_text().splitlines()
    values = rows[1].split(",")
    values[4 * 6 + 1] = str(float(values[4 * 6 + 1]) + 5 / 192)  # vertebra 7, TR, 5 px right
    rows[1] = ",".join(values)
    (labels / "landmarks.csv").write_text("\n".join(rows) + "\n")
    angles = (labels / "angles.csv").read_text().splitlines()
    angles[2] = ",".join(
        str(float(a) + (12 if i == 0 else 0)) for i, a in enumerate(angles[2].split(","))
    )
    (labels / "angles.csv").write_text("\n".join(angles) + "\n")
    report = check_dataset(root).to_json()
    names = (labels / "filenames.csv").read_text().splitlines()
    first = report[f"data/training/{names[1]}"]
    assert [(f["kind"], f["vertebra"], f["corner"]) for f in first] == [
        ("mat_csv_mismatch", 7, "TR")
    ]
    second = report[f"data/training/{names[2]}"]
    assert [f["kind"] for f in second] == ["angles_mismatch"]
    assert "PT" in second[0]["reason"] and not second[0]["fix"]


_KILLED_REVIEW = """
import os, signal, sys
import numpy as np
from napari_spine_seg.review.landmark_review import LandmarkReview

review = LandmarkReview(sys.argv[1], sys.argv[2])
landmarks = review.current.landmarks.copy()
landmarks[5] += (3.0, -2.0)
review.save(landmarks)
review.go(1)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_review_resumes_with_its_edits(faulty_sets, tmp_path):
    import subprocess

    from napari_spine_seg.review.landmark_review import LandmarkReview

    root, _ = faulty_sets["wedged"]
    before = tree_digest(root)
    folder = tmp_path / "review"
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_REVIEW, str(root), str(folder)], timeout=120
    )
    assert result.returncode == -9
    review = LandmarkReview(root, folder)
    assert review.index == 1
    first = review.image(review.queue[0])
    assert review.is_edited(first.key) and first.reviewed
    stored = read_landmarks_mat(root / "labels" / "training" / f"{first.name}.mat")
    np.testing.assert_allclose(first.landmarks[5], stored[5] + (3.0, -2.0))
    np.testing.assert_array_equal(np.delete(first.landmarks, 5, axis=0), np.delete(stored, 5, 0))
    assert tree_digest(root) == before
    # a review folder inside the data set is refused
    with pytest.raises(SpineSegError, match="inside the data set"):
        LandmarkReview(root, root / "review")


def test_a_set_with_only_landmarks_csv_is_checked_and_copied_with_mat_files(tmp_path):
    root = write_aasce_layout(tmp_path / "set", n_train=3, n_test=0, size=(480, 192))
    labels = root / "labels" / "training"
    for mat in labels.glob("*.mat"):
        mat.unlink()
    names = (labels / "filenames.csv").read_text().splitlines()
    rows = (labels / "landmarks.csv").read_text().splitlines()
    values = np.array(rows[2].split(","), dtype=float)
    # the last vertebra listed first, in the CSV's 68 x's then 68 y's
    xy = np.stack([values[:68], values[68:]], axis=1).reshape(17, 4, 2)
    xy = np.roll(xy, 1, axis=0).reshape(68, 2)
    rows[2] = ",".join(str(float(v)) for v in np.concatenate([xy[:, 0], xy[:, 1]]))
    (labels / "landmarks.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "fixed"
    assert main(["check", str(root), "--fix", "--out", str(out)]) == 0
    fixes = json.loads((out / "fixes.json").read_text())
    key = f"data/training/{names[2]}"
    assert [f["kind"] for f in fixes["fixed"][key]][0] == "vertebra_order"
    fixed = read_landmarks_mat(out / "labels" / "training" / f"{names[2]}.mat")
    expected = synthetic_landmarks(480, 192, (-1) ** 2 * (0.06 + 0.02 * 2))
    np.testing.assert_allclose(fixed, expected, atol=1e-6)
    assert sorted(p.name for p in (out / "labels" / "training").glob("*.mat")) == sorted(
        f"{n}.mat" for n in names
    )
