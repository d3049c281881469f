"""The review session: queue, statuses, autosave, resume (also after SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_spine_seg.data.masks import is_predicted_trimap, read_trimap_png
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.review.priority import Priority, review_priority, worst_first
from napari_spine_seg.review.session import (
    ACCEPTED,
    CORRECTED,
    DRAFT,
    STATE_FILE,
    UNREVIEWED,
    ReviewSession,
)
from napari_spine_seg.trimap import trimap_from_mask

SHAPE = (128, 64)
NAMES = ("case 01 AP.jpg", "case 02 AP.jpg", "case 03 AP.jpg")


def column_trimap(shape=SHAPE, gap_rows=None):
    """A straight spine column, optionally broken between `gap_rows` (start, stop)."""
    mask = np.zeros(shape, dtype=bool)
    mask[8:-8, 24:40] = True
    if gap_rows is not None:
        mask[gap_rows[0] : gap_rows[1]] = False
    return trimap_from_mask(mask, border=2)


def make_dataset(root: Path, names=NAMES, *, labels=True) -> Path:
    """A folder of JPEG X-rays with trimap PNGs in ``trimaps/``."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        pixels = rng.integers(0, 255, SHAPE, dtype=np.uint8)
        Image.fromarray(pixels).save(root / name, quality=90)
        if labels:
            (root / "trimaps").mkdir(exist_ok=True)
            stem = Path(name).stem
            Image.fromarray(column_trimap()).save(root / "trimaps" / f"{stem}.png")
    return root


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "data set")


def test_new_session_is_file_order_unreviewed_and_saved(dataset, tmp_path):
    session = ReviewSession.open(tmp_path / "review", dataset)
    assert session.keys == list(NAMES)
    assert session.current_key == NAMES[0]
    assert session.counts() == {UNREVIEWED: 3, DRAFT: 0, ACCEPTED: 0, CORRECTED: 0}
    state = json.loads((tmp_path / "review" / STATE_FILE).read_text())
    assert state["current"] == NAMES[0]
    assert Path(state["dataset"]) == dataset.resolve()


def test_edit_accept_and_resume(dataset, tmp_path):
    folder = tmp_path / "review"
    session = ReviewSession.open(folder, dataset)
    session.next()
    edited = column_trimap()
    edited[60:70, 24:40] = 0  # the eraser: background
    assert session.save_edit(session.current_key, edited) is True
    assert session.save_edit(session.current_key, edited) is False  # unchanged: no write
    session.accept(NAMES[2], column_trimap())

    again = ReviewSession.open(folder)  # the state names the dataset
    assert again.current_key == NAMES[1]
    assert again.status(NAMES[0]) == UNREVIEWED
    assert again.status() == DRAFT  # painted, not yet accepted
    assert again.status(NAMES[2]) == ACCEPTED
    saved = again.reviewed_trimap()  # a draft is shown again as it was left
    assert saved.shape == SHAPE
    assert np.all(saved[60:70, 24:40] == 2)  # 0 written as background
    assert np.array_equal(read_trimap_png(again.trimap_path(NAMES[2])), column_trimap())
    assert again.reviewed_keys() == [NAMES[2]]  # a draft is neither exported nor trained on
    assert again.reviewed_keys([DRAFT]) == [NAMES[1]]
    again.start_edit(NAMES[1], saved)
    assert again.accept(NAMES[1], saved) == CORRECTED  # accepted after painting
    assert again.reviewed_keys() == [NAMES[1], NAMES[2]]
    assert [p[0].name for p in again.training_pairs()] == [NAMES[1], NAMES[2]]


def test_accept_keeps_a_correction_and_reset_forgets(dataset, tmp_path):
    session = ReviewSession.open(tmp_path / "review", dataset)
    key = session.current_key
    edited = column_trimap()
    edited[0:4, 0:4] = 1
    session.save_edit(key, edited)
    assert session.accept(key, edited) == CORRECTED
    session.reset(key)
    assert session.status(key) == UNREVIEWED
    assert not session.trimap_path(key).exists()
    assert session.reviewed_trimap(key) is None
    assert ReviewSession.open(tmp_path / "review").status(key) == UNREVIEWED


def test_showing_an_image_is_not_an_edit(dataset, tmp_path):
    session = ReviewSession.open(tmp_path / "review", dataset)
    predicted = column_trimap()
    session.start_edit(NAMES[0], predicted)
    assert session.save_edit(NAMES[0], predicted.copy()) is False  # the autosave timer
    assert session.status(NAMES[0]) == UNREVIEWED
    assert session.accept(NAMES[0], predicted) == ACCEPTED
    assert session.save_edit(NAMES[0], predicted) is False
    session.start_edit(NAMES[1], predicted)
    edited = predicted.copy()
    edited[5, 5] = 1
    assert session.accept(NAMES[1], edited) == CORRECTED  # edited before any autosave
    assert session.save_edit(NAMES[1], edited) is False
    edited[6, 6] = 1
    assert session.save_edit(NAMES[0], edited) is True  # an accepted image edited later
    assert session.counts() == {UNREVIEWED: 1, DRAFT: 1, ACCEPTED: 0, CORRECTED: 1}
    assert session.accept(NAMES[0], edited) == CORRECTED


def test_a_review_of_a_prediction_keeps_its_origin_across_sessions(dataset, tmp_path):
    session = ReviewSession.open(tmp_path / "review", dataset)
    shown = column_trimap()
    session.start_edit(NAMES[0], shown, predicted=True)  # a network's prediction
    session.start_edit(NAMES[1], shown)  # the data set's own trimap
    edited = shown.copy()
    edited[5, 5] = 1
    session.save_edit(NAMES[0], edited)
    session.accept(NAMES[1], shown)
    assert is_predicted_trimap(session.trimap_path(NAMES[0]))
    assert not is_predicted_trimap(session.trimap_path(NAMES[1]))
    again = ReviewSession.open(tmp_path / "review")
    assert again.began_as_prediction(NAMES[0]) and not again.began_as_prediction(NAMES[1])
    assert not again.began_as_prediction(NAMES[2])  # not reviewed at all
    # reopened and edited again, the saved review of a prediction stays marked
    again.start_edit(NAMES[0], edited, predicted=again.began_as_prediction(NAMES[0]))
    edited[6, 6] = 1
    assert again.save_edit(NAMES[0], edited) is True
    assert is_predicted_trimap(again.trimap_path(NAMES[0]))
    again.reset(NAMES[0])
    assert not again.began_as_prediction(NAMES[0])


def test_navigation_stays_in_bounds_and_finds_unreviewed(dataset, tmp_path):
    session = ReviewSession.open(tmp_path / "review", dataset)
    assert session.previous() == NAMES[0]
    assert session.next() == NAMES[1]
    assert session.next() == NAMES[2]
    assert session.next() == NAMES[2]
    session.accept(NAMES[0], column_trimap())
    assert session.next_unreviewed() == NAMES[1]  # wraps round past the accepted one
    for key in NAMES[1:]:
        session.accept(key, column_trimap())
    assert session.next_unreviewed() is None
    with pytest.raises(SpineSegError, match="no image at position 4 of 3"):
        session.go_to(3)
    with pytest.raises(SpineSegError, match="has no image 'nope.jpg'"):
        session.go_to("nope.jpg")


def test_bad_trimaps_are_refused(dataset, tmp_path):
    session = ReviewSession.open(tmp_path / "review", dataset)
    with pytest.raises(SpineSegError, match="is 128 x 64 but its trimap is 64 x 64"):
        session.save_edit(NAMES[0], np.full((64, 64), 2, np.uint8))
    bad = column_trimap()
    bad[0, 0] = 7
    with pytest.raises(SpineSegError, match="found 7"):
        session.accept(NAMES[0], bad)
    assert session.status(NAMES[0]) == UNREVIEWED


def test_trimap_written_before_a_kill_counts_as_a_draft(dataset, tmp_path):
    folder = tmp_path / "review"
    session = ReviewSession.open(folder, dataset)
    # the trimap reached the disk, the state update did not
    session.trimap_path(NAMES[1]).parent.mkdir(parents=True)
    Image.fromarray(column_trimap()).save(session.trimap_path(NAMES[1]))
    assert ReviewSession.open(folder).status(NAMES[1]) == DRAFT


def test_state_errors_are_one_line(dataset, tmp_path):
    with pytest.raises(SpineSegError, match="has no review state; give the dataset"):
        ReviewSession.open(tmp_path / "empty")
    ReviewSession.open(tmp_path / "review", dataset)
    other = make_dataset(tmp_path / "other")
    with pytest.raises(SpineSegError, match=r"review\.json: is the review of .*data set, not of"):
        ReviewSession.open(tmp_path / "review", other)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / STATE_FILE).write_text("{not json")
    with pytest.raises(SpineSegError, match="is not a readable review state"):
        ReviewSession.open(tmp_path / "junk", dataset)
    (tmp_path / "junk" / STATE_FILE).write_text('{"format": "something else"}')
    with pytest.raises(SpineSegError, match="is not a napari-spine-seg review state"):
        ReviewSession.open(tmp_path / "junk", dataset)
    blocker = tmp_path / "a file"
    blocker.write_text("")
    with pytest.raises(SpineSegError, match="a file"):
        ReviewSession.open(blocker / "review", dataset)


def test_images_without_labels_can_be_reviewed(tmp_path):
    root = make_dataset(tmp_path / "plain", labels=False)
    session = ReviewSession.open(tmp_path / "review", root)
    assert len(session) == 3
    session.save_edit(session.current_key, column_trimap())
    assert session.status() == DRAFT
    assert session.accept(session.current_key, column_trimap()) == CORRECTED


def test_worst_first_orders_by_gaps_then_uncertainty():
    assert worst_first(
        "abcd", {"a": Priority(0, 0.9), "b": Priority(2, 0.1), "c": Priority(2, 0.3)}
    ) == ["c", "b", "a", "d"]


def test_review_priority_counts_a_break_and_uncertainty():
    whole = review_priority(column_trimap(), np.where(column_trimap() == 1, 1.0, 0.0))
    broken = review_priority(column_trimap(gap_rows=(50, 70)))
    assert whole == Priority(0, 0.0)
    assert broken.gaps >= 1
    unsure = review_priority(column_trimap(), np.where(column_trimap() == 1, 0.6, 0.0))
    assert unsure.uncertainty == pytest.approx(0.8)


def test_order_is_kept_across_resume(dataset, tmp_path):
    session = ReviewSession.open(tmp_path / "review", dataset)
    session.go_to(NAMES[1])
    priorities = {
        NAMES[0]: Priority(0, 0.1),
        NAMES[1]: Priority(1, 0.0),
        NAMES[2]: Priority(3, 0.0),
    }
    assert session.set_order("worst", priorities) == [NAMES[2], NAMES[1], NAMES[0]]
    assert session.current_key == NAMES[1]
    again = ReviewSession.open(tmp_path / "review")
    assert (again.order, again.keys, again.index) == ("worst", [NAMES[2], NAMES[1], NAMES[0]], 1)
    with pytest.raises(SpineSegError, match="needs each image's predicted gaps"):
        again.set_order("worst")
    assert again.set_order("file") == list(NAMES)


_EDITOR = textwrap.dedent(
    """
    import sys, numpy as np
    from napari_spine_seg.review.session import ReviewSession
    from napari_spine_seg.trimap import trimap_from_mask
    mask = np.zeros((128, 64), bool); mask[8:-8, 24:40] = True
    trimap = trimap_from_mask(mask, border=2)
    session = ReviewSession.open(sys.argv[1], sys.argv[2])
    session.go_to(2)
    trimap[20:30, 24:40] = 0
    session.save_edit(session.current_key, trimap)
    print("saved", flush=True)
    i = 0
    while True:  # keep autosaving stroke after stroke until killed
        i += 1
        stroke = trimap.copy(); stroke[40 + i % 40, 0] = 1
        session.save_edit(session.current_key, stroke)
    """
)


def test_resume_after_sigkill_mid_review(dataset, tmp_path):
    folder = tmp_path / "review"
    proc = subprocess.Popen(
        [sys.executable, "-c", _EDITOR, os.fspath(folder), os.fspath(dataset)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "saved"
        time.sleep(0.5)  # killed in the middle of the autosave loop
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    session = ReviewSession.open(folder)
    assert session.current_key == NAMES[2]
    assert session.status() == DRAFT
    trimap = session.reviewed_trimap()
    expected = column_trimap()
    expected[20:30, 24:40] = 2
    assert np.array_equal(trimap[:, 1:], expected[:, 1:])  # the edit survived, whole
    leftovers = [p.name for p in (folder / "trimaps").iterdir() if p.name != "case 03 AP.png"]
    assert leftovers == []  # a half-written temporary file is cleared on opening


# -- the state names the exact data set and order --------------------------------------------


def make_aasce(root: Path, n_train: int = 3, n_test: int = 2) -> Path:
    """An AASCE root with a training and a test split of JPEG X-rays and landmark files."""
    from napari_spine_seg.data.aasce import write_landmarks_mat
    from napari_spine_seg.data.phantom import make_phantom

    for split, n in (("training", n_train), ("test", n_test)):
        (root / "data" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            ph = make_phantom(np.random.default_rng(i), height=SHAPE[0], width=SHAPE[1])
            name = f"ph {split} {i}.jpg"
            Image.fromarray(ph.image).save(root / "data" / split / name, quality=95)
            write_landmarks_mat(root / "labels" / split / f"{name}.mat", ph.landmarks)
    return root


def test_a_split_review_reopened_from_its_folder_is_that_split_in_its_saved_order(tmp_path):
    root = make_aasce(tmp_path / "aasce")
    folder = tmp_path / "review"
    test_split = root / "data" / "test"
    with ReviewSession.open(folder, test_split) as session:
        assert len(session) == 2
        keys = ["test/ph test 1.jpg", "test/ph test 0.jpg"]
        why = {keys[0]: Priority(3, 0.25, breaks=2, low_confidence=0.12), keys[1]: Priority(0, 0.1)}
        session.set_order("worst", why)
        assert session.keys == keys
        session.accept(keys[1], column_trimap())
    state_file = folder / STATE_FILE
    state = json.loads(state_file.read_text())
    assert Path(state["dataset_path"]) == test_split.resolve()
    assert state["order"] == "worst" and state["queue"] == keys
    before = (state_file.read_bytes(), state_file.stat().st_mtime_ns)

    with ReviewSession.open(folder) as again:  # the folder alone
        assert again.resumed
        assert len(again) == 2 and again.keys == keys and again.order == "worst"
        assert again.location == test_split.resolve()
        assert again.status(keys[1]) == ACCEPTED
        assert again.why(keys[0]) == (
            "ranked 1 of 2: 3 gaps (2 breaks), 12 % of rows low-confidence, uncertainty 0.25"
        )
    with ReviewSession.open(folder, test_split) as again:  # the same split, named again
        assert again.keys == keys
    # opening writes nothing back
    assert (state_file.read_bytes(), state_file.stat().st_mtime_ns) == before


def test_another_split_or_data_set_is_refused_with_one_line_naming_both(tmp_path):
    root = make_aasce(tmp_path / "aasce")
    folder = tmp_path / "review"
    ReviewSession.open(folder, root / "data" / "test").close()
    before = (folder / STATE_FILE).read_bytes()
    test_split = (root / "data" / "test").resolve()
    for other in (root / "data" / "training", root, make_dataset(tmp_path / "other")):
        with pytest.raises(SpineSegError) as caught:
            ReviewSession.open(folder, other)
        message = str(caught.value)
        assert "\n" not in message
        assert f"is the review of {test_split}, not of " in message
        assert message.endswith(str(Path(other).resolve()))
    assert (folder / STATE_FILE).read_bytes() == before


def test_a_whole_root_review_reopens_as_the_whole_root(tmp_path):
    root = make_aasce(tmp_path / "aasce")
    ReviewSession.open(tmp_path / "review", root).close()
    with ReviewSession.open(tmp_path / "review") as again:
        assert len(again) == 5 and again.location == root.resolve()
    with pytest.raises(SpineSegError, match="not of .*test$"):
        ReviewSession.open(tmp_path / "review", root / "data" / "test")


def test_review_priority_says_why(tmp_path):
    broken = column_trimap(gap_rows=(50, 60))
    probability = np.where(broken == 1, 0.9, 0.02)
    probability[70:90, 24:40] = 0.3  # a low-confidence stretch of the column
    priority = review_priority(broken, probability)
    assert priority.breaks == 1 and priority.gaps >= 2
    assert 0 < priority.low_confidence <= 20 / SHAPE[0] + 1e-9
    assert Priority.from_dict(json.loads(json.dumps(priority.to_dict()))) == priority
    assert priority.describe().startswith(f"{priority.gaps} gaps (1 break), ")
