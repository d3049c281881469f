"""Retraining on a review's corrections: which samples, and a real fine-tuning run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from _files import write_aasce
from napari_spine_seg.data.masks import read_mask
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.review.retrain import retraining_dataset
from napari_spine_seg.review.session import ReviewSession

SHAPE = (128, 64)
#: the phantom data set: split -> (images, first seed), and the images' names
SPLITS = {"training": (4, 0), "test": (2, 100)}
NAME = "ph {split} {i:02d}.jpg"


@pytest.fixture
def aasce(tmp_path):
    return write_aasce(tmp_path / "phantoms", SPLITS, name=NAME)


def test_retraining_set_is_the_corrections_plus_the_original_training_set(aasce, tmp_path):
    session = ReviewSession.open(tmp_path / "review", aasce)
    test_key = "test/ph test 00.jpg"
    train_key = "training/ph training 01.jpg"
    corrected = session.sample(test_key).load_trimap()
    corrected[:10] = 1
    session.save_edit(test_key, corrected)
    session.accept(test_key, corrected)
    session.accept(train_key, session.sample(train_key).load_trimap())

    dataset = retraining_dataset(session, aasce)
    names = sorted((s.split, s.name) for s in dataset.samples)
    # the test split is left out, the corrected test image joins training
    assert names == [("training", "ph test 00.jpg")] + [
        ("training", f"ph training {i:02d}.jpg") for i in range(4)
    ]
    by_name = {s.name: s for s in dataset.samples}
    assert by_name["ph training 01.jpg"].trimap_path == session.trimap_path(train_key)
    assert np.array_equal(read_mask(by_name["ph test 00.jpg"].trimap_path), corrected)
    assert np.array_equal(by_name["ph test 00.jpg"].load_trimap(), corrected)

    alone = retraining_dataset(session, None)
    assert sorted(s.name for s in alone.samples) == ["ph test 00.jpg", "ph training 01.jpg"]
    assert {s.split for s in alone.samples} == {None}


def test_retraining_needs_a_reviewed_image(aasce, tmp_path):
    session = ReviewSession.open(tmp_path / "review", aasce)
    with pytest.raises(SpineSegError, match="has no accepted or corrected images to retrain on"):
        retraining_dataset(session, aasce)


_UNTRAINED_MODEL = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import keras
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, save_model
    from napari_spine_seg.model.objects import make_loss, make_metrics

    aasce, out = Path(sys.argv[1]), Path(sys.argv[2])
    options = {"depth": 2, "filters": 4}
    model = build_model("unet", (64, 32, 1), 3, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("ce+dice"),
                  metrics=make_metrics())
    info = ModelInfo(preset="unet", options=options, input_size=(64, 32), channels=1,
                     training_set={"root": str(aasce)}, training={"epoch": 0})
    model_path = save_model(model, out, info)
    """
)


#: after _UNTRAINED_MODEL (argv: the data set, the model file to write in a scratch folder)
_FINE_TUNE = _UNTRAINED_MODEL + textwrap.dedent(
    """
    import json
    from napari_spine_seg.errors import SpineSegError
    from napari_spine_seg.model.files import read_metadata
    from napari_spine_seg.review.retrain import retrain
    from napari_spine_seg.review.session import ReviewSession
    from napari_spine_seg.trimap import trimap_from_landmarks

    tmp = out.parent
    session = ReviewSession.open(tmp / "review", aasce / "data" / "test")
    sample = session.sample(session.keys[0])
    corrected = trimap_from_landmarks(sample.load_landmarks(), (128, 64))
    session.save_edit(session.keys[0], corrected)
    session.accept(session.keys[0], corrected)
    try:
        retrain(session, model_path, model_path)
    except SpineSegError as exc:
        refused = str(exc)
    events = []
    result = retrain(session, model_path, tmp / "m-ft.keras", epochs=1, batch_size=4,
                     cache=None, progress=events.append)
    info = read_metadata(result.model_path)
    print(json.dumps({"refused": refused, "model": str(result.model_path),
                      "epoch": info.training["epoch"], "training_set": info.training_set,
                      "last_event": type(events[-1]).__name__}))
    """
)


@pytest.mark.slow
def test_retrain_fine_tunes_from_the_model(aasce, tmp_path):
    # in a child process: TensorFlow and napari's OpenGL must not share a process (see
    # jobs/model_process.py), and other tests of this run may have opened a viewer
    run = subprocess.run(
        [sys.executable, "-c", _FINE_TUNE, os.fspath(aasce), os.fspath(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["refused"].endswith("is the model being fine-tuned; choose another file name")
    assert out["model"] == str(tmp_path / "m-ft.keras")
    assert out["epoch"] == 1  # one epoch on top of the model's none
    ts = out["training_set"]
    assert ts["n_train"] + ts["n_val"] == 5  # the 4 original images + 1 corrected
    assert out["last_event"] == "TrainingDone"


# -- retraining as a job: the same job path as training (local process or slurm) -------------


def untrained_model(aasce: Path, out: Path) -> Path:
    """An untrained model whose metadata names `aasce` as its training set (child process)."""
    subprocess.run(
        [sys.executable, "-c", _UNTRAINED_MODEL, os.fspath(aasce), os.fspath(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def reviewed_test_split(aasce: Path, folder: Path) -> ReviewSession:
    """A review of the test split with its first image corrected and accepted."""
    from napari_spine_seg.trimap import trimap_from_landmarks

    session = ReviewSession.open(folder, aasce / "data" / "test")
    key = session.keys[0]
    corrected = trimap_from_landmarks(session.sample(key).load_landmarks(), SHAPE)
    corrected[:4] = 1
    session.save_edit(key, corrected)
    session.accept(key, corrected)
    return session


def check_retrained(status, out: Path, epochs_before: int = 0) -> None:
    from napari_spine_seg.model.files import read_metadata

    assert status.state == "COMPLETED", (status.state, status.error_line, status.log_tail)
    info = read_metadata(out)
    assert int(info.training["epoch"]) == epochs_before + 1
    assert info.training_set["n_train"] + info.training_set["n_val"] == 5  # 4 original + 1


def test_a_retrain_set_keeps_the_review_as_it_was_submitted(aasce, tmp_path):
    from napari_spine_seg.review.retrain import (
        RETRAIN_SET_FILE,
        freeze_retrain_set,
        open_retrain_set,
    )

    session = reviewed_test_split(aasce, tmp_path / "review")
    key = session.keys[0]
    kept = freeze_retrain_set(session, tmp_path / "job" / "retrain-set")
    session.reset(key)  # the person goes on: the retrain set keeps what was accepted
    assert not session.trimap_path(key).exists()
    review = open_retrain_set(kept.parent)
    assert kept.name == RETRAIN_SET_FILE
    assert review.reviewed_keys() == [key] and len(review.keys) == 2  # the split, not the root
    assert review.reviewed_trimap(key)[:4].min() == 1
    dataset = retraining_dataset(review, aasce)
    assert sorted(s.name for s in dataset.samples) == ["ph test 00.jpg"] + [
        f"ph training {i:02d}.jpg" for i in range(4)
    ]
    review.close()  # deletes nothing: the job's retrain set stays
    assert review.files[key].exists()
    (kept.parent / "trimaps" / "test" / "ph test 00.png").unlink()
    with pytest.raises(SpineSegError, match=r"ph test 00\.png: is missing; the retrain set"):
        open_retrain_set(kept)
    with pytest.raises(SpineSegError, match="has no accepted or corrected images"):
        freeze_retrain_set(session, tmp_path / "again")


@pytest.mark.slow
def test_retrain_runs_as_a_local_job_through_the_training_job_path(aasce, tmp_path, monkeypatch):
    from napari_spine_seg.jobs.retraining import submit_retraining

    monkeypatch.setenv("SPINE_SEG_JOBS_DIR", os.fspath(tmp_path / "jobs index"))
    model = untrained_model(aasce, tmp_path / "m.keras")
    with reviewed_test_split(aasce, tmp_path / "review") as session:
        out = tmp_path / "m-retrained.keras"
        job = submit_retraining(
            session, model, out, epochs=1, where="local", batch_size=4, base=True
        )
        session.reset(session.keys[0])  # reviewing goes on while the job runs
        status = job.wait(poll_s=1.0, timeout_s=300)
    check_retrained(status, out)
    script = (job.folder / "job.sbatch").read_text()
    assert "# spine-seg retrain," in script and "napari_spine_seg.jobs.run" in script
    # the job's config, as the entry point read it: the retrain set kept in the job folder
    from napari_spine_seg.jobs.spec import read_spec
    from napari_spine_seg.review.retrain import RetrainConfig

    spec = read_spec(job.folder)
    assert spec.kind == "retrain" and spec == job.record.spec
    config = RetrainConfig.from_dict(spec.config)
    assert config.retrain_set == job.folder / "retrain-set" / "retrain-set.json"
    assert config.retrain_set.exists() and config.model == model and config.out == out
    assert config.batch_size == 4 and config.base and config.epochs == 1


@pytest.mark.slow
def test_spine_seg_retrain_fine_tunes_on_a_retrain_set_like_the_job(aasce, tmp_path):
    """The command runs the job's path (a RetrainConfig through jobs.run.run_retraining)."""
    from napari_spine_seg.model.files import read_metadata
    from napari_spine_seg.review.retrain import freeze_retrain_set

    model = untrained_model(aasce, tmp_path / "m.keras")
    with reviewed_test_split(aasce, tmp_path / "review") as session:
        kept = freeze_retrain_set(session, tmp_path / "kept")
    out = tmp_path / "m-cli.keras"
    argv = ["retrain", str(kept.parent), "--model", str(model), "--out", str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "napari_spine_seg.cli", *argv, "--epochs", "1", "--batch-size", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith(f"saved {out}: fine-tuned on 1 reviewed images; completed")
    info = read_metadata(out)
    assert int(info.training["epoch"]) == 1
    assert info.training_set["n_train"] + info.training_set["n_val"] == 5  # 4 original + 1


def test_spine_seg_retrain_with_a_bad_retrain_set_is_one_line(tmp_path, capsys):
    from napari_spine_seg.cli import main

    bad = tmp_path / "retrain-set.json"
    bad.write_text('{"format": "something else"}')
    assert main(["retrain", str(bad), "--model", "m.keras", "--out", "o.keras"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("retrain-set.json: is not a napari-spine-seg retrain set")
    assert "\n" not in err and "Traceback" not in err


def test_a_retrain_config_is_checked_once_and_round_trips(tmp_path):
    from napari_spine_seg.review.retrain import RetrainConfig

    kept = tmp_path / "retrain-set.json"
    kept.write_text("{}")
    model = tmp_path / "m.keras"
    model.write_bytes(b"a model file")
    config = RetrainConfig(kept, model, tmp_path / "m2.keras", epochs=3, batch_size=2, base=False)
    assert RetrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(SpineSegError) as info:
        RetrainConfig(kept, model, model)
    assert str(info.value) == f"{model}: is the model being fine-tuned; choose another file name"
    with pytest.raises(SpineSegError, match="epochs and batch size must be positive"):
        RetrainConfig(kept, model, tmp_path / "m2.keras", epochs=0)
    with pytest.raises(SpineSegError, match="unknown retraining setting"):
        RetrainConfig.from_dict({**config.to_dict(), "lr": 1})
