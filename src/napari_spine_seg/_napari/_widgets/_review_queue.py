"""The review widget's queue drop-down and order: listing, choosing, ranking worst first."""

from __future__ import annotations

from functools import partial

from ...errors import SpineSegError
from ...jobs import model_process
from ...review.predictions import PredictionCache, rank_images
from ._workers import start_worker


class QueueControls:
    """Queue and order controls of :class:`~.review_widget.ReviewWidget` (a mixin: the
    widget holds the session, the drop-downs, the progress bar and the workers)."""

    def _update_labels(self) -> None:
        """Show the queue position, the counts of each status and why the image ranks here."""
        session = self.session
        if session is None:
            return
        key = session.current_key
        self.position.value = f"{session.index + 1} / {len(session)}  {key}  ({session.status()})"
        counts = session.counts()
        self.counts.value = ", ".join(f"{n} {status}" for status, n in counts.items())
        why = session.why()
        self.why.value = why or "file order"
        self.why.tooltip = why or ""
        if self.queue_box.value != key and key in self._queue_keys():
            self._set_quietly(self.queue_box, key)

    def _queue_keys(self) -> list[str]:
        return [key for key in self.queue_box.choices if key is not None]

    def _set_quietly(self, widget, value) -> None:
        self._quiet = True
        try:
            widget.value = value
        finally:
            self._quiet = False

    def _queue_choices(self, _widget=None) -> list[tuple[str, str]]:
        """The queue, each entry with why it ranks there (worst-first order)."""
        session = getattr(self, "session", None)
        if session is None:
            return []
        choices = []
        for i, key in enumerate(session.keys):
            priority = session.priorities.get(key)
            reason = f"  ({priority.describe()})" if session.order == "worst" and priority else ""
            choices.append((f"{i + 1}. {key}{reason}", key))
        return choices

    def _fill_queue(self) -> None:
        """List the queue (again) in the queue drop-down, on the current image."""
        session = self.session
        if session is None:
            return
        self._quiet = True
        try:
            self.queue_box.reset_choices()
            self.queue_box.value = session.current_key
        finally:
            self._quiet = False
        self.queue_box.native.setToolTip(
            "why each image ranks where it does: gaps the prediction has (breaks, "
            "narrowings, low-confidence stretches), then the model's uncertainty"
        )

    def _queue_chosen(self, key) -> None:
        if self._quiet or self.session is None or key is None:
            return
        if key != self.session.current_key:
            self._go(lambda: self.session.go_to(key))

    def _order_chosen(self, order) -> None:
        """The person chose another order for the open review: reorder its queue."""
        session = self.session
        if self._quiet or session is None or order == session.order:
            return
        if order == "worst":
            self._rank_worst_first()
            return
        try:
            session.set_order(order)
        except SpineSegError as exc:
            self._fail(exc)
            self._set_quietly(self.order, session.order)
            return
        self._fill_queue()
        self._update_labels()
        self._say(f"queue in {order} order")

    def _rank_worst_first(self) -> None:
        """Order the queue worst first, predicting only the images the review has not
        kept a prediction of (in a thread, with progress)."""
        session = self.session
        model = self.state.model
        if model is None or model.path is None:
            self._fail(SpineSegError(None, "worst-first order needs a model: train or load one"))
            self._set_quietly(self.order, session.order)
            self.show_current()
            return

        model_path = str(model.path)
        items = [(key, str(session.sample(key).image_path)) for key in session.keys]

        def predict(image_path):
            return model_process.call(model_process.predict_file, model_path, image_path)

        def rank():
            cache = PredictionCache(session.folder, model_path)
            return (yield from rank_images(items, cache, predict))

        self.progress.max = 1
        self.progress.value = 0
        self.progress.visible = True
        self._say(f"checking which of {len(items)} images need the model…")
        start_worker(
            rank,
            on_yield=self._ranking_step,
            on_return=partial(self._ranked, session, len(items)),
            on_error=partial(self._ranking_failed, session),
            on_finish=self._ranking_finished,
            keep_in=self._workers,
        )

    def _ranking_step(self, progress) -> None:
        self.progress.max = max(1, progress.to_predict)
        self.progress.value = progress.predicted
        self._say(progress.describe())

    def _ranked(self, session, n_items: int, ranking) -> None:
        """Put `session` in the worst-first order `ranking` found (if it is still open)."""
        self.last_ranking = ranking
        if self.session is not session:
            return
        session.set_order("worst", ranking.priorities)
        if not session.reviewed_keys():
            session.go_to(0)  # a fresh review starts at the worst image
        kept = n_items - len(ranking.predicted)
        self._say(
            f"ordered worst first: {len(ranking.predicted)} predicted, {kept} kept from before"
        )
        self._fill_queue()
        self.show_current()

    def _ranking_failed(self, session, exc: BaseException) -> None:
        self._fail(exc)
        if self.session is session:
            self._set_quietly(self.order, session.order)
            if self._key is None:
                self.show_current()

    def _ranking_finished(self) -> None:
        self.progress.visible = False
