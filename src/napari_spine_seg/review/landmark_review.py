"""Review a data set's landmarks image by image, worst first, with every edit autosaved.

A :class:`LandmarkReview` holds the check of a data set
(:func:`~napari_spine_seg.data.landmark_check.check_dataset`) and the landmarks a person
has corrected. Everything it knows lives in its *review folder*, outside the data set,
so that a killed process loses nothing and opening the folder again resumes::

    review-folder/
      landmark-review.json            the data set, the queue (worst first), the current image
      landmarks/<split>/<name>.json   the reviewed 68 (x, y) landmarks of each edited image

Each file is written atomically (a temporary file renamed over the target), the
landmarks before the state; an edited image is known by its landmarks file alone, so a
kill between the two writes loses nothing. :meth:`LandmarkReview.export` writes the
corrected data set exactly as ``spine-seg check --fix --out`` does, with the reviewed
landmarks in place of the stored ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..atomic import check_writable_folder, write_text_atomic
from ..data.landmark_check import (
    DatasetCheck,
    ImageCheck,
    check_dataset,
    check_output_folder,
    recheck_image,
    write_fixed_copy,
)
from ..errors import SpineSegError
from ..trimap import N_LANDMARKS, check_landmarks
from .versioned import read_versioned_json

STATE_FILE = "landmark-review.json"
LANDMARK_FOLDER = "landmarks"
_FORMAT = "napari-spine-seg landmark review"


class LandmarkReview:
    """The landmark review of one data set, kept in a review folder.

    Parameters
    ----------
    dataset : path-like
        An AASCE root or split folder.
    folder : path-like
        The review folder: created if needed; must lie outside the data set. When it
        holds an earlier review of the same data set, that review is resumed.

    Attributes
    ----------
    check : DatasetCheck
        The images with their faults, reviewed landmarks in place of stored ones.
    queue : list of str
        Image keys, the most faults first (as first opened).
    index : int
        Position of the current image in the queue.
    """

    def __init__(self, dataset: str | os.PathLike, folder: str | os.PathLike):
        self.check: DatasetCheck = check_dataset(dataset)
        self.folder = Path(folder)
        check_output_folder(self.check.root, self.folder, allow_marker=STATE_FILE)
        check_writable_folder(self.folder)
        self._by_key = {image.key: image for image in self.check.images}
        state = self._read_state()
        self.queue = [k for k in state.get("queue", []) if k in self._by_key]
        if len(self.queue) != len(self._by_key):
            self.queue = [i.key for i in sorted(self.check.images, key=lambda i: -len(i.faults))]
        current = state.get("current")
        self.index = self.queue.index(current) if current in self.queue else 0
        for key in self.queue:
            saved = self._read_landmarks(key)
            if saved is not None:
                self._set(key, saved)
        self._write_state()

    # -- files ----------------------------------------------------------------------------

    def _landmark_file(self, key: str) -> Path:
        image = self._by_key[key]
        return self.folder / LANDMARK_FOLDER / image.split / f"{image.name}.json"

    def _read_state(self) -> dict:
        path = self.folder / STATE_FILE
        if not path.is_file():
            return {}
        state = read_versioned_json(path, _FORMAT, "landmark review state")
        if Path(state.get("dataset", "")) != self.check.root.resolve():
            raise SpineSegError(
                self.folder, f"holds the review of another data set ({state.get('dataset')})"
            )
        return state

    def _write_state(self) -> None:
        state = {
            "format": _FORMAT,
            "dataset": str(self.check.root.resolve()),
            "queue": self.queue,
            "current": self.queue[self.index] if self.queue else None,
        }
        write_text_atomic(self.folder / STATE_FILE, json.dumps(state, indent=1) + "\n")

    def _read_landmarks(self, key: str) -> np.ndarray | None:
        path = self._landmark_file(key)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return check_landmarks(np.array(data["landmarks"], dtype=np.float64), path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SpineSegError(path, f"is not a reviewed landmark file ({exc})") from None

    # -- the images -----------------------------------------------------------------------

    @property
    def current(self) -> ImageCheck:
        """The image under review."""
        return self._by_key[self.queue[self.index]]

    def image(self, key: str) -> ImageCheck:
        """An image by its key, ``data/<split>/<name>``."""
        return self._by_key[key]

    def go(self, index: int) -> ImageCheck:
        """Make the image at queue position `index` (clamped) current and remember it."""
        self.index = int(min(max(index, 0), len(self.queue) - 1))
        self._write_state()
        return self.current

    def is_edited(self, key: str) -> bool:
        """Whether the image's landmarks were corrected in this review."""
        return self._landmark_file(key).is_file()

    def save(self, landmarks_xy: np.ndarray, key: str | None = None) -> ImageCheck:
        """Keep corrected landmarks of an image (default: the current one) and check them.

        The landmarks file is written atomically before anything else changes.

        Returns
        -------
        ImageCheck
            The image with its faults found again on the corrected landmarks.
        """
        key = self.queue[self.index] if key is None else key
        arr = check_landmarks(landmarks_xy)
        if arr.shape != (N_LANDMARKS, 2):  # pragma: no cover - check_landmarks raises
            raise SpineSegError(None, "68 landmarks are needed")
        payload = {"image": key, "landmarks": arr.tolist()}
        write_text_atomic(self._landmark_file(key), json.dumps(payload) + "\n")
        return self._set(key, arr)

    def _set(self, key: str, landmarks: np.ndarray) -> ImageCheck:
        updated = recheck_image(self._by_key[key], landmarks, self.check.angle_tolerance)
        self._by_key[key] = updated
        self.check.images = [updated if i.key == key else i for i in self.check.images]
        return updated

    def export(self, out: str | os.PathLike) -> Path:
        """Write the corrected data set as ``spine-seg check --fix --out`` does."""
        check = replace(self.check, images=list(self.check.images))
        return write_fixed_copy(check, out)
