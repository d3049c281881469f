"""The gap inspector: where a segmented spine needs a person's eye.

The widget runs :func:`~napari_spine_seg.spine.gaps.find_gaps` on a trimap layer
(predicted or corrected; for a stack, the slice shown), with the matching probability
layer when there is one (Predict's ``<image> predicted probability``, the review
queue's ``<image> probability``), and lists what it finds: breaks in the column, extra
pieces, holes, narrowings and low-confidence stretches, each with its position and
size. A Points layer ``<trimap> gaps`` marks them; Previous and Next (and the keys in
:data:`SHORTCUTS`) centre and zoom the camera on each in turn. After an edit of the
trimap the list refreshes by itself.

- What the person painted (since the widget opened) is certain: a painted pixel is no
  longer of low confidence (:func:`~napari_spine_seg.spine.gaps.with_corrections`).
- Each gap can be ticked as checked. The ticks of an image in a review are kept in the
  review folder (``gaps-checked.json``), so they come back with the review; those of
  any other layer in its metadata (``spine_seg.checked_gaps``), for the session.
- A trimap that does not look like a spine at all (area, height, width or number of
  pieces far from a spine's: :func:`~napari_spine_seg.spine.gaps.implausible`) is
  flagged in one line above the list; one with no spine says "no spine".
- When Predict added ``<image> vertebrae`` with the trimap and its count of bodies is
  not 17 (merged, split, cut off at the edge), a ``"vertebrae"`` gap on the largest
  body (likely two merged) says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, PushButton, Table

from ...errors import SpineSegError
from ...spine.gaps import (
    CHECKED_FILE,
    Gap,
    implausible,
    is_checked,
    read_checked,
    same_gap,
    write_checked,
)
from .._layers import METADATA_KEY
from ._dock import Dock, bind_keys, button_row, key_handler, qt_timer
from ._gaps_helpers import (
    canvas_size,
    inspect_trimap,
    mark_painted,
    probability_layer_for,
    vertebrae_layer_for,
    view_camera,
)
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
    "vertebrae": "#7cff4f",
}
#: milliseconds to wait after an edit before analysing again (strokes come in bursts)
REFRESH_MS = 400
#: a gap is shown in a window this many times its height (at least a quarter of the image)
ZOOM_CONTEXT = 4.0
#: the table's columns (the first one's cells carry the "checked" tick)
COLUMNS = ("✓ kind", "row", "col", "rows")


class GapsWidget(Dock):
    """List, mark and visit the gaps of a trimap layer (a dock of `viewer`)."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self.gaps: list = []
        self.current = -1
        self._layer = None
        self._slice: int | None = None
        self._pending = False

        self.trimap = ComboBox(label="trimap", choices=self._trimap_choices, nullable=True)
        self.auto = CheckBox(text="analyse again after each edit", value=True)
        self.analyse_button = PushButton(text="Find gaps")
        self.summary = status_label(label="found", value="–")
        self.verdict = status_label(label="", value="")
        self.verdict.visible = False
        self.table = Table(value={c: [] for c in COLUMNS})
        self.table.read_only = True
        from qtpy.QtWidgets import QHeaderView

        self.table.native.verticalHeader().setVisible(False)
        self.table.native.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.check_button = PushButton(text="✓ Mark this gap checked")
        self.previous_button = PushButton(text="◀ Previous gap  [Shift-G]")
        self.next_button = PushButton(text="Next gap ▶  [G]")
        nav = button_row(self.previous_button, self.next_button)
        self.extend(
            [
                self.trimap,
                self.auto,
                self.analyse_button,
                self.summary,
                self.verdict,
                self.table,
                self.check_button,
                nav,
            ]
        )
        self.checked: list[bool] = []
        self._painted: dict[int, np.ndarray] = {}
        self.table.min_height = 160

        self._timer = qt_timer(self, REFRESH_MS, self.analyse, single_shot=True)

        self.analyse_button.clicked.connect(self.analyse)
        self.check_button.clicked.connect(self.toggle_checked)
        self.table.native.itemChanged.connect(self._tick_changed)
        self.previous_button.clicked.connect(self.previous_gap)
        self.next_button.clicked.connect(self.next_gap)
        self.trimap.changed.connect(self._watch)
        self.table.native.itemSelectionChanged.connect(self._row_chosen)
        viewer.layers.events.removed.connect(self._layer_removed)
        viewer.layers.events.inserted.connect(self._layer_inserted)
        for layer in viewer.layers:
            self._track_paint(layer)
        for event in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, event).connect(self._refresh_choices)
        viewer.layers.selection.events.active.connect(self._follow_active)
        bind_keys(viewer, SHORTCUTS, lambda method: key_handler(self, method, "Gaps"))
        self._refresh_choices()
        self._follow_active()

    # -- choosing the trimap ----------------------------------------------------------------------

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

    # -- what the person painted ------------------------------------------------------------------

    def _layer_inserted(self, event) -> None:
        self._track_paint(event.value)

    def _track_paint(self, layer) -> None:
        from napari.layers import Labels

        if isinstance(layer, Labels):
            layer.events.paint.connect(self._painted_on)

    def _painted_on(self, event) -> None:
        """Note the pixels of a brush stroke, fill or polygon (any label) as the person's."""
        layer = event.source
        shape = np.shape(layer.data)
        painted = self._painted.get(id(layer))
        if painted is None or painted.shape != shape:
            painted = self._painted[id(layer)] = np.zeros(shape, dtype=bool)
        for atom in event.value or []:
            mark_painted(painted, atom, layer.data)

    def painted(self, layer) -> np.ndarray | None:
        """Pixels of `layer` painted since the widget opened (None: none)."""
        painted = self._painted.get(id(layer))
        return painted if painted is not None and painted.shape == np.shape(layer.data) else None

    # -- analysis -------------------------------------------------------------------------------

    def analyse(self) -> None:
        """Find the gaps of the chosen trimap (the slice shown, for a stack) in a thread."""
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
        probability = painted = None
        if prob_layer is not None:
            probability = np.asarray(prob_layer.data if index is None else prob_layer.data[index])
            probability = probability[: trimap.shape[0], : trimap.shape[1]].copy()
            painted = self.painted(layer)
            if painted is not None:
                painted = painted if index is None else painted[index]
                painted = painted[: trimap.shape[0], : trimap.shape[1]].copy()
        vertebrae = None
        bodies_layer = vertebrae_layer_for(self.viewer, layer)
        if bodies_layer is not None:
            vertebrae = np.asarray(bodies_layer.data if index is None else bodies_layer.data[index])
            vertebrae = vertebrae[: trimap.shape[0], : trimap.shape[1]].copy()

        def done(result):
            if layer is self.trimap.value:
                self._show(layer, index, *result)

        def finish():
            self._workers.discard(worker)
            if self._pending:
                self._pending = False
                self.analyse()

        worker = start_worker(
            inspect_trimap,
            trimap,
            probability,
            painted,
            vertebrae,
            on_return=done,
            on_error=self._fail,
            on_finish=finish,
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

    def _show(self, layer, index, shape, gaps) -> None:
        self.gaps = list(gaps)
        self._slice = index
        self.current = -1
        stored = self._stored_checks(layer, index)
        self.checked = [is_checked(g, stored) for g in self.gaps]
        if shape is None:
            self.verdict.value, self.verdict.visible = "", False
        else:
            reasons = implausible(shape)
            self.verdict.value = "⚠ not like a spine: " + "; ".join(reasons) if reasons else ""
            self.verdict.visible = bool(reasons)
        self._summarise(shape is None)
        self._fill_table()
        self._mark(layer, index)

    def _summarise(self, no_spine: bool = False) -> None:
        counts: dict[str, int] = {}
        for gap in self.gaps:
            counts[gap.kind] = counts.get(gap.kind, 0) + 1
        if no_spine:
            text = "no spine"
        elif counts:
            text = ", ".join(f"{n} {kind}" for kind, n in counts.items())
            if any(self.checked):
                text += f" ({sum(self.checked)} of {len(self.gaps)} checked)"
        else:
            text = "no gaps"
        self.summary.value = text

    def _fill_table(self) -> None:
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QHeaderView

        native = self.table.native
        native.blockSignals(True)
        self.table.value = {
            COLUMNS[0]: [g.kind for g in self.gaps],
            COLUMNS[1]: [int(g.row) for g in self.gaps],
            COLUMNS[2]: [int(g.col) for g in self.gaps],
            COLUMNS[3]: [int(g.height) for g in self.gaps],
        }
        for row, checked in enumerate(self.checked):
            item = native.item(row, 0)
            item.setFlags(Qt.ItemIsUserCheckable | Qt.ItemIsEnabled | Qt.ItemIsSelectable)
            item.setCheckState(Qt.Checked if checked else Qt.Unchecked)
            item.setToolTip("tick when you have looked at it")
        native.blockSignals(False)
        # the kind in full, the numbers share the rest (set again: a new value resets it)
        header = native.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)

    # -- checked marks ----------------------------------------------------------------------------

    def _check_place(self, layer, index):
        """``(file, key)`` of the layer's checks: a review folder's file, or None (metadata)."""
        meta = layer.metadata.get(METADATA_KEY, {})
        review = self.state.review
        if review is not None and meta.get("review"):
            return Path(review.folder) / CHECKED_FILE, str(meta["review"])
        return None, "image" if index is None else f"slice {index}"

    def _stored_checks(self, layer, index) -> list[Gap]:
        path, key = self._check_place(layer, index)
        if path is not None:
            try:
                return read_checked(path).get(key, [])
            except SpineSegError as exc:
                self._fail(exc)
                return []
        stored = layer.metadata.get(METADATA_KEY, {}).get("checked_gaps", {})
        return [Gap(**g) for g in stored.get(key, [])]

    def _store_checks(self, layer, index, gap: Gap, checked: bool) -> None:
        path, key = self._check_place(layer, index)
        if path is not None:
            everything = read_checked(path)
        else:
            meta = layer.metadata.setdefault(METADATA_KEY, {})
            everything = {k: [Gap(**g) for g in v] for k, v in meta.get("checked_gaps", {}).items()}
        kept = [g for g in everything.get(key, []) if not same_gap(g, gap)]
        everything[key] = kept + [gap] if checked else kept
        if path is not None:
            write_checked(path, everything)
        else:
            meta["checked_gaps"] = {k: [g.to_dict() for g in v] for k, v in everything.items() if v}

    def set_checked(self, index: int, checked: bool = True) -> None:
        """Mark gap `index` checked (or not) and keep the mark (see the module's notes)."""
        layer = self.trimap.value
        if layer is None or not 0 <= index < len(self.gaps):
            return
        try:
            self._store_checks(layer, self._slice, self.gaps[index], checked)
        except SpineSegError as exc:
            self._fail(exc)
            return
        self.checked[index] = checked
        from qtpy.QtCore import Qt

        item = self.table.native.item(index, 0)
        if item is not None and (item.checkState() == Qt.Checked) != checked:
            self.table.native.blockSignals(True)
            item.setCheckState(Qt.Checked if checked else Qt.Unchecked)
            self.table.native.blockSignals(False)
        self._summarise()

    def toggle_checked(self) -> None:
        """Tick (or untick) the gap the camera is on."""
        if 0 <= self.current < len(self.gaps):
            self.set_checked(self.current, not self.checked[self.current])

    def _tick_changed(self, item) -> None:
        from qtpy.QtCore import Qt

        row = item.row()
        if item.column() == 0 and 0 <= row < len(self.checked):
            checked = item.checkState() == Qt.Checked
            if checked != self.checked[row]:
                self.set_checked(row, checked)

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
        self._painted.pop(id(removed), None)
        if self._layer is not None and removed == self._layer:
            self._watch(None)
            name = removed.name + GAPS_SUFFIX
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            self._show_nothing()

    def _show_nothing(self) -> None:
        self.gaps, self.current, self._slice, self.checked = [], -1, None, []
        self.summary.value = "–"
        self.verdict.value, self.verdict.visible = "", False
        self.table.value = {c: [] for c in COLUMNS}

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
        camera = view_camera(self.viewer)
        if self._slice is not None:
            self.viewer.dims.set_current_step(0, self._slice)
        camera.center = tuple(world[-2:])
        rows = layer.data.shape[-2] if layer is not None else gap.height
        span = max(ZOOM_CONTEXT * gap.height, rows / 4.0)
        scale = float(layer.scale[-2]) if layer is not None else 1.0
        camera.zoom = min(canvas_size(self.viewer)) / (span * scale)
        self.table.native.blockSignals(True)
        self.table.native.selectRow(index)
        self.table.native.blockSignals(False)
        self.summary.value = (
            f"gap {index + 1}/{len(self.gaps)}: {gap.kind} at row {gap.row}, col {gap.col}, "
            f"{gap.height} rows" + (" (checked)" if self.checked[index] else "")
        )
