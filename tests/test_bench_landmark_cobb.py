"""The landmark-Cobb benchmark end to end on small sets, and the second generator's own tilt."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_landmark_cobb  # noqa: E402
import other_generator  # noqa: E402
from napari_spine_seg.data.aasce import read_landmarks_mat  # noqa: E402
from napari_spine_seg.data.dataset import open_dataset  # noqa: E402


def _own_tilts(landmarks):
    """Each vertebra's side-to-side tilt minus the tilt of the line through the centres."""
    g = landmarks.reshape(17, 4, 2)
    side = (g[:, 1] + g[:, 3] - g[:, 0] - g[:, 2]) / 2
    tilt = np.degrees(np.arctan2(side[:, 1], side[:, 0]))
    centres = g.mean(axis=1)
    slope = np.gradient(centres[:, 0], centres[:, 1])
    return tilt - np.degrees(np.arctan(slope))


def test_vertebra_tilt_option_tilts_each_vertebra_a_little_on_its_own(tmp_path):
    plain = other_generator.write_other_set(tmp_path / "a", n_train=0, n_test=3, seed=11)
    tilted = other_generator.write_other_set(
        tmp_path / "b", n_train=0, n_test=3, seed=11, vertebra_tilt=1.0
    )
    spread = {}
    for name, root in (("plain", plain), ("tilted", tilted)):
        own = [
            _own_tilts(read_landmarks_mat(s.landmarks_path))
            for s in open_dataset(root / "data" / "test")
        ]
        spread[name] = float(np.std(np.concatenate(own)))
    # N(0, 1 deg) of its own (plus the centre line's discretisation), against the default
    # wedge of about +-4 deg
    assert 0.75 < spread["tilted"] < 1.3 < 2.0 < spread["plain"]


def test_benchmark_on_noise_writes_json_with_both_measurements(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--n", "3", "--noise", "0", "2", "--repeats", "1", "--other-tilts", "1", "--fit"]
    assert bench_landmark_cobb.main([*argv, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 6  # 2 sets x (2 noise levels + the fit)
    fits = [row for row in rows if "noise_px" not in row]
    assert len(fits) == 2
    for row in fits:  # sub-pixel corners from whole edges of perfect body masks
        lm = row["landmarks"]
        assert lm["found_rate"] == 1.0 and 0.0 < lm["corner_px"] < 0.6 and lm["mae"] < 1.0
    for row in rows:
        if row in fits:
            continue
        lm, tri = row["landmarks"], row["trimaps"]
        assert lm["found_rate"] == 1.0 and tri["predicted"]["mae"] is not None
        if row["noise_px"] == 0:
            # exact landmarks: the reference itself; the trimaps: the method's floor
            assert lm["corner_px"] == 0.0 and lm["mae"] < 0.01
            assert tri["auto"]["mae"] > 0.05
        else:  # 2 px per axis: a mean corner distance of 2 * sqrt(pi / 2) = 2.5 px
            assert 1.8 < lm["corner_px"] < 3.2 and lm["mae"] > 0.1
    assert "noise 2 px: landmarks" in capsys.readouterr().out
