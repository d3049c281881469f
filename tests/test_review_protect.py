"""A review never writes into its data set, locks its folder, survives failed saves, and
export and retraining read a snapshot: the review promises of docs/promises.md."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _widget_helpers import tree_checksums
from napari_spine_seg.data.aasce import write_landmarks_mat
from napari_spine_seg.data.masks import read_trimap_png
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.review.export import export_review
from napari_spine_seg.review.lock import LOCK_FILE
from napari_spine_seg.review.protect import default_review_folder
from napari_spine_seg.review.retrain import retraining_dataset
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
REFUSED = r"(is the data set folder|is inside the data set folder)"


def column_trimap(shift=0):
    mask = np.zeros(SHAPE, dtype=bool)
    mask[8:-8, 24 + shift : 40 + shift] = True
    return trimap_from_mask(mask, border=2)


def make_folder_set(root: Path) -> Path:
    """A folder of JPEG X-rays with trimap PNGs in ``trimaps/``."""
    (root / "trimaps").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in NAMES:
        Image.fromarray(rng.integers(0, 255, SHAPE, dtype=np.uint8)).save(root / name)
        Image.fromarray(column_trimap()).save(root / "trimaps" / f"{Path(name).stem}.png")
    return root


def make_aasce(root: Path, n: int = 2) -> Path:
    """A tiny phantom set in the AASCE layout, with training and test splits."""
    for split in ("training", "test"):
        (root / "data" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            ph = make_phantom(np.random.default_rng(i), height=SHAPE[0], width=SHAPE[1])
            name = f"ph {split} {i}.jpg"
            Image.fromarray(ph.image).save(root / "data" / split / name, quality=95)
            write_landmarks_mat(root / "labels" / split / f"{name}.mat", ph.landmarks)
    return root


@pytest.fixture
def folder_set(tmp_path):
    return make_folder_set(tmp_path / "data set")


@pytest.fixture
def aasce(tmp_path):
    return make_aasce(tmp_path / "phantoms")


# -- a review folder or an export inside the data set is refused ---------------------------


def test_review_folder_inside_an_aasce_set_is_refused_before_writing(aasce):
    before = tree_checksums(aasce)
    inside = [
        aasce,
        aasce / "data",
        aasce / "labels",
        aasce / "data" / "training",
        aasce / "labels" / "training",
        aasce / "data" / "training-review",  # the old default for a split folder
        aasce / "review",
        aasce / "labels" / "test" / "new" / "deeper",
    ]
    for dataset in (aasce, aasce / "data" / "training"):
        for folder in inside:
            with pytest.raises(SpineSegError, match=REFUSED) as caught:
                ReviewSession.open(folder, dataset)
            assert "\n" not in str(caught.value)
            assert str(folder) in str(caught.value)
    assert tree_checksums(aasce) == before  # nothing written, no folder made


def test_review_folder_that_is_a_folder_set_or_its_trimaps_is_refused(folder_set):
    before = tree_checksums(folder_set)
    for folder in (folder_set, folder_set / "trimaps", folder_set / "sub" / "review"):
        with pytest.raises(SpineSegError, match=REFUSED):
            ReviewSession.open(folder, folder_set)
    # also through a symbolic link to the data set
    link = folder_set.parent / "link"
    link.symlink_to(folder_set)
    with pytest.raises(SpineSegError, match=REFUSED):
        ReviewSession.open(link / "review", folder_set)
    assert tree_checksums(folder_set) == before


def test_default_review_folder_is_beside_the_data_set(aasce, folder_set):
    assert default_review_folder(aasce) == aasce.with_name("phantoms-review")
    assert default_review_folder(aasce / "data") == aasce.with_name("phantoms-review")
    split = default_review_folder(aasce / "data" / "training")
    assert split == aasce.with_name("phantoms-training-review")
    assert default_review_folder(folder_set) == folder_set.with_name("data set-review")
    before = tree_checksums(aasce)
    for dataset in (aasce, aasce / "data" / "training"):
        session = ReviewSession.open(default_review_folder(dataset), dataset)
        key = session.keys[0]
        session.accept(key, session.sample(key).load_trimap())
        session.close()
    assert tree_checksums(aasce) == before


def test_export_into_the_data_set_is_refused_before_writing(aasce, tmp_path):
    session = ReviewSession.open(tmp_path / "review", aasce)
    key = session.keys[0]
    session.accept(key, session.sample(key).load_trimap())
    before = tree_checksums(aasce)
    for out in (
        aasce,
        aasce / "data",
        aasce / "labels",
        aasce / "data" / "training",
        aasce / "labels" / "test",
        aasce / "exports",
    ):
        with pytest.raises(SpineSegError, match=REFUSED):
            export_review(session, out, colour=True, overlay=True)
    assert tree_checksums(aasce) == before
    assert [p.name for p in export_review(session, tmp_path / "out").trimaps] == [
        "ph training 0.png"
    ]


# -- one process at a time -------------------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from napari_spine_seg.errors import SpineSegError
    from napari_spine_seg.review.session import ReviewSession

    try:
        session = ReviewSession.open(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    except SpineSegError as exc:
        print("refused", exc, flush=True)
        sys.exit(2)
    print("open", flush=True)
    time.sleep(600)
    """
)


def _holder(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _HOLDER, *map(os.fspath, args)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_second_process_is_refused_with_who_holds_the_folder(folder_set, tmp_path):
    folder = tmp_path / "review"
    holder = _holder(folder, folder_set)
    try:
        assert holder.stdout.readline().strip() == "open"
        # a temporary file of a write under way in the holder
        in_flight = folder / "trimaps" / ".case 01 AP.abc123.part.png"
        in_flight.parent.mkdir(parents=True, exist_ok=True)
        in_flight.write_bytes(b"half a png")
        state = (folder / STATE_FILE).read_bytes()
        with pytest.raises(SpineSegError) as caught:
            ReviewSession.open(folder)
        line = str(caught.value)
        assert "\n" not in line
        assert line.startswith(f"{folder}: is open in another review")
        assert f"process {holder.pid} on {socket.gethostname()}" in line
        assert in_flight.exists()  # the other process's temporary file is left alone
        assert (folder / STATE_FILE).read_bytes() == state
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to unlock: the kernel does it
        holder.wait(timeout=30)
    session = ReviewSession.open(folder)  # the lock died with the process
    assert not in_flight.exists()  # and only now are its leftovers cleared
    second = _holder(folder)  # the other way round: held here, another process is refused
    line = second.stdout.readline()
    assert second.wait(timeout=60) == 2
    assert f"process {os.getpid()} on {socket.gethostname()}" in line
    assert (folder / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    session.close()
    third = _holder(folder)
    try:
        assert third.stdout.readline().strip() == "open"  # closed: free again
    finally:
        third.kill()
        third.wait(timeout=30)


def test_sessions_of_one_process_share_the_lock_until_the_last_closes(folder_set, tmp_path):
    folder = tmp_path / "review"
    first = ReviewSession.open(folder, folder_set)
    second = ReviewSession.open(folder)  # a resume in the same process (the widget, a test)
    first.close()
    refused = _holder(folder)
    assert refused.wait(timeout=60) == 2  # still held by `second`
    second.close()
    assert second.closed
    free = _holder(folder)
    try:
        assert free.stdout.readline().strip() == "open"
    finally:
        free.kill()
        free.wait(timeout=30)


# -- a failed save changes nothing in memory either ------------------------------------------
# Tests run as root, where chmod does not stop writes: the review folder is made
# unwritable by putting a file where its trimaps/ folder goes, or a folder where its
# state file goes.


def test_a_failed_trimap_save_leaves_the_session_as_it_was(folder_set, tmp_path):
    folder = tmp_path / "review"
    session = ReviewSession.open(folder, folder_set)
    key = session.current_key
    (folder / "trimaps").write_text("not a folder")
    with pytest.raises(SpineSegError, match="trimaps") as caught:
        session.save_edit(key, column_trimap(shift=3))
    assert "\n" not in str(caught.value)
    assert session.status(key) == UNREVIEWED
    with pytest.raises(SpineSegError, match="trimaps"):
        session.accept(key, column_trimap())
    assert session.status(key) == UNREVIEWED
    (folder / "trimaps").unlink()
    assert session.save_edit(key, column_trimap(shift=3))  # written once it can be
    assert session.status(key) == DRAFT
    assert session.accept(key, column_trimap(shift=3)) == CORRECTED


def test_a_failed_state_save_does_not_move_or_mark(folder_set, tmp_path):
    folder = tmp_path / "review"
    session = ReviewSession.open(folder, folder_set)
    (folder / STATE_FILE).unlink()
    (folder / STATE_FILE).mkdir()
    with pytest.raises(SpineSegError, match=STATE_FILE):
        session.next()
    assert session.index == 0
    with pytest.raises(SpineSegError, match=STATE_FILE):
        session.accept(NAMES[0], column_trimap())
    assert session.status(NAMES[0]) == UNREVIEWED
    with pytest.raises(SpineSegError, match=STATE_FILE):
        session.set_order("worst", {})
    assert session.order == "file"
    assert not list(folder.glob(".review.*"))  # no temporary file left behind


# -- export and retraining read a snapshot ----------------------------------------------------


def test_a_snapshot_keeps_the_review_as_it_was(folder_set, tmp_path):
    session = ReviewSession.open(tmp_path / "review", folder_set)
    session.accept(NAMES[0], column_trimap())
    session.save_edit(NAMES[1], column_trimap(shift=2))
    session.accept(NAMES[1], column_trimap(shift=2))
    with session.snapshot() as snapshot:
        # the person goes on: corrects the first image, discards the second
        session.save_edit(NAMES[0], column_trimap(shift=5))
        session.reset(NAMES[1])
        session.accept(NAMES[2], column_trimap())
        copied = pickle.loads(pickle.dumps(snapshot))  # as it goes to the training process
        result = export_review(copied, tmp_path / "export")
        assert [p.name for p in result.trimaps] == ["case 01 AP.png", "case 02 AP.png"]
        assert np.array_equal(read_trimap_png(result.trimaps[0]), column_trimap())
        assert np.array_equal(read_trimap_png(result.trimaps[1]), column_trimap(shift=2))
        assert snapshot.status(NAMES[0]) == ACCEPTED
        retraining = retraining_dataset(snapshot, None)
        assert [s.name for s in retraining.samples] == list(NAMES[:2])
        assert all(s.trimap_path.is_relative_to(snapshot.snapshot_folder) for s in retraining)
    assert not snapshot.snapshot_folder.exists()
    assert np.array_equal(session.reviewed_trimap(NAMES[0]), column_trimap(shift=5))
    assert session.status(NAMES[1]) == UNREVIEWED


def test_a_live_session_cannot_be_pickled(folder_set, tmp_path):
    session = ReviewSession.open(tmp_path / "review", folder_set)
    with pytest.raises(TypeError, match="snapshot"):
        pickle.dumps(session)


def test_export_in_a_thread_while_autosave_accept_and_reset_run(folder_set, tmp_path):
    session = ReviewSession.open(tmp_path / "review", folder_set)
    for name in NAMES:
        session.accept(name, column_trimap())
    errors, results = [], []
    stop = threading.Event()

    def export_again_and_again():
        while not stop.is_set():
            try:
                results.append(export_review(session, tmp_path / "export", colour=True))
            except Exception as exc:  # any error is a failure of the promise
                errors.append(exc)
                return

    worker = threading.Thread(target=export_again_and_again)
    worker.start()
    try:
        for i in range(150):
            name = NAMES[i % 3]
            if i % 5 == 4:
                session.reset(name)
            elif i % 2:
                session.save_edit(name, column_trimap(shift=1 + i % 7))
            else:
                session.accept(name, column_trimap())
    finally:
        stop.set()
        worker.join(timeout=120)
    assert errors == []
    assert results  # at least one export ran alongside
    assert not list((tmp_path / "review").glob(".snapshot-*"))
