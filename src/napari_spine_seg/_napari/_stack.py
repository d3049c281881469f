"""A data set as lazy, slice-aligned napari stacks: X-rays, landmarks and trimaps.

The images of a data set differ in size; napari browses a stack of equal-sized
slices. Each slice is therefore **padded to the largest height and width of the set,
top-left aligned** (the image's pixel ``(r, c)`` is the stack's ``(i, r, c)``, so
landmark coordinates need no shift); the padding is 0 in the image and label 0
(transparent, "unlabelled") in the trimap. The layers' metadata keep each slice's
file name and true shape, which the writer uses to crop the padding away.

Nothing is decoded when the stack opens: the stack is a dask array with one lazy
task per file (a chunk per slice), sized from the header-only
:func:`~napari_spine_seg.data.images.image_shape`; napari computes the slice on view.
Landmarks are read at once (napari's Points layer is not lazy; 68 points per image),
trimaps are drawn from them lazily, slice by slice. Slices are shown as ``uint8``
(:func:`~napari_spine_seg.data.pixels.to_uint8`), so one contrast range suits the stack;
open a single file to see its raw values.

napari may compute a slice in a worker thread (asynchronous slicing); a file that
cannot be read there is reported on the GUI thread (:func:`warn_on_gui_thread`), as
napari's notifications must be.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..data.pixels import to_uint8
from ..errors import SpineSegError
from ..trimap import trimap_from_landmarks
from ._layers import image_layer, landmarks_layer, point_size, trimap_layer
from ._notify import notify_warning

_relay_lock = threading.Lock()
_relay: Any = None


def _gui_relay():
    """A Qt object living on the GUI thread whose ``warn`` slot shows a warning; None
    without a Qt application."""
    global _relay
    from qtpy.QtCore import QCoreApplication, QObject, Slot

    app = QCoreApplication.instance()
    if app is None:
        return None
    with _relay_lock:
        if _relay is None:

            class _Relay(QObject):
                @Slot(str)
                def warn(self, message: str) -> None:
                    notify_warning(message)

            relay = _Relay()
            relay.moveToThread(app.thread())
            _relay = relay
        return _relay


def warn_on_gui_thread(message: str) -> None:
    """Show a napari warning from any thread: queued to the GUI thread from a worker.

    Without a Qt application (a script, a headless test) it is shown at once.
    """
    if threading.current_thread() is threading.main_thread():
        notify_warning(message)
        return
    relay = _gui_relay()
    if relay is None:
        notify_warning(message)
        return
    from qtpy.QtCore import Q_ARG, QMetaObject, Qt

    QMetaObject.invokeMethod(relay, "warn", Qt.QueuedConnection, Q_ARG(str, message))


def _pad(arr: np.ndarray, shape: tuple[int, int], dtype) -> np.ndarray:
    """`arr` cropped or padded (with 0) to `shape`, top-left aligned."""
    out = np.zeros(shape, dtype=dtype)
    rows, cols = min(arr.shape[0], shape[0]), min(arr.shape[1], shape[1])
    out[:rows, :cols] = arr[:rows, :cols]
    return out


class _SliceLoader:
    """Reads one slice, padded; never raises into napari's drawing, warns once per file.

    napari asks for the slice on view several times (once per layer added, per redraw);
    the last few slices are kept so that each is decoded once while it is looked at.
    """

    #: slices kept per stack (a few full-size X-rays: a few MB each)
    CACHED = 4

    def __init__(self, shape: tuple[int, int], dtype, what: str):
        self.shape = shape
        self.dtype = dtype
        self.what = what
        self.reported: set[str] = set()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # napari may slice from a worker thread

    def __call__(self, index: int, load: Callable[[], np.ndarray], name: str) -> np.ndarray:
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
        try:
            arr = _pad(np.asarray(load()), self.shape, self.dtype)
        except Exception as exc:  # a GUI boundary: one bad file must not break browsing
            key = str(exc)
            if key not in self.reported:
                self.reported.add(key)
                detail = str(exc) if isinstance(exc, SpineSegError) else f"{name}: {exc}"
                warn_on_gui_thread(f"{detail} (its {self.what} slice is shown empty)")
            arr = np.zeros(self.shape, dtype=self.dtype)
        arr.flags.writeable = False  # shared by every caller of this slice
        with self._lock:
            self._cache[index] = arr
            while len(self._cache) > self.CACHED:
                self._cache.popitem(last=False)
        return arr


def _lazy_stack(
    loads: Sequence[Callable[[], np.ndarray]], names: Sequence[str], shape, dtype, what: str
):
    """A dask stack of ``len(loads)`` slices of `shape`: one lazy task per image.

    One graph layer for the whole stack, with a chunk per slice; napari computes
    only the slice on view (a stack of per-image ``dask.delayed`` layers costs tens of
    milliseconds of graph handling per slice shown).
    """
    import dask.array as da

    loader = _SliceLoader(tuple(shape), np.dtype(dtype), what)

    def load_slice(block_id=None):
        i = block_id[0]
        return loader(i, loads[i], names[i])[np.newaxis]

    return da.map_blocks(
        load_slice,
        chunks=((1,) * len(loads), (shape[0],), (shape[1],)),
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype=dtype),
        name=f"spine-seg-{what}-{uuid.uuid4().hex}",
    )


def _image_loader(sample) -> Callable[[], np.ndarray]:
    return lambda: to_uint8(sample.load_image().pixels)


def _trimap_loader(sample, landmarks, shape) -> Callable[[], np.ndarray] | None:
    if getattr(sample, "trimap_path", None) is not None:
        return sample.load_trimap
    if landmarks is None:
        return None

    def load():
        return trimap_from_landmarks(landmarks, shape)

    return load


def _summary(source: str, what: str, problems: list[str]) -> str:
    more = "; …" if len(problems) > 3 else ""
    return f"{source}: {what} {len(problems)} image(s): " + "; ".join(problems[:3]) + more


def _readable(samples: Sequence[Any], source: str) -> tuple[list[Any], list[tuple[int, int]]]:
    """The samples whose image header can be read, and their shapes; warns about the rest."""
    kept, shapes, problems = [], [], []
    for sample in samples:
        try:
            shapes.append(tuple(int(v) for v in sample.image_shape()))
        except SpineSegError as exc:
            problems.append(str(exc))
            continue
        kept.append(sample)
    if problems:
        warn_on_gui_thread(_summary(source, "left out", problems) + " (unreadable)")
    if not kept:
        raise SpineSegError(source, "has no readable images")
    return kept, shapes


def _all_landmarks(samples: Sequence[Any], source: str) -> list[np.ndarray | None]:
    """Each sample's landmarks (None where it has none or they cannot be read)."""
    landmarks, problems = [], []
    for sample in samples:
        try:
            landmarks.append(sample.load_landmarks())
        except SpineSegError as exc:
            problems.append(str(exc))
            landmarks.append(None)
    if problems:
        warn_on_gui_thread(_summary(source, "no landmarks for", problems))
    return landmarks


def stack_layers(samples: Sequence[Any], *, name: str, source: str) -> list[tuple]:
    """Layer-data tuples of a data set: image stack, trimap Labels, landmarks Points.

    Parameters
    ----------
    samples : sequence of :class:`~napari_spine_seg.data.dataset.Sample`
        The images, in slice order.
    name : str
        Base layer name (the split or folder name).
    source : str
        The folder opened, for messages.

    Returns
    -------
    list of tuple
        The image stack, then its trimaps (when some image has landmarks or a trimap
        file), then its landmarks (when some image has landmarks), drawn in that order
        so the markers stay on top. All share the slice axis. Images whose header
        cannot be read are left out, with a warning.
    """
    kept, shapes = _readable(samples, source)
    size = (max(s[0] for s in shapes), max(s[1] for s in shapes))
    names = [s.name for s in kept]
    meta = {
        "source": source,
        "names": names,
        "paths": [str(s.image_path) for s in kept],
        "shapes": [list(s) for s in shapes],
        "padding": "top-left aligned, each slice padded to the largest height and width",
    }
    images = _lazy_stack([_image_loader(s) for s in kept], names, size, np.uint8, "image")
    layers = [image_layer(images, name=name, contrast_limits=(0, 255), metadata=meta)]

    landmarks = _all_landmarks(kept, source)
    loads = [_trimap_loader(s, lm, sh) for s, lm, sh in zip(kept, landmarks, shapes, strict=True)]
    if any(load is not None for load in loads):
        empty = lambda: np.zeros((0, 0), np.uint8)  # noqa: E731  (no labels: an empty slice)
        trimaps = _lazy_stack([ld or empty for ld in loads], names, size, np.uint8, "trimap")
        layers.append(trimap_layer(trimaps, name=f"{name} trimap", metadata=meta))

    with_landmarks = [i for i, lm in enumerate(landmarks) if lm is not None]
    if with_landmarks:
        layers.append(
            landmarks_layer(
                np.stack([landmarks[i] for i in with_landmarks]),
                name=f"{name} landmarks",
                size=point_size(int(np.median([s[1] for s in shapes]))),
                slice_index=with_landmarks,
                metadata=meta,
            )
        )
    return layers
