"""The spine curve: centre line and Cobb angles of landmarks or a trimap, drawn in napari.

For a landmarks (Points) layer the angles are the challenge's reference computation
(:func:`~napari_spine_seg.spine.cobb.cobb_details`); for a trimap (Labels) layer,
predicted or corrected, they are measured on the column's centre line
(:func:`~napari_spine_seg.spine.centreline.cobb_from_trimap`; a layer the Predict or
Review widget made from a network's prediction is measured as one). A Shapes layer
``<layer> curve`` shows the centre line and, for each of the three angles (PT, MT, TL/L,
in ``angles.csv`` order), the lines of its two end vertebrae in the angle's colour, the
upper one labelled with the angle. The labels sit beside their lines and never overlap
(:func:`place_labels`); their text grows and shrinks with the image when zooming, so
that it keeps to its box. For a stack the slice shown is measured, and the
drawing follows the slider. After an edit (painting, moving a landmark) the drawing is
redone by itself, once the edits pause for :data:`REFRESH_MS`.

The functions :func:`curve_from_landmarks` and :func:`curve_from_trimap` turn the core's
results into drawable shapes and import no napari; the widget only moves data between
layers and them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton

from ...errors import SpineSegError
from ...trimap import N_LANDMARKS, rowcol_to_xy, sort_landmarks, xy_to_rowcol
from .._layers import METADATA_KEY
from .._notify import notify_error
from ._layout import arrange_when_docked

if TYPE_CHECKING:
    import napari

#: suffix of the Shapes layer drawn for a layer
CURVE_SUFFIX = " curve"
#: display names of the three angles, in ``angles.csv`` order
ANGLE_LABELS = ("PT", "MT", "TL/L")
#: colour of each angle's end-vertebra lines
ANGLE_COLOURS = ("#ffd60a", "#30d5ff", "#ff5ad2")
#: relative line width of each angle: a vertebra that ends two angles shows both colours
ANGLE_WIDTHS = (2.0, 1.3, 0.7)
CENTRE_COLOUR = "#ff3b30"
#: milliseconds to wait after an edit before drawing again (strokes come in bursts)
REFRESH_MS = 300
#: an end-vertebra line is drawn this many times the vertebra's width
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
        angle and end vertebra.
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


def _drawing(
    details, centre_xy: np.ndarray, warnings: list[str], source: str, image_shape
) -> CurveDrawing:
    """Shapes of a :class:`~napari_spine_seg.spine.cobb.CobbResult` and a centre line."""
    shapes = [xy_to_rowcol(centre_xy)]
    types, colours, labels, widths = ["path"], [CENTRE_COLOUR], [""], [1.0]
    texts: dict[int, str] = {}  # shape index of an upper end vertebra's line -> its text
    labelled: dict[int, int] = {}  # vertebra -> index of the line carrying its text
    for k, (pair, angle) in enumerate(zip(details.pairs, details.angles, strict=True)):
        text = f"{ANGLE_LABELS[k]} {angle:.1f}°"
        for j, vertebra in enumerate(dict.fromkeys(pair)):  # (i, i): one line
            left, right = details.left[vertebra], details.right[vertebra]
            centre, half = (left + right) / 2, (right - left) / 2 * LINE_EXTENSION
            shapes.append(xy_to_rowcol(np.array([centre - half, centre + half])))
            types.append("line")
            colours.append(ANGLE_COLOURS[k])
            labels.append("")
            widths.append(ANGLE_WIDTHS[k])
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
        The centre line runs through the 34 end-plate mid-points.

    Raises
    ------
    SpineSegError
        When the landmarks are not 68 finite points or a vertebra has no width.
    """
    from ...spine.cobb import cobb_details

    points = np.asarray(landmarks_xy, dtype=np.float64)
    if points.shape != (N_LANDMARKS, 2):
        raise SpineSegError(
            None, f"{len(points)} landmarks on this image; {N_LANDMARKS} are needed"
        )
    points = sort_landmarks(points)
    details = cobb_details(points, image_height)
    centre = (points[0::2] + points[1::2]) / 2  # end-plate mid-points, top to bottom
    width = float(points[:, 0].max() + points[:, 0].min())  # the spine in its middle
    return _drawing(details, centre, [], "landmarks", (float(image_height), width))


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
    from ...spine.centreline import cobb_from_trimap

    result = cobb_from_trimap(trimap, outline="predicted" if predicted else "auto")
    centre = result.centreline
    step = max(1, int(np.ceil(len(centre) / MAX_PATH_POINTS)))
    thinned = np.concatenate([centre[::step], centre[-1:]]) if len(centre) > 1 else centre
    return _drawing(result.details, thinned, result.warnings, "trimap", np.shape(trimap))


class SpineCurveWidget(Container):
    """Draw the centre line and the Cobb angles of a landmarks or trimap layer.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        arrange_when_docked(self)  # tabs beside the plugin's other docks; scrolls
        self.viewer = napari_viewer
        self.drawing: CurveDrawing | None = None
        self._layer = None
        self._started = False  # edits and the slider redraw only once a curve was asked for

        self.layer = ComboBox(label="layer", choices=self._choices, nullable=True)
        self.follow = CheckBox(text="draw again after each edit", value=True)
        self.draw_button = PushButton(text="Draw spine curve")
        self.angles = Label(label="Cobb", value="–")
        self.message = Label(label="", value="")
        self.message.native.setWordWrap(True)  # warnings are long; the dock stays narrow
        self.extend([self.layer, self.follow, self.draw_button, self.angles, self.message])
        self._last_error = ""

        from qtpy.QtCore import QTimer

        self._timer = QTimer(self.native)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.draw)

        self.draw_button.clicked.connect(self.draw)
        self.layer.changed.connect(self._watch)
        for event in ("inserted", "removed", "reordered"):
            getattr(napari_viewer.layers.events, event).connect(self._refresh_choices)
        napari_viewer.layers.selection.events.active.connect(self._follow_active)
        napari_viewer.dims.events.current_step.connect(self._slice_changed)
        self._refresh_choices()
        self._follow_active()

    # -- which layer ----------------------------------------------------------------------------

    def _choices(self, _widget=None):
        from napari.layers import Labels, Points

        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Labels | Points)
        ]

    def _refresh_choices(self, _event=None) -> None:
        self.layer.reset_choices()

    def _follow_active(self, _event=None) -> None:
        from napari.layers import Labels, Points

        active = self.viewer.layers.selection.active
        if isinstance(active, Labels | Points) and active is not self.layer.value:
            self.layer.value = active

    def _watch(self, layer) -> None:
        if self._layer is not None:
            for name in ("paint", "data"):
                emitter = getattr(self._layer.events, name, None)
                if emitter is not None:
                    emitter.disconnect(self._edited)
        self._layer = layer
        if layer is not None:
            for name in ("paint", "data"):
                emitter = getattr(layer.events, name, None)
                if emitter is not None:
                    emitter.connect(self._edited)

    def _edited(self, _event=None) -> None:
        if self.follow.value and self._started:
            self._timer.start()

    def _slice_changed(self, _event=None) -> None:
        layer = self.layer.value
        if layer is not None and layer.ndim == 3 and self._started and self.follow.value:
            self._timer.start()

    # -- drawing --------------------------------------------------------------------------------

    def draw(self) -> None:
        """Measure the chosen layer (the slice shown, for a stack) and draw its curve."""
        layer = self.layer.value
        self._started = True
        try:
            if layer is None:
                raise SpineSegError(None, "choose a landmarks (Points) or trimap (Labels) layer")
            index = self._slice_index(layer)
            drawing = self._measure(layer, index)
        except SpineSegError as exc:
            self._fail(layer, str(exc))
            return
        self.drawing = drawing
        self._last_error = ""
        self.angles.value = drawing.summary
        self.message.value = "; ".join(drawing.warnings) if drawing.warnings else ""
        self._show(layer, index, drawing)

    def _slice_index(self, layer) -> int | None:
        if layer.ndim == 2:
            return None
        if layer.ndim != 3:
            raise SpineSegError(None, f"layer {layer.name!r} is not one image or a stack of them")
        position = self.viewer.dims.point[-layer.ndim :]
        index = int(np.round(layer.world_to_data(position)[0]))
        from napari.layers import Labels

        if isinstance(layer, Labels):  # stay inside the stack
            index = int(min(max(index, 0), layer.data.shape[0] - 1))
        return index

    def _measure(self, layer, index: int | None) -> CurveDrawing:
        from napari.layers import Labels

        meta = layer.metadata.get(METADATA_KEY, {})
        shape = _true_shape(meta, index)
        if isinstance(layer, Labels):
            trimap = np.asarray(layer.data if index is None else layer.data[index])
            if shape is not None:
                trimap = trimap[: shape[0], : shape[1]]
            return curve_from_trimap(trimap, predicted=bool(meta.get("predicted")))
        points = np.asarray(layer.data, dtype=np.float64)
        if index is not None:
            points = points[np.round(points[:, 0]) == index][:, 1:]
        if len(points) != N_LANDMARKS:
            where = "this image" if index is None else f"image {index + 1} of the stack"
            raise SpineSegError(
                None,
                f"layer {layer.name!r} has {len(points)} landmarks on {where}; "
                f"{N_LANDMARKS} are needed",
            )
        height = shape[0] if shape is not None else self._image_height(layer)
        return curve_from_landmarks(rowcol_to_xy(points), height)

    def _image_height(self, layer) -> float:
        """Rows of the image under a Points layer without size metadata."""
        from napari.layers import Image

        for other in self.viewer.layers:
            if isinstance(other, Image) and other.ndim == layer.ndim:
                return float(other.data.shape[-2])
        raise SpineSegError(
            None, f"no image for layer {layer.name!r}: open its X-ray to give the image height"
        )

    def _fail(self, layer, message: str) -> None:
        self.drawing = None
        self.angles.value = "–"
        self.message.value = message
        if message != self._last_error:  # redraws after each edit would repeat it
            notify_error(message)
        self._last_error = message
        if layer is not None:
            curve = self._curve_layer(layer)
            if curve is not None:
                curve.data = []

    def _curve_layer(self, layer):
        name = layer.name + CURVE_SUFFIX
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _show(self, layer, index: int | None, drawing: CurveDrawing) -> None:
        from napari.layers import Shapes

        shapes = drawing.shapes
        if index is not None:
            shapes = [np.column_stack([np.full(len(s), float(index)), s]) for s in shapes]
        lines = [s for s, t in zip(drawing.shapes, drawing.shape_types, strict=True) if t == "line"]
        span = np.median([np.hypot(*(s[1] - s[0])) for s in lines]) if lines else 40.0
        unit = float(max(1.0, 0.04 * span))
        curve = self._curve_layer(layer)
        if curve is not None and curve.ndim != layer.ndim:
            self.viewer.layers.remove(curve)
            curve = None
        if curve is None:
            curve = Shapes(
                ndim=layer.ndim,
                name=layer.name + CURVE_SUFFIX,
                scale=layer.scale,
                translate=layer.translate,
                features={"label": np.array([], dtype=str), "labels_line": np.array([], int)},
                text={
                    "string": "{label}",
                    "color": "white",
                    "size": drawing.label_size,
                    "anchor": "center",
                    "scaling": True,  # in image pixels: the text stays in its box
                },
                metadata={METADATA_KEY: {"measured_layer": layer.name}},
            )
            self.viewer.add_layer(curve)
            self.viewer.layers.selection.active = layer  # keep editing the measured layer
        curve.data = []
        curve.add(
            shapes,
            shape_type=drawing.shape_types,
            edge_color=drawing.colours,
            edge_width=[unit * w for w in drawing.widths],
            face_color="transparent",
        )
        curve.features = {"label": drawing.labels, "labels_line": drawing.label_of}
        curve.text.size = drawing.label_size
        curve.refresh_text()


def _true_shape(meta: dict, index: int | None) -> tuple[int, int] | None:
    """Rows and columns of the image itself (a stack's slices are padded)."""
    if index is not None and meta.get("shapes") and 0 <= index < len(meta["shapes"]):
        return tuple(int(v) for v in meta["shapes"][index])
    if index is None and meta.get("image_shape"):
        return tuple(int(v) for v in meta["image_shape"][:2])
    return None
