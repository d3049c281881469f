"""What the Spine curve widget draws: Cobb angles of landmarks or a trimap as shapes.

The functions :func:`curve_from_landmarks` and :func:`curve_from_trimap` turn the core's
results into drawable shapes and import no napari; the widget
(:mod:`.spine_curve_widget`) only moves data between layers and them.

For landmarks the lines are the end plates each angle is taken from, as a radiologist
draws them: the upper end plate of the upper end vertebra and the lower end plate of
the lower one, extended to :data:`LINE_EXTENSION` times their length. The angle's value
is the challenge's reference (:func:`~napari_spine_seg.spine.cobb.cobb_details`), which
measures each vertebra along the line through the mid-points of its sides; for a body
whose end plates are not parallel (a wedged vertebra) the drawn plate and that line
differ by a degree or two. For a trimap there are no end plates: the lines are the
virtual vertebrae of the centre line the angles were measured on.

The labels sit beside their lines and never overlap (:func:`place_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import SpineSegError
from ...spine.centreline import cobb_from_trimap
from ...spine.cobb import cobb_details
from ...spine.vertebra_labels import end_plates, vertebra_name
from ...trimap import N_LANDMARKS, sort_landmarks, xy_to_rowcol

#: display names of the three angles, in ``angles.csv`` order
ANGLE_LABELS = ("PT", "MT", "TL/L")
#: colour of each angle's end-vertebra lines
ANGLE_COLOURS = ("#ffd60a", "#30d5ff", "#ff5ad2")
#: relative line width of each angle: a vertebra that ends two angles shows both colours
ANGLE_WIDTHS = (2.0, 1.3, 0.7)
CENTRE_COLOUR = "#ff3b30"
#: an end-vertebra line (or end plate) is drawn this many times its length
LINE_EXTENSION = 2.5
#: at most this many points are drawn along a trimap's centre line
MAX_PATH_POINTS = 120
#: label font size, in image rows per row of the image (the text is about 2.5 % of the
#: view's height when the whole image shows)
LABEL_SIZE = 1 / 55
#: a label's box per font size: vispy draws a font size s as an em of 4/3 s data units
#: (the text scales with the zoom); a glyph advances at most 0.7 em (measured on
#: screenshots: "TL/L 29.2°" is 6.6 em wide), a line is 1.3 em, half an em of margin
_EM, _ADVANCE, _LINE = 4 / 3, 0.7, 1.3


@dataclass(frozen=True)
class CurveDrawing:
    """What the widget draws: the angles and the shapes that show them.

    Attributes
    ----------
    angles : (3,) ndarray
        Degrees, ``angles.csv`` order (PT, MT, TL/L).
    shapes : list of (k, 2) ndarray
        ``(row, col)`` vertices: the centre line (a path) first, then one line per
        angle and end vertebra (for landmarks its end plate), then the labels' boxes.
    shape_types : list of str
        ``"path"`` or ``"line"`` per shape.
    colours : list of str
        Edge colour per shape.
    labels : list of str
        Text per shape: a label's box (a transparent rectangle, last in the list)
        carries the angle(s) whose upper end vertebra its line is; other shapes "".
    widths : list of float
        Relative edge width per shape (the centre line is 1).
    warnings : list of str
        What makes the angles doubtful (from the core).
    source : str
        ``"landmarks"`` (reference computation) or ``"trimap"`` (centre line).
    label_size : float
        Font size of the labels in image rows (the boxes are made for it).
    label_of : list of int
        Per shape: for a label's box, the index of the line it labels; else -1.
    ends : list of str
        Per shape: for an end plate drawn from landmarks, which one (``"T4 upper end
        plate"``); else "".
    """

    angles: np.ndarray
    shapes: list[np.ndarray]
    shape_types: list[str]
    colours: list[str]
    labels: list[str]
    widths: list[float]
    warnings: list[str] = field(default_factory=list)
    source: str = "landmarks"
    label_size: float = 12.0
    label_of: list[int] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)

    @property
    def label_boxes(self) -> list[tuple[str, np.ndarray]]:
        """``(text, (row0, col0, row1, col1))`` of each label's box."""
        return [
            (text, np.array([*shape.min(axis=0), *shape.max(axis=0)]))
            for text, shape, kind in zip(self.labels, self.shapes, self.shape_types, strict=True)
            if kind == "rectangle"
        ]

    @property
    def summary(self) -> str:
        """The angles as one line, e.g. ``PT 12.3°  MT 25.0°  TL/L 8.1°``."""
        return "  ".join(f"{n} {a:.1f}°" for n, a in zip(ANGLE_LABELS, self.angles, strict=True))


def label_box_size(text: str, size: float) -> tuple[float, float]:
    """``(height, width)`` in image pixels of the box that holds `text` at font `size`."""
    em = _EM * size
    return _LINE * em, _ADVANCE * em * len(text) + em


def place_labels(
    lines: list[np.ndarray], texts: list[str], size: float, image_width: float | None = None
) -> list[np.ndarray]:
    """Boxes for the labels of `lines`, each beside its line, no two overlapping.

    Each box goes left of its line's left end (right of its right end where the image
    has no room on the left), centred on that end's row. Where boxes would meet, the
    lower ones move down just far enough, in row order, so that no two share a row:
    boxes that share no row cannot overlap, whichever side they are on.

    Parameters
    ----------
    lines : list of (2, 2) ndarray
        ``(row, col)`` ends of each labelled line.
    texts : list of str
        The label of each line.
    size : float
        Font size in image pixels (see :func:`label_box_size`).
    image_width : float, optional
        Columns of the image; without it, boxes always go left.

    Returns
    -------
    list of (4, 2) ndarray
        Corners ``(row, col)`` of each box, clockwise from its top-left one.
    """
    gap = 0.5 * _EM * size
    wanted = []
    for line, text in zip(lines, texts, strict=True):
        height, width = label_box_size(text, size)
        left, right = sorted(np.asarray(line, dtype=np.float64), key=lambda p: p[1])
        if left[1] - gap - width >= 0 or image_width is None:
            row, c0 = left[0], left[1] - gap - width
        else:
            row, c0 = right[0], right[1] + gap
        wanted.append((row - height / 2, height, c0, width))
    boxes: list[np.ndarray] = [np.empty((4, 2))] * len(wanted)
    bottom = -np.inf
    for i in sorted(range(len(wanted)), key=lambda i: wanted[i][0]):
        top, height, c0, width = wanted[i]
        top = max(top, bottom + 0.1 * height)
        bottom = top + height
        boxes[i] = np.array([[top, c0], [top, c0 + width], [bottom, c0 + width], [bottom, c0]])
    return boxes


def _end_line(details, plates, vertebra: int, upper: bool) -> tuple[np.ndarray, str]:
    """``(x, y)`` ends of the line drawn for `vertebra`, extended, and what it is.

    With `plates` (``(upper, lower)`` of :func:`end_plates`): its upper or lower end
    plate; without: the line through its sides' mid-points (a trimap's virtual vertebra).
    """
    if plates is None:
        left, right, what = details.left[vertebra], details.right[vertebra], ""
    else:
        left, right = plates[0 if upper else 1][vertebra]
        what = f"{vertebra_name(vertebra + 1)} {'upper' if upper else 'lower'} end plate"
    centre, half = (left + right) / 2, (right - left) / 2 * LINE_EXTENSION
    return np.array([centre - half, centre + half]), what


def _drawing(
    details, centre_xy: np.ndarray, warnings: list[str], source: str, image_shape, plates=None
) -> CurveDrawing:
    """Shapes of a :class:`~napari_spine_seg.spine.cobb.CobbResult` and a centre line
    (and of the end plates, when `plates` is given)."""
    shapes = [xy_to_rowcol(centre_xy)]
    types, colours, labels, widths, ends = ["path"], [CENTRE_COLOUR], [""], [1.0], [""]
    texts: dict[int, str] = {}  # shape index of an upper end vertebra's line -> its text
    labelled: dict[int, int] = {}  # vertebra -> index of the line carrying its text
    for k, (pair, angle) in enumerate(zip(details.pairs, details.angles, strict=True)):
        text = f"{ANGLE_LABELS[k]} {angle:.1f}°"
        for j, vertebra in enumerate(dict.fromkeys(pair)):  # (i, i): one line
            line, what = _end_line(details, plates, vertebra, upper=j == 0)
            shapes.append(xy_to_rowcol(line))
            types.append("line")
            colours.append(ANGLE_COLOURS[k])
            labels.append("")
            widths.append(ANGLE_WIDTHS[k])
            ends.append(what)
            if j == 0:  # the upper end vertebra carries the text
                if vertebra in labelled:
                    at = labelled[vertebra]
                    texts[at] = f"{texts[at]}, {text}"
                else:
                    labelled[vertebra] = len(shapes) - 1
                    texts[len(shapes) - 1] = text
    size = float(max(6.0, LABEL_SIZE * image_shape[0]))
    owners = list(texts)
    boxes = place_labels(
        [shapes[i] for i in owners], [texts[i] for i in owners], size, image_shape[1]
    )
    label_of = [-1] * len(shapes)
    for owner, box in zip(owners, boxes, strict=True):
        shapes.append(box)
        types.append("rectangle")
        colours.append("transparent")
        labels.append(texts[owner])
        widths.append(0.0)
        label_of.append(owner)
        ends.append("")
    return CurveDrawing(
        np.asarray(details.angles, dtype=np.float64),
        shapes,
        types,
        colours,
        labels,
        widths,
        list(warnings),
        source,
        size,
        label_of,
        ends,
    )


def curve_from_landmarks(landmarks_xy: np.ndarray, image_height: float) -> CurveDrawing:
    """The reference Cobb angles of 68 landmarks, as shapes to draw.

    Parameters
    ----------
    landmarks_xy : (68, 2) array_like
        ``(x, y)``; re-sorted into the data set's order first (as ``spine-seg cobb``
        does), so a landmark dragged past its neighbour does not scramble the vertebrae.
    image_height : float
        Rows of the image (the reference uses it to tell an upper from a lower curve).

    Returns
    -------
    CurveDrawing
        The centre line runs through the 34 end-plate mid-points; each angle's lines
        are the upper end plate of its upper end vertebra and the lower end plate of
        its lower one.

    Raises
    ------
    SpineSegError
        When the landmarks are not 68 finite points or a vertebra has no width.
    """
    points = np.asarray(landmarks_xy, dtype=np.float64)
    if points.shape != (N_LANDMARKS, 2):
        raise SpineSegError(
            None, f"{len(points)} landmarks on this image; {N_LANDMARKS} are needed"
        )
    points = sort_landmarks(points)
    details = cobb_details(points, image_height)
    centre = (points[0::2] + points[1::2]) / 2  # end-plate mid-points, top to bottom
    width = float(points[:, 0].max() + points[:, 0].min())  # the spine in its middle
    shape = (float(image_height), width)
    return _drawing(details, centre, [], "landmarks", shape, end_plates(points))


def curve_from_trimap(trimap: np.ndarray, *, predicted: bool = False) -> CurveDrawing:
    """Cobb angles measured on a trimap's centre line, as shapes to draw.

    Parameters
    ----------
    trimap : (H, W) array_like
        1 spine, 2 background, 3 border; 0 (unlabelled) counts as background.
    predicted : bool
        The trimap is a network's prediction (measured with ``outline="predicted"``).

    Returns
    -------
    CurveDrawing
        The centre line is the smoothed one the angles were measured on; the end
        vertebrae are its virtual vertebrae.

    Raises
    ------
    SpineSegError
        When the trimap has no spine or one too short to measure.
    """
    result = cobb_from_trimap(trimap, outline="predicted" if predicted else "auto")
    centre = result.centreline
    step = max(1, int(np.ceil(len(centre) / MAX_PATH_POINTS)))
    thinned = np.concatenate([centre[::step], centre[-1:]]) if len(centre) > 1 else centre
    return _drawing(result.details, thinned, result.warnings, "trimap", np.shape(trimap))
