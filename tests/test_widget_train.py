"""Train, load and retrain in a real viewer: progress, live plot, Stop, current model, no stall."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _files import write_aasce
from _widget_helpers import StallProbe, new_widget
from napari_spine_seg.model import events as ev
from napari_spine_seg.model.files import read_metadata

WIDGET = "train_widget:TrainWidget"

pytestmark = [pytest.mark.gui, pytest.mark.slow]
SHAPE = (128, 64)


_COMPILED_MODEL = textwrap.dedent(
    """
    import json
    import sys
    import keras
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, save_model
    from napari_spine_seg.model.objects import make_loss, make_metrics

    options = {"depth": 2, "filters": 4}
    model = build_model("unet", (64, 32, 1), 3, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("ce+dice"),
                  metrics=make_metrics())
    info = ModelInfo(preset="unet", options=options, input_size=(64, 32), channels=1,
                     training_set={"root": sys.argv[2], "n_train": 4, "n_val": 0},
                     training={"epoch": 0}, metrics=json.loads(sys.argv[3]),
                     history=json.loads(sys.argv[4]))
    save_model(model, sys.argv[1], info)
    """
)


def write_compiled_model(
    path: Path, training_set: Path, metrics: dict | None = None, history: list | None = None
) -> Path:
    """An untrained, compiled model file (resumable), written by a child process.

    Its metadata claims `metrics` (default: spine Dice 0.25) and `history` (default: no
    epochs). TensorFlow must not load into this process, which has napari's OpenGL.
    """
    metrics = {"spine_dice": 0.25} if metrics is None else metrics
    subprocess.run(
        [
            sys.executable,
            "-c",
            _COMPILED_MODEL,
            os.fspath(path),
            os.fspath(training_set),
            json.dumps(metrics),
            json.dumps(history or []),
        ],
        check=True,
        timeout=300,
    )
    return path


@pytest.fixture
def dataset(tmp_path):
    return write_aasce(tmp_path / "phantoms", {"training": (4, 0)})


def shown(widget, magic) -> bool:
    return magic.native.isVisibleTo(widget.native)


def test_train_shows_progress_and_plot_stop_keeps_the_current_model(
    make_napari_viewer, qtbot, dataset, tmp_path
):
    """Stop lands long before the 200 epochs end; the status says so and keeps saying
    so; the stopped model is offered, never made current without the person's choice."""
    from napari.utils import progress

    current = write_compiled_model(tmp_path / "good.keras", dataset, {"spine_dice": 0.9})
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.load_path(current)
    qtbot.waitUntil(lambda: widget.state.model is not None, timeout=120_000)
    widget.dataset.value = dataset
    assert widget.out.value == dataset.with_name("phantoms-unet.keras")  # suggested
    widget.out.value = tmp_path / "m.keras"
    widget.size.value = "64x32"
    widget.epochs.value = 200
    widget.batch_size.value = 1
    batches = []  # (epoch, batch) of each batch the child reports, as the widget gets them
    on_event = widget._on_event
    widget._on_event = lambda e: (
        batches.append((e.epoch, e.batch)) if isinstance(e, ev.BatchEnded) else None,
        on_event(e),
    )
    bars = []
    with StallProbe() as probe:
        widget.start_button.clicked()
        assert widget.running and widget.stop_button.enabled and not widget.start_button.enabled
        qtbot.waitUntil(lambda: len(widget.plot.history) >= 1, timeout=120_000)
        bars = [p for p in progress._all_instances if p.desc.startswith("epoch")]
        assert bars and bars[0].total == 200 * 3  # epochs x batches (3 training images)
        assert bars[0].n >= 3  # one epoch's batches done
        widget.stop_button.clicked()
        seen_at_stop = len(batches)
        assert widget.status.value == "stopping after this batch…"
        qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
        qtbot.waitUntil(lambda: widget.offered is not None, timeout=60_000)
    assert shown(widget, widget.use_new_button)
    result = widget.last_result
    assert result.stopped == "cancelled"
    assert 1 <= result.epochs_run < 200  # stopped early
    # the batch running when Stop was pressed ends, and at most one more whose report was
    # on its way (measured: 1 here); the child stops at the batch, not epochs later
    assert len(batches) - seen_at_stop <= 2, batches[seen_at_stop - 1 :]
    assert Path(result.model_path) == tmp_path / "m.keras" and result.model_path.exists()
    said = f"training stopped after {result.epochs_run} epochs: m.keras (stopped by you)"
    assert widget.status.value.startswith(said), widget.status.value
    assert "the current model is still good.keras" in widget.status.value
    qtbot.wait(1500)  # nothing overwrites it
    assert widget.status.value.startswith(said), widget.status.value
    # the model the person had is still the one in use, and the field names it
    assert widget.state.model.path == current
    assert Path(widget.model_file.value) == current
    assert widget.model_info.value.startswith("good.keras")
    history = widget.plot.history
    assert history[0]["epoch"] == 1 and {"loss", "accuracy", "spine_dice"} <= set(history[0])
    assert widget.start_button.enabled and not widget.stop_button.enabled
    assert all(p not in progress._all_instances for p in bars)  # closed
    assert len(probe.ticks) > 100
    # this process's CPU time inside a pause of the event loop (the wall time of a pause
    # grows with other processes' work on a loaded machine)
    assert probe.longest_busy() < 200, f"the event loop stalled: {probe.report()}"

    widget.use_new_button.clicked()  # the person's choice
    assert widget.state.model.path == tmp_path / "m.keras"
    assert Path(widget.model_file.value) == tmp_path / "m.keras"
    assert "input 64x32" in widget.model_info.value
    assert not shown(widget, widget.use_new_button) and widget.offered is None


def test_a_worse_model_is_offered_not_made_current(make_napari_viewer, qtbot, dataset, tmp_path):
    """A training that completes with a spine Dice below the current model's leaves the
    current model in use; the better one it would replace is named in the status."""
    perfect = {"spine_dice": 1.0, "val_spine_dice": 1.0}
    current = write_compiled_model(tmp_path / "best.keras", dataset, perfect)
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.model_file.value = current
    widget.load_button.clicked()
    qtbot.waitUntil(lambda: widget.state.model is not None, timeout=120_000)
    widget.dataset.value = dataset
    widget.out.value = tmp_path / "new.keras"
    widget.size.value = "64x32"
    widget.epochs.value = 1
    # the set has landmarks: "auto" would learn the vertebrae; these choices must reach
    # the training and be recorded in the model
    widget.outputs.value = "trimap"
    widget.lr_schedule.value = "plateau"
    widget.start_button.clicked()
    qtbot.waitUntil(lambda: not widget.running, timeout=180_000)
    qtbot.waitUntil(lambda: widget.offered is not None, timeout=60_000)
    info = read_metadata(tmp_path / "new.keras")
    assert info.outputs == ["trimap"] and info.training["lr_schedule"] == "plateau"
    assert "zoom_pass" not in info.training
    assert shown(widget, widget.use_new_button)
    assert widget.last_result.stopped == "completed" and widget.last_result.epochs_run == 1
    status = widget.status.value
    assert status.startswith("training done after 1 epochs: new.keras (its val. spine Dice 0.")
    assert "below the current model's 1.000); the current model is still best.keras" in status
    assert widget.state.model.path == current and Path(widget.model_file.value) == current
    assert widget.offered.path == tmp_path / "new.keras"


def test_load_shows_the_model_and_bad_files_are_one_line(
    make_napari_viewer, qtbot, dataset, tmp_path, napari_notifications
):
    model = write_compiled_model(tmp_path / "tiny.keras", dataset)
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.model_file.value = model
    widget.load_button.clicked()
    qtbot.waitUntil(lambda: widget.state.model is not None, timeout=120_000)
    text = widget.model_info.value
    assert text.startswith("tiny.keras: unet, input 64x32")
    assert f"trained on {dataset} (4 training, 0 validation images), 0 epochs" in text
    assert "spine Dice 0.250" in text

    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    widget.model_file.value = broken
    widget.load()
    qtbot.waitUntil(lambda: "broken.keras" in widget.status.value, timeout=60_000)
    qtbot.waitUntil(lambda: "corrupt" in widget.status.value, timeout=60_000)
    assert widget.state.model.path == model  # still the good one
    assert "\n" not in widget.status.value


def test_retrain_on_reviewed_images(make_napari_viewer, qtbot, dataset, tmp_path):
    from napari_spine_seg._napari._widgets._state import ModelRef
    from napari_spine_seg._napari._widgets.review_widget import ReviewWidget

    # a model with no skill yet: the retrained one is no worse and becomes current; its
    # own three epochs are not the fine-tune's, which has a history of its own
    earlier = [{"epoch": e, "loss": 1.0, "spine_dice": 0.0} for e in (1, 2, 3)]
    model = write_compiled_model(tmp_path / "tiny.keras", dataset, {"spine_dice": 0.0}, earlier)
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    from napari.utils._proxies import PublicOnlyProxy

    review = ReviewWidget(PublicOnlyProxy(viewer))  # as napari hands it to plugins
    viewer.window.add_dock_widget(review)
    review.dataset_edit.value = dataset
    review.folder_edit.value = tmp_path / "review"
    review.open_review()  # no model yet: shows the dataset's trimaps
    qtbot.waitUntil(lambda: review._key is not None, timeout=30_000)
    first = review._key
    review.accept_and_next()
    qtbot.waitUntil(lambda: review._key not in (None, first), timeout=30_000)  # next one shown
    widget.state.set_model(ModelRef(model, read_metadata(model)))
    widget.retrain_epochs.value = 1
    with StallProbe() as probe:
        widget.retrain_button.clicked()
        qtbot.waitUntil(lambda: not widget.running, timeout=180_000)
        qtbot.waitUntil(lambda: widget.state.model.path != model, timeout=60_000)
    assert widget.state.model.path == tmp_path / "tiny-retrained.keras"
    # it trained on a snapshot of the review, deleted once the job ended
    assert not list((tmp_path / "review").glob(".snapshot-*"))
    info = read_metadata(widget.state.model.path)
    assert info.training["epoch"] == 1
    # the 4 original images (the accepted one replaced by its reviewed trimap)
    assert info.training_set["n_train"] + info.training_set["n_val"] == 4
    assert [r["epoch"] for r in widget.plot.history] == [1]
    assert widget.status.value.endswith("tiny-retrained.keras is the current model now")
    assert Path(widget.model_file.value) == widget.state.model.path
    assert len(probe.ticks) > 100
    assert probe.longest_busy() < 200, f"the event loop stalled: {probe.report()}"


def test_a_size_the_preset_cannot_take_is_one_line_before_anything_runs(
    make_napari_viewer, dataset, tmp_path, napari_notifications
):
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.dataset.value = dataset
    widget.out.value = tmp_path / "m.keras"
    widget.size.value = "100x36"
    widget.start_button.clicked()
    assert not widget.running
    assert widget.status.value == (
        "preset 'unet' needs rows and columns divisible by 16, got 100x36"
    )
    assert not (tmp_path / "m.keras").exists()
