"""A review frozen at one moment, for export and retraining to read in another thread."""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset, Sample
from ..data.masks import read_trimap_png, trimap_name
from ..errors import SpineSegError
from .state import REVIEWED, SNAPSHOT_PREFIX, TRIMAP_FOLDER, UNREVIEWED, sample_key


def take_snapshot(
    review_folder: Path,
    dataset: Dataset,
    keys: tuple[str, ...],
    statuses: dict[str, str],
    sources: Mapping[str, Path],
    began_as_prediction: Callable[[str], bool],
) -> ReviewSnapshot:
    """Link the reviewed trimaps `sources` into a new snapshot folder of `review_folder`.

    Each is hard-linked (copied where the file system has no hard links); a missing
    one is left out.

    Parameters
    ----------
    review_folder : pathlib.Path
    dataset : Dataset
    keys : tuple of str
        The queue.
    statuses : dict of str to str
    sources : mapping of str to pathlib.Path
        Each reviewed image's trimap file, in file order.
    began_as_prediction : callable
        Whether the trimap of a key started from a network's prediction.

    Returns
    -------
    ReviewSnapshot

    Raises
    ------
    SpineSegError
        When the snapshot folder cannot be made or filled.
    """
    folder = review_folder / f"{SNAPSHOT_PREFIX}{uuid.uuid4().hex[:12]}"
    files: dict[str, Path] = {}
    predicted: dict[str, bool] = {}
    try:
        for key, source in sources.items():
            if not source.exists():
                continue  # a damaged review folder: the export says which is missing
            target = folder / source.relative_to(review_folder / TRIMAP_FOLDER)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            files[key] = target
            predicted[key] = began_as_prediction(key)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise SpineSegError(
            folder, f"cannot hold a snapshot of the review ({exc.strerror or exc})"
        ) from exc
    return ReviewSnapshot(
        dataset=dataset,
        folder=review_folder,
        keys=keys,
        statuses=statuses,
        files=files,
        predicted=predicted,
        snapshot_folder=folder,
    )


@dataclass(frozen=True)
class ReviewSnapshot:
    """A review frozen at one moment (:meth:`~.session.ReviewSession.snapshot`): what export and
    retraining read, with the names a :class:`~.session.ReviewSession` gives them. Picklable.

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
