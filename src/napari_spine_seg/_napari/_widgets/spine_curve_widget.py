"""The spine curve: centre line and Cobb angles of landmarks or a trimap, drawn in napari.

For a landmarks (Points) layer the angles are the challenge's reference computation
(:func:`~napari_spine_seg.spine.cobb.cobb_details`), and the lines drawn are the end
plates each angle is taken from. A trimap or vertebrae (Labels) layer that Predict made
together with a landmarks layer (the same prediction) is measured on those landmarks
while *measure a prediction's landmarks* is on; other trimaps, predicted or corrected,
are measured on the column's centre line
(:func:`~napari_spine_seg.spine.centreline.cobb_from_trimap`; a layer the Predict or
Review widget made from a network's prediction is measured as one). A Shapes layer
``<measured layer> curve`` shows the centre line and, for each of the three angles (PT,
MT, TL/L, in ``angles.csv`` order), the lines of its two end vertebrae in the angle's
colour, the upper one labelled with the angle (:mod:`._cobb_drawing`). For a stack the
slice shown is measured, and the drawing follows the slider. After an edit (painting,
moving a landmark) the drawing is redone by itself, once the edits pause for
:data:`REFRESH_MS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Label, PushButton

from ...errors import SpineSegError
from ...trimap import N_LANDMARKS, rowcol_to_xy
from .._layers import METADATA_KEY
from .._notify import notify_error
from ._cobb_drawing import (  # noqa: F401  (the drawing's names, as before the split)
    ANGLE_COLOURS,
    ANGLE_LABELS,
    CurveDrawing,
    curve_from_landmarks,
    curve_from_trimap,
    label_box_size,
    place_labels,
)
from ._dock import Dock

if TYPE_CHECKING:
    import napari

#: suffix of the Shapes layer drawn for a layer
CURVE_SUFFIX = " curve"
#: milliseconds to wait after an edit before drawing again (strokes come in bursts)
REFRESH_MS = 300
#: metadata key and value Predict gives its landmarks layers (``_vertebra_layers``)
ROLE, LANDMARKS_ROLE, VERTEBRAE_ROLE = "role", "landmarks", "vertebrae"


class SpineCurveWidget(Dock):
    """Draw the centre line and the Cobb angles of a landmarks or trimap layer.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(napari_viewer)
        self.drawing: CurveDrawing | None = None
        self._watched: list = []  # the chosen layer, and the landmarks measured for it
        self._started = False  # edits and the slider redraw only once a curve was asked for

        self.layer = ComboBox(label="layer", choices=self._choices, nullable=True)
        self.follow = CheckBox(text="draw again after each edit", value=True)
        self.linked = CheckBox(text="measure a prediction's landmarks", value=True)
        self.draw_button = PushButton(text="Draw spine curve")
        self.angles = Label(label="Cobb", value="–")
        self.message = Label(label="", value="")
        self.message.native.setWordWrap(True)  # warnings are long; the dock stays narrow
        self.extend(
            [self.layer, self.follow, self.linked, self.draw_button, self.angles, self.message]
        )
        self._last_error = ""

        from qtpy.QtCore import QTimer

        self._timer = QTimer(self.native)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.draw)

        self.draw_button.clicked.connect(self.draw)
        self.linked.changed.connect(self._edited)  # measure the other layer at once
        self.layer.changed.connect(lambda layer: self._watch([layer]))
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

    def _watch(self, layers: list) -> None:
        """Redraw after edits of `layers` (and of no other layer)."""
        layers = [layer for layer in dict.fromkeys(layers) if layer is not None]
        if layers == self._watched:
            return
        for layer, connect in [(x, False) for x in self._watched] + [(x, True) for x in layers]:
            for name in ("paint", "data"):
                emitter = getattr(layer.events, name, None)
                if emitter is not None:
                    (emitter.connect if connect else emitter.disconnect)(self._edited)
        self._watched = layers

    def _linked_landmarks(self, layer):
        """The landmarks layer Predict made with `layer` (the same prediction), or None."""
        from napari.layers import Points

        prediction = layer.metadata.get(METADATA_KEY, {}).get("prediction")
        if prediction is None or not self.linked.value:
            return None
        for other in self.viewer.layers:
            meta = other.metadata.get(METADATA_KEY, {})
            if isinstance(other, Points) and meta.get("prediction") == prediction:
                return other
        return None

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
            measured, drawing = self._measure(layer, index)
        except SpineSegError as exc:
            self._fail(layer, str(exc))
            return
        self.drawing = drawing
        self._last_error = ""
        self.angles.value = drawing.summary
        notes = list(drawing.warnings)
        if measured is not layer:
            notes.insert(0, f"measured on the landmarks of {measured.name!r}")
        self.message.value = "; ".join(notes)
        self._show(measured, index, drawing, keep_active=layer)

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

    def _measure(self, layer, index: int | None) -> tuple[object, CurveDrawing]:
        """The layer measured for `layer` (itself, or its prediction's landmarks), and
        its drawing."""
        from napari.layers import Labels

        meta = layer.metadata.get(METADATA_KEY, {})
        if not isinstance(layer, Labels):
            self._watch([layer])
            return layer, self._measure_points(layer, index)
        linked = self._linked_landmarks(layer)
        self._watch([layer, linked])
        if linked is not None and len(_points_on(linked, index)) == N_LANDMARKS:
            return linked, self._measure_points(linked, index)
        if meta.get(ROLE) == VERTEBRAE_ROLE:  # labels 1–17 are no trimap
            raise SpineSegError(
                None,
                f"layer {layer.name!r} has no landmarks layer with {N_LANDMARKS} corners "
                "here (17 vertebrae were not found): measure its trimap instead",
            )
        shape = _true_shape(meta, index)
        trimap = np.asarray(layer.data if index is None else layer.data[index])
        if shape is not None:
            trimap = trimap[: shape[0], : shape[1]]
        return layer, curve_from_trimap(trimap, predicted=bool(meta.get("predicted")))

    def _measure_points(self, layer, index: int | None) -> CurveDrawing:
        points = _points_on(layer, index)
        if len(points) != N_LANDMARKS:
            where = "this image" if index is None else f"image {index + 1} of the stack"
            raise SpineSegError(
                None,
                f"layer {layer.name!r} has {len(points)} landmarks on {where}; "
                f"{N_LANDMARKS} are needed",
            )
        shape = _true_shape(layer.metadata.get(METADATA_KEY, {}), index)
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
        for measured in (layer, None if layer is None else self._linked_landmarks(layer)):
            curve = None if measured is None else self._curve_layer(measured)
            if curve is not None:
                curve.data = []

    def _curve_layer(self, layer):
        name = layer.name + CURVE_SUFFIX
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _show(self, layer, index: int | None, drawing: CurveDrawing, keep_active) -> None:
        """Draw `drawing` in ``<layer> curve``; `keep_active` stays the layer edited."""
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
                features={
                    "label": np.array([], dtype=str),
                    "labels_line": np.array([], int),
                    "end_plate": np.array([], dtype=str),
                },
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
            self.viewer.layers.selection.active = keep_active  # keep editing the chosen layer
        curve.data = []
        curve.add(
            shapes,
            shape_type=drawing.shape_types,
            edge_color=drawing.colours,
            edge_width=[unit * w for w in drawing.widths],
            face_color="transparent",
        )
        curve.features = {
            "label": drawing.labels,
            "labels_line": drawing.label_of,
            "end_plate": drawing.ends,
        }
        curve.text.size = drawing.label_size
        curve.refresh_text()


def _points_on(layer, index: int | None) -> np.ndarray:
    """``(row, col)`` of a Points layer's points on slice `index` (all for one image)."""
    points = np.asarray(layer.data, dtype=np.float64)
    if index is not None:
        points = points[np.round(points[:, 0]) == index][:, 1:]
    return points


def _true_shape(meta: dict, index: int | None) -> tuple[int, int] | None:
    """Rows and columns of the image itself (a stack's slices are padded)."""
    if index is not None and meta.get("shapes") and 0 <= index < len(meta["shapes"]):
        return tuple(int(v) for v in meta["shapes"][index])
    if index is None and meta.get("image_shape"):
        return tuple(int(v) for v in meta["image_shape"][:2])
    return None
