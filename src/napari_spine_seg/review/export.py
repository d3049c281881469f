"""Export a review: the refined trimaps, and optionally colour trimaps and overlays.

For every accepted or corrected image of a :class:`~.session.ReviewSession` this
writes, into a chosen folder (one sub-folder per split for the AASCE layout):

- ``<trimap name>``: the trimap PNG (1 spine, 2 background, 3 border) at the image's
  own size, named after the image (:func:`~napari_spine_seg.data.masks.trimap_name`);
- ``colour/<trimap name>`` (``colour=True``): the same trimap as an RGB colour mask in
  :data:`~napari_spine_seg.data.masks.DEFAULT_COLOUR_MAP` (red spine, green background,
  blue border), which :func:`~napari_spine_seg.data.masks.read_colour_mask` reads back;
- ``overlay/<trimap name>`` (``overlay=True``): the X-ray with spine and border
  blended over it in the napari trimap colours
  (:data:`~napari_spine_seg.trimap.LABEL_COLORS`). The seed did this step with
  ImageMagick after re-encoding each trimap as three shades of black; here it is a
  few lines of numpy.

The data set is never written: an export folder that is the data set's folder, lies
inside it (``data/``, ``labels/``, the images' folder) or would replace one of its files
is refused before anything is written. A *draft* (an image painted but never accepted)
is not exported: its trimap may be half done; the summary line says how many drafts
were left out, so the person can accept them first. The export reads a
:meth:`~.session.ReviewSession.snapshot` of the review, so that it may run in a thread
while the person goes on reviewing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_output, check_writable_folder
from ..data.masks import DEFAULT_COLOUR_MAP, trimap_name, write_trimap_png
from ..data.pixels import to_uint8
from ..errors import SpineSegError
from ..trimap import BACKGROUND, BORDER, LABEL_COLORS, SPINE, validate_trimap
from .protect import check_outside_dataset
from .session import DRAFT, REVIEWED, ReviewSession, ReviewSnapshot

COLOUR_FOLDER = "colour"
OVERLAY_FOLDER = "overlay"


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes
    ----------
    trimaps, colour, overlays : list of Path
        Files written, per kind, in file order.
    skipped : list of str
        Keys of the images left out because they are not reviewed yet (drafts
        included).
    drafts : list of str
        Keys of the images left out because they are drafts: painted, never accepted.
    """

    trimaps: list[Path] = field(default_factory=list)
    colour: list[Path] = field(default_factory=list)
    overlays: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    drafts: list[str] = field(default_factory=list)

    @property
    def written(self) -> list[Path]:
        """Every file written."""
        return [*self.trimaps, *self.colour, *self.overlays]

    def summary(self) -> str:
        """One line for the person: what was written, and what was left out."""
        parts = [f"{len(self.trimaps)} trimap{'s' if len(self.trimaps) != 1 else ''}"]
        if self.colour:
            parts.append(f"{len(self.colour)} colour trimaps")
        if self.overlays:
            parts.append(f"{len(self.overlays)} overlays")
        line = "wrote " + ", ".join(parts)
        unreviewed = len(self.skipped) - len(self.drafts)
        if unreviewed:
            line += f"; {unreviewed} unreviewed image{'s' if unreviewed != 1 else ''} left out"
        if self.drafts:
            n = len(self.drafts)
            line += (
                f"; {n} draft{'s' if n != 1 else ''} (painted, never accepted) left out:"
                " accept to export"
            )
        return line


def colour_trimap(trimap: np.ndarray) -> np.ndarray:
    """RGB colour mask of a trimap: red spine, green background, blue border.

    Parameters
    ----------
    trimap : (H, W) array
        Values 1/2/3 (0 read as background).

    Returns
    -------
    (H, W, 3) uint8 ndarray

    Examples
    --------
    >>> import numpy as np
    >>> colour_trimap(np.array([[1, 2, 3]])).tolist()
    [[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]
    """
    trimap = validate_trimap(trimap)
    lut = np.zeros((256, 3), dtype=np.uint8)
    for value in (BACKGROUND, BORDER, SPINE):
        # the first colour the colour map gives each class (black is its unpainted alias)
        rgb = next(c for c, v in DEFAULT_COLOUR_MAP.items() if v == value and any(c))
        lut[value] = rgb
    return lut[trimap]


def overlay_trimap(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """The image in grey with spine and border blended over it in the napari colours.

    Parameters
    ----------
    image : (H, W) array
        The X-ray, any numeric dtype (shown as :func:`~napari_spine_seg.data.pixels.to_uint8`).
    trimap : (H, W) array
        Its trimap; background (2, and 0) leaves the image as it is.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    trimap = validate_trimap(trimap)
    grey = to_uint8(np.asarray(image)).astype(np.float32)
    if grey.shape != trimap.shape:
        raise SpineSegError(None, f"image is {grey.shape} but its trimap is {trimap.shape}")
    out = np.repeat(grey[..., None], 3, axis=2)
    for value in (SPINE, BORDER):
        r, g, b, alpha = LABEL_COLORS[value]
        where = trimap == value
        colour = np.array([r, g, b], dtype=np.float32) * 255.0
        out[where] = (1.0 - alpha) * out[where] + alpha * colour
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _write_rgb(path: Path, rgb: np.ndarray) -> Path:
    from PIL import Image

    with atomic_output(path) as tmp:
        Image.fromarray(rgb, mode="RGB").save(tmp, format="PNG")
    return path


def _protected_files(session: ReviewSession | ReviewSnapshot) -> set[Path]:
    """The dataset's own files, which an export must never replace."""
    protected = set()
    for sample in session.dataset.samples:
        for path in (sample.image_path, sample.trimap_path, sample.landmarks_path):
            if path is not None:
                protected.add(Path(path).resolve())
    return protected


def export_review(
    session: ReviewSession | ReviewSnapshot,
    out: str | os.PathLike,
    *,
    colour: bool = False,
    overlay: bool = False,
    statuses: Iterable[str] = REVIEWED,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write the reviewed trimaps of `session` (and optionally colour trimaps, overlays) to `out`.

    Parameters
    ----------
    session : ReviewSession or ReviewSnapshot
        A live session is exported from a snapshot taken now.
    out : path-like
        Output folder, created if needed; earlier exports in it are replaced. It
        must lie outside the data set.
    colour : bool
        Also write RGB colour trimaps to ``out/colour/``.
    overlay : bool
        Also write the X-ray with its trimap blended over it to ``out/overlay/``.
    statuses : iterable of str
        Which images to export; default the accepted and corrected ones.
    progress : callable, optional
        Called as ``progress(done, total)`` after each image.

    Returns
    -------
    ExportResult
        The files written, and the images left out.

    Raises
    ------
    SpineSegError
        When `out` is or lies inside one of the data set's folders, cannot be written,
        or when a file to write is one of the dataset's own (an image, a trimap, a
        landmark file); raised before anything is written.
    """
    check_outside_dataset(out, session.dataset, "export folder")
    if isinstance(session, ReviewSession):
        with session.snapshot() as snapshot:
            return export_review(
                snapshot,
                out,
                colour=colour,
                overlay=overlay,
                statuses=statuses,
                progress=progress,
            )
    out = check_writable_folder(out)
    keys = session.reviewed_keys(statuses)
    skipped = [k for k in session.keys if k not in set(keys)]
    drafts = [k for k in skipped if session.status(k) == DRAFT]
    result = ExportResult(skipped=skipped, drafts=drafts)

    plan = _plan(session, keys, out, colour=colour, overlay=overlay)
    for done, (key, sample, targets) in enumerate(plan, start=1):
        _export_one(session, key, sample, targets, result)
        if progress is not None:
            progress(done, len(plan))
    return result


def _plan(session, keys, out: Path, *, colour: bool, overlay: bool) -> list[tuple]:
    """``(key, sample, {kind: target file})`` per image to export; refuses, before anything is
    written, a target that is one of the data set's own files."""
    plan = []
    for key in keys:
        sample = session.sample(key)
        folder = out / sample.split if sample.split else out
        name = trimap_name(sample.name)
        targets = {"trimap": folder / name}
        if colour:
            targets["colour"] = folder / COLOUR_FOLDER / name
        if overlay:
            targets["overlay"] = folder / OVERLAY_FOLDER / name
        plan.append((key, sample, targets))
    protected = _protected_files(session)
    for _, _, targets in plan:
        for target in targets.values():
            if target.resolve() in protected:
                raise SpineSegError(target, "is one of the dataset's own files; export elsewhere")
    return plan


def _export_one(session, key: str, sample, targets: dict, result: ExportResult) -> None:
    """Write one image's reviewed trimap (and its colour and overlay copies) to `targets`."""
    trimap = session.reviewed_trimap(key)
    if trimap is None:
        raise SpineSegError(session.trimap_path(key), "is missing; the review folder is damaged")
    predicted = session.began_as_prediction(key)
    result.trimaps.append(write_trimap_png(targets["trimap"], trimap, predicted=predicted))
    if "colour" in targets:
        result.colour.append(_write_rgb(targets["colour"], colour_trimap(trimap)))
    if "overlay" in targets:
        image = sample.load_image().pixels
        result.overlays.append(_write_rgb(targets["overlay"], overlay_trimap(image, trimap)))
