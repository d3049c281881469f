"""Train or load a model; retrain it on a review's corrections.

Training runs :func:`~napari_spine_seg.model.train.train` here, on this machine, in a
child process (:class:`~napari_spine_seg.jobs.model_process.ProcessJob`, see there
why not in napari's own); a napari worker thread yields its progress events to the
GUI, where they drive a napari progress bar (epochs, with batch progress) and a live
plot of loss, pixel accuracy and spine Dice per epoch (training solid, validation
dashed). Stop sets the cancel event that ``train`` checks after every batch; the
model so far is kept. When training ends its best model becomes the viewer's current
model, which Predict and the review queue use.

With "run: slurm" the same training is submitted as a batch job
(:func:`~napari_spine_seg.jobs.runner.submit_training`) and followed by polling: the
progress bar counts epochs, the plot fills from the job's history file, Stop cancels
the job, and its model becomes current when it completes.

Retraining (:func:`~napari_spine_seg.review.retrain.retrain`) fine-tunes the current
model on the accepted and corrected images of the open review, plus the model's
original training set, with the same progress, plot and Stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    PushButton,
    SpinBox,
)

from ...errors import SpineSegError
from ._layout import arrange_when_docked
from ._state import ModelRef, viewer_state
from ._workers import show_error, start_worker, status_label

if TYPE_CHECKING:
    import napari

#: where a training job can run
WHERE_CHOICES = [("here, on this machine", "here"), ("slurm (a batch job)", "slurm")]
#: seconds between looks at a slurm job
SLURM_POLL_S = 2.0
#: what the plot draws: (title, metric key) per panel; the validation key has "val_"
PLOT_PANELS = (("loss", "loss"), ("pixel accuracy", "accuracy"), ("spine Dice", "spine_dice"))


def _path(edit: FileEdit) -> Path | None:
    text = str(edit.line_edit.value).strip()
    return Path(text).expanduser() if text else None


def describe_model(model) -> str:
    """A few lines on a loaded model: file, input size, training set, scores."""
    info = model.info
    rows, cols = info.input_size
    lines = [
        f"{Path(model.path).name if model.path else 'model'}: {info.preset}, input {rows}x{cols}"
    ]
    ts = info.training_set or {}
    if ts:
        lines.append(
            f"trained on {ts.get('root') or '?'} ({ts.get('n_train', '?')} training, "
            f"{ts.get('n_val', '?')} validation images), {info.training.get('epoch', '?')} epochs"
        )
    metrics = info.metrics or {}
    scores = [
        f"{label} {metrics[key]:.3f}"
        for label, key in (
            ("val. spine Dice", "val_spine_dice"),
            ("val. accuracy", "val_accuracy"),
            ("spine Dice", "spine_dice"),
        )
        if isinstance(metrics.get(key), int | float)
    ]
    if scores:
        lines.append(", ".join(scores))
    return "\n".join(lines)


def free_model_name(model_path: Path, tag: str = "retrained") -> Path:
    """``<stem>-<tag>.keras`` beside `model_path`, numbered so that no file is replaced."""
    stem = (
        model_path.name[: -len(".keras")] if model_path.name.endswith(".keras") else model_path.stem
    )
    candidate = model_path.with_name(f"{stem}-{tag}.keras")
    n = 2
    while candidate.exists():
        candidate = model_path.with_name(f"{stem}-{tag}-{n}.keras")
        n += 1
    return candidate


def _metrics_plot_class():
    """The plot widget class (built on first use: Qt is imported only inside functions)."""
    from qtpy.QtCore import QPointF, QRectF, Qt
    from qtpy.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
    from qtpy.QtWidgets import QSizePolicy, QWidget

    class MetricsPlot(QWidget):
        """A live plot of training metrics per epoch, one small panel per metric.

        Drawn with QPainter: a redraw costs about a millisecond, so the plot never
        holds up the viewer (a matplotlib canvas took 300–600 ms per epoch here).
        """

        colours = {"": QColor("#4fc3f7"), "val_": QColor("#ffb74d")}

        def __init__(self):
            super().__init__()
            self.history: list[dict] = []
            self.setMinimumHeight(140)
            self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

        def reset(self, history=()) -> None:
            """Start over, with the epochs of `history` already shown (a resumed run)."""
            self.history = [dict(r) for r in history]
            self.update()

        def add(self, epoch: int, metrics: dict) -> None:
            """Add one epoch's metrics and redraw."""
            self.history.append({"epoch": epoch, **metrics})
            self.update()

        def series(self, key: str) -> list[tuple[float, float]]:
            """``(epoch, value)`` pairs of one metric, in order."""
            return [
                (float(r["epoch"]), float(r[key]))
                for r in self.history
                if isinstance(r.get(key), int | float)
            ]

        def paintEvent(self, _event):
            painter = QPainter(self)
            painter.setRenderHint(QPainter.Antialiasing)
            small = QFont(self.font())
            small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
            painter.setFont(small)
            width = self.width() / len(PLOT_PANELS)
            for i, (title, key) in enumerate(PLOT_PANELS):
                self._panel(painter, QRectF(i * width, 0, width, self.height()), title, key)
            painter.end()

        def _panel(self, painter, rect, title, key) -> None:
            fg = self.palette().windowText().color()
            box = rect.adjusted(30, 16, -6, -16)
            painter.setPen(QPen(fg))
            painter.drawText(rect.adjusted(0, 0, 0, 0), Qt.AlignHCenter | Qt.AlignTop, title)
            painter.setPen(QPen(fg.darker(150) if fg.lightness() > 128 else fg.lighter(200)))
            painter.drawRect(box)
            lines = {prefix: self.series(prefix + key) for prefix in self.colours}
            values = [v for pts in lines.values() for _, v in pts]
            top = 1.0 if key != "loss" else max(values + [1e-6]) * 1.1
            epochs = [e for pts in lines.values() for e, _ in pts]
            first, last = (min(epochs), max(epochs)) if epochs else (1.0, 1.0)
            span = max(last - first, 1.0)
            painter.setPen(QPen(fg))
            painter.drawText(
                QRectF(rect.left(), box.top() - 6, 28, 12), Qt.AlignRight, f"{top:.2g}"
            )
            painter.drawText(QRectF(rect.left(), box.bottom() - 6, 28, 12), Qt.AlignRight, "0")
            if epochs:
                painter.drawText(
                    QRectF(box.left(), box.bottom() + 1, box.width(), 14),
                    Qt.AlignHCenter,
                    f"epoch {int(first)}–{int(last)}" if last > first else f"epoch {int(last)}",
                )

            def point(e, v):
                x = box.left() + (e - first) / span * box.width()
                y = box.bottom() - min(max(v / top, 0.0), 1.0) * box.height()
                return QPointF(x, y)

            for prefix, pts in lines.items():
                if not pts:
                    continue
                pen = QPen(self.colours[prefix], 1.6)
                if prefix:
                    pen.setStyle(Qt.DashLine)
                painter.setPen(pen)
                path = QPainterPath(point(*pts[0]))
                for e, v in pts[1:]:
                    path.lineTo(point(e, v))
                painter.drawPath(path)
                painter.setBrush(self.colours[prefix])
                for e, v in pts:
                    painter.drawEllipse(point(e, v), 2.0, 2.0)
                painter.setBrush(Qt.NoBrush)
            if key == "loss" and self.history:
                for j, (prefix, label) in enumerate((("", "training"), ("val_", "validation"))):
                    painter.setPen(QPen(self.colours[prefix], 2))
                    y = box.top() + 8 + 11 * j
                    painter.drawLine(QPointF(box.right() - 58, y), QPointF(box.right() - 48, y))
                    painter.setPen(QPen(fg))
                    painter.drawText(QPointF(box.right() - 45, y + 4), label)

    return MetricsPlot


def read_history_csv(path: Path) -> list[dict]:
    """The rows of a training's history CSV (``m.history.csv``), numbers as floats."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    out = []
    for row in rows:
        try:
            out.append({k: float(v) for k, v in row.items() if v not in ("", None)})
        except ValueError:
            continue  # a row being written
    return out


#: lines of a job's log shown under the job list
LOG_LINES = 4


def _job_choices(_widget=None) -> list[tuple[str, str]]:
    """The jobs index as ``(label, job id)`` choices, newest first (napari may have been
    closed since they were sent: the index is on disk)."""
    from ...jobs import list_jobs

    try:
        jobs = list_jobs()
    except Exception:  # listing is best effort: a damaged index must not stop the widget opening
        return []
    return [
        (f"{s.job_id} {s.command} {s.state.lower()} {s.progress_text()}".strip(), s.job_id)
        for s in reversed(jobs)
    ]


class _SlurmFollower:
    """Submit a slurm training job and follow it: its state, its epochs, and Stop.

    Parameters
    ----------
    submit : callable
        Submits the job and returns its :class:`~napari_spine_seg.jobs.runner.Job`.
    """

    def __init__(self, submit):
        import threading

        self._submit = submit
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Cancel the job (``scancel``) at the next look at it."""
        self._cancel.set()

    def events(self):
        """Yield ``("submitted", job)``, then ``("epoch", row)`` and ``("status", JobStatus)``
        as they change; return the final JobStatus. Runs in a worker thread.
        """
        import time

        job = self._submit()
        yield ("submitted", job)
        seen, last = 0, None
        while True:
            if self._cancel.is_set():
                self._cancel.clear()
                job.cancel()
            status = job.status()
            rows = read_history_csv(job.record.spec.history)
            for row in rows[seen:]:
                yield ("epoch", row)
            seen = max(seen, len(rows))
            if (status.state, status.epoch) != last:
                last = (status.state, status.epoch)
                yield ("status", status)
            if status.finished:
                return status
            time.sleep(SLURM_POLL_S)


class TrainWidget(Container):
    """Train a U-Net on a dataset, or load a model file; retrain on review corrections.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        from ...model.builders import PRESETS
        from ...model.train import DEFAULTS
        from ...review.retrain import DEFAULT_EPOCHS

        super().__init__(labels=True)
        arrange_when_docked(self)  # tabs beside the plugin's other docks; scrolls
        self.viewer = viewer
        self.state = viewer_state(viewer)
        self._workers: set = set()
        self._job = None
        self._progress = None
        self.last_result = None

        self.model_file = FileEdit(mode="r", filter="*.keras", label="model file")
        self.load_button = PushButton(text="Load model")
        self.model_info = status_label(label="current model", value="none")
        self.dataset = FileEdit(mode="d", label="dataset")
        self.out = FileEdit(mode="w", filter="*.keras", label="save model as")
        self.preset = ComboBox(choices=list(PRESETS), value=DEFAULTS["preset"], label="preset")
        self.size = LineEdit(label="input size (rows x cols)")
        self._preset_size(self.preset.value)
        self.epochs = SpinBox(value=DEFAULTS["epochs"], min=1, max=100_000, label="epochs")
        self.batch_size = SpinBox(value=DEFAULTS["batch_size"], min=1, max=4096, label="batch size")
        self.learning_rate = FloatSpinBox(
            value=DEFAULTS["learning_rate"], min=1e-6, max=1.0, step=1e-4, label="learning rate"
        )
        self.where = ComboBox(choices=WHERE_CHOICES, value="here", label="run")
        self.partition = LineEdit(value="", label="slurm partition", visible=False)
        self.partition.native.setPlaceholderText("the cluster's default")
        self.time_min = SpinBox(value=60, min=1, max=14 * 24 * 60, label="slurm time (min)")
        self.time_min.visible = False
        self.start_button = PushButton(text="Start training")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.retrain_epochs = SpinBox(
            value=DEFAULT_EPOCHS, min=1, max=10_000, label="retrain epochs"
        )
        self.retrain_button = PushButton(text="Retrain on reviewed images")
        self.status = status_label(label="status", value="idle")
        self.jobs = ComboBox(choices=_job_choices, label="slurm jobs", nullable=True)
        self.refresh_jobs_button = PushButton(text="Refresh")
        self.follow_button = PushButton(text="Follow job")
        self.log_tail = status_label(label="job log", value="")
        jobs_buttons = Container(
            widgets=[self.refresh_jobs_button, self.follow_button],
            layout="horizontal",
            labels=False,
        )
        buttons = Container(
            widgets=[self.start_button, self.stop_button], layout="horizontal", labels=False
        )
        self.extend(
            [
                self.model_file,
                self.load_button,
                self.model_info,
                self.dataset,
                self.out,
                self.preset,
                self.size,
                self.epochs,
                self.batch_size,
                self.learning_rate,
                self.where,
                self.partition,
                self.time_min,
                buttons,
                self.retrain_epochs,
                self.retrain_button,
                self.status,
                self.jobs,
                jobs_buttons,
                self.log_tail,
            ]
        )
        self.plot = _metrics_plot_class()()
        self.native.layout().addWidget(self.plot)

        self.preset.changed.connect(self._preset_size)
        self.where.changed.connect(self._show_slurm_options)
        self.dataset.changed.connect(self._suggest_out)
        self.load_button.clicked.connect(self.load)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.retrain_button.clicked.connect(self.retrain)
        self.refresh_jobs_button.clicked.connect(self.jobs.reset_choices)
        self.follow_button.clicked.connect(self.follow_job)
        self.state.model_changed.connect(self._show_model)
        self._show_model(self.state.model)

    # -- small helpers ------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self.status.value = text

    def _fail(self, exc: BaseException) -> None:
        show_error(self.status, exc)

    def _preset_size(self, preset: str) -> None:
        from ...model.builders import DEFAULT_SIZE, PETS_SIZE

        rows, cols = PETS_SIZE if preset == "pets" else DEFAULT_SIZE
        self.size.value = f"{rows}x{cols}"

    def _show_slurm_options(self, where: str) -> None:
        self.partition.visible = self.time_min.visible = where == "slurm"

    def _suggest_out(self, _=None) -> None:
        dataset = _path(self.dataset)
        if dataset is not None and _path(self.out) is None:
            self.out.value = dataset.with_name(f"{dataset.name}-unet.keras")

    def _show_model(self, model) -> None:
        self.model_info.value = "none" if model is None else describe_model(model)

    @property
    def running(self) -> bool:
        """Whether a training (or retraining) job is running."""
        return self._job is not None

    # -- loading ---------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the chosen model file (in a thread) and make it the current model."""
        path = _path(self.model_file)
        if path is None:
            self._fail(SpineSegError(None, "choose a model file (.keras) to load"))
            return
        self.load_path(path)

    def load_path(self, path: Path) -> None:
        """Load `path` (in the model process) and make it the current model."""
        from ...jobs import model_process

        path = Path(path)
        self._say(f"loading {path.name}…")

        def loaded(info):
            self.state.set_model(ModelRef(path, info))
            self._say(f"current model: {path.name}")

        start_worker(
            model_process.call,
            model_process.load_model_info,
            str(path),
            on_return=loaded,
            on_error=self._fail,
            keep_in=self._workers,
        )

    # -- training ------------------------------------------------------------------------------

    def start(self) -> None:
        """Train on the chosen dataset with the chosen settings, in a thread."""
        from ...model.train import parse_size, train

        dataset, out = _path(self.dataset), _path(self.out)
        try:
            if dataset is None:
                raise SpineSegError(None, "choose a dataset folder to train on")
            if out is None:
                raise SpineSegError(None, "choose where to save the model (.keras)")
            size = parse_size(self.size.value)
        except SpineSegError as exc:
            self._fail(exc)
            return
        settings = {
            "preset": self.preset.value,
            "size": size,
            "epochs": int(self.epochs.value),
            "batch_size": int(self.batch_size.value),
            "learning_rate": float(self.learning_rate.value),
        }
        self.plot.reset()
        if self.where.value == "slurm":
            self._run_slurm(dataset, out, settings)
            return
        self._run(train, f"training on {dataset.name}", dataset=dataset, out=out, **settings)

    def _run_slurm(self, dataset: Path, out: Path, settings: dict) -> None:
        """Submit ``spine-seg train`` to slurm and follow the job until it ends."""
        from ...jobs import SlurmOptions, submit_training

        if self.running:
            self._fail(SpineSegError(None, "a training job is running already; stop it first"))
            return
        rows, cols = settings["size"]
        try:  # a bad partition name or too short a time limit: one line, nothing sent
            options = SlurmOptions(
                partition=self.partition.value.strip() or None, time_min=int(self.time_min.value)
            )
        except SpineSegError as exc:
            self._fail(exc)
            return
        self._job = job = _SlurmFollower(
            lambda: submit_training(
                dataset,
                out,
                where="slurm",
                options=options,
                epochs=settings["epochs"],
                size=f"{rows}x{cols}",
                preset=settings["preset"],
                batch_size=settings["batch_size"],
                extra_args=("--learning-rate", repr(settings["learning_rate"])),
            )
        )
        self._follow(job, f"submitting the training of {dataset.name} to slurm…")

    def follow_job(self) -> None:
        """Reattach to the chosen job of the jobs index (one sent before napari was closed,
        say): follow its state and epochs, Stop cancels it, and its model is loaded when it
        completes."""
        from ...jobs import reattach

        job_id = self.jobs.value
        if job_id is None:
            self._fail(SpineSegError(None, "choose a job to follow (Refresh lists them)"))
            return
        if self.running:
            self._fail(SpineSegError(None, "a training job is running already; stop it first"))
            return
        self._job = job = _SlurmFollower(lambda: reattach(job_id))
        self.plot.reset()
        self._follow(job, f"following job {job_id}…")

    def _follow(self, job: _SlurmFollower, message: str) -> None:
        """Follow a slurm job in a worker thread until it ends."""
        self._set_running(True)
        self._say(message)
        start_worker(
            job.events,
            on_yield=self._on_slurm_event,
            on_return=self._on_slurm_done,
            on_error=self._fail,
            on_finish=self._on_finish,
            keep_in=self._workers,
        )

    def _on_slurm_event(self, item) -> None:
        from napari.utils import progress

        kind, value = item
        if kind == "submitted":
            self._close_progress()
            self._progress = progress(total=max(1, value.record.spec.epochs or 1), desc="slurm job")
            self._say(f"submitted slurm job {value.job_id} ({value.folder})")
        elif kind == "epoch":
            self.plot.add(int(value.pop("epoch")), value)
        elif kind == "status":
            if self._progress is not None and value.epoch is not None:
                self._progress.update(max(0, value.epoch - self._progress.n))
            text = value.progress_text()
            self.log_tail.value = "\n".join(value.log_tail.strip().splitlines()[-LOG_LINES:])
            self._say(
                f"slurm job {value.job_id}: {value.state.lower()}{', ' + text if text else ''}"
            )

    def _on_slurm_done(self, status) -> None:
        from ...jobs.status import COMPLETED

        if status.state != COMPLETED:
            why = status.error_line or f"the slurm job ended {status.state.lower()}"
            self._say(f"slurm job {status.job_id}: {why}")
            if status.error_line:
                self._fail(SpineSegError(status.out, status.error_line))
            if status.out and Path(status.out).exists():
                self.load_path(Path(status.out))  # stopped: the best model so far
            return
        self._say(f"slurm job {status.job_id} completed: {status.out}")
        self.load_path(Path(status.out))

    def retrain(self) -> None:
        """Fine-tune the current model on the open review's accepted and corrected images."""
        from ...review.retrain import retrain

        model, session = self.state.model, self.state.review
        if model is None or model.path is None:
            self._fail(SpineSegError(None, "no current model to retrain: train or load one"))
            return
        if session is None:
            self._fail(SpineSegError(None, "no open review: open one in the review widget"))
            return
        if self.running:
            self._fail(SpineSegError(None, "a training job is running already; stop it first"))
            return
        source = Path(model.path)
        out = free_model_name(source)
        epochs = int(self.retrain_epochs.value)
        try:
            # the child trains on the review as it is now, while the person goes on
            snapshot = session.snapshot()
        except SpineSegError as exc:
            self._fail(exc)
            return
        self.plot.reset(model.info.history)
        self._run(
            retrain,
            f"retraining {source.name} on {len(snapshot.reviewed_keys())} reviewed images",
            on_finish=snapshot.close,
            session=snapshot,
            model_path=source,
            out=out,
            epochs=epochs,
        )

    def _run(self, function, what: str, on_finish=None, **kwargs) -> None:
        from ...jobs.model_process import ProcessJob

        if self.running:
            self._fail(SpineSegError(None, "a training job is running already; stop it first"))
            return
        self._job = ProcessJob(function, **kwargs)
        self._set_running(True)
        self._say(f"{what}: starting…")

        def finish():
            if on_finish is not None:
                on_finish()
            self._on_finish()

        start_worker(
            self._job.events,
            on_yield=self._on_event,
            on_return=self._on_done,
            on_error=self._fail,
            on_finish=finish,
            keep_in=self._workers,
        )

    def stop(self) -> None:
        """Ask the running job to stop after its current batch (the model so far is kept)."""
        if self._job is not None:
            self._job.cancel()
            self._say("stopping after this batch…")

    def _set_running(self, running: bool) -> None:
        self.start_button.enabled = not running
        self.retrain_button.enabled = not running
        self.load_button.enabled = not running
        self.stop_button.enabled = running

    def _on_event(self, event) -> None:
        from napari.utils import progress

        from ...model import events as ev

        if isinstance(event, ev.Preparing):
            self._say(f"reading images {event.done}/{event.total}")
        elif isinstance(event, ev.TrainingStarted):
            self._close_progress()
            self._steps = event.steps_per_epoch
            self._first_epoch = event.initial_epoch
            total = max(1, (event.epochs - event.initial_epoch) * event.steps_per_epoch)
            self._progress = progress(total=total, desc="training")
            self._say(f"training on {event.n_train} images ({event.n_val} for validation)")
        elif isinstance(event, ev.EpochStarted) and self._progress is not None:
            self._progress.set_description(f"epoch {event.epoch}/{event.epochs}")
        elif isinstance(event, ev.BatchEnded) and self._progress is not None:
            done = (event.epoch - 1 - self._first_epoch) * self._steps + event.batch
            self._progress.update(max(0, done - self._progress.n))
            self._say(
                f"epoch {event.epoch}, batch {event.batch}/{event.steps}: loss {event.loss:.3f}"
            )
        elif isinstance(event, ev.EpochEnded):
            self.plot.add(event.epoch, event.metrics)
            dice = event.metrics.get("val_spine_dice", event.metrics.get("spine_dice"))
            tail = f", spine Dice {dice:.3f}" if isinstance(dice, int | float) else ""
            self._say(f"epoch {event.epoch}/{event.epochs} done in {event.seconds:.0f} s{tail}")

    def _on_done(self, result) -> None:
        self.last_result = result
        text = f"training {result.stopped} after {result.epochs_run} epochs: {result.model_path}"
        self._say(text)  # no notification toast: building one can hold the GUI
        self.load_path(Path(result.model_path))

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _on_finish(self) -> None:
        self._close_progress()
        self._job = None
        self._set_running(False)
