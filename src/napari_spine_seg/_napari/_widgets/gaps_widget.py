"""The gap inspector: where a segmented spine needs a person's eye.

The widget runs :func:`~napari_spine_seg.spine.gaps.find_gaps` on a trimap layer
(predicted or corrected; for a stack, the slice shown), with the matching
``<image> probability`` layer when there is one, and lists what it finds: breaks in
the column, extra pieces, holes, narrowings and low-confidence stretches, each with
its position and size. A Points layer ``<trimap> gaps`` marks them; Previous and Next
(and the keys in :data:`SHORTCUTS`) centre and zoom the camera on each in turn. After
an edit of the trimap the list refreshes by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, PushButton, Table

from ...errors import SpineSegError
from .._layers import METADATA_KEY
from ._layout import arrange_when_docked
from ._workers import show_error, start_worker, status_label

if TYPE_CHECKING:
    import napari

SHORTCUTS = {
    "G": ("centre on the next gap", "next_gap"),
    "Shift-G": ("centre on the previous gap", "previous_gap"),
}
GAPS_SUFFIX = " gaps"
#: marker colour per kind of gap
KIND_COLOURS = {
    "break": "#ff2d2d",
    "extra-component": "#ff40ff",
    "hole": "#30e0ff",
    "narrowing": "#ff9f1a",
    "low-confidence": "#fff03a",
}
#: milliseconds to wait after an edit before analysing again (strokes come in bursts)
REFRESH_MS = 400
#: a gap is shown in a window this many times its height (at least a quarter of the image)
ZOOM_CONTEXT = 4.0


def _camera(viewer):
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _canvas_size(viewer) -> tuple[int, int]:
    canvas = getattr(viewer, "canvas", None)
    size = canvas.size if canvas is not None else viewer._canvas_size
    return int(size[0]), int(size[1])


def probability_layer_for(viewer, trimap_layer):
    """The probability layer predicted with `trimap_layer`, or None.

    Predict's layers are paired by their metadata (whatever their names); other
    widgets' by name: ``<image> trimap`` goes with ``<image> probability``.
    """
    from napari.layers import Image

    from .predict_widget import is_probability_layer

    prediction = trimap_layer.metadata.get(METADATA_KEY, {}).get("prediction")
    candidates = [
        layer
        for layer in viewer.layers
        if isinstance(layer, Image)
        and layer.data.shape == trimap_layer.data.shape
        and is_probability_layer(layer)
    ]
    if prediction is not None:
        paired = [
            c
            for c in candidates
            if c.metadata.get(METADATA_KEY, {}).get("prediction") == prediction
        ]
        if paired:
            return paired[0]
    if trimap_layer.name.endswith(" trimap"):
        name = trimap_layer.name[: -len(" trimap")] + " probability"
        return next((c for c in candidates if c.name == name), None)
    return None


class GapsWidget(Container):
    """List, mark and visit the gaps of a trimap layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        arrange_when_docked(self)  # tabs beside the plugin's other docks; scrolls
        self.viewer = viewer
        self.gaps: list = []
        self.current = -1
        self._layer = None
        self._slice: int | None = None
        self._workers: set = set()
        self._pending = False

        self.trimap = ComboBox(label="trimap", choices=self._trimap_choices, nullable=True)
        self.auto = CheckBox(text="analyse again after each edit", value=True)
        self.analyse_button = PushButton(text="Find gaps")
        self.summary = status_label(label="found", value="–")
        self.table = Table(value={"kind": [], "row": [], "col": [], "rows": []})
        self.table.read_only = True
        from qtpy.QtWidgets import QHeaderView

        self.table.native.verticalHeader().setVisible(False)
        self.table.native.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.previous_button = PushButton(text="◀ Previous gap  [Shift-G]")
        self.next_button = PushButton(text="Next gap ▶  [G]")
        nav = Container(
            widgets=[self.previous_button, self.next_button], layout="horizontal", labels=False
        )
        self.extend([self.trimap, self.auto, self.analyse_button, self.summary, self.table, nav])
        self.table.min_height = 160

        from qtpy.QtCore import QTimer

        self._timer = QTimer(self.native)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.analyse)

        self.analyse_button.clicked.connect(self.analyse)
        self.previous_button.clicked.connect(self.previous_gap)
        self.next_button.clicked.connect(self.next_gap)
        self.trimap.changed.connect(self._watch)
        self.table.native.itemSelectionChanged.connect(self._row_chosen)
        viewer.layers.events.removed.connect(self._layer_removed)
        for event in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, event).connect(self._refresh_choices)
        viewer.layers.selection.events.active.connect(self._follow_active)
        for key, (_, method) in SHORTCUTS.items():
            viewer.bind_key(key, self._shortcut(method), overwrite=True)
        self._refresh_choices()
        self._follow_active()

    # -- choosing the trimap ----------------------------------------------------------------------

    def _shortcut(self, method: str):
        def handler(_viewer):
            getattr(self, method)()

        handler.__doc__ = f"Gaps: {method.replace('_', ' ')}"
        return handler

    def _trimap_choices(self, _widget=None):
        from napari.layers import Labels

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Labels)]

    def _refresh_choices(self, _event=None) -> None:
        self.trimap.reset_choices()

    def _follow_active(self, _event=None) -> None:
        from napari.layers import Labels

        active = self.viewer.layers.selection.active
        if isinstance(active, Labels) and active is not self.trimap.value:
            self.trimap.value = active

    def _watch(self, layer) -> None:
        if self._layer is not None:
            self._layer.events.paint.disconnect(self._edited)
            self._layer.events.data.disconnect(self._edited)
        self._layer = layer
        if layer is not None:
            layer.events.paint.connect(self._edited)
            layer.events.data.connect(self._edited)

    def _edited(self, _event=None) -> None:
        if self.auto.value:
            self._timer.start()

    # -- analysis -------------------------------------------------------------------------------

    def analyse(self) -> None:
        """Find the gaps of the chosen trimap (the slice shown, for a stack) in a thread."""
        from ...spine.gaps import find_gaps

        layer = self.trimap.value
        if layer is None:
            self._fail(SpineSegError(None, "choose a trimap layer to analyse"))
            return
        if self._workers:  # one analysis at a time; the latest edit is analysed next
            self._pending = True
            return
        data, index = np.asarray(layer.data), None
        if data.ndim == 3:
            index = int(self.viewer.dims.current_step[0])
            data = np.asarray(layer.data[index])
        elif data.ndim != 2:
            self._fail(SpineSegError(None, f"layer {layer.name!r} is not a 2-D trimap or a stack"))
            return
        trimap = data.copy()
        crop = self._true_shape(layer, index)
        if crop is not None:
            trimap = trimap[: crop[0], : crop[1]]
        prob_layer = probability_layer_for(self.viewer, layer)
        probability = None
        if prob_layer is not None:
            probability = np.asarray(prob_layer.data if index is None else prob_layer.data[index])
            probability = probability[: trimap.shape[0], : trimap.shape[1]].copy()

        def done(gaps):
            if layer is self.trimap.value:
                self._show(layer, index, gaps)

        def finish():
            self._workers.discard(worker)
            if self._pending:
                self._pending = False
                self.analyse()

        worker = start_worker(
            find_gaps, trimap, probability, on_return=done, on_error=self._fail, on_finish=finish
        )
        self._workers.add(worker)

    @staticmethod
    def _true_shape(layer, index):
        meta = layer.metadata.get(METADATA_KEY, {})
        if index is not None and meta.get("shapes"):
            return tuple(meta["shapes"][index])
        return None

    def _fail(self, exc: BaseException) -> None:
        show_error(self.summary, exc)

    def _show(self, layer, index, gaps) -> None:
        self.gaps = list(gaps)
        self._slice = index
        self.current = -1
        counts: dict[str, int] = {}
        for gap in self.gaps:
            counts[gap.kind] = counts.get(gap.kind, 0) + 1
        self.summary.value = (
            ", ".join(f"{n} {kind}" for kind, n in counts.items()) if counts else "no gaps"
        )
        self.table.value = {
            "kind": [g.kind for g in self.gaps],
            "row": [int(g.row) for g in self.gaps],
            "col": [int(g.col) for g in self.gaps],
            "rows": [int(g.height) for g in self.gaps],
        }
        from qtpy.QtWidgets import QHeaderView

        # the kind in full, the numbers share the rest (set again: a new value resets it)
        header = self.table.native.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self._mark(layer, index)

    def _mark(self, layer, index) -> None:
        from napari.layers import Points

        name = layer.name + GAPS_SUFFIX
        coords = np.array([[g.row, g.col] for g in self.gaps], dtype=float).reshape(-1, 2)
        if index is not None:
            coords = np.column_stack([np.full(len(coords), index, float), coords])
        width = float(layer.data.shape[-1])
        # a square about as tall as the gap: drawn as an outline, so it hides nothing
        sizes = [float(np.clip(1.2 * g.height, 0.06 * width, 0.25 * width)) for g in self.gaps]
        colours = [KIND_COLOURS.get(g.kind, "#ffffff") for g in self.gaps]
        features = {"kind": [g.kind for g in self.gaps], "rows": [int(g.height) for g in self.gaps]}
        existing = self.viewer.layers[name] if name in self.viewer.layers else None
        if existing is not None and existing.ndim != coords.shape[1]:
            self.viewer.layers.remove(existing)
            existing = None
        if existing is None:
            points = Points(
                coords,
                name=name,
                ndim=coords.shape[1],
                size=sizes or 10.0,
                symbol="square",
                face_color="transparent",
                border_color=colours or "white",
                border_width=0.12,
                features=features,
                scale=layer.scale,
                translate=layer.translate,
                metadata={METADATA_KEY: {"trimap_layer": layer.name}},
            )
            self.viewer.add_layer(points)
            self.viewer.layers.selection.active = layer  # keep painting on the trimap
        else:
            existing.data = coords
            existing.features = features
            if len(coords):
                existing.size = sizes
                existing.border_color = colours

    def _layer_removed(self, event) -> None:
        """Forget a trimap layer that is gone, and take its gap markers away with it."""
        removed = event.value
        if self._layer is not None and removed == self._layer:
            self._watch(None)
            name = removed.name + GAPS_SUFFIX
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            self._show_nothing()

    def _show_nothing(self) -> None:
        self.gaps, self.current, self._slice = [], -1, None
        self.summary.value = "–"
        self.table.value = {"kind": [], "row": [], "col": [], "rows": []}

    # -- visiting -------------------------------------------------------------------------------

    def _row_chosen(self) -> None:
        rows = {i.row() for i in self.table.native.selectedIndexes()}
        if len(rows) == 1:
            self.go_to(rows.pop())

    def next_gap(self) -> None:
        """Centre and zoom on the next gap (round to the first after the last)."""
        if self.gaps:
            self.go_to((self.current + 1) % len(self.gaps))

    def previous_gap(self) -> None:
        """Centre and zoom on the previous gap."""
        if self.gaps:
            self.go_to((self.current - 1) % len(self.gaps))

    def go_to(self, index: int) -> None:
        """Centre the camera on gap `index` and zoom so that it shows with its surroundings."""
        if not 0 <= index < len(self.gaps):
            return
        layer = self.trimap.value
        gap = self.gaps[index]
        self.current = index
        point = [gap.row, gap.col] if self._slice is None else [self._slice, gap.row, gap.col]
        world = np.asarray(layer.data_to_world(point) if layer is not None else point, float)
        camera = _camera(self.viewer)
        if self._slice is not None:
            self.viewer.dims.set_current_step(0, self._slice)
        camera.center = tuple(world[-2:])
        rows = layer.data.shape[-2] if layer is not None else gap.height
        span = max(ZOOM_CONTEXT * gap.height, rows / 4.0)
        scale = float(layer.scale[-2]) if layer is not None else 1.0
        camera.zoom = min(_canvas_size(self.viewer)) / (span * scale)
        self.table.native.blockSignals(True)
        self.table.native.selectRow(index)
        self.table.native.blockSignals(False)
        self.summary.value = (
            f"gap {index + 1}/{len(self.gaps)}: {gap.kind} at row {gap.row}, col {gap.col}, "
            f"{gap.height} rows"
        )
