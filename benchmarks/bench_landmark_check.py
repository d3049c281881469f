"""Measure ``spine-seg check`` on larger phantom sets with every fault kind injected.

For each source of spines (``benchmarks/landmark_fault_sets.py``: the project's
phantoms, the second generator, wedged phantoms) it writes a clean set and a set with
every kind injected into as many images, runs the check on the files
(:func:`napari_spine_seg.data.landmark_check.check_dataset`) and the corrected copy
(:func:`~napari_spine_seg.data.landmark_check.write_fixed_copy`), and writes JSON:

* ``found``: per kind, the share of injected faults reported at the right image and
  vertebra (±1; the image for ``angles_mismatch``), and ``named`` the share reported under
  their own kind;
* ``false_alarms_per_clean_image`` on the clean set (and ``main_curve_clean_deg``, its
  spines' largest Cobb angles), and ``stray_faults_per_faulty_image``: faults reported
  on a faulty image away from the injected vertebra (other than angle disagreements);
* ``fix``: for the faults with a certain fix, the share restored to within 0.5 px and the
  largest error; and how many images with an uncertain fault were changed all the same;
* ``misplaced_sweep``: the share of single corners found when moved by a given fraction
  of the vertebra's height (in memory, no files).

Run ``python benchmarks/bench_landmark_check.py OUT.json [--clean 200] [--per-kind 20]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import landmark_fault_sets as sets
from landmark_fault_sets import LANDMARK_KINDS
from napari_spine_seg.data.aasce import read_landmarks_mat
from napari_spine_seg.data.landmark_check import check_dataset, write_fixed_copy
from napari_spine_seg.spine.landmark_faults import KINDS, find_faults

SWEEP = (0.2, 0.3, 0.4, 0.5, 0.75, 1.0)


def _hit(fault, reported: list[dict]) -> tuple[bool, bool]:
    if fault.kind == "angles_mismatch":
        named = any(f["kind"] == fault.kind for f in reported)
        return named, named
    near = [f for f in reported if f["vertebra"] and abs(f["vertebra"] - 1 - fault.vertebra) <= 1]
    return bool(near), any(f["kind"] == fault.kind for f in near)


def measure_source(source: str, n_clean: int, per_kind: int, seed: int, work: Path) -> dict:
    """Detection, false alarms and fix accuracy on one source's sets."""
    clean_root, faulty_root, out = work / "clean", work / "faulty", work / "fixed"
    sets.write_set(clean_root, n_clean, seed=seed, source=source)
    kinds = KINDS * per_kind
    truth = sets.write_set(faulty_root, len(kinds), seed=seed + 1, source=source, kinds=kinds)
    start = time.perf_counter()
    clean = check_dataset(clean_root)
    seconds = time.perf_counter() - start
    alarms = Counter(f.kind for image in clean.images for f in image.faults)
    pt = [image.angles[0] for image in clean.images]
    faulty = check_dataset(faulty_root)
    report = faulty.to_json()
    found, named = Counter(), Counter()
    stray = 0
    for key, item in truth.items():
        fault = item["fault"]
        hit, right_kind = _hit(fault, report.get(key, []))
        found[fault.kind] += hit
        named[fault.kind] += right_kind
        if fault.kind != "angles_mismatch":  # the angles of a faulty spine differ anyway
            stray += sum(
                f["kind"] != "angles_mismatch"
                and not (f["vertebra"] and abs(f["vertebra"] - 1 - fault.vertebra) <= 1)
                for f in report.get(key, [])
            )
    write_fixed_copy(faulty, out)
    errors, wrongly_changed = [], 0
    for key, item in truth.items():
        name = f"{Path(key).name}.mat"
        fixed = read_landmarks_mat(out / "labels" / "training" / name)
        if item["fault"].certain:
            errors.append(float(np.abs(fixed - item["clean"]).max()))
        elif item["fault"].kind in LANDMARK_KINDS:
            stored = read_landmarks_mat(faulty_root / "labels" / "training" / name)
            wrongly_changed += not np.array_equal(fixed, stored)
    errors = np.array(errors)
    return {
        "clean_images": n_clean,
        "faulty_images": len(kinds),
        "found": {k: found[k] / per_kind for k in KINDS},
        "named": {k: named[k] / per_kind for k in KINDS},
        "found_all": sum(found.values()) / len(kinds),
        "false_alarms_per_clean_image": sum(alarms.values()) / n_clean,
        "false_alarms_by_kind": dict(alarms),
        "stray_faults_per_faulty_image": stray / len(kinds),
        "main_curve_clean_deg": {
            "median": float(np.median(pt)),
            "max": float(np.max(pt)),
        },
        "fix": {
            "certain_faults": int(errors.size),
            "within_0.5px": float((errors < 0.5).mean()) if errors.size else None,
            "max_error_px": float(errors.max()) if errors.size else None,
            "uncertain_faults_changed": wrongly_changed,
        },
        "check_seconds_per_image": seconds / n_clean,
    }


def misplaced_sweep(n: int, seed: int) -> dict:
    """Share of single misplaced corners found, by displacement (fraction of height)."""
    rng = np.random.default_rng(seed)
    out = {}
    for fraction in SWEEP:
        hits = 0
        for j in range(n):
            clean, shape, _ = sets.clean_spine(rng, sets.SOURCES[j % len(sets.SOURCES)])
            g = clean.reshape(17, 4, 2).copy()
            i, k = int(rng.integers(0, 17)), int(rng.integers(0, 4))
            height = np.linalg.norm((g[i, 2] + g[i, 3] - g[i, 0] - g[i, 1]) / 2)
            angle = rng.uniform(0, 2 * np.pi)
            g[i, k] += fraction * height * np.array([np.cos(angle), np.sin(angle)])
            faults = find_faults(g.reshape(68, 2), shape)
            hits += any(f.vertebra and abs(f.vertebra - 1 - i) <= 1 for f in faults)
        out[str(fraction)] = hits / n
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="JSON file to write")
    parser.add_argument("--clean", type=int, default=200, help="clean images per source")
    parser.add_argument("--per-kind", type=int, default=20, help="injected faults per kind")
    parser.add_argument("--sweep", type=int, default=300, help="spines per sweep step")
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args(argv)
    result = {"sources": {}}
    for n, source in enumerate(sets.SOURCES):
        with tempfile.TemporaryDirectory() as tmp:
            result["sources"][source] = measure_source(
                source, args.clean, args.per_kind, args.seed + 10 * n, Path(tmp)
            )
    result["misplaced_sweep"] = misplaced_sweep(args.sweep, args.seed)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
