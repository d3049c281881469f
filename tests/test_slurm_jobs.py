"""Training and prediction on a real one-node slurm cluster (munged, slurmctld, slurmd).

Real jobs run the real ``spine-seg train`` and ``spine-seg predict`` on a tiny data set.
The slowest one, a training over its 1-minute time limit that must be requeued and
resume, is submitted first so that it runs beside the others (the node has 2 CPUs).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import threading
import time

import pytest

from _files import write_folder_layout
from napari_spine_seg.jobs import (
    SlurmOptions,
    cancel_job,
    job_status,
    list_jobs,
    reattach,
    submit_training,
)
from napari_spine_seg.jobs.slurm import task_states
from napari_spine_seg.jobs.spec import absolute_train_config, pick_checkpoint, read_spec
from napari_spine_seg.jobs.status import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    normalise_slurm_state,
)
from napari_spine_seg.model.config import TrainConfig
from napari_spine_seg.model.files import read_metadata
from slurm_cluster import SIGNAL_DELAY_S, slurm_cluster, spine_seg

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
__all__ = ["slurm_cluster"]  # the fixture, imported for pytest

SIZE = "64x32"
#: about 1 s an epoch on an idle 2-core machine: always longer than the 1-minute limit
#: (25 epochs finished inside it when the machine was quiet), and a few runs under load
#: long enough that a fast 2-core machine (0.5 s an epoch) still trains past the first
#: warning (at most 59 s after the start): 90 epochs once finished inside that minute
TIME_LIMIT_EPOCHS = 200
CANCEL_EPOCHS = 12


def _opts(**kw) -> SlurmOptions:
    return SlurmOptions(cpus=1, time_min=kw.pop("time_min", 10), **kw)


def _config(dataset, out, epochs: int, **kw) -> TrainConfig:
    """A quick training: tiny input, no cache, no early stopping."""
    settings = {"size": SIZE, "batch_size": 2, "cache": None, "patience": 0, **kw}
    return TrainConfig(dataset, out, epochs=epochs, **settings)


@pytest.fixture(scope="module")
def work(slurm_cluster, tmp_path_factory):
    """A module folder with two tiny data sets and its own jobs index."""
    root = tmp_path_factory.mktemp("slurm-jobs")
    write_folder_layout(root / "ds", n=6, size=(64, 32))
    write_folder_layout(root / "ds20", n=20, size=(64, 32))
    (root / "empty-data").mkdir()  # a data set that fails only when the job opens it
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINE_SEG_JOBS_DIR", str(root / "index"))
        mp.setenv("KERAS_BACKEND", "tensorflow")
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        mp.chdir(root)
        yield root


@pytest.fixture(scope="module", autouse=True)
def time_limit_job(work, request):
    """A training longer than its 1-minute limit, submitted before every other test.

    A thread follows it from the start, as ``--wait`` does, printing into a buffer.
    Only when its test is selected: the other tests do not need it.
    """
    from napari_spine_seg.cli._slurm_args import follow

    if not any(
        item.name == "test_time_limit_requeues_and_resumes" for item in request.session.items
    ):
        return None

    job = submit_training(
        _config("ds20", "limit/m.keras", TIME_LIMIT_EPOCHS),
        options=_opts(time_min=1, signal_delay_s=SIGNAL_DELAY_S, max_requeues=20),
    )
    stream, result = io.StringIO(), []
    thread = threading.Thread(target=lambda: result.append(follow(job, stream, 1.0)), daemon=True)
    thread.start()
    return job, thread, stream, result


def _wait_for(check, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_failed_job_shows_the_log_error_line(work, capsys):
    rc = spine_seg(
        ["train", "empty-data", "--out", "bad/m.keras", "--epochs", "2"]
        + ["--slurm", "--time", "5", "--cpus", "1", "--wait"]
    )
    out, err = capsys.readouterr()
    job_id = out.strip().splitlines()[0]
    assert job_id.isdigit()
    assert rc == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("spine-seg train: error: ")
    said = f"spine-seg train: error: {work / 'empty-data'}: is empty"
    assert f"job {job_id} FAILED: {said}" in line
    status = job_status(job_id)
    assert status.state == FAILED
    assert status.error_line == said
    assert spine_seg(["jobs", "show", job_id]) == 0
    assert f"error: {said}" in capsys.readouterr().out


def test_a_missing_data_set_is_refused_before_submitting(work, capsys):
    rc = spine_seg(["train", "no-such-data", "--out", "bad2/m.keras", "--slurm", "--time", "5"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.strip() == "spine-seg train: error: no-such-data: does not exist"
    assert not (work / "bad2").exists()


def test_the_training_config_round_trips_through_the_job(work):
    """The TrainConfig the node trains with is the one submitted, setting for setting."""
    config = _config(
        "ds",
        "roundtrip/m.keras",
        2,
        learning_rate=0.0123,
        loss="ce",
        seed=7,
        val_fraction=0.34,
        augment=False,
        fit="resize",
        options={"depth": 3, "filters": 4},
        max_minutes=30.0,
    )
    job = submit_training(config, options=_opts())
    spec = job.record.spec
    sent = TrainConfig.from_json(json_config(spec))
    assert sent == absolute_train_config(config)
    assert read_spec(spec.folder) == spec == reattach(job.job_id).record.spec
    status = job.wait(poll_s=1.0, timeout_s=400)
    log = "\n".join(p.read_text(errors="replace") for p in sorted(spec.logs.glob("*_log.*")))
    assert status.state == COMPLETED, log[-3000:]
    # the model the node wrote records the settings it was trained with
    info = read_metadata(spec.out)
    assert info.input_size == (64, 32) and info.fit == "resize"
    assert info.options["depth"] == 3 and info.options["filters"] == 4
    trained = info.training
    assert trained["learning_rate"] == 0.0123 and trained["loss"] == "ce"
    assert trained["seed"] == 7 and trained["val_fraction"] == 0.34
    assert trained["batch_size"] == 2 and trained["epochs"] == 2
    assert trained["max_minutes"] == 30.0 and trained["augment"] is False
    assert info.training_set["root"] == str(work / "ds")


def json_config(spec) -> str:
    """The config part of the job's ``spec.json``, as JSON text."""
    return json.dumps(json.loads((spec.folder / "spec.json").read_text())["config"])


@pytest.fixture(scope="module")
def cancelled(work):
    """A training cancelled after its first epoch, then resubmitted by hand with sbatch."""
    job = submit_training(_config("ds", "cancel/m.keras", CANCEL_EPOCHS), options=_opts())
    spec = job.record.spec
    _wait_for(lambda: pick_checkpoint(spec.checkpoints), 240, "a first checkpoint")
    assert spine_seg(["jobs", "cancel", job.job_id]) == 0
    final = _wait_for(lambda: (s := job.status()).finished and s, 60, "the cancel")
    checkpoint = pick_checkpoint(spec.checkpoints)
    # resubmit the plain script by hand: it continues from the checkpoint
    done = subprocess.run(
        ["sbatch", "--parsable", str(job.folder / "job.sbatch")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    again = done.stdout.strip().split(";")[0]

    def hand_job_state():
        states = task_states(again)
        state = normalise_slurm_state(states.get(again, "PENDING"))
        return state if state in (COMPLETED, FAILED, CANCELLED) else None

    again_state = _wait_for(hand_job_state, 240, "the resubmitted job")
    return {
        "job": job,
        "final": final,
        "checkpoint": checkpoint,
        "again": again,
        "again_state": again_state,
    }


def test_cancelled_job_keeps_its_last_checkpoint(cancelled):
    job, final, checkpoint = cancelled["job"], cancelled["final"], cancelled["checkpoint"]
    assert final.state == CANCELLED
    assert job.status().state == CANCELLED
    assert checkpoint is not None, "the cancelled training left no readable checkpoint"
    assert 1 <= checkpoint[1] < CANCEL_EPOCHS
    assert final.epoch is not None and 1 <= final.epoch < CANCEL_EPOCHS


def test_resubmitted_script_resumes_and_finishes(cancelled):
    job, checkpoint = cancelled["job"], cancelled["checkpoint"]
    log = (job.folder / "logs" / f"{cancelled['again']}_0_log.err").read_text(errors="replace")
    assert cancelled["again_state"] == COMPLETED, log[-2000:]
    assert f"epochs {checkpoint[1] + 1}-{CANCEL_EPOCHS}" in log  # it continued, not restarted
    assert pick_checkpoint(job.record.spec.checkpoints)[1] == CANCEL_EPOCHS
    history = job.record.spec.history.read_text().splitlines()
    assert len(history) == 1 + CANCEL_EPOCHS


def test_predict_array_merges_into_out(cancelled, work, capsys):
    model = cancelled["job"].record.spec.out
    rc = spine_seg(
        ["predict", str(model), "ds", "--out", "preds", "--slurm", "--array", "2", "--cpus", "1"]
        + ["--time", "10", "--wait"]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    job_id = out.strip().splitlines()[0]
    images = sorted(p.name for p in (work / "ds").glob("*.jpg"))
    written = sorted(p.name for p in (work / "preds").glob("*.png"))
    assert written == sorted(n[: -len(".jpg")] + ".png" for n in images)
    logs = work / "preds.job" / "logs"
    assert (logs / f"{job_id}_0_0_log.err").exists() and (logs / f"{job_id}_1_0_log.err").exists()
    assert not any((work / "preds.job" / "parts").glob("*/*.png"))  # moved, not copied
    script = (work / "preds.job" / "job.sbatch").read_text()
    assert "#SBATCH --array=0-1" in script
    assert job_status(job_id).state == COMPLETED


def test_time_limit_requeues_and_resumes(time_limit_job):
    job, thread, stream, result = time_limit_job
    thread.join(timeout=840)
    assert result, "the job did not end within 14 minutes"
    status = result[0]
    logs = sorted((job.folder / "logs").glob("*_0_log.*"))
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert status.state == COMPLETED, text[-3000:]
    # submitit requeued it at the time-limit signal
    assert "Requeued job" in text, "the job ended before its time limit; raise TIME_LIMIT_EPOCHS"
    assert "time limit near, stopped; next run:" in text
    resumed = re.findall(r"spine-seg job: continuing from (\S+)", text)
    assert resumed, "no run continued from a checkpoint"
    spec = job.record.spec
    assert len(spec.history.read_text().splitlines()) == 1 + TIME_LIMIT_EPOCHS
    assert pick_checkpoint(spec.checkpoints)[1] == TIME_LIMIT_EPOCHS
    assert status.epoch == TIME_LIMIT_EPOCHS == status.epochs
    printed = stream.getvalue()
    assert f"job {job.job_id} RUNNING epoch" in printed
    # followed as --wait does: running, back in the queue after the requeue, running again
    assert re.search(r"RUNNING epoch \d+/\d+\n(.*\n)*.*PENDING epoch [1-9]", printed), printed
    assert printed.strip().endswith(f"COMPLETED epoch {TIME_LIMIT_EPOCHS}/{TIME_LIMIT_EPOCHS}")


def test_jobs_lists_every_job_with_its_state(work, capsys, tmp_path, monkeypatch):
    """``spine-seg jobs`` lists this test's own jobs: one failed, one cancelled, one done."""
    monkeypatch.setenv("SPINE_SEG_JOBS_DIR", str(tmp_path / "index"))
    options = _opts()
    failed = submit_training(_config(work / "empty-data", tmp_path / "f.keras", 1), options=options)
    cancelled = submit_training(
        _config(work / "ds", tmp_path / "long.keras", 10_000), options=options
    )
    done = submit_training(_config(work / "ds", tmp_path / "few.keras", 1), options=options)
    _wait_for(lambda: cancelled.status().state in (PENDING, RUNNING), 60, "the job to queue")
    cancel_job(cancelled.job_id)
    for job in (failed, cancelled, done):
        job.wait(poll_s=1.0, timeout_s=300)
    states = {s.job_id: s for s in list_jobs()}
    assert {k: s.state for k, s in states.items()} == {
        failed.job_id: FAILED,
        cancelled.job_id: CANCELLED,
        done.job_id: COMPLETED,
    }
    assert spine_seg(["jobs"]) == 0
    table = capsys.readouterr().out
    for job_id, status in states.items():
        assert re.search(rf"^{job_id}\s+{status.command}\s+{status.state}\b", table, re.M), table
    # a new process finds the same jobs (the index is on disk)
    again = reattach(done.job_id)
    assert again.status().state == COMPLETED


def test_spine_seg_itself_offers_slurm(work, capsys):
    """The wiring in cli/: train and predict take --slurm, and `spine-seg jobs` exists."""
    from napari_spine_seg.cli import main

    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--array K" in capsys.readouterr().out
    argv = ["train", "empty-data", "--out", "wired/m.keras", "--slurm", "--time", "5"]
    assert main([*argv, "--cpus", "1"]) == 0
    job_id = capsys.readouterr().out.strip()
    assert job_id.isdigit()
    assert main(["jobs", "show", job_id]) == 0
    assert f"job {job_id}:" in capsys.readouterr().out
