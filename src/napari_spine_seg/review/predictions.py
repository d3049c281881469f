"""Each image's prediction, kept in the review folder, so that reopening a review is quick.

Worst-first order needs every image's prediction (:func:`~.priority.review_priority`);
predicting 600 X-rays takes minutes. A review keeps each prediction it made::

    review-folder/predictions/<model id>/<image id>.npz

``<model id>`` is a hash of the model file's bytes, so a retrained or replaced model
(even under the same name) gets a folder of its own. Each ``.npz`` holds the predicted
trimap, the spine probability (float16), the image's worst-first
:class:`~.priority.Priority`, and the image file it was predicted from (resolved path,
size and modification time): a prediction whose image file changed since, or that an
earlier version of the landmark fit made, is predicted again. A model that finds
vertebrae also has them kept when the review shows an image: the bodies (uint8, 1 =
T1 …), the 68 corners where 17 were found, and why not otherwise. Files are written
atomically; a damaged one is predicted again.

:func:`rank_images` ranks a queue from the cache, predicting only the images it lacks,
and says before it starts how many those are (and, from the speed measured last time,
how long they will take).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_bytes_atomic, write_text_atomic
from ..errors import SpineSegError
from .priority import Priority, review_priority

PREDICTION_FOLDER = "predictions"
_SPEED_FILE = "speed.json"
#: a prediction kept under another format was made by another version of the fit, and
#: is predicted again (2: end plates averaged with the image's own edges; 3: the first
#: pass's bodies fitted where the zoom pass's give no landmarks, and the trimap drawn
#: from the corners)
_FORMAT = "napari-spine-seg prediction 3"

_identities: dict[tuple[str, int, int], str] = {}
_identities_lock = threading.Lock()


def model_identity(model_path: str | os.PathLike) -> str:
    """A short hash of the model file's bytes (remembered per path, size and mtime).

    Raises
    ------
    SpineSegError
        When the file cannot be read.
    """
    path = Path(model_path).resolve()
    try:
        stat = path.stat()
        memo = (str(path), stat.st_size, stat.st_mtime_ns)
        with _identities_lock:
            if memo in _identities:
                return _identities[memo]
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise SpineSegError(path, f"cannot be read ({exc.strerror or exc})") from exc
    identity = digest.hexdigest()[:16]
    with _identities_lock:
        _identities[memo] = identity
    return identity


def image_identity(image_path: str | os.PathLike) -> dict:
    """``{"path", "size", "mtime_ns"}`` of an image file: a cached prediction is valid
    while these stay the same."""
    path = Path(image_path).resolve()
    stat = path.stat()
    return {"path": os.fspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass(frozen=True)
class CachedPrediction:
    """One image's prediction as the cache keeps it (`vertebrae` None: not kept, as for
    a model without them or one ranked worst first without showing the image)."""

    trimap: np.ndarray
    probability: np.ndarray
    priority: Priority
    vertebrae: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    vertebra_faults: tuple[str, ...] = ()


class PredictionCache:
    """The predictions one model made of a review's images, in the review folder.

    Parameters
    ----------
    review_folder : path-like
    model_path : path-like
        The model file; its bytes name the cache's sub-folder.
    """

    def __init__(self, review_folder: str | os.PathLike, model_path: str | os.PathLike):
        self.model_id = model_identity(model_path)
        self.folder = Path(review_folder) / PREDICTION_FOLDER / self.model_id

    def path(self, key: str) -> Path:
        """The file that keeps the prediction of image `key` (it may not exist)."""
        return self.folder / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()[:20]}.npz"

    def get(self, key: str, image_path: str | os.PathLike) -> CachedPrediction | None:
        """The kept prediction of image `key`, or None when there is none, it was made
        from another version of the image file, or its file is damaged."""
        return self._read(key, image_path, arrays=True)

    def priority(self, key: str, image_path: str | os.PathLike) -> Priority | None:
        """The kept worst-first priority of image `key` (reads no pixels), or None as
        for :meth:`get`."""
        kept = self._read(key, image_path, arrays=False)
        return None if kept is None else kept.priority

    def _read(self, key, image_path, arrays: bool) -> CachedPrediction | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:  # members load when asked for
                meta = json.loads(str(saved["meta"]))
                if meta.get("format") != _FORMAT or meta.get("key") != key:
                    return None
                if meta.get("image") != image_identity(image_path):
                    return None
                priority = Priority.from_dict(meta["priority"])
                if not arrays:
                    return CachedPrediction(None, None, priority)
                return CachedPrediction(
                    trimap=np.asarray(saved["trimap"], np.uint8),
                    probability=np.asarray(saved["probability"], np.float32),
                    priority=priority,
                    **_vertebrae(saved, meta),
                )
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError):
            return None  # damaged (a half-copied folder, say): predicted again

    def put(
        self,
        key: str,
        image_path: str | os.PathLike,
        trimap: np.ndarray,
        probability: np.ndarray,
        priority: Priority | None = None,
        *,
        vertebrae: np.ndarray | None = None,
        landmarks: np.ndarray | None = None,
        vertebra_faults: Sequence[str] = (),
    ) -> CachedPrediction:
        """Keep the prediction of image `key` (atomically); return it as kept.

        `vertebrae`, `landmarks` and `vertebra_faults` are a vertebra model's outputs
        (:class:`~napari_spine_seg.model.predict.Prediction`'s fields of those names).

        Raises
        ------
        SpineSegError
            When the file cannot be written.
        """
        trimap = np.asarray(trimap, np.uint8)
        probability = np.asarray(probability, np.float32)
        if priority is None:
            priority = review_priority(trimap, probability)
        meta = {
            "format": _FORMAT,
            "key": key,
            "image": image_identity(image_path),
            "priority": priority.to_dict(),
        }
        arrays = {}
        if vertebrae is not None:
            vertebra_faults = tuple(str(f) for f in vertebra_faults)
            meta["vertebra_faults"] = list(vertebra_faults)
            vertebrae = np.asarray(vertebrae, np.uint8)
            arrays["vertebrae"] = vertebrae
            if landmarks is not None:
                landmarks = np.asarray(landmarks, np.float64)
                arrays["landmarks"] = landmarks
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            trimap=trimap,
            probability=probability.astype(np.float16),
            meta=np.asarray(json.dumps(meta)),
            **arrays,
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.path(key), buffer.getvalue())
        kept = {"vertebrae": vertebrae, "landmarks": arrays.get("landmarks")}
        faults = tuple(vertebra_faults) if vertebrae is not None else ()
        return CachedPrediction(trimap, probability, priority, **kept, vertebra_faults=faults)

    def missing(self, items: Sequence[tuple[str, str | os.PathLike]]) -> list[str]:
        """Keys of the ``(key, image path)`` items that have no valid kept prediction."""
        return [key for key, image in items if self.priority(key, image) is None]

    @property
    def seconds_per_image(self) -> float | None:
        """How long one prediction took when this model last predicted here, or None."""
        try:
            value = json.loads((self.folder / _SPEED_FILE).read_text(encoding="utf-8"))
            return float(value["seconds_per_image"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _note_speed(self, seconds_per_image: float) -> None:
        text = json.dumps({"seconds_per_image": seconds_per_image}) + "\n"
        write_text_atomic(self.folder / _SPEED_FILE, text)


def _vertebrae(saved, meta: dict) -> dict:
    """The vertebra fields of a kept prediction (none when it has no vertebrae)."""
    if "vertebrae" not in saved.files:
        return {}
    landmarks = saved["landmarks"] if "landmarks" in saved.files else None
    return {
        "vertebrae": np.asarray(saved["vertebrae"], np.uint8),
        "landmarks": None if landmarks is None else np.asarray(landmarks, np.float64),
        "vertebra_faults": tuple(str(f) for f in meta.get("vertebra_faults", ())),
    }


def describe_seconds(seconds: float) -> str:
    """``"about 40 s"``, ``"about 3 min"``, ``"about 1.5 h"``."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


@dataclass
class Ranking:
    """What :func:`rank_images` found and did.

    Attributes
    ----------
    priorities : dict of str to Priority
    predicted : list of str
        The images the model was called for (the rest came from the cache).
    seconds : float
        Time spent predicting.
    """

    priorities: dict[str, Priority] = field(default_factory=dict)
    predicted: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class RankProgress:
    """One step of :func:`rank_images`: ``done`` of ``total`` images ranked, of which
    ``predicted`` of ``to_predict`` needed the model; ``left_s`` is the estimated time
    left (None until it can be estimated)."""

    done: int
    total: int
    predicted: int
    to_predict: int
    left_s: float | None

    def describe(self) -> str:
        """One line for the person."""
        if self.to_predict == 0:
            return f"all {self.total} predictions kept from before: ranking at once"
        if self.done == 0:
            line = f"{self.to_predict} of {self.total} images to predict before ranking"
            return line + (
                f", {describe_seconds(self.left_s)}"
                if self.left_s is not None
                else ", timing after the first"
            )
        line = f"predicting {self.predicted} of {self.to_predict} images"
        cached = self.total - self.to_predict
        if cached:
            line += f" ({cached} kept from before)"
        if self.left_s is not None:
            line += f", {describe_seconds(self.left_s)} left"
        return line


def rank_images(
    items: Sequence[tuple[str, str | os.PathLike]],
    cache: PredictionCache,
    predict: Callable[[str], tuple[np.ndarray, np.ndarray]],
) -> Iterator[RankProgress]:
    """Rank images worst first from their kept predictions, predicting the missing ones.

    A generator: it yields a :class:`RankProgress` before it predicts anything (how
    many images need the model and, from the speed measured last time, how long) and
    after each image; it returns a :class:`Ranking`.

    Parameters
    ----------
    items : sequence of (key, image path)
    cache : PredictionCache
    predict : callable
        ``predict(image path) -> (trimap, probability)``: the model's call (in the model
        process for the widget). Called only for the images the cache lacks.
    """
    todo = set(cache.missing(items))  # counted before the first prediction
    per_image = cache.seconds_per_image
    ranking = Ranking()
    total = len(items)

    def left(predicted: int) -> float | None:
        rate = ranking.seconds / predicted if predicted else per_image
        return None if rate is None else rate * max(0, len(todo) - predicted)

    yield RankProgress(0, total, 0, len(todo), left(0))
    for done, (key, image) in enumerate(items, start=1):
        priority = cache.priority(key, image) if key not in todo else None
        if priority is None:
            start = time.perf_counter()
            trimap, probability = predict(os.fspath(image))
            priority = cache.put(key, image, trimap, probability).priority
            ranking.seconds += time.perf_counter() - start
            ranking.predicted.append(key)
        ranking.priorities[key] = priority
        n = len(ranking.predicted)
        yield RankProgress(done, total, n, len(todo), left(n))
    if ranking.predicted:
        cache._note_speed(ranking.seconds / len(ranking.predicted))
    return ranking
