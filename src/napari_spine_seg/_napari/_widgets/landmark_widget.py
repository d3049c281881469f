"""Landmark review: a data set's landmarks, worst image first, their faults, fixed by hand.

The widget opens a data set (an AASCE root or split) with a review folder outside it
(:class:`~napari_spine_seg.review.landmark_review.LandmarkReview`) and shows one image
at a time as five layers: the X-ray, ``trimap`` (Labels, hidden: the trimap the
landmarks make), ``landmarks`` (Points: features ``vertebra`` and ``corner``, the name
T1…L5 at each vertebra's top-left corner, one colour per vertebra), ``vertebrae`` (each
vertebra's outline, red where a fault is) and ``Cobb``
(the three angles' end vertebrae, drawn by
:func:`~napari_spine_seg._napari._widgets.spine_curve_widget.curve_from_landmarks`).
Moving a corner redraws the outlines and the angles as it moves; when the move ends
the landmarks are autosaved to the review folder and checked again, the fault list
follows and the trimap is drawn again. *Export* writes the corrected data set exactly as ``spine-seg check --fix
--out`` does, with the reviewed landmarks.

Keys on the landmarks layer: see :data:`KEYS`.
"""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, FileEdit, Label, PushButton

from ...data.images import read_xray
from ...errors import SpineSegError
from ...review.landmark_review import LandmarkReview
from ...spine.landmark_faults import CORNERS, VERTEBRA_NAMES
from ...trimap import N_LANDMARKS, N_VERTEBRAE, rowcol_to_xy, trimap_from_landmarks, xy_to_rowcol
from .._layers import trimap_layer
from .._notify import notify_error, notify_info
from ._dock import Dock, bind_keys, button_row, key_handler
from .spine_curve_widget import curve_from_landmarks

if TYPE_CHECKING:
    import napari

#: key → (what it does, method name), bound on the landmarks layer
KEYS = {
    "n": ("next fault (then the next image with faults)", "next_fault"),
    "b": ("previous fault", "previous_fault"),
    "f": ("apply the fault's fix (or its suggested position)", "apply_fix"),
    ".": ("next image", "next_image"),
    ",": ("previous image", "previous_image"),
}
FAULT_COLOUR = "#ff3b30"
POINTS_NAME, OUTLINES_NAME, COBB_NAME = "landmarks", "vertebrae", "Cobb"
IMAGE_NAME, TRIMAP_NAME = "X-ray", "trimap"


def vertebra_colours() -> np.ndarray:
    """One RGBA colour per vertebra, round the hue circle."""
    return np.array(
        [(*colorsys.hsv_to_rgb(i / N_VERTEBRAE, 0.75, 1.0), 1.0) for i in range(N_VERTEBRAE)]
    )


def outline_polygons(landmarks_xy: np.ndarray) -> list[np.ndarray]:
    """Each vertebra's outline ``(row, col)``: corners TL, TR, BR, BL."""
    groups = np.asarray(landmarks_xy, dtype=np.float64).reshape(N_VERTEBRAE, 4, 2)
    return [xy_to_rowcol(g[[0, 1, 3, 2]]) for g in groups]


def fault_line(fault) -> str:
    """One line for the fault list, e.g. ``5 T5 TR top_bottom_swapped (fix)``."""
    where = (
        "image"
        if fault.vertebra is None
        else f"{fault.vertebra} {VERTEBRA_NAMES[fault.vertebra - 1]}"
    )
    corner = f" {fault.corner}" if fault.corner else ""
    mark = " (fix)" if fault.fix else (" (suggestion)" if fault.suggested is not None else "")
    return f"{where}{corner} {fault.kind}{mark}"


class LandmarkWidget(Dock):
    """Review and correct a data set's landmarks, worst image first; autosave; export (a
    dock of `napari_viewer`)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(napari_viewer)
        self.review = None
        self.points = self.outlines = self.cobb = self.image_layer = self.trimap = None
        self._loading = False

        self.extend([*self._open_controls(), *self._fault_controls(), *self._export_controls()])

    def _open_controls(self) -> list:
        """Data set, review folder, Open, and the image shown with the moves between images."""
        self.dataset_edit = FileEdit(mode="d", label="dataset")
        self.folder_edit = FileEdit(mode="d", label="review folder")
        self.open_button = PushButton(text="Open")
        self.image_label = Label(label="image", value="–")
        self.previous_image_button = PushButton(text="◀ image (,)")
        self.next_image_button = PushButton(text="image ▶ (.)")
        self.open_button.clicked.connect(self._open_clicked)
        self.previous_image_button.clicked.connect(self.previous_image)
        self.next_image_button.clicked.connect(self.next_image)
        image_row = button_row(self.previous_image_button, self.next_image_button)
        return [self.dataset_edit, self.folder_edit, self.open_button, self.image_label, image_row]

    def _fault_controls(self) -> list:
        """The image's faults, the moves between them, the fix, why, and the Cobb angles."""
        # choices from the current image's faults, so that napari's reset_choices (on every
        # layer added or removed) gives the same list back rather than an empty one
        self.fault_box = ComboBox(label="fault", choices=self._fault_choices, nullable=True)
        self.previous_fault_button = PushButton(text="◀ fault (b)")
        self.next_fault_button = PushButton(text="fault ▶ (n)")
        self.fix_button = PushButton(text="Apply fix (f)")
        self.reason = Label(label="", value="")
        self.reason.native.setWordWrap(True)
        self.angles = Label(label="Cobb", value="–")
        self.fault_box.changed.connect(self._fault_chosen)
        self.previous_fault_button.clicked.connect(self.previous_fault)
        self.next_fault_button.clicked.connect(self.next_fault)
        self.fix_button.clicked.connect(self.apply_fix)
        moves = button_row(self.previous_fault_button, self.next_fault_button, self.fix_button)
        return [self.fault_box, moves, self.reason, self.angles]

    def _export_controls(self) -> list:
        self.export_edit = FileEdit(mode="d", label="export to")
        self.export_button = PushButton(text="Export corrected set")
        self.export_button.clicked.connect(self._export_clicked)
        return [self.export_edit, self.export_button]

    # -- opening --------------------------------------------------------------------------

    def _open_clicked(self) -> None:
        dataset = str(self.dataset_edit.value).strip()
        folder = str(self.folder_edit.value).strip()
        try:
            if not dataset or dataset == ".":
                raise SpineSegError(None, "choose a data set folder")
            if not folder or folder == ".":
                folder = str(Path(dataset).with_name(Path(dataset).name + "-landmark-review"))
                self.folder_edit.value = folder
            self.open(dataset, folder)
        except SpineSegError as exc:
            self._error(str(exc))

    def open(self, dataset, folder) -> None:
        """Open `dataset` with its review folder (resumed when it holds a review)."""
        self.review = LandmarkReview(dataset, folder)
        faulty = sum(1 for i in self.review.check.images if i.faults)
        notify_info(
            f"{len(self.review.queue)} images, {faulty} with faults; the worst first "
            f"(review folder {folder})"
        )
        self.show_image()

    # -- showing an image -----------------------------------------------------------------

    def show_image(self) -> None:
        """Show the current image, its landmarks, outlines, angles and faults."""
        image = self.review.current
        pixels = read_xray(self.review.check.root / image.key).pixels
        self._loading = True
        try:
            self._replace_layers(pixels, image.landmarks)
        finally:
            self._loading = False
        position = self.review.index + 1
        self.image_label.value = f"{position} of {len(self.review.queue)}: {image.name}"
        self._redraw(image.landmarks)
        self._refresh_faults(image, keep=None)

    def _replace_layers(self, pixels: np.ndarray, landmarks: np.ndarray) -> None:
        for layer in (self.cobb, self.outlines, self.points, self.trimap, self.image_layer):
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.image_layer = self.viewer.add_image(pixels, name=IMAGE_NAME, colormap="gray")
        data, kwargs, _ = trimap_layer(self._trimap(landmarks, pixels.shape[:2]), name=TRIMAP_NAME)
        self.trimap = self.viewer.add_labels(data, **kwargs)
        self.trimap.visible = False
        colours = np.repeat(vertebra_colours(), 4, axis=0)
        self.outlines = self.viewer.add_shapes(name=OUTLINES_NAME)
        self.cobb = self.viewer.add_shapes(
            name=COBB_NAME,
            features={"label": np.array([], dtype=str)},
            # as the Spine curve widget draws them: each label centred in its own box,
            # sized in image pixels, so that labels of several curves never overlap
            text={"string": "{label}", "color": "white", "anchor": "center", "scaling": True},
        )
        features = {
            "vertebra": np.repeat(np.arange(1, N_VERTEBRAE + 1), 4),
            "corner": np.tile(CORNERS, N_VERTEBRAE),
            "label": [VERTEBRA_NAMES[i // 4] if i % 4 == 0 else "" for i in range(N_LANDMARKS)],
        }
        size = max(4.0, 0.01 * max(pixels.shape[:2]))
        self.points = self.viewer.add_points(
            xy_to_rowcol(landmarks),
            name=POINTS_NAME,
            features=features,
            face_color=colours,
            border_color="white",
            size=size,
            text={"string": "{label}", "color": "white", "size": 10, "anchor": "upper_left"},
        )
        self.points.mode = "select"
        self.points.events.data.connect(self._points_changed)
        bind_keys(self.points, KEYS, lambda method: key_handler(self, method))
        self.viewer.layers.selection.active = self.points
        self.viewer.reset_view()

    @staticmethod
    def _trimap(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        return trimap_from_landmarks(landmarks, shape)

    def current_landmarks(self) -> np.ndarray | None:
        """The landmarks ``(x, y)`` shown, or None when there are not 68."""
        data = np.asarray(self.points.data, dtype=np.float64)
        return rowcol_to_xy(data) if data.shape == (N_LANDMARKS, 2) else None

    # -- editing --------------------------------------------------------------------------

    def _points_changed(self, event=None) -> None:
        if self._loading or self.review is None:
            return
        landmarks = self.current_landmarks()
        if landmarks is None:
            self.reason.value = f"{len(self.points.data)} landmarks: {N_LANDMARKS} are needed"
            return
        self._redraw(landmarks)
        action = str(getattr(event, "action", "changed")).lower()
        if "ing" not in action.rsplit(".", 1)[-1]:  # not while a point is being dragged
            self.save(landmarks)

    def save(self, landmarks: np.ndarray) -> None:
        """Autosave `landmarks` for the current image and check them again."""
        keep = self.fault_box.value
        image = self.review.save(landmarks)
        self._refresh_faults(image, keep=keep)
        self._redraw(landmarks)
        self.trimap.data = self._trimap(landmarks, image.shape)

    def _redraw(self, landmarks: np.ndarray) -> None:
        """Outlines (faulty vertebrae in red) and the Cobb angles of `landmarks`."""
        faulty = {f.vertebra for f in self.review.current.faults if f.vertebra is not None}
        colours = [
            FAULT_COLOUR if i + 1 in faulty else tuple(c) for i, c in enumerate(vertebra_colours())
        ]
        unit = max(1.0, 0.003 * max(self.image_layer.data.shape[:2]))
        self.outlines.data = []
        self.outlines.add(
            outline_polygons(landmarks),
            shape_type="polygon",
            edge_color=colours,
            face_color="transparent",
            edge_width=[3 * unit if i + 1 in faulty else unit for i in range(N_VERTEBRAE)],
        )
        self.cobb.data = []
        try:
            drawing = curve_from_landmarks(landmarks, self.review.current.shape[0])
        except SpineSegError as exc:
            self.angles.value = f"– ({exc.problem})"
            return
        self.angles.value = drawing.summary
        self.cobb.add(
            drawing.shapes,
            shape_type=drawing.shape_types,
            edge_color=drawing.colours,
            edge_width=[unit * w for w in drawing.widths],
            face_color="transparent",
        )
        self.cobb.features = {"label": drawing.labels}
        self.cobb.text.size = drawing.label_size
        self.cobb.refresh_text()

    def _fault_choices(self, _widget=None) -> list[tuple[str, int]]:
        review = getattr(self, "review", None)
        if review is None:
            return []
        return [(fault_line(f), i) for i, f in enumerate(review.current.faults)]

    def _refresh_faults(self, image, keep) -> None:
        choices = [(fault_line(f), i) for i, f in enumerate(image.faults)]
        self.fault_box.reset_choices()
        if choices:
            self.fault_box.value = keep if keep is not None and keep < len(choices) else 0
        else:
            self.fault_box.value = None
            self.reason.value = "no faults found"

    @property
    def faults(self) -> list:
        """The current image's faults, as last checked."""
        return [] if self.review is None else self.review.current.faults

    def _fault_chosen(self, index) -> None:
        if index is None or index >= len(self.faults):
            return
        fault = self.faults[index]
        self.reason.value = fault.reason
        if fault.vertebra is None:
            return
        first = 4 * (fault.vertebra - 1)
        corners = [first + CORNERS.index(fault.corner)] if fault.corner else range(first, first + 4)
        self.points.selected_data = set(corners)
        centre = np.asarray(self.points.data)[list(corners)].mean(axis=0)
        self.viewer.camera.center = tuple(float(v) for v in centre)

    # -- moving through faults and images -------------------------------------------------

    def next_fault(self) -> None:
        """The next fault of this image, else the first of the next image with faults."""
        index = self.fault_box.value
        if self.faults and (index is None or index + 1 < len(self.faults)):
            self.fault_box.value = 0 if index is None else index + 1
            return
        for step in range(1, len(self.review.queue)):
            position = self.review.index + step
            if position < len(self.review.queue):
                if self.review.image(self.review.queue[position]).faults:
                    self.review.go(position)
                    self.show_image()
                    return
        notify_info("no later image has faults")

    def previous_fault(self) -> None:
        """The previous fault of this image, else the last of the previous faulty image."""
        index = self.fault_box.value
        if index:
            self.fault_box.value = index - 1
            return
        for position in range(self.review.index - 1, -1, -1):
            if self.review.image(self.review.queue[position]).faults:
                self.review.go(position)
                self.show_image()
                self.fault_box.value = len(self.faults) - 1
                return
        notify_info("no earlier image has faults")

    def next_image(self) -> None:
        """Show the next image of the queue."""
        if self.review is not None and self.review.index + 1 < len(self.review.queue):
            self.review.go(self.review.index + 1)
            self.show_image()

    def previous_image(self) -> None:
        """Show the previous image of the queue."""
        if self.review is not None and self.review.index > 0:
            self.review.go(self.review.index - 1)
            self.show_image()

    def apply_fix(self) -> None:
        """Apply the chosen fault's certain fix, or move its corner where suggested."""
        index = self.fault_box.value
        if self.review is None or index is None or index >= len(self.faults):
            return
        fault = self.faults[index]
        landmarks = fault.fixed if fault.fix else fault.suggested
        if landmarks is None:
            self._error(f"{fault.kind} has no fix: move the corners by hand")
            return
        self._loading = True
        try:
            self.points.data = xy_to_rowcol(landmarks)
        finally:
            self._loading = False
        self.save(np.asarray(landmarks, dtype=np.float64))

    # -- export ---------------------------------------------------------------------------

    def _export_clicked(self) -> None:
        out = str(self.export_edit.value).strip()
        try:
            if self.review is None:
                raise SpineSegError(None, "open a data set first")
            if not out or out == ".":
                raise SpineSegError(None, "choose a folder to export the corrected set to")
            self.export(out)
        except SpineSegError as exc:
            self._error(str(exc))

    def export(self, out) -> Path:
        """Write the corrected data set to `out` (as ``spine-seg check --fix --out``)."""
        path = self.review.export(out)
        notify_info(f"wrote the corrected set to {path}")
        return path

    def _error(self, message: str) -> None:
        self.reason.value = message
        notify_error(message)
