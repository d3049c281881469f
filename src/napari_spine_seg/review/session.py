"""A review session: a queue over a dataset's images, per-image status, autosaved trimaps.

A person goes through the images of a dataset one at a time, accepts a predicted
trimap as it is or corrects it, and moves on. Everything the session knows lives in
its *review folder*, so that a killed process loses nothing and reopening the folder
resumes at the same image with the same edits (the folder's files: :mod:`.state`).

An image's status is *unreviewed*, *draft* (painted, not accepted: every brush stroke
is autosaved, but the person has not said it is right), *accepted* (the trimap shown
accepted unchanged) or *corrected* (accepted after painting). Only accepted and
corrected images are exported and retrained on; painting an accepted or corrected image
again makes it a draft until it is accepted again.

The state names the exact data set path the review was opened on (an AASCE split
folder, not its root), so reopening the folder alone reviews the same images in the
saved order; a data set path that is not that one is refused. Opening never writes
the state of a review that has one: only the person's actions do.

Every file is written atomically (a temporary file renamed over the target). The
trimap is written before the state, and a trimap on disk whose image the state still
calls unreviewed is taken as a draft, so a kill between the two writes loses nothing.

The dataset's own files are only read, never written: a review folder that is the
data set's folder or lies inside it is refused before anything is written
(:mod:`.protect`); the default one sits beside the data set
(:func:`~.protect.default_review_folder`). One process at a time works in a review
folder (:mod:`.lock`). A session's methods are safe to call from several threads;
work that reads the review for long (export, retraining) takes a
:meth:`ReviewSession.snapshot` and works on that.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..atomic import check_writable_folder, write_text_atomic
from ..data.dataset import Dataset, open_dataset
from ..data.masks import is_predicted_trimap, read_trimap_png, write_trimap_png
from ..errors import SpineSegError
from ..trimap import validate_trimap
from . import lock as folder_lock
from .priority import Priority
from .protect import check_outside_dataset
from .queue import ReviewQueue
from .snapshot import ReviewSnapshot, take_snapshot
from .state import (
    ACCEPTED,
    CORRECTED,
    DRAFT,
    FILE_ORDER,
    ORDERS,
    REVIEWED,
    STATE_FILE,
    STATE_FORMAT,
    STATE_VERSION,
    STATUSES,
    TRIMAP_FOLDER,
    UNREVIEWED,
    check_same_dataset,
    clear_partial_writes,
    dataset_location,
    read_state,
    sample_key,
    saved_location,
    saved_priorities,
    trimap_checksum,
    trimap_file,
)


class ReviewSession(ReviewQueue):
    """The review of one dataset, kept in a review folder.

    Open one with :meth:`open`; it resumes from the folder's state file when there is
    one. Every method that changes something writes it to disk before returning.

    Parameters
    ----------
    dataset : Dataset
        The images under review.
    folder : path-like
        The review folder (created if needed).
    queue : list of str, optional
        Image keys (:func:`sample_key`) in review order; default file order.
    order : {"file", "worst"}
        How `queue` was ordered (recorded in the state).
    current : str, optional
        Key of the image to start at; default the first in the queue.
    statuses : mapping of str to str, optional
        Known statuses; missing images are unreviewed.
    model : str, optional
        The model file the predictions come from (recorded for the person's benefit).
    priorities : mapping of str to Priority, optional
        Why each image ranks where it does in a worst-first queue.
    lock : FolderLock, optional
        This process's hold on the folder's lock (:func:`~.lock.acquire`), which the
        session then owns; without it the folder is checked (not inside the data set)
        and locked here.

    Raises
    ------
    SpineSegError
        When the folder is or lies inside the data set, cannot be written, or is open
        in another process.
    """

    def __init__(
        self,
        dataset: Dataset,
        folder: str | os.PathLike,
        *,
        queue: list[str] | None = None,
        order: str = FILE_ORDER,
        current: str | None = None,
        statuses: Mapping[str, str] | None = None,
        model: str | None = None,
        priorities: Mapping[str, Priority] | None = None,
        lock: folder_lock.FolderLock | None = None,
    ):
        if order not in ORDERS:
            raise SpineSegError(
                None, f"unknown review order {order!r}; use one of {', '.join(ORDERS)}"
            )
        if lock is None:
            check_outside_dataset(folder, dataset, "review folder")
            folder = check_writable_folder(folder)
            lock = folder_lock.acquire(folder)
        self._lock = lock
        # released when the session is closed or collected, whichever comes first
        self._release = weakref.finalize(self, lock.release)
        try:
            self._start(dataset, folder, queue, order, current, statuses, model)
            self.priorities = dict(priorities or {})
        except BaseException:
            self._release()
            raise

    def _start(self, dataset, folder, queue, order, current, statuses, model) -> None:
        # autosave, Accept and Reset (GUI thread) and snapshots share the session
        self._mutex = threading.RLock()
        self.dataset = dataset
        self.folder = Path(folder)
        #: whether the session resumed a saved state (set by :meth:`open`)
        self.resumed = False
        self._samples = {sample_key(s): s for s in dataset.samples}
        file_keys = list(self._samples)
        # keep a saved queue's order for the images still there; new ones go last
        kept = [k for k in (queue or []) if k in self._samples]
        self.keys = kept + [k for k in file_keys if k not in set(kept)]
        self.order = order
        self.model = model
        self._status = {k: UNREVIEWED for k in self.keys}
        for key, status in (statuses or {}).items():
            if key in self._status and status in STATUSES:
                self._status[key] = status
        # checksums of the last trimap written per image, and of the one first shown
        self._saved_input: dict[str, int] = {}
        self._shown: dict[str, int] = {}
        # whether the trimap first shown per image was a network's prediction
        self._from_prediction: dict[str, bool] = {}
        for key in self.keys:
            path = self.trimap_path(key)
            if path.exists() and self._status[key] == UNREVIEWED:
                self._status[key] = DRAFT  # killed between the trimap and the state
            elif not path.exists() and self._status[key] != UNREVIEWED:
                self._status[key] = UNREVIEWED
        self.index = self.keys.index(current) if current in self._samples else 0

    # -- opening and the state file -------------------------------------------------

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike,
        dataset: str | os.PathLike | Dataset | None = None,
        *,
        model: str | os.PathLike | None = None,
    ) -> ReviewSession:
        """Open the review kept in `folder`, resuming its state if it has one.

        Parameters
        ----------
        folder : path-like
            Review folder; created when it does not exist.
        dataset : path-like or Dataset, optional
            The dataset to review (a DATASET path or an opened one). Optional when the
            folder holds a state, which names its dataset; when both are given they
            must be the same.
        model : path-like, optional
            Model file the predictions come from; recorded in the state.

        Raises
        ------
        SpineSegError
            When there is neither a dataset nor a state, when the state file is not
            ours or is damaged, or when `dataset` is not the one the state names.
        """
        folder = Path(folder)
        state_path = folder / STATE_FILE
        state = read_state(state_path) if state_path.exists() else None
        if dataset is None:
            if state is None:
                raise SpineSegError(folder, "has no review state; give the dataset to review")
            dataset = saved_location(state)
        if not isinstance(dataset, Dataset):
            dataset = open_dataset(dataset, require_labels=False)
        # refused before anything is written, the folder itself included
        check_outside_dataset(folder, dataset, "review folder")
        folder = check_writable_folder(folder)
        lock = folder_lock.acquire(folder)
        try:
            # read again under the lock: another process may have changed it meanwhile
            state = read_state(state_path) if state_path.exists() else None
            if state is not None:
                check_same_dataset(state_path, state, dataset)
            if lock.first:  # no write of this process can be under way
                clear_partial_writes(folder)
        except BaseException:
            lock.release()
            raise
        session = cls(  # owns the lock from here, and releases it if it fails
            dataset,
            folder,
            queue=(state or {}).get("queue"),
            order=(state or {}).get("order", FILE_ORDER),
            current=(state or {}).get("current"),
            statuses=(state or {}).get("status"),
            model=os.fspath(model) if model is not None else (state or {}).get("model"),
            priorities=saved_priorities(state or {}),
            lock=lock,
        )
        session.resumed = state is not None
        if state is None:  # a new review: its state names the data set from now on
            try:
                session.save_state()
            except BaseException:
                session.close()
                raise
        return session

    def close(self) -> None:
        """Release the review folder's lock (the folder keeps the whole review)."""
        self._release()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return not self._release.alive

    def __enter__(self) -> ReviewSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):
        raise TypeError(
            "a live review session cannot be sent to another process; send its snapshot()"
        )

    @property
    def state_path(self) -> Path:
        """The session's state file."""
        return self.folder / STATE_FILE

    def save_state(self) -> Path:
        """Write the state file (atomically) and return its path.

        Raises
        ------
        SpineSegError
            When the file cannot be written (the folder became unwritable, say).
        """
        with self._mutex:
            text = json.dumps(self._state(), indent=1) + "\n"
            try:
                return write_text_atomic(self.state_path, text)
            except OSError as exc:
                raise SpineSegError(
                    self.state_path, f"cannot be written ({exc.strerror or exc})"
                ) from exc

    def _state(self) -> dict:
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "dataset": os.fspath(Path(self.dataset.root).resolve()),
            "dataset_path": os.fspath(self.location),
            "model": self.model,
            "order": self.order,
            "current": self.current_key,
            "queue": self.keys,
            "status": {k: s for k, s in self._status.items() if s != UNREVIEWED},
            "priority": {k: p.to_dict() for k, p in self.priorities.items() if k in self._status},
        }

    @property
    def location(self) -> Path:
        """The exact data set path under review (:func:`dataset_location`)."""
        return dataset_location(self.dataset)

    # -- statuses and trimaps ---------------------------------------------------------

    def status(self, key: str | None = None) -> str:
        """Status of image `key` (default the current one)."""
        return self._status[self.current_key if key is None else self._check(key)]

    def counts(self) -> dict[str, int]:
        """How many images have each status, e.g. ``{"unreviewed": 3, "accepted": 1, ...}``."""
        values = list(self._status.values())
        return {s: values.count(s) for s in STATUSES}

    def reviewed_keys(self, statuses: Iterable[str] = REVIEWED) -> list[str]:
        """Keys of the images with one of `statuses`, in file order (drafts are not
        reviewed: ask for :data:`DRAFT` to get them)."""
        wanted = set(statuses)
        with self._mutex:
            return [k for k in self._samples if self._status[k] in wanted]

    def trimap_path(self, key: str) -> Path:
        """Where the reviewed trimap of image `key` is kept (it may not exist yet)."""
        return trimap_file(self.folder / TRIMAP_FOLDER, self.sample(key))

    def reviewed_trimap(self, key: str | None = None) -> np.ndarray | None:
        """The saved trimap of image `key` (default the current one), or None if unreviewed."""
        key = self.current_key if key is None else key
        path = self.trimap_path(key)
        if self._status[key] == UNREVIEWED or not path.exists():
            return None
        return read_trimap_png(path)

    def _write(self, key: str, raw: np.ndarray) -> Path:
        sample = self.sample(key)
        path = self.trimap_path(key)
        trimap = validate_trimap(raw, path)
        shape = tuple(sample.image_shape())
        if trimap.shape != shape:
            raise SpineSegError(
                sample.image_path,
                f"is {shape[0]} x {shape[1]} but its trimap is {trimap.shape[0]} x {trimap.shape[1]}",
            )
        try:
            write_trimap_png(path, trimap, predicted=self.began_as_prediction(key))
        except OSError as exc:
            raise SpineSegError(path, f"cannot be written ({exc.strerror or exc})") from exc
        self._saved_input[key] = trimap_checksum(raw)
        return path

    def start_edit(self, key: str, trimap: np.ndarray, *, predicted: bool = False) -> None:
        """Record the trimap shown for image `key` before any edit.

        :meth:`save_edit` then writes only once the trimap differs from it, so a
        widget may call it on a timer without marking an untouched image corrected.

        Parameters
        ----------
        key : str
        trimap : (H, W) array
        predicted : bool
            The trimap is a network's prediction (or a saved review of one): the saved
            trimap keeps that mark (:func:`~napari_spine_seg.data.masks.write_trimap_png`),
            so that its Cobb angles are measured as a network's outline.
        """
        checksum = trimap_checksum(np.asarray(trimap))
        with self._mutex:
            self._shown[self._check(key)] = checksum
            self._from_prediction[key] = bool(predicted)

    def began_as_prediction(self, key: str) -> bool:
        """Whether the reviewed trimap of image `key` started from a network's prediction.

        As recorded by :meth:`start_edit` in this session, else as the saved trimap's
        mark says; False for an image with neither.
        """
        if self._check(key) in self._from_prediction:
            return self._from_prediction[key]
        path = self.trimap_path(key)
        return path.exists() and is_predicted_trimap(path)

    def save_edit(self, key: str, trimap: np.ndarray) -> bool:
        """Autosave an edited trimap of image `key`, which becomes a *draft*.

        Writes only when the trimap differs from what this session last saved for the
        image (or, before that, from the trimap recorded by :meth:`start_edit`), so it
        may be called after every brush stroke or on a timer. A draft is kept, shown
        again on reopening, but neither exported nor retrained on until accepted
        (:meth:`accept`, which makes it *corrected*).

        Parameters
        ----------
        key : str
        trimap : (H, W) array
            The edited trimap at the image's own size; 0 (napari's eraser) is
            written as background.

        Returns
        -------
        bool
            Whether anything was written.
        """
        raw = np.asarray(trimap)
        checksum = trimap_checksum(raw)
        with self._mutex:
            baseline = self._saved_input.get(self._check(key), self._shown.get(key))
            if baseline == checksum:
                return False
            self._write(key, raw)
            if self._status[key] != DRAFT:
                self._set_status(key, DRAFT)
            return True

    def accept(self, key: str, trimap: np.ndarray) -> str:
        """Mark image `key` reviewed with `trimap` as its final trimap; return its status.

        An image painted in this review (a draft, a corrected image, or a `trimap`
        that differs from the one recorded by :meth:`start_edit`) becomes *corrected*;
        any other becomes *accepted*. The trimap is saved again either way.
        """
        raw = np.asarray(trimap)
        with self._mutex:
            shown = self._shown.get(self._check(key))
            painted = self._status[key] in (DRAFT, CORRECTED) or (
                shown is not None and shown != trimap_checksum(raw)
            )
            self._write(key, raw)
            status = CORRECTED if painted else ACCEPTED
            self._set_status(key, status)
            return status

    def _set_status(self, key: str, status: str) -> None:
        """Set and save a status; on a failed save the status stays as it was."""
        before, self._status[key] = self._status[key], status
        try:
            self.save_state()
        except SpineSegError:
            self._status[key] = before
            raise

    def reset(self, key: str) -> None:
        """Forget the review of image `key`: delete its saved trimap, mark it unreviewed."""
        path = self.trimap_path(key)
        with self._mutex:
            self._set_status(key, UNREVIEWED)
            self._saved_input.pop(key, None)
            self._from_prediction.pop(key, None)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                # the state says unreviewed; a trimap left on disk would read as corrected
                raise SpineSegError(path, f"cannot be deleted ({exc.strerror or exc})") from exc

    def training_pairs(self, statuses: Iterable[str] = REVIEWED) -> list[tuple[Path, Path]]:
        """``(image path, reviewed trimap path)`` of every reviewed image, for retraining."""
        return [
            (self.sample(k).image_path, self.trimap_path(k)) for k in self.reviewed_keys(statuses)
        ]

    def snapshot(self) -> ReviewSnapshot:
        """The review as it is now, for work that reads it for long in another thread.

        Export and retraining read every reviewed trimap while the person goes on
        reviewing (autosave, Accept, Reset). The snapshot holds the queue, the statuses
        and each reviewed trimap as it is now: a hard link to its file (a copy where
        the file system has no hard links) in a folder of its own in the review folder.
        Autosave replaces a trimap by a new file, so the link keeps the old one. Taken
        under the session's lock, in milliseconds; close it when done (a killed
        process's snapshots are deleted when the review is next opened).

        Returns
        -------
        ReviewSnapshot
        """
        with self._mutex:
            sources = {k: self.trimap_path(k) for k in self.reviewed_keys()}
            return take_snapshot(
                self.folder,
                self.dataset,
                tuple(self.keys),
                dict(self._status),
                sources,
                self.began_as_prediction,
            )
