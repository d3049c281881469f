"""The zoom pass of a vertebrae model: the column seen again, closer (no Keras needed).

The whole X-ray shrunk to the network input leaves each vertebral body some 25 × 9 px,
too few for its end plates' tilt. A model trained with ``TrainConfig.zoom_pass`` also
learns *column tiles*: :data:`TILES` boxes, each covering part of the column's height
(:data:`TILE_SPAN` of it, top and bottom, overlapping), as wide as the network input's
aspect makes them, centred on the column's pixels in that height unless that would cut
some of them off (then moved, or widened: a strongly curved column), cut from the X-ray at
its own resolution and fitted to the input like a whole image. In training a tile is
drawn around the landmarks (:func:`tile_boxes` of the corners), the target cut the same
way, and the usual augmentation jitters it. In prediction the first, whole-image pass
gives the column; the tiles around it are predicted and their probabilities pasted
back over the first pass's (averaged where two tiles overlap), at the image's size.

A model file records the tiles it learnt (``zoom_tiles``, ``zoom_tile_span`` in its
training settings) and is predicted with those (:func:`model_tiles`), so that changing
:data:`TILES` or :data:`TILE_SPAN` here does not change how older models are predicted.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import SpineSegError

#: column tiles per image: 3 overlapping ones average two predictions over most of the
#: column (landmark Cobb MAE 1.77 → 1.64° against 2 tiles, docs/performance.md)
TILES = 3
#: each tile's share of the column's height
TILE_SPAN = 0.6
#: margin around a tile, as a share of the column's height (top and bottom)
MARGIN = 0.05
#: share of a tile's height and width over which its weight falls to 0 at its edges
#: when it is pasted over the first pass (:func:`~.predict.zoom_pass`); not at the top
#: of the first tile and the bottom of the last, which lie beyond the column's ends: a
#: fade there would mix T1 and L5 with the coarse first pass
FEATHER = 0.1
#: share of training batches' samples drawn as a column tile
ZOOM_PROBABILITY = 0.5
#: the tiles (count, span) of every zoom model written before model files recorded them;
#: not TILES and TILE_SPAN, which may change
UNRECORDED_TILES = (3, 0.6)


def tile_boxes(
    rows: np.ndarray,
    cols: np.ndarray,
    shape: tuple[int, int],
    size: tuple[int, int],
    *,
    tiles: int = TILES,
    span: float = TILE_SPAN,
) -> list[tuple[int, int, int, int]]:
    """The column tiles of the points ``(rows, cols)`` in an image of `shape`.

    Parameters
    ----------
    rows, cols : 1-D arrays
        The column's points (landmark corners, or a column mask's pixels).
    shape : (H, W)
        The image's size.
    size : (rows, cols)
        The network input; a tile has its aspect (before clipping to the image).
    tiles : int
        How many tiles (:data:`TILES`).
    span : float
        Each tile's share of the column's height (:data:`TILE_SPAN`).

    Returns
    -------
    list of (top, left, bottom, right)
        `tiles` boxes inside the image, top to bottom (empty without points).
    """
    rows, cols = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
    if rows.size == 0:
        return []
    y0, y1 = float(rows.min()), float(rows.max())
    extent = max(y1 - y0, 1.0)
    height = extent * (span + 2 * MARGIN)
    width = height * size[1] / size[0]
    first = y0 - MARGIN * extent + height / 2
    last = y1 + MARGIN * extent - height / 2
    boxes = []
    for centre in np.linspace(first, last, tiles):
        inside = np.abs(rows - centre) <= height / 2
        xs = cols[inside] if inside.any() else cols
        left, right = _across(xs, width, MARGIN * extent)
        top, bottom = round(centre - height / 2), round(centre + height / 2)
        box = (max(top, 0), max(left, 0), min(bottom, shape[0]), min(right, shape[1]))
        if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
            boxes.append(box)
    return boxes


def _across(xs: np.ndarray, width: float, pad: float) -> tuple[int, int]:
    """A tile's left and right: `width` wide, centred on the mean of `xs` where that holds
    them all (with `pad` beside); else moved, and at need widened, to hold them.

    A strongly curved column leans far to one side at its ends: a tile centred on the
    mean of its rows cut T1 or L5 in 16 of 64 C curves of 30–75°, and their tilts then
    came from the tile's faded edge (docs/performance.md, "The zoom pass").
    """
    lo, hi = float(xs.min()) - pad, float(xs.max()) + pad
    if hi - lo > width:
        width = hi - lo  # the letterbox fit shrinks this tile a little more
    cx = float(np.clip(np.mean(xs), hi - width / 2, lo + width / 2))
    return round(cx - width / 2), round(cx + width / 2)


def landmark_tiles(landmarks: np.ndarray, shape, size) -> list[tuple[int, int, int, int]]:
    """:func:`tile_boxes` of the corners ``(68, 2)`` (x, y) of an image of `shape`."""
    points = np.asarray(landmarks, dtype=float)
    return tile_boxes(points[:, 1], points[:, 0], shape, size)


def column_tiles(
    column: np.ndarray, size, *, tiles: int = TILES, span: float = TILE_SPAN
) -> list[tuple[int, int, int, int]]:
    """:func:`tile_boxes` of a column mask's pixels (the first pass's column)."""
    rows, cols = np.nonzero(column)
    return tile_boxes(rows, cols, column.shape, size, tiles=tiles, span=span)


def tile_settings() -> dict:
    """The tiles a model learns now, as its training settings record them."""
    return {"zoom_tiles": TILES, "zoom_tile_span": TILE_SPAN}


def model_tiles(training: dict, source: str | os.PathLike | None = None) -> tuple[int, float]:
    """The tiles and span a model was trained with, from its training settings.

    A model written before they were recorded learnt :data:`UNRECORDED_TILES`.

    Raises
    ------
    SpineSegError
        When the recorded values are not a positive count and a share in (0, 1].
    """
    tiles = training.get("zoom_tiles", UNRECORDED_TILES[0])
    span = training.get("zoom_tile_span", UNRECORDED_TILES[1])
    if (
        isinstance(tiles, bool)
        or not isinstance(tiles, int)
        or tiles < 1
        or not isinstance(span, int | float)
        or not 0.0 < span <= 1.0
    ):
        raise SpineSegError(
            source,
            f"has unusable zoom tiles in its training settings ({tiles!r} of {span!r}; "
            "expected a positive count and a share of the column in (0, 1])",
        )
    return tiles, float(span)
