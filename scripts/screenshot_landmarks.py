"""Make docs/screenshots/landmark-review*.png: a landmark fault found, then fixed, in napari.

Writes a small phantom set with faults injected (``benchmarks/landmark_fault_sets.py``),
opens it in the Landmark review widget, goes to the image whose last vertebra is listed
first and takes a screenshot; applies the fix with its key and takes another. napari
needs an OpenGL context, so run it under Xvfb::

    xvfb-run -a python scripts/screenshot_landmarks.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Write the screenshots; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="spine-seg-landmarks-") as work:
        return run(args.out, Path(work))


def run(out: Path, work: Path) -> int:
    import napari
    import napari._qt.qt_main_window as qt_main_window
    import numpy as np

    qt_main_window.SHOW_QT_WARNING = False
    sys.path.insert(0, str(REPO / "benchmarks"))
    import landmark_fault_sets as sets
    from napari_spine_seg._napari._widgets.landmark_widget import LandmarkWidget
    from napari_spine_seg.atomic import atomic_output

    app = napari.qt.get_qapp()
    kinds = ("top_bottom_swapped", "misplaced_corner", "vertebra_order")
    rng_seed = 4
    truth = sets.write_set(work / "set", 6, seed=rng_seed, source="phantom", kinds=kinds)
    # the image whose last vertebra is listed first
    key = next(
        k
        for k, v in truth.items()
        if v["fault"].kind == "vertebra_order" and v["fault"].vertebra == 0
    )

    def settle(seconds: float = 0.5) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def shoot(name: str) -> None:
        settle()
        path = out / f"{name}.png"
        with atomic_output(path) as tmp_png:
            viewer.screenshot(str(tmp_png), canvas_only=False)
        print(f"wrote {path}")

    viewer = napari.Viewer(title="napari-spine-seg: Landmark review")
    viewer.window.resize(1400, 900)
    widget = LandmarkWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Landmark review", area="right")
    widget.dataset_edit.value = work / "set"
    widget.folder_edit.value = work / "review"
    widget.open_button.clicked()
    while widget.review.current.key != key:
        widget.next_fault()
    fault = next(i for i, f in enumerate(widget.faults) if f.kind == "vertebra_order")
    widget.fault_box.value = fault
    viewer.reset_view()
    shoot("landmark-review")
    widget.apply_fix()
    viewer.layers["landmarks"].selected_data = set()
    fixed = widget.current_landmarks()
    assert np.abs(fixed - truth[key]["clean"]).max() < 0.5
    shoot("landmark-review-fixed")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
