"""The review queue: go through a dataset's images, accept or correct each trimap, export.

The widget shows one image at a time, as three layers named after it: the X-ray,
``<image> trimap`` (Labels, painted to correct it) and, with a model,
``<image> probability`` (hidden); a model that finds vertebrae adds their two layers
(:mod:`._review_load`). What is shown first is the image's saved review if
it has one, else the current model's prediction, else the dataset's own trimap,
else an empty trimap. Every brush stroke (and, on a one-second timer, anything else
that changes the trimap, such as undo) is autosaved by the
:class:`~napari_spine_seg.review.session.ReviewSession`; the review folder is the
whole state, so a killed napari resumes at the same image with the same edits.

A review folder remembers the data set path it was opened on and its queue order: the
folder alone reopens it as it was, the order drop-down then showing the saved order
(choosing another reorders the queue). Worst-first order predicts each image once per
model and keeps the prediction in the review folder
(:mod:`~napari_spine_seg.review.predictions`): it says before it starts how many images
need the model (and for how long), shows progress, and the queue drop-down says why
each image ranks where it does. Painted images are *drafts* until accepted.

An image whose save failed (the review folder became unwritable, say) is never
closed: Next, Previous and Accept stay on it with its edits and say why in one
notification; the timer's autosave says so once, then keeps trying quietly until a
save works again. Export reads a snapshot of the review
(:meth:`~napari_spine_seg.review.session.ReviewSession.snapshot`), so reviewing goes
on while it runs.

Keyboard shortcuts (viewer-wide): see :data:`SHORTCUTS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    ProgressBar,
    PushButton,
)

from ...errors import SpineSegError
from ...review.export import export_review
from ...review.protect import check_outside_dataset, default_review_folder
from ...review.session import ReviewSession
from .._notify import notify_info
from ._dock import Dock, bind_keys, button_row, key_handler, qt_timer
from ._review_load import add_review_layers, field_path, load_for_review, review_layers
from ._review_queue import QueueControls
from ._workers import error_message, show_error, start_worker, status_label

if TYPE_CHECKING:
    import napari

#: key → (what it does, method name); bound on the viewer while the widget lives
SHORTCUTS = {
    "PageDown": ("next image", "next_image"),
    "PageUp": ("previous image", "previous_image"),
    "Alt-A": ("accept the trimap and go to the next unreviewed image", "accept_and_next"),
    "Alt-U": ("next unreviewed image", "next_unreviewed"),
}
#: milliseconds between autosave checks (catches undo/redo, which napari does not announce)
AUTOSAVE_MS = 1000
ORDER_CHOICES = [("file order", "file"), ("worst first (gaps, then uncertainty)", "worst")]


__all__ = ["SHORTCUTS", "ReviewWidget", "default_review_folder"]


class ReviewWidget(QueueControls, Dock):
    """Review a dataset's trimaps one image at a time; autosave every edit; export (a dock
    of `viewer`)."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self.session = None
        self._layers: list = []
        self._key: str | None = None
        self._predictions: dict[str, Any] = {}
        # set while the order drop-down is set from the session (not by the person)
        self._quiet = False
        #: what the last worst-first ranking did (a review.predictions.Ranking)
        self.last_ranking = None
        # whether the last save failed (the timer's autosave then tells the person once)
        self._save_failed = False

        self.extend([*self._open_controls(), *self._queue_controls(), *self._export_controls()])
        self.state.model_changed.connect(self._show_model)
        self._show_model(self.state.model)
        self._set_enabled(False)

        # both die with the widget's Qt object, so nothing fires into a closed viewer
        self._timer = qt_timer(self, AUTOSAVE_MS, self.autosave)
        self._timer.start()
        self._stroke_timer = qt_timer(self, 0, self.autosave, single_shot=True)
        bind_keys(viewer, SHORTCUTS, self._shortcut)

    def _open_controls(self) -> list:
        """Data set, review folder, queue order and Open."""
        self.dataset_edit = FileEdit(mode="d", label="dataset")
        self.folder_edit = FileEdit(mode="d", label="review folder")
        self.order = ComboBox(choices=ORDER_CHOICES, value="file", label="order")
        self.open_button = PushButton(text="Open review")
        self.dataset_edit.changed.connect(self._suggest_folder)
        self.open_button.clicked.connect(self.open_review)
        self.order.changed.connect(self._order_chosen)
        return [self.dataset_edit, self.folder_edit, self.order, self.open_button]

    def _queue_controls(self) -> list:
        """The model, where the image stands in the queue, and the moves along it."""
        self.model_label = status_label(label="model")
        self.position = status_label(label="image")
        # a callable: napari resets a dock's choices whenever the layers change
        self.queue_box = ComboBox(choices=self._queue_choices, label="queue", nullable=True)
        self.why = status_label(label="why here")
        self.counts = status_label(label="reviewed")
        self.previous_button = PushButton(text="◀ Previous  [PageUp]")
        self.next_button = PushButton(text="Next ▶  [PageDown]")
        self.accept_button = PushButton(text="Accept ✓  [Alt-A]")
        self.unreviewed_button = PushButton(text="Next unreviewed  [Alt-U]")
        self.reset_button = PushButton(text="Discard review of this image")
        self.queue_box.changed.connect(self._queue_chosen)
        for button, method in (
            (self.previous_button, self.previous_image),
            (self.next_button, self.next_image),
            (self.accept_button, self.accept_and_next),
            (self.unreviewed_button, self.next_unreviewed),
            (self.reset_button, self.reset_image),
        ):
            button.clicked.connect(method)
        labels = [self.model_label, self.position, self.queue_box, self.why, self.counts]
        return [
            *labels,
            button_row(self.previous_button, self.next_button),
            button_row(self.accept_button, self.unreviewed_button),
            self.reset_button,
        ]

    def _export_controls(self) -> list:
        """Export folder and options, Export, its progress and the message line."""
        self.export_edit = FileEdit(mode="d", label="export to")
        self.colour_check = CheckBox(text="colour trimaps", value=False)
        self.overlay_check = CheckBox(text="overlays", value=True)
        self.export_button = PushButton(text="Export reviewed trimaps")
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress", visible=False)
        self.message = status_label(label="")
        self.export_button.clicked.connect(self.export)
        options = [self.export_edit, self.colour_check, self.overlay_check]
        return [*options, self.export_button, self.progress, self.message]

    # -- helpers ------------------------------------------------------------------------

    def _shortcut(self, method: str):
        return key_handler(self, method, "Review", ready=lambda: self.session is not None)

    def _set_enabled(self, enabled: bool) -> None:
        for w in (
            self.previous_button,
            self.next_button,
            self.accept_button,
            self.unreviewed_button,
            self.reset_button,
            self.export_button,
            self.queue_box,
        ):
            w.enabled = enabled

    def _say(self, text: str) -> None:
        self.message.value = text

    def _fail(self, exc: BaseException) -> None:
        show_error(self.message, exc)

    def _show_model(self, model) -> None:
        self._predictions.clear()
        if model is None:
            self.model_label.value = "none: showing the dataset's own trimaps"
        else:
            self.model_label.value = Path(model.path).name if model.path else "trained model"

    def _suggest_folder(self, _=None) -> None:
        dataset = field_path(self.dataset_edit)
        if dataset is not None and field_path(self.folder_edit) is None:
            self.folder_edit.value = default_review_folder(dataset)

    @property
    def trimap_layer(self):
        """The Labels layer of the image under review, or None."""
        from napari.layers import Labels

        return next((layer for layer in self._layers if isinstance(layer, Labels)), None)

    # -- opening --------------------------------------------------------------------------

    def open_review(self) -> None:
        """Open (or resume) the review in the chosen folder and show its current image."""
        folder = field_path(self.folder_edit)
        dataset = field_path(self.dataset_edit)
        if folder is None:
            if dataset is None:
                self._fail(SpineSegError(None, "choose a dataset or a review folder first"))
                return
            folder = default_review_folder(dataset)
            self.folder_edit.value = folder

        model = self.state.model_path
        try:
            session = ReviewSession.open(folder, dataset, model=model)
        except SpineSegError as exc:
            self._fail(exc)
            return
        if not self._close_image():
            session.close()  # the image shown keeps its unsaved edits and its review
            return
        previous = self.session
        if previous is not None and previous is not session:
            previous.close()
        self.session = session
        self._predictions.clear()
        if dataset is None:
            self.dataset_edit.value = session.location  # the split, not its root
        self.state.set_review(session)
        self._set_enabled(True)
        self.last_ranking = None
        if session.resumed:  # the saved order wins over the drop-down's
            self._set_quietly(self.order, session.order)
            self._fill_queue()
            self._say(
                f"resumed the review of {len(session)} images of {session.location} "
                f"({session.order} order)"
            )
            self.show_current()
        elif self.order.value == "worst":
            self._fill_queue()
            self._rank_worst_first()
        else:
            self._fill_queue()
            self._say(f"review of {len(session)} images in {session.folder}")
            self.show_current()

    # -- showing an image -------------------------------------------------------------------

    def _close_image(self) -> bool:
        """Save and remove the image shown; keep it (and return False) when the save fails."""
        if not self._save_shown():
            return False
        for layer in self._layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self._layers = []
        self._key = None
        return True

    def show_current(self) -> None:
        """Load the current image of the queue (in a thread) and show it for review.

        The image shown stays when its edits cannot be saved.
        """
        session = self.session
        if session is None or self.viewer_closed:
            return
        if not self._close_image():
            return
        self._update_labels()
        key = session.current_key
        model = self.state.model
        cached = self._predictions.get(key)

        def load():
            return load_for_review(session, key, model, cached)

        start_worker(load, on_return=self._show_loaded, on_error=self._fail, keep_in=self._workers)

    def _show_loaded(self, loaded) -> None:
        key, sample, pixels, trimap, probability, source, vertebrae = loaded
        session = self.session
        if self.viewer_closed:
            return  # the viewer closed while it loaded: it has no layer controls left
        if session is None or key != session.current_key or self._key is not None:
            return  # the person moved on while it loaded
        if probability is not None:
            kept = trimap if source == "prediction" else None
            self._predictions[key] = (kept, probability, vertebrae)
        predicted = source == "prediction" or (
            source == "saved review" and session.began_as_prediction(key)
        )
        tuples = review_layers(sample, key, pixels, trimap, probability, predicted, vertebrae)
        self._layers = add_review_layers(self.viewer, sample.name, tuples, vertebrae)
        labels = self.trimap_layer
        session.start_edit(key, labels.data, predicted=predicted)
        labels.events.paint.connect(self._stroke_done)
        self._key = key
        self.viewer.layers.selection.active = labels
        labels.mode = "paint"
        labels.selected_label = 1
        self.viewer.reset_view()
        self._update_labels()
        self._say(f"showing {source}")

    def _window_closed(self) -> None:
        super()._window_closed()
        self.autosave()  # the last edits (an undo, say) that no stroke announced
        self._timer.stop()
        self._stroke_timer.stop()

    # -- autosave and verdicts ---------------------------------------------------------------

    def _stroke_done(self, _event=None) -> None:
        # napari announces a stroke before the last of it is in the array: save once
        # the event loop has finished the stroke (within milliseconds)
        self._stroke_timer.start()

    def autosave(self, _event=None) -> bool:
        """Save the trimap of the image shown if it changed; return whether it wrote.

        A failed save is told once in a notification (then only in the widget's
        message line) until a save works again.
        """
        labels = self.trimap_layer
        if self.session is None or self._key is None or labels is None:
            return False
        try:
            written = self.session.save_edit(self._key, labels.data)
        except Exception as exc:  # the edits stay in the layer; it is saved again later
            self._save_error(exc, notify=not self._save_failed)
            return False
        if self._save_failed:
            self._save_failed = False
            self._say("saved again")
        if written:
            self._update_labels()
            self._say(f"autosaved {self.session.trimap_path(self._key).name}")
        return written

    def _save_error(self, exc: BaseException, notify: bool = True) -> None:
        self._save_failed = True
        if notify:
            self._fail(exc)
        else:
            self._say(error_message(exc))

    def _save_shown(self) -> bool:
        """Save the image shown, telling the person when it fails; return whether it is safe
        to close (saved, or nothing to save)."""
        labels = self.trimap_layer
        if self.session is None or self._key is None or labels is None:
            return True
        try:
            self.session.save_edit(self._key, labels.data)
        except Exception as exc:
            self._save_error(exc)
            return False
        self._save_failed = False
        return True

    def _go(self, move) -> None:
        if self.session is None:
            return
        if not self._save_shown():
            return  # stay on the image: its edits are not saved
        before = self.session.current_key
        try:
            after = move()
        except Exception as exc:
            self._fail(exc)
            return
        if after is not None and (after != before or self._key is None):
            self.show_current()
        else:
            self._update_labels()

    def next_image(self) -> None:
        """Go to the next image of the queue."""
        self._go(lambda: self.session.next())

    def previous_image(self) -> None:
        """Go to the previous image of the queue."""
        self._go(lambda: self.session.previous())

    def next_unreviewed(self) -> None:
        """Go to the next image not yet reviewed (says so when there is none)."""

        def move():
            key = self.session.next_unreviewed()
            if key is None:
                self._say("every image is reviewed")
                notify_info("every image is reviewed")
            return key

        self._go(move)

    def accept_and_next(self) -> None:
        """Accept the trimap shown (corrected if edited) and go to the next unreviewed image."""
        labels = self.trimap_layer
        if self.session is None or self._key is None or labels is None:
            return
        try:
            self.session.accept(self._key, labels.data)
        except Exception as exc:  # not accepted: the image stays, with its edits
            self._save_error(exc)
            return
        self._save_failed = False
        self.next_unreviewed()

    def reset_image(self) -> None:
        """Discard the saved review of the image shown and show it afresh."""
        if self.session is None or self._key is None:
            return
        key = self._key
        try:
            self.session.reset(key)
        except Exception as exc:
            self._fail(exc)
            return
        self._key = None  # nothing to autosave: the review is discarded
        self.show_current()

    # -- export -----------------------------------------------------------------------------

    def export(self) -> None:
        """Export the reviewed trimaps (and the chosen extras) in a thread; report what was written."""
        session = self.session
        out = field_path(self.export_edit)
        if session is None:
            return
        if out is None:
            self._fail(SpineSegError(None, "choose a folder to export to"))
            return
        self.autosave()

        colour, overlay = self.colour_check.value, self.overlay_check.value
        try:
            check_outside_dataset(out, session.dataset, "export folder")
            snapshot = session.snapshot()  # the worker reads this, not the live session
        except SpineSegError as exc:
            self._fail(exc)
            return

        def run():
            return export_review(snapshot, out, colour=colour, overlay=overlay)

        def report(result):
            self.last_export = result
            text = f"{result.summary()} to {out}"
            self._say(text)
            notify_info(text)

        start_worker(
            run,
            on_return=report,
            on_error=self._fail,
            on_finish=snapshot.close,
            keep_in=self._workers,
        )

    # -- teardown ---------------------------------------------------------------------------

    def close_review(self) -> bool:
        """Save, remove the review's layers, release the review folder and forget the session
        (the folder keeps it all); return False (and keep it all open) when the save fails."""
        if not self._close_image():
            return False
        if self.session is not None:
            self.session.close()
        self.session = None
        self.state.set_review(None)
        self._set_enabled(False)
        return True
