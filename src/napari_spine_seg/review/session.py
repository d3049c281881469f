"""A review session: a queue over a dataset's images, per-image status, autosaved trimaps.

A person goes through the images of a dataset one at a time, accepts a predicted
trimap as it is or corrects it, and moves on. Everything the session knows lives in
its *review folder*, so that a killed process loses nothing and reopening the folder
resumes at the same image with the same edits::

    review-folder/
      review.json                  the data set opened, queue and its order, current image,
                                   status of each image, why each image ranks where it does
      trimaps/<trimap name>        the saved trimap of each draft, accepted or corrected image
      trimaps/<split>/<trimap name>    (AASCE layout: one sub-folder per split)
      predictions/<model>/         each image's prediction by one model (:mod:`.predictions`)

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

import functools
import json
import os
import shutil
import threading
import uuid
import weakref
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import check_writable_folder, write_text_atomic
from ..data.dataset import Dataset, Sample, open_dataset
from ..data.masks import is_predicted_trimap, read_trimap_png, trimap_name, write_trimap_png
from ..errors import SpineSegError
from ..spine.gaps import find_gaps
from ..trimap import validate_trimap
from . import lock as folder_lock
from .protect import check_outside_dataset

UNREVIEWED = "unreviewed"
DRAFT = "draft"
ACCEPTED = "accepted"
CORRECTED = "corrected"
#: every status an image can have, in the order a person meets them
STATUSES = (UNREVIEWED, DRAFT, ACCEPTED, CORRECTED)
#: the statuses whose trimaps are final: exported, and used to retrain
REVIEWED = (ACCEPTED, CORRECTED)

FILE_ORDER = "file"
WORST_FIRST = "worst"
ORDERS = (FILE_ORDER, WORST_FIRST)

STATE_FILE = "review.json"
TRIMAP_FOLDER = "trimaps"
#: prefix of the folders holding a snapshot's links to the reviewed trimaps
SNAPSHOT_PREFIX = ".snapshot-"
_FORMAT = "napari-spine-seg review"
_VERSION = 1

#: probabilities below this are "surely background" and left out of the uncertainty
_UNCERTAINTY_FLOOR = 0.05


@dataclass(frozen=True)
class Priority:
    """How much an image needs a person's eye: the worst-first sort key.

    Attributes
    ----------
    gaps : int
        Number of faults :func:`~napari_spine_seg.spine.gaps.find_gaps` reports.
    uncertainty : float
        Mean of ``1 - |2p - 1|`` over the pixels whose spine probability ``p`` is at
        least 0.05: 0 for a model sure of every pixel, 1 when all are 0.5.
    """

    gaps: int
    uncertainty: float
    breaks: int = 0
    low_confidence: float = 0.0

    def describe(self) -> str:
        """Why the image ranks where it does, in a few words.

        Examples
        --------
        >>> Priority(3, 0.08, breaks=2, low_confidence=0.12).describe()
        '3 gaps (2 breaks), 12 % of rows low-confidence, uncertainty 0.08'
        """
        gaps = f"{self.gaps} gap{'' if self.gaps == 1 else 's'}"
        if self.breaks:
            gaps += f" ({self.breaks} break{'' if self.breaks == 1 else 's'})"
        low = f"{100 * self.low_confidence:.0f} % of rows low-confidence"
        return f"{gaps}, {low}, uncertainty {self.uncertainty:.2f}"

    def to_dict(self) -> dict:
        """Plain values, for JSON."""
        return {
            "gaps": self.gaps,
            "uncertainty": self.uncertainty,
            "breaks": self.breaks,
            "low_confidence": self.low_confidence,
        }

    @classmethod
    def from_dict(cls, values: Mapping) -> Priority:
        """The priority :meth:`to_dict` wrote.

        Raises
        ------
        TypeError, ValueError, KeyError
            When `values` is not such a dict.
        """
        return cls(
            gaps=int(values["gaps"]),
            uncertainty=float(values["uncertainty"]),
            breaks=int(values.get("breaks", 0)),
            low_confidence=float(values.get("low_confidence", 0.0)),
        )


def review_priority(trimap: np.ndarray, probability: np.ndarray | None = None) -> Priority:
    """Score a predicted trimap for worst-first review: its gaps, then its uncertainty.

    Parameters
    ----------
    trimap : (H, W) array
        Predicted trimap (1 spine, 2 background, 3 border; 0 read as background).
    probability : (H, W) float array, optional
        Spine probability in [0, 1] at the trimap's size; without it the uncertainty
        is 0 and the gap finder skips its low-confidence test.

    Returns
    -------
    Priority

    Examples
    --------
    >>> import numpy as np
    >>> review_priority(np.full((8, 4), 2, np.uint8), np.full((8, 4), 0.5)).uncertainty
    1.0
    """
    trimap = validate_trimap(trimap)
    gaps = find_gaps(trimap, probability)
    uncertainty = 0.0
    if probability is not None:
        p = np.asarray(probability, dtype=np.float64)
        considered = p[p >= _UNCERTAINTY_FLOOR]
        if considered.size:
            uncertainty = float(np.mean(1.0 - np.abs(2.0 * considered - 1.0)))
    low_rows = sum(g.height for g in gaps if g.kind == "low-confidence")
    return Priority(
        gaps=len(gaps),
        uncertainty=uncertainty,
        breaks=sum(g.kind == "break" for g in gaps),
        low_confidence=min(1.0, low_rows / max(1, trimap.shape[0])),
    )


def worst_first(keys: Iterable[str], priorities: Mapping[str, Priority]) -> list[str]:
    """Order `keys` by most gaps, then most uncertainty; ties keep their given order.

    Keys without a priority go last, in their given order.

    Examples
    --------
    >>> worst_first(["a", "b", "c"], {"a": Priority(0, 0.2), "b": Priority(2, 0.1)})
    ['b', 'a', 'c']
    """
    keys = list(keys)

    def rank(item):
        position, key = item
        p = priorities.get(key)
        if p is None:
            return (1, 0, 0.0, position)
        return (0, -p.gaps, -p.uncertainty, position)

    return [key for _, key in sorted(enumerate(keys), key=rank)]


def sample_key(sample: Sample) -> str:
    """The name a session knows an image by: ``split/name``, or ``name`` without a split."""
    return f"{sample.split}/{sample.name}" if sample.split else sample.name


def dataset_location(dataset: Dataset) -> Path:
    """The exact data set path a review of `dataset` names: what reopening it opens.

    One split of a multi-split AASCE root is its split folder ``data/<split>``; any
    other data set is its root.
    """
    from ..data.aasce import aasce_splits

    root = Path(dataset.root).resolve()
    if dataset.kind == "aasce" and len(dataset.splits) == 1:
        if len(aasce_splits(root)) > 1:
            return root / "data" / dataset.splits[0]
    return root


def _checksum(trimap: np.ndarray) -> int:
    shape = np.asarray(trimap.shape, dtype=np.int64).tobytes()
    return zlib.crc32(np.ascontiguousarray(trimap, dtype=np.uint8).tobytes(), zlib.crc32(shape))


class ReviewSession:
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
        state = _read_state(state_path) if state_path.exists() else None
        if dataset is None:
            if state is None:
                raise SpineSegError(folder, "has no review state; give the dataset to review")
            dataset = _saved_location(state)
        if not isinstance(dataset, Dataset):
            dataset = open_dataset(dataset, require_labels=False)
        # refused before anything is written, the folder itself included
        check_outside_dataset(folder, dataset, "review folder")
        folder = check_writable_folder(folder)
        lock = folder_lock.acquire(folder)
        try:
            # read again under the lock: another process may have changed it meanwhile
            state = _read_state(state_path) if state_path.exists() else None
            if state is not None:
                _check_same_dataset(state_path, state, dataset)
            if lock.first:  # no write of this process can be under way
                _clear_partial_writes(folder)
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
            priorities=_saved_priorities(state or {}),
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
            "format": _FORMAT,
            "version": _VERSION,
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

    def why(self, key: str | None = None) -> str | None:
        """Why image `key` (default the current one) ranks where it does, or None in file
        order or when it was not ranked."""
        key = self.current_key if key is None else self._check(key)
        priority = self.priorities.get(key)
        if self.order != WORST_FIRST or priority is None:
            return None
        return f"ranked {self.keys.index(key) + 1} of {len(self.keys)}: {priority.describe()}"

    # -- the queue ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def current_key(self) -> str:
        """Key of the image under review."""
        return self.keys[self.index]

    @property
    def current(self) -> Sample:
        """The sample under review."""
        return self._samples[self.current_key]

    def sample(self, key: str) -> Sample:
        """The sample known as `key`."""
        return self._samples[self._check(key)]

    def _check(self, key: str) -> str:
        if key not in self._samples:
            raise SpineSegError(self.dataset.root, f"has no image {key!r}")
        return key

    def go_to(self, where: int | str) -> str:
        """Make image `where` (a queue position or a key) the current one; return its key."""
        if isinstance(where, str):
            index = self.keys.index(self._check(where))
        else:
            index = int(where)
            if not 0 <= index < len(self.keys):
                raise SpineSegError(None, f"no image at position {index + 1} of {len(self.keys)}")
        with self._mutex:
            if index != self.index:
                before, self.index = self.index, index
                try:
                    self.save_state()
                except SpineSegError:
                    self.index = before  # not moved: the state on disk says so too
                    raise
            return self.current_key

    def next(self) -> str:
        """Move to the next image (stays on the last); return its key."""
        return self.go_to(min(self.index + 1, len(self.keys) - 1))

    def previous(self) -> str:
        """Move to the previous image (stays on the first); return its key."""
        return self.go_to(max(self.index - 1, 0))

    def next_unreviewed(self) -> str | None:
        """Move to the first unreviewed image after the current one (wrapping round).

        Returns its key, or None (and stays) when every image is reviewed.
        """
        n = len(self.keys)
        for step in range(1, n + 1):
            key = self.keys[(self.index + step) % n]
            if self._status[key] == UNREVIEWED:
                return self.go_to(key)
        return None

    def set_order(self, order: str, priorities: Mapping[str, Priority] | None = None) -> list[str]:
        """Reorder the queue, staying on the current image; return the new queue.

        Parameters
        ----------
        order : {"file", "worst"}
            File order (the dataset's), or worst first (most gaps, then most
            uncertain), which needs `priorities`.
        priorities : mapping of key to Priority, optional
            From :func:`review_priority` of each image's prediction.
        """
        file_keys = list(self._samples)
        if order == FILE_ORDER:
            keys = file_keys
        elif order == WORST_FIRST:
            if priorities is None:
                raise SpineSegError(None, "worst-first order needs each image's predicted gaps")
            keys = worst_first(file_keys, priorities)
        else:
            raise SpineSegError(
                None, f"unknown review order {order!r}; use one of {', '.join(ORDERS)}"
            )
        with self._mutex:
            before = (self.keys, self.order, self.index, self.priorities)
            current = self.current_key
            self.keys, self.order, self.index = keys, order, keys.index(current)
            if priorities is not None:
                self.priorities = dict(priorities)
            try:
                self.save_state()
            except SpineSegError:
                self.keys, self.order, self.index, self.priorities = before
                raise
            return list(self.keys)

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
        sample = self.sample(key)
        sub = self.folder / TRIMAP_FOLDER
        if sample.split:
            sub = sub / sample.split
        return sub / trimap_name(sample.name)

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
        self._saved_input[key] = _checksum(raw)
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
        checksum = _checksum(np.asarray(trimap))
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
        checksum = _checksum(raw)
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
                shown is not None and shown != _checksum(raw)
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
            folder = self.folder / f"{SNAPSHOT_PREFIX}{uuid.uuid4().hex[:12]}"
            files: dict[str, Path] = {}
            predicted: dict[str, bool] = {}
            try:
                for key in self.reviewed_keys():
                    source = self.trimap_path(key)
                    if not source.exists():
                        continue  # a damaged review folder: the export says which is missing
                    target = folder / source.relative_to(self.folder / TRIMAP_FOLDER)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(source, target)
                    except OSError:
                        shutil.copyfile(source, target)
                    files[key] = target
                    predicted[key] = self.began_as_prediction(key)
            except OSError as exc:
                shutil.rmtree(folder, ignore_errors=True)
                raise SpineSegError(
                    folder, f"cannot hold a snapshot of the review ({exc.strerror or exc})"
                ) from exc
            return ReviewSnapshot(
                dataset=self.dataset,
                folder=self.folder,
                keys=tuple(self.keys),
                statuses=dict(self._status),
                files=files,
                predicted=predicted,
                snapshot_folder=folder,
            )


@dataclass(frozen=True)
class ReviewSnapshot:
    """A review frozen at one moment (:meth:`ReviewSession.snapshot`): what export and
    retraining read, with the names a :class:`ReviewSession` gives them. Picklable.

    Attributes
    ----------
    dataset : Dataset
    folder : pathlib.Path
        The review folder.
    keys : tuple of str
        The queue.
    statuses : dict of str to str
    files : dict of str to pathlib.Path
        Each reviewed image's trimap as it was (in `snapshot_folder`).
    predicted : dict of str to bool
        Whether each reviewed trimap started from a network's prediction.
    snapshot_folder : pathlib.Path
    """

    dataset: Dataset
    folder: Path
    keys: tuple[str, ...]
    statuses: dict[str, str]
    files: dict[str, Path] = field(default_factory=dict)
    predicted: dict[str, bool] = field(default_factory=dict)
    snapshot_folder: Path | None = None

    @functools.cached_property
    def _samples(self) -> dict[str, Sample]:
        return {sample_key(s): s for s in self.dataset.samples}

    def sample(self, key: str) -> Sample:
        """The sample known as `key`."""
        if key not in self._samples:
            raise SpineSegError(self.dataset.root, f"has no image {key!r}")
        return self._samples[key]

    def status(self, key: str) -> str:
        """Status of image `key` when the snapshot was taken."""
        return self.statuses[key]

    def reviewed_keys(self, statuses: Iterable[str] = REVIEWED) -> list[str]:
        """Keys of the images with one of `statuses`, in file order."""
        wanted = set(statuses)
        return [k for k in self._samples if self.statuses.get(k) in wanted]

    def trimap_path(self, key: str) -> Path:
        """The snapshot's copy of the reviewed trimap of `key` (it may not exist)."""
        if key in self.files:
            return self.files[key]
        sample = self.sample(key)
        sub = Path(self.snapshot_folder or self.folder / TRIMAP_FOLDER)
        return (sub / sample.split if sample.split else sub) / trimap_name(sample.name)

    def reviewed_trimap(self, key: str) -> np.ndarray | None:
        """The reviewed trimap of `key` as it was, or None when it was unreviewed."""
        if self.statuses.get(key, UNREVIEWED) == UNREVIEWED or key not in self.files:
            return None
        return read_trimap_png(self.files[key])

    def began_as_prediction(self, key: str) -> bool:
        """Whether the reviewed trimap of `key` started from a network's prediction."""
        return self.predicted.get(key, False)

    def close(self) -> None:
        """Delete the snapshot's files (the review folder's own are untouched)."""
        if self.snapshot_folder is not None:
            shutil.rmtree(self.snapshot_folder, ignore_errors=True)

    def __enter__(self) -> ReviewSnapshot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _clear_partial_writes(folder: Path) -> None:
    """Delete the temporary files of writes a killed process left half done.

    Called only by the process that has just taken the folder's lock, so no write it
    deletes the file of can be under way.
    """
    patterns = (
        f".{Path(STATE_FILE).stem}.*.part.json",
        f"{TRIMAP_FOLDER}/**/.*.part.png",
        "predictions/*/.*.part.*",  # the prediction cache (.predictions)
    )
    for pattern in patterns:
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)
    for path in folder.glob(f"{SNAPSHOT_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def _read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpineSegError(path, f"is not a readable review state ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise SpineSegError(path, "is not a napari-spine-seg review state")
    if state.get("version") != _VERSION:
        raise SpineSegError(
            path, f"has review state version {state.get('version')}; this version reads {_VERSION}"
        )
    if not isinstance(state.get("dataset"), str):
        raise SpineSegError(path, "names no dataset")
    return state


def _saved_location(state: dict) -> str:
    """The data set path a state names (states before ``dataset_path``: the root)."""
    location = state.get("dataset_path")
    return location if isinstance(location, str) else state["dataset"]


def _check_same_dataset(state_path: Path, state: dict, dataset: Dataset) -> None:
    """Refuse a data set (or another split of it) that is not the one the state names."""
    saved = Path(_saved_location(state)).resolve()
    given = dataset_location(dataset)
    if "dataset_path" not in state:  # an older state knows only the root
        given = Path(dataset.root).resolve()
    if saved != given:
        raise SpineSegError(state_path, f"is the review of {saved}, not of {given}")


def _saved_priorities(state: dict) -> dict[str, Priority]:
    """The saved reasons for a worst-first queue; a damaged entry is dropped, not fatal."""
    priorities = {}
    saved = state.get("priority")
    for key, values in (saved if isinstance(saved, dict) else {}).items():
        try:
            priorities[key] = Priority.from_dict(values)
        except (TypeError, ValueError, KeyError, AttributeError):
            continue
    return priorities
