"""train(): learning, checkpoints, history, progress events, cancel, resume, seeding, JAX."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from _files import write_aasce_layout
from napari_spine_seg.data.dataset import open_dataset
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.model import events as ev
from napari_spine_seg.model.files import load_model, read_metadata
from napari_spine_seg.model.train import split_samples, train

#: a network small enough to train in seconds on tiny images
TINY = {"size": (64, 32), "options": {"depth": 2, "filters": 8}, "batch_size": 2}
#: the settings of the shared run (no augmentation, so that a few epochs learn a lot); the
#: trimap output, as these synthetic X-rays show a column, not vertebrae (a vertebrae
#: model is trained on phantoms in tests/test_vertebrae_model.py)
RUN = {"learning_rate": 3e-3, "seed": 1, "augment": False, "patience": None, "outputs": "trimap"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = write_aasce_layout(
        tmp_path_factory.mktemp("set") / "aasce", n_train=8, n_test=2, size=(160, 64)
    )
    return open_dataset(root)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """One short training run whose files and events several tests look at."""
    out = tmp_path_factory.mktemp("run") / "m.keras"
    events = []
    result = train(
        dataset, out, epochs=4, progress=events.append, cache=out.parent / "cache", **RUN, **TINY
    )
    return result, events


def _mean_loss_on(model_path, dataset):
    """Cross-entropy of a model on the (unaugmented) training images."""
    from napari_spine_seg.model.pipeline import ArrayCache, BatchSource, InputSpec

    loaded = load_model(model_path)
    source = BatchSource(
        dataset.split("training").samples, InputSpec((64, 32)), batch_size=8, cache=ArrayCache(None)
    )
    x, y = source.batch(0)
    p = np.asarray(loaded.keras_model(x))
    return float(-np.mean(np.log(np.take_along_axis(p, y[..., None], axis=-1) + 1e-7)))


def test_training_learns(trained, dataset):
    result, _ = trained
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 4
    assert losses[-1] < 0.7 * losses[0], losses  # the loss really goes down
    dice = [row["spine_dice"] for row in result.history]
    assert dice[-1] > 0.8 and dice[-1] > dice[0] + 0.2, dice


def test_split_uses_the_training_split_and_holds_out_validation(dataset):
    train_s, val_s = split_samples(dataset, 0.25, seed=0)
    assert {s.split for s in train_s + val_s} == {"training"}  # test images never train
    assert (len(train_s), len(val_s)) == (6, 2)
    assert not {s.name for s in train_s} & {s.name for s in val_s}
    assert split_samples(dataset, 0.25, seed=0) == (train_s, val_s)


def test_best_checkpoint_history_csv_and_metadata(trained):
    result, _ = trained
    assert result.model_path.exists() and result.last_checkpoint.exists()
    assert result.last_checkpoint.name == "m.last.keras"
    with open(result.history_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert {
        "loss",
        "accuracy",
        "spine_dice",
        "val_loss",
        "val_accuracy",
        "val_spine_dice",
        "lr",
    } <= set(rows[0])
    best = max(result.history, key=lambda r: r["val_spine_dice"])
    assert result.best_epoch == best["epoch"]
    info = read_metadata(result.model_path)
    assert info.training["epoch"] == result.best_epoch
    assert info.metrics["val_spine_dice"] == pytest.approx(best["val_spine_dice"])
    assert info.input_size == (64, 32) and info.options == TINY["options"]
    assert (
        info.training_set["n_train"] == result.n_train
        and len(info.training_set["fingerprint"]) == 64
    )
    assert read_metadata(result.last_checkpoint).training["epoch"] == 4
    assert result.stopped == "completed" and result.epochs_run == 4


def test_progress_events_come_in_order(trained):
    result, events = trained
    kinds = [type(e) for e in events]
    assert kinds[0] is ev.Preparing and kinds[-1] is ev.TrainingDone
    start = kinds.index(ev.TrainingStarted)
    assert all(k is ev.Preparing for k in kinds[:start])
    assert events[start - 1].done == events[start - 1].total == 8
    began = [e for e in events if isinstance(e, ev.EpochStarted)]
    ended = [e for e in events if isinstance(e, ev.EpochEnded)]
    batches = [e for e in events if isinstance(e, ev.BatchEnded)]
    assert [e.epoch for e in began] == [e.epoch for e in ended] == [1, 2, 3, 4]
    steps = events[start].steps_per_epoch
    assert len(batches) == 4 * steps and batches[0].batch == 1 and batches[steps - 1].batch == steps
    assert all(np.isfinite(b.loss) and "spine_dice" in b.metrics for b in batches)
    assert "val_spine_dice" in ended[0].metrics and ended[0].seconds > 0
    assert events[-1].result is result


def test_cancel_stops_at_the_next_batch_and_keeps_a_model(dataset, tmp_path):
    stop = threading.Event()
    events = []

    def progress(event):
        events.append(event)
        if isinstance(event, ev.BatchEnded):
            stop.set()

    result = train(
        dataset, tmp_path / "c.keras", epochs=5, progress=progress, cancel=stop, cache=None, **TINY
    )
    assert result.stopped == "cancelled"
    assert sum(isinstance(e, ev.BatchEnded) for e in events) == 1
    assert result.history == [] and result.epochs_run == 0
    assert result.model_path.exists() and result.last_checkpoint.exists()
    load_model(result.model_path)  # a usable model


def test_cancel_in_an_epochs_last_batch_skips_its_validation(dataset, tmp_path):
    """keras validates an epoch that Stop cut short: the hook stops that after one batch."""
    import keras

    stop = threading.Event()
    validated = []

    def progress(event):
        if isinstance(event, ev.BatchEnded) and event.batch == event.steps:
            stop.set()  # Stop in the epoch's last batch: validation would come next

    class CountValidation(keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            validated.append(batch)

    result = train(
        dataset,
        tmp_path / "v.keras",
        epochs=5,
        progress=progress,
        cancel=stop,
        cache=None,
        val_fraction=0.5,  # 4 validation images, one per batch
        callbacks=[CountValidation()],
        **{**TINY, "batch_size": 1},
    )
    assert result.n_val == 4
    assert result.stopped == "cancelled" and result.epochs_run == 0
    assert len(validated) <= 1  # not the 4 batches of a whole validation


def test_resume_continues_the_epochs(trained, dataset, tmp_path):
    first, _ = trained
    events = []
    result = train(
        dataset,
        tmp_path / "r.keras",
        epochs=5,
        resume=first.last_checkpoint,
        progress=events.append,
        cache=None,
    )
    started = next(e for e in events if isinstance(e, ev.TrainingStarted))
    assert started.initial_epoch == 4 and started.epochs == 5
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    assert result.history[:4] == first.history
    assert read_metadata(result.last_checkpoint).training["epoch"] == 5
    # settings come from the checkpoint, not the defaults
    assert read_metadata(result.last_checkpoint).input_size == (64, 32)
    with pytest.raises(SpineSegError, match="has trained 5 epochs already"):
        train(dataset, tmp_path / "r2.keras", epochs=5, resume=result.last_checkpoint, cache=None)


def test_the_same_seed_gives_the_same_run(trained, dataset, tmp_path):
    first, _ = trained
    again = train(dataset, tmp_path / "s.keras", epochs=1, cache=None, **RUN, **TINY).history[0]
    for key in ("loss", "spine_dice", "val_loss", "val_spine_dice"):
        assert again[key] == pytest.approx(first.history[0][key], rel=1e-4, abs=1e-5)
    other = train(
        dataset, tmp_path / "o.keras", epochs=1, cache=None, **{**RUN, "seed": 2}, **TINY
    ).history[0]
    assert other["loss"] != pytest.approx(first.history[0]["loss"], rel=1e-4)


def test_early_stopping_when_validation_does_not_improve(dataset, tmp_path):
    result = train(
        dataset, tmp_path / "e.keras", epochs=6, patience=1, learning_rate=1e-9, cache=None, **TINY
    )
    assert result.stopped == "early_stopping"
    assert result.epochs_run < 6


def test_the_cosine_schedule_sets_each_epochs_rate_and_a_resume_carries_it_on(dataset, tmp_path):
    from napari_spine_seg.model.train_fit import MIN_LEARNING_RATE, cosine_rate

    run = {**RUN, "lr_schedule": "cosine"}
    first = train(dataset, tmp_path / "c.keras", epochs=2, cache=None, **run, **TINY)
    assert [r["lr"] for r in first.history] == pytest.approx([3e-3, cosine_rate(3e-3, 0.5)])
    assert read_metadata(first.model_path).training["lr_schedule"] == "cosine"
    # resumed with more epochs, the schedule stretches to the new end
    resumed = train(
        dataset, tmp_path / "r.keras", epochs=4, resume=first.last_checkpoint, cache=None, **run
    )
    rates = [r["lr"] for r in resumed.history]
    assert rates[2:] == pytest.approx([cosine_rate(3e-3, 0.5), cosine_rate(3e-3, 0.75)])
    assert cosine_rate(3e-3, 1.0) == pytest.approx(MIN_LEARNING_RATE)


def test_the_cosine_schedule_reaches_its_end_with_the_time_budget(dataset, tmp_path):
    from napari_spine_seg.model.train_fit import MIN_LEARNING_RATE

    run = {**RUN, "lr_schedule": "cosine"}
    result = train(
        dataset, tmp_path / "t.keras", epochs=50, max_minutes=1e-4, cache=None, **run, **TINY
    )
    assert result.stopped == "time_budget" and result.epochs_run == 1
    # the budget (6 ms) was spent before the first epoch began: the schedule is at its end
    assert result.history[0]["lr"] == pytest.approx(MIN_LEARNING_RATE)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"preset": "resnet"}, "unknown model preset"),
        ({"loss": "focal"}, "unknown loss"),
        ({"fit": "crop"}, "unknown fit"),
        ({"epochs": 0}, "must be positive"),
        ({"val_fraction": 1.0}, "validation fraction"),
    ],
)
def test_bad_settings_are_one_line_errors(dataset, tmp_path, kwargs, words):
    with pytest.raises(SpineSegError, match=words):
        train(dataset, tmp_path / "x.keras", **kwargs)


def test_output_must_be_writable_and_end_in_keras(dataset, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpineSegError, match="cannot create the output folder"):
        train(dataset, blocker / "m.keras", epochs=1, **TINY)
    with pytest.raises(SpineSegError, match="must end in .keras"):
        train(dataset, tmp_path / "m.h5", epochs=1, **TINY)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_build_forward_and_train_on_jax_with_bf16_mixed_precision(dataset, tmp_path):
    """The GPU path (JAX backend, mixed_bfloat16), exercised on the CPU in a subprocess."""
    code = textwrap.dedent(
        f"""
        import keras, numpy as np
        from napari_spine_seg.model.builders import build_model
        from napari_spine_seg.model.train import train
        from napari_spine_seg.model.files import load_model, read_metadata
        assert keras.backend.backend() == "jax"
        m = build_model("unet", (32, 16, 1), depth=1, filters=2)
        y = np.asarray(m(np.zeros((2, 32, 16, 1), "float32")))
        assert y.shape == (2, 32, 16, 3) and np.allclose(y.sum(-1), 1, atol=1e-4)
        r = train({str(dataset.root)!r}, {str(tmp_path / "j.keras")!r}, epochs=1, size=(32, 16),
                  options=dict(depth=1, filters=2), batch_size=4, mixed_precision=True, cache=None)
        info = read_metadata(r.model_path)
        assert info.training["mixed_precision"] and info.versions["backend"] == "jax", info
        assert keras.config.dtype_policy().name == "float32"  # policy restored
        m = load_model(r.model_path)
        print("ok", r.epochs_run, m.keras_model.layers[1].dtype_policy.name)
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[:3] == ["ok", "1", "mixed_bfloat16"]


def test_cli_train_reports_epochs_and_writes_the_model(dataset, tmp_path, capsys):
    from napari_spine_seg.cli import main

    out = tmp_path / "cli.keras"
    args = ["train", str(dataset.root), "--out", str(out), "--epochs", "1", "--size", "64x32"]
    assert main([*args, "--batch-size", "4", "--no-cache", "--seed", "3"]) == 0
    captured = capsys.readouterr()
    assert "training on 7 images, validating on 1" in captured.err
    assert "epoch 1/1" in captured.err and "val_dice" in captured.err
    assert f"saved {out}" in captured.out and "cli.last.keras" in captured.out
    info = read_metadata(out)
    assert info.input_size == (64, 32) and info.training["seed"] == 3 and info.fit == "letterbox"


def test_cli_train_bad_size_is_one_line_exit_2(dataset, tmp_path, capsys):
    from napari_spine_seg.cli import main

    assert (
        main(["train", str(dataset.root), "--out", str(tmp_path / "m.keras"), "--size", "tall"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err == "spine-seg train: error: size must be ROWSxCOLS like 384x144, got 'tall'"


def test_cli_train_stops_on_sigterm_and_keeps_its_last_checkpoint(dataset, tmp_path):
    """scancel and slurm time limits send SIGTERM: the run stops, resumable, exit 130."""
    import signal
    import time

    out = tmp_path / "t.keras"
    args = [sys.executable, "-m", "napari_spine_seg.cli", "train", str(dataset.root)]
    args += ["--out", str(out), "--epochs", "200", "--size", "64x32", "--batch-size", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = out.with_name("t.history.csv")
    deadline = time.monotonic() + 120
    while not history.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "SIGTERM: stopping after this batch" in stderr
    assert "cancelled after" in stdout
    assert out.with_name("t.last.keras").exists()
    load_model(out.with_name("t.last.keras"))


def _with_recorded_score(model_path, out, score):
    """A copy of a trained model whose history records `score` as its validation Dice."""
    from dataclasses import replace

    from napari_spine_seg.model.files import save_model

    loaded = load_model(model_path, compile=True)
    history = [{**row, "val_spine_dice": score} for row in loaded.info.history]
    save_model(loaded.keras_model, out, replace(loaded.info, history=history))
    return out


def test_a_fine_tune_keeps_its_own_best_but_a_resume_keeps_the_old_one(trained, dataset, tmp_path):
    first, _ = trained
    start = _with_recorded_score(first.last_checkpoint, tmp_path / "start.keras", 1.0)
    # fine-tuning (init_from): its own history and no best score, so epoch 1 is its best
    tuned = train(dataset, tmp_path / "ft.keras", epochs=1, init_from=start, cache=None, **RUN)
    assert tuned.best_epoch == 1 and tuned.model_path.exists()
    info = read_metadata(tuned.model_path)
    assert [r["epoch"] for r in info.history] == [1]
    assert info.training["init_from"] == str(start) and info.input_size == (64, 32)
    assert np.isclose(info.metrics["val_spine_dice"], tuned.history[0]["val_spine_dice"])
    assert tuned.history[0]["val_spine_dice"] < 1.0
    # resuming the same file on the same data keeps its recorded best: no epoch beats 1.0
    resumed = train(dataset, tmp_path / "rs.keras", epochs=5, resume=start, cache=None)
    assert resumed.best_epoch <= 4 and not resumed.model_path.exists()  # an epoch of `start`


def test_max_minutes_stops_after_the_epoch_that_crosses_it(dataset, tmp_path):
    out = tmp_path / "budget.keras"
    result = train(dataset, out, epochs=50, max_minutes=1e-4, cache=None, **RUN, **TINY)
    assert result.stopped == "time_budget" and result.epochs_run == 1
    assert out.exists() and result.best_epoch == 1
    assert [r["epoch"] for r in result.history] == [1]
    assert result.history[-1]["stopped"] == "time_budget"
    last = read_metadata(result.last_checkpoint)
    assert last.training["stopped"] == "time_budget" and last.training["max_minutes"] == 1e-4
    assert last.history[-1]["stopped"] == "time_budget"
    with open(result.history_csv, newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1"]


def test_cli_max_minutes(dataset, tmp_path, capsys):
    from napari_spine_seg.cli import main

    out = tmp_path / "cli-budget.keras"
    args = ["train", str(dataset.root), "--out", str(out), "--epochs", "30", "--size", "64x32"]
    assert main([*args, "--no-cache", "--max-minutes", "0.0001", "--batch-size", "4"]) == 0
    captured = capsys.readouterr()
    assert "time_budget after 1 epochs" in captured.out
    assert read_metadata(out).training["max_minutes"] == 1e-4
