"""Train or load a model; retrain it on a review's corrections.

Training runs :func:`~napari_spine_seg.model.train.train` here, on this machine, in a
child process (:class:`~napari_spine_seg.jobs.model_process.ProcessJob`, see there
why not in napari's own); a napari worker thread yields its progress events to the
GUI, where they drive a napari progress bar (epochs, with batch progress) and a live
plot of loss, pixel accuracy and spine Dice per epoch (training solid, validation
dashed), in :mod:`._loss_plot`. Stop sets the cancel event that ``train`` checks
after every batch; the model so far is kept. When training ends its best model
becomes the viewer's current model, which Predict and the review queue use, unless
it was stopped or its spine Dice is below the current model's: then the status says
so and *Use the new model* makes it current at the person's choice. The model-file
field always names the current model. The slurm settings, job list and job log show
only with "run: slurm".

With "run: slurm" the same training is submitted as a batch job
(:func:`~napari_spine_seg.jobs.runner.submit_training`) and followed by polling: the
progress bar counts epochs, the plot fills from the job's history file, Stop cancels
the job, and its model becomes current when it completes (:mod:`._train_slurm`).

Retraining (:func:`~napari_spine_seg.review.retrain.retrain`) fine-tunes the current
model on the accepted and corrected images of the open review, plus the model's
original training set, with the same progress, plot and Stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    PushButton,
    SpinBox,
)

from ...errors import SpineSegError
from ...jobs import model_process
from ...jobs.model_process import ProcessJob
from ...model import events as ev
from ...model.builders import PRESETS
from ...model.config import LR_SCHEDULES, OUTPUTS, TrainConfig, default_size
from ...model.defaults import TRAIN_DEFAULTS
from ...model.train import train
from ...review.retrain import DEFAULT_EPOCHS, retrain
from ._dock import Dock, button_row
from ._loss_plot import metrics_plot_class
from ._model_choice import free_model_name, worse_than_current
from ._model_info import describe_model
from ._state import ModelRef
from ._train_slurm import SlurmTraining
from ._workers import show_error, start_worker, status_label

if TYPE_CHECKING:
    import napari

#: where a training job can run
WHERE_CHOICES = [("here, on this machine", "here"), ("slurm (a batch job)", "slurm")]
#: how the status names the way a training ended (TrainResult.stopped)
STOPPED_WORDS = {
    "cancelled": "stopped",
    "early_stopping": "stopped early",
    "completed": "done",
    "time_budget": "time budget reached",
}


def _path(edit: FileEdit) -> Path | None:
    text = str(edit.line_edit.value).strip()
    return Path(text).expanduser() if text else None


class TrainWidget(SlurmTraining, Dock):
    """Train a U-Net on a dataset, or load a model file; retrain on review corrections.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self._job = None
        self._progress = None
        self._stopping = False
        #: the model a training wrote that is not (yet) the current one, as a ModelRef
        self.offered = None
        self.last_result = None
        self._make_fields()
        self._make_slurm_fields()
        self._lay_out()
        self._connect()
        self._show_model(self.state.model)
        self._show_slurm_options(self.where.value)

    def _make_fields(self) -> None:
        """The model, dataset and training fields, the buttons and the status."""
        self.model_file = FileEdit(mode="r", filter="*.keras", label="model file")
        self.load_button = PushButton(text="Load model")
        self.model_info = status_label(label="current model", value="none")
        self.dataset = FileEdit(mode="d", label="dataset")
        self.out = FileEdit(mode="w", filter="*.keras", label="save model as")
        self.preset = ComboBox(
            choices=list(PRESETS), value=TRAIN_DEFAULTS["preset"], label="preset"
        )
        self.size = LineEdit(label="input size (rows x cols)")
        self._preset_size(self.preset.value)
        self.epochs = SpinBox(value=TRAIN_DEFAULTS["epochs"], min=1, max=100_000, label="epochs")
        self.max_minutes = FloatSpinBox(
            value=0.0,
            min=0.0,
            max=100_000.0,
            step=5.0,
            label="time limit",
            tooltip="stop at the end of the epoch that crosses this many minutes, keeping "
            "the best model (TrainConfig.max_minutes)",
        )
        # 0 is "no limit", written out so nobody reads it as "stop at once"
        self.max_minutes.native.setSpecialValueText("no time limit")
        self.max_minutes.native.setSuffix(" min")
        self.epochs_row = button_row(self.epochs, self.max_minutes)
        self.epochs_row.label = "epochs, time limit"
        self.batch_size = SpinBox(
            value=TRAIN_DEFAULTS["batch_size"], min=1, max=4096, label="batch size"
        )
        self.learning_rate = FloatSpinBox(
            value=TRAIN_DEFAULTS["learning_rate"],
            min=1e-6,
            max=1.0,
            step=1e-4,
            label="learning rate",
        )
        self.bend_deg = FloatSpinBox(
            value=TRAIN_DEFAULTS["bend_deg"],
            min=0.0,
            max=45.0,
            step=5.0,
            label="bending",
            tooltip="largest tilt (degrees) the bending augmentation adds to a training "
            "spine; 0: off (TrainConfig.bend_deg)",
        )
        self.bend_deg.native.setSuffix("°")
        # two settings a row: one more row and every dock open no longer fits 1080 px
        self.batch_row = button_row(self.batch_size, self.bend_deg)
        self.batch_row.label = "batch size, bending"
        self.outputs = ComboBox(
            choices=list(OUTPUTS),
            value="auto",
            label="learns",
            tooltip="what the network learns: the 17 vertebrae (their trimap derived from "
            "them) or the trimap alone; auto: the vertebrae when every training image has "
            "landmarks and no trimap file (TrainConfig.outputs)",
        )
        self.lr_schedule = ComboBox(
            choices=list(LR_SCHEDULES),
            value=TRAIN_DEFAULTS["lr_schedule"],
            label="schedule",
            tooltip="how the learning rate falls: cosine, a half cosine over the epochs "
            "(or the time limit); plateau, halved when the validation loss stalls "
            "(TrainConfig.lr_schedule)",
        )
        self.rate_row = button_row(self.learning_rate, self.lr_schedule)
        self.rate_row.label = "learning rate, schedule"
        self.zoom_pass = CheckBox(
            text="zoom pass",
            value=True,
            tooltip="a vertebrae model also learns the column again at the X-ray's own "
            "resolution and predicts it in a second pass (TrainConfig.zoom_pass)",
        )
        self.learns_row = button_row(self.outputs, self.zoom_pass)
        self.learns_row.label = "learns"
        self.where = ComboBox(choices=WHERE_CHOICES, value="here", label="run")
        self.start_button = PushButton(text="Start training")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.retrain_epochs = SpinBox(
            value=DEFAULT_EPOCHS, min=1, max=10_000, label="retrain epochs"
        )
        self.retrain_button = PushButton(text="Retrain on reviewed images")
        self.retrain_row = button_row(self.retrain_epochs, self.retrain_button)
        self.retrain_row.label = "retrain epochs"
        self.status = status_label(label="status", value="idle")
        self.use_new_button = PushButton(text="Use the new model", visible=False)

    def _lay_out(self) -> None:
        """The fields top to bottom (the slurm ones among them), then the plot."""
        self.extend(
            [
                self.model_file,
                self.load_button,
                self.model_info,
                self.dataset,
                self.out,
                self.preset,
                self.size,
                self.epochs_row,
                self.batch_row,
                self.rate_row,
                self.learns_row,
                self.where,
                self.partition,
                self.time_min,
                button_row(self.start_button, self.stop_button),
                self.retrain_row,
                self.status,
                self.use_new_button,
                self.jobs,
                self.jobs_buttons,
                self.log_tail,
            ]
        )
        self.plot = metrics_plot_class()()
        self.native.layout().addWidget(self.plot)

    def _connect(self) -> None:
        self.preset.changed.connect(self._preset_size)
        self.where.changed.connect(self._show_slurm_options)
        self.outputs.changed.connect(self._zoom_pass_applies)
        self.dataset.changed.connect(self._suggest_out)
        self.load_button.clicked.connect(self.load)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.retrain_button.clicked.connect(self.retrain)
        self.use_new_button.clicked.connect(self.use_new_model)
        self.state.model_changed.connect(self._show_model)

    # -- small helpers ------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self.status.value = text

    def _fail(self, exc: BaseException) -> None:
        show_error(self.status, exc)

    def _refuse(self, problem: str) -> None:
        """Say in the status why nothing starts."""
        self._fail(SpineSegError(None, problem))

    def _busy(self) -> bool:
        """Whether a job is running (one at a time: then say so)."""
        if self.running:
            self._refuse("a training job is running already; stop it first")
        return self.running

    def _preset_size(self, preset: str) -> None:
        rows, cols = default_size(preset)
        self.size.value = f"{rows}x{cols}"

    def _zoom_pass_applies(self, outputs: str) -> None:
        # a trimap model has no zoom pass: the box would promise what training refuses
        self.zoom_pass.enabled = outputs != "trimap"

    def _suggest_out(self, _=None) -> None:
        dataset = _path(self.dataset)
        if dataset is not None and _path(self.out) is None:
            self.out.value = dataset.with_name(f"{dataset.name}-unet.keras")

    def _show_model(self, model) -> None:
        self.model_info.value = "none" if model is None else describe_model(model)
        if model is not None and model.path is not None:
            self.model_file.value = model.path  # the field names the model in use
        if self.offered is not None and model is not None and model.path == self.offered.path:
            self._withdraw_offer()

    @property
    def running(self) -> bool:
        """Whether a training (or retraining) job is running."""
        return self._job is not None

    # -- loading ---------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the chosen model file (in a thread) and make it the current model."""
        path = _path(self.model_file)
        if path is None:
            self._refuse("choose a model file (.keras) to load")
            return
        self.load_path(path)

    def load_path(self, path: Path) -> None:
        """Load `path` (in the model process) and make it the current model."""
        path = Path(path)
        self._say(f"loading {path.name}…")

        def loaded(info):
            self.state.set_model(ModelRef(path, info))
            self._say(f"current model: {path.name}")

        self._read_model_info(path, loaded)

    def _read_model_info(self, path: Path, on_return) -> None:
        """Read `path`'s metadata in the model process (Keras stays out of napari's),
        then call `on_return` with it on the GUI thread."""
        start_worker(
            model_process.call,
            model_process.load_model_info,
            str(path),
            on_return=on_return,
            on_error=self._fail,
            keep_in=self._workers,
        )

    # -- training ------------------------------------------------------------------------------

    def training_config(self) -> TrainConfig:
        """The :class:`~napari_spine_seg.model.config.TrainConfig` the fields ask for.

        Raises
        ------
        SpineSegError
            When a field is missing or a setting is refused.
        """
        dataset, out = _path(self.dataset), _path(self.out)
        if dataset is None:
            raise SpineSegError(None, "choose a dataset folder to train on")
        if out is None:
            raise SpineSegError(None, "choose where to save the model (.keras)")
        return TrainConfig(
            dataset=dataset,
            out=out,
            preset=self.preset.value,
            size=self.size.value,
            epochs=int(self.epochs.value),
            batch_size=int(self.batch_size.value),
            learning_rate=float(self.learning_rate.value),
            max_minutes=float(self.max_minutes.value) or None,
            bend_deg=float(self.bend_deg.value),
            outputs=self.outputs.value,
            # checked: on when the model learns vertebrae (a trimap model has no zoom pass)
            zoom_pass=None if self.zoom_pass.value and self.outputs.value != "trimap" else False,
            lr_schedule=self.lr_schedule.value,
        )

    def start(self) -> None:
        """Train on the chosen dataset with the chosen settings, in a thread."""
        try:
            config = self.training_config()
        except SpineSegError as exc:
            self._fail(exc)
            return
        self.plot.reset()
        if self.where.value == "slurm":
            self._run_slurm(config)
            return
        self._run(train, f"training on {Path(config.dataset).name}", config=config)

    def retrain(self) -> None:
        """Fine-tune the current model on the open review's accepted and corrected images."""
        model, session = self.state.model, self.state.review
        if model is None or model.path is None:
            self._refuse("no current model to retrain: train or load one")
            return
        if session is None:
            self._refuse("no open review: open one in the review widget")
            return
        if self._busy():
            return
        source = Path(model.path)
        out = free_model_name(source)
        epochs = int(self.retrain_epochs.value)
        options = None
        if self.where.value == "slurm":
            options = self._slurm_options()
            if options is None:
                return
        try:
            # the child trains on the review as it is now, while the person goes on
            snapshot = session.snapshot()
        except SpineSegError as exc:
            self._fail(exc)
            return
        # a fine-tune has a history of its own (TrainConfig.init_from), from epoch 1
        self.plot.reset()
        if options is not None:
            self._retrain_on_slurm(snapshot, source, out, epochs, options)
            return
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
        if self._busy():
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
            self._stopping = True
            self._job.cancel()
            self._say("stopping after this batch…")

    def _set_running(self, running: bool) -> None:
        if running:
            self._stopping = False
            self._withdraw_offer()
        self.start_button.enabled = not running
        self.retrain_button.enabled = not running
        self.load_button.enabled = not running
        self.stop_button.enabled = running

    def _on_event(self, event) -> None:
        from napari.utils import progress

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
            if not self._stopping:  # batches already on their way: keep saying it stops
                self._say(
                    f"epoch {event.epoch}, batch {event.batch}/{event.steps}: loss {event.loss:.3f}"
                )
        elif isinstance(event, ev.EpochEnded):
            self.plot.add(event.epoch, event.metrics)
            dice = event.metrics.get("val_spine_dice", event.metrics.get("spine_dice"))
            tail = f", spine Dice {dice:.3f}" if isinstance(dice, int | float) else ""
            if not self._stopping:
                self._say(f"epoch {event.epoch}/{event.epochs} done in {event.seconds:.0f} s{tail}")

    def _on_done(self, result) -> None:
        self.last_result = result
        how = STOPPED_WORDS.get(result.stopped, result.stopped)
        done = f"training {how} after {result.epochs_run} epochs"
        self._say(f"{done}: {Path(result.model_path).name}")  # no toast: one can hold the GUI
        stopped = "stopped by you" if result.stopped == "cancelled" else None
        self._consider(Path(result.model_path), done, stopped)

    # -- the new model: current, or offered --------------------------------------------------

    def _consider(self, path: Path, done: str, stopped: str | None = None) -> None:
        """Make the model a training wrote current, unless it was `stopped` (why) or scores
        worse than the current model: then offer it (*Use the new model*), keep the current
        one and say so after `done`."""

        def loaded(info):
            new = ModelRef(path, info)
            current = self.state.model
            why = stopped or worse_than_current(info, current)
            if why is None:
                self.state.set_model(new)
                self._say(f"{done}: {path.name} is the current model now")
                return
            keep = (
                f"the current model is still {current.path.name}"
                if current is not None
                else "not in use yet"
            )
            self._offer(new, f"{done}: {path.name} ({why}); {keep}")

        self._read_model_info(path, loaded)

    def _offer(self, model, text: str) -> None:
        self.offered = model
        self.use_new_button.visible = True
        self._say(text)

    def _withdraw_offer(self) -> None:
        self.offered = None
        self.use_new_button.visible = False

    def use_new_model(self) -> None:
        """Make the offered model (one a stopped or worse-scoring training wrote) current."""
        if self.offered is None:
            return
        model = self.offered
        self.state.set_model(model)  # withdraws the offer (see _show_model)
        self._say(f"current model: {model.path.name} (the new one, by your choice)")

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _on_finish(self) -> None:
        self._close_progress()
        self._job = None
        self._set_running(False)
