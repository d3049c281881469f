"""The Landmark review widget in a real viewer: worst image first, a dragged corner is
checked again and autosaved, a fix is applied with one key, a new widget resumes from
the review folder, and the export is the corrected set ``spine-seg check --fix`` writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import landmark_fault_sets as sets
from napari_spine_seg.data.aasce import read_landmarks_mat
from napari_spine_seg.trimap import rowcol_to_xy, trimap_from_landmarks, xy_to_rowcol

pytestmark = pytest.mark.gui

KINDS = ("vertebra_order", "misplaced_corner", "top_bottom_swapped")


def _widget(viewer):
    from napari_spine_seg._napari._widgets.landmark_widget import LandmarkWidget

    widget = LandmarkWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return widget


def points_shape(viewer) -> tuple[int, int]:
    return viewer.layers["X-ray"].data.shape[:2]


def _digest(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def faulty_set(tmp_path):
    root = tmp_path / "set"
    truth = sets.write_set(root, 4, seed=21, source="phantom", kinds=KINDS)
    return root, truth


def _open(viewer, root, folder):
    widget = _widget(viewer)
    widget.dataset_edit.value = root
    widget.folder_edit.value = folder
    widget.open_button.clicked()
    return widget


def test_review_drag_fix_resume_export(make_napari_viewer, faulty_set, tmp_path):
    root, truth = faulty_set
    before = _digest(root)
    folder = tmp_path / "review"
    viewer = make_napari_viewer()
    widget = _open(viewer, root, folder)

    # the worst image first, its landmarks as Points with vertebra and corner features
    counts = [len(widget.review.image(k).faults) for k in widget.review.queue]
    assert counts == sorted(counts, reverse=True) and counts[0] >= 1
    points = viewer.layers["landmarks"]
    assert points.data.shape == (68, 2)
    assert list(points.features["vertebra"][:5]) == [1, 1, 1, 1, 2]
    assert list(points.features["corner"][:4]) == ["TL", "TR", "BL", "BR"]
    assert points.features["label"][0] == "T1" and points.features["label"][64] == "L5"
    assert len(viewer.layers["vertebrae"].data) == 17
    assert widget.angles.value.startswith("PT ")

    # go to the image with a misplaced corner and drag that corner back by hand
    key = next(k for k, v in truth.items() if v["fault"].kind == "misplaced_corner")
    widget.review.go(widget.review.queue.index(key))
    widget.show_image()
    points = viewer.layers["landmarks"]  # each image gets its own layers
    assert widget.faults[0].kind == "misplaced_corner"
    fault = widget.faults[0]
    i = 4 * (fault.vertebra - 1) + ["TL", "TR", "BL", "BR"].index(fault.corner)
    outline_before = np.asarray(viewer.layers["vertebrae"].data[fault.vertebra - 1]).copy()
    cobb_before = [np.asarray(d).copy() for d in viewer.layers["Cobb"].data]
    angles_before = widget.angles.value
    data = np.asarray(points.data).copy()
    data[i] = xy_to_rowcol(truth[key]["clean"][i])
    points.data = data
    assert not any(f.kind == "misplaced_corner" for f in widget.faults)
    outline_after = np.asarray(viewer.layers["vertebrae"].data[fault.vertebra - 1])
    assert not np.allclose(outline_before, outline_after)  # the outline followed the corner
    # the Cobb lines were drawn again from the moved corner
    cobb_after = [np.asarray(d) for d in viewer.layers["Cobb"].data]
    moved = len(cobb_after) != len(cobb_before) or any(
        not np.allclose(a, b) for a, b in zip(cobb_after, cobb_before, strict=True)
    )
    assert moved or widget.angles.value != angles_before
    # and the (hidden) trimap is the one the corrected landmarks make
    np.testing.assert_array_equal(
        viewer.layers["trimap"].data,
        trimap_from_landmarks(rowcol_to_xy(np.asarray(points.data)), points_shape(viewer)),
    )
    name = Path(key).name
    saved = folder / "landmarks" / "training" / f"{name}.json"
    assert saved.is_file()
    np.testing.assert_allclose(
        json.loads(saved.read_text())["landmarks"][i], truth[key]["clean"][i]
    )

    # go to the swapped vertebra with the fault keys and fix it with one key
    key2 = next(k for k, v in truth.items() if v["fault"].kind == "top_bottom_swapped")
    while widget.review.current.key != key2:
        widget.next_fault()
    assert widget.faults[widget.fault_box.value].fix
    widget.apply_fix()
    np.testing.assert_allclose(widget.current_landmarks(), truth[key2]["clean"], atol=1e-9)
    assert not any(f.kind == "top_bottom_swapped" for f in widget.faults)

    # a new widget (as after a kill: nothing was closed) resumes at the same image and edits
    viewer2 = make_napari_viewer()
    widget2 = _open(viewer2, root, folder)
    assert widget2.review.current.key == key2
    np.testing.assert_allclose(widget2.current_landmarks(), truth[key2]["clean"], atol=1e-9)
    assert widget2.review.is_edited(key) and widget2.review.is_edited(key2)

    # export: the corrected set, reviewed landmarks in place, certain fixes applied
    out = tmp_path / "export"
    widget2.export_edit.value = out
    widget2.export_button.clicked()
    fixes = json.loads((out / "fixes.json").read_text())
    assert set(fixes["reviewed"]) == {key, key2}
    for k in (key, key2):
        fixed = read_landmarks_mat(out / "labels" / "training" / f"{Path(k).name}.mat")
        assert np.abs(fixed - truth[k]["clean"]).max() < 0.5
    order_key = next(k for k, v in truth.items() if v["fault"].kind == "vertebra_order")
    fixed = read_landmarks_mat(out / "labels" / "training" / f"{Path(order_key).name}.mat")
    assert np.abs(fixed - truth[order_key]["clean"]).max() < 0.5
    assert _digest(root) == before


def test_keys_move_between_faults_and_apply_a_fix(make_napari_viewer, faulty_set, tmp_path):
    root, truth = faulty_set
    viewer = make_napari_viewer()
    widget = _open(viewer, root, tmp_path / "review")
    key = next(k for k, v in truth.items() if v["fault"].kind == "vertebra_order")
    for _ in range(20):  # the 'n' key bound on the landmarks layer
        if widget.review.current.key == key:
            break
        _press(widget, "n")
    assert widget.review.current.key == key
    fault = widget.faults[widget.fault_box.value]
    assert fault.kind == "vertebra_order" and fault.fix
    _press(widget, "f")
    np.testing.assert_allclose(
        rowcol_to_xy(np.asarray(widget.points.data)), truth[key]["clean"], atol=1e-9
    )
    assert not any(f.kind == "vertebra_order" for f in widget.faults)
    # '.' and ',' step through the images
    last = widget.review.index == len(widget.review.queue) - 1
    _press(widget, "," if last else ".")
    assert widget.review.current.key != key
    _press(widget, "." if last else ",")
    assert widget.review.current.key == key


def _press(widget, key: str) -> None:
    """Call what `key` is bound to on the landmarks layer."""
    layer = widget.points
    handler = next(f for k, f in layer.keymap.items() if str(k).lower() == key)
    handler(layer)


def test_review_folder_inside_the_data_set_is_refused(make_napari_viewer, faulty_set):
    root, _ = faulty_set
    before = _digest(root)
    viewer = make_napari_viewer()
    widget = _widget(viewer)
    widget.dataset_edit.value = root
    widget.folder_edit.value = root / "review"
    widget.open_button.clicked()
    assert widget.review is None and "inside the data set" in widget.reason.value
    assert _digest(root) == before


def test_the_fault_list_survives_layers_coming_and_going(make_napari_viewer, faulty_set, tmp_path):
    """napari calls reset_choices on a docked widget whenever a layer is added or removed;
    the fault list must come back as it was, not empty (Apply fix then did nothing)."""
    import numpy as np

    viewer = make_napari_viewer()
    root, _truth = faulty_set
    widget = _open(viewer, root, tmp_path / "review")
    assert widget.faults, "the phantom set has injected faults"
    widget.fault_box.value = 0
    viewer.add_image(np.zeros((8, 8)), name="another layer")
    assert [c for c in widget.fault_box.choices if c is not None] == list(range(len(widget.faults)))
    widget.fault_box.value = 0
    viewer.layers.remove("another layer")
    assert widget.fault_box.value == 0
