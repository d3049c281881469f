"""Faults on a real one-node slurm cluster: what users meet on a shared cluster.

The controller goes down mid-job and comes back; sbatch refuses a job; the node fails
under a running training, which is requeued and resumes from its checkpoint; a job
folder whose path holds blanks and ``%`` (which slurm expands in log paths).

Each test makes its own jobs in its own folder and jobs index, starts from an idle
cluster and leaves it healthy (controller up, node resumed) even when it fails.
"""

from __future__ import annotations

import io
import re
import subprocess
import threading
import time

import pytest

from _files import write_folder_layout
from napari_spine_seg.jobs import SlurmOptions, list_jobs, submit_training
from napari_spine_seg.jobs.slurm import NOT_ANSWERING, task_states
from napari_spine_seg.jobs.spec import pick_checkpoint
from napari_spine_seg.jobs.status import (
    COMPLETED,
    FINAL_STATES,
    RUNNING,
    UNKNOWN,
    normalise_slurm_state,
)
from napari_spine_seg.model.config import TrainConfig
from slurm_cluster import slurm_cluster, spine_seg

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
__all__ = ["slurm_cluster"]  # the fixture, imported for pytest

SIZE = "64x32"
TRAIN_ARGS = ["--no-cache", "--patience", "0"]
#: the same as TrainConfig settings
TRAIN_SETTINGS = {"size": SIZE, "batch_size": 2, "cache": None, "patience": 0}


@pytest.fixture
def cluster(slurm_cluster):
    """The session's cluster, idle at the start and healthy again at the end."""
    slurm_cluster.start_controller()
    slurm_cluster.wait_idle()
    yield slurm_cluster
    slurm_cluster.start_controller()
    if slurm_cluster.node_state().rstrip("*") in ("down", "drain", "drng", "fail"):
        slurm_cluster.set_node("resume")
    slurm_cluster.run("scancel", "--full", f"--partition={slurm_cluster.partition}")


@pytest.fixture
def work(cluster, tmp_path, monkeypatch):
    """This test's folder (the working folder) with its own jobs index and a data set."""
    monkeypatch.setenv("SPINE_SEG_JOBS_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.chdir(tmp_path)
    write_folder_layout(tmp_path / "ds20", n=20, size=(64, 32))
    return tmp_path


def _wait_for(check, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _follow_in_thread(job):
    """Follow `job` as ``--wait`` does, in a thread printing into a buffer."""
    from napari_spine_seg.cli._slurm_args import follow

    stream, result = io.StringIO(), []
    thread = threading.Thread(target=lambda: result.append(follow(job, stream, 0.5)), daemon=True)
    thread.start()
    return thread, stream, result


def _train(out: str, epochs: int):
    config = TrainConfig("ds20", out, epochs=epochs, **TRAIN_SETTINGS)
    return submit_training(config, options=SlurmOptions(cpus=1, time_min=15))


def _logs(job) -> str:
    return "\n".join(
        p.read_text(errors="replace") for p in sorted((job.folder / "logs").glob("*_log.*"))
    )


def test_controller_down_mid_job_then_back(work, cluster, capfd):
    epochs = 60  # about a minute of training: it runs on while the controller is down
    job = _train("ctl/m.keras", epochs)
    thread, stream, result = _follow_in_thread(job)
    _wait_for(lambda: job.status().state == RUNNING, 240, "the job to run")
    cluster.stop_controller()
    try:
        status = job.status()
        assert not status.finished, "the job ended before the controller went down; raise epochs"
        assert status.state == UNKNOWN
        assert status.detail.startswith(f"{NOT_ANSWERING}: Slurmctld(primary) at ")
        capfd.readouterr()
        # `spine-seg jobs show`: the state line says why; `jobs cancel`: one error line
        assert spine_seg(["jobs", "show", job.job_id]) == 0
        shown = capfd.readouterr().out.splitlines()
        assert shown[0].startswith(f"job {job.job_id}: UNKNOWN ({NOT_ANSWERING}: ")
        assert shown[0].endswith("; the job keeps running without it)")
        assert spine_seg(["jobs", "cancel", job.job_id]) == 2
        out, err = capfd.readouterr()
        assert out == ""
        assert err.splitlines() == [f"spine-seg jobs: error: {status.detail}"]
        assert spine_seg(["jobs"]) == 0
        table = capfd.readouterr().out
        assert re.search(rf"^{job.job_id}\s+train\s+UNKNOWN\b", table, re.M), table
        _wait_for(lambda: NOT_ANSWERING in stream.getvalue(), 30, "the follower to say so")
    finally:
        cluster.start_controller()
    thread.join(timeout=600)
    assert result, "the job did not end within 10 minutes of the controller's return"
    final = result[0]
    assert final.state == COMPLETED, _logs(job)[-3000:]
    assert job.status().state == COMPLETED
    assert final.epoch == epochs
    assert (work / "ctl" / "m.keras").is_file()
    printed = stream.getvalue().splitlines()
    said = [line for line in printed if NOT_ANSWERING in line]
    assert len(said) == 1, printed  # said once, not at every poll
    assert said[0].endswith("; still asking)")
    assert "Traceback" not in stream.getvalue()
    assert printed[-1].endswith(f"COMPLETED epoch {epochs}/{epochs}"), printed
    assert not (job.folder / "logs" / f"{job.job_id}.cancelled").exists()  # cancel was refused


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--cpus", "64"], r"More processors requested than permitted"),
        (["--mem", "100000"], r"Memory specification can not be satisfied"),
        (["--partition", "nosuchpart"], r"[Ii]nvalid partition"),
        (["--time", "120"], r"time limit|TimeLimit"),
    ],
    ids=["cpus", "memory", "partition", "time"],
)
def test_sbatch_refusal_is_one_line_with_its_reason(work, capfd, options, reason):
    argv = ["train", "ds20", "--out", "refused/m.keras", "--epochs", "1", "--slurm", *options]
    rc = spine_seg(argv)
    out, err = capfd.readouterr()
    assert rc == 2
    assert out == ""  # no job id
    lines = err.splitlines()
    assert len(lines) == 1, err  # sbatch's own lines are inside ours, not before it
    assert lines[0].startswith("spine-seg train: error: ")
    assert "job.sbatch: slurm refused the job: " in lines[0]
    assert re.search(reason, lines[0]), lines[0]
    assert list_jobs() == []  # nothing was recorded as submitted
    assert cluster_queue_is_empty()


def cluster_queue_is_empty() -> bool:
    done = subprocess.run(
        ["squeue", "--noheader"], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip() == ""


def test_node_failure_requeues_and_resumes_from_checkpoint(work, cluster):
    epochs = 40
    job = _train("node/m.keras", epochs)
    spec = job.record.spec
    thread, stream, result = _follow_in_thread(job)
    first = _wait_for(lambda: pick_checkpoint(spec.checkpoints), 300, "a first checkpoint")
    assert first[1] < epochs, "the training ended before the node failed; raise epochs"
    cluster.set_node("down", "spine-seg test: node failure")
    try:

        def requeued():
            state = task_states(job.job_id).get(job.job_id, "")
            return normalise_slurm_state(state) not in (RUNNING,) and state

        raw = _wait_for(requeued, 60, "the job to leave the failed node")
        assert normalise_slurm_state(raw) not in FINAL_STATES, f"not requeued: {raw}"
    finally:
        cluster.set_node("resume")
    thread.join(timeout=600)
    assert result, "the requeued job did not end within 10 minutes"
    text = _logs(job)
    assert result[0].state == COMPLETED, text[-3000:]
    runs = re.findall(r"spine-seg job: running .*-m napari_spine_seg\.jobs\.run (\S+)", text)
    assert len(runs) >= 2, text[-3000:]  # it ran again after the failure
    assert runs[-1] == str(spec.spec_file)
    resumed = re.findall(r"spine-seg job: continuing from (\S+)", text)
    assert resumed, f"the second run started over: {text[-3000:]}"
    # it continued after the checkpoint it had, not from the start
    done_before = re.findall(r"epochs (\d+)-" + str(epochs), text)
    assert done_before and int(done_before[-1]) > first[1], text[-3000:]
    assert pick_checkpoint(spec.checkpoints)[1] == epochs
    assert len(spec.history.read_text().splitlines()) == 1 + epochs
    assert (work / "node" / "m.keras").is_file()
    printed = stream.getvalue()
    assert re.search(r"RUNNING epoch \d+/\d+\n(.*\n)*.*PENDING epoch \d+", printed), printed
    assert printed.strip().endswith(f"COMPLETED epoch {epochs}/{epochs}")


def test_job_folder_with_blanks_and_percent(work, capfd, monkeypatch):
    """slurm expands %j, %x, %% ... in log paths: a folder's own '%' must reach it as '%%'."""
    base = work / "runs 100%x"  # unescaped, slurm would write the job name for %x
    base.mkdir()
    monkeypatch.chdir(base)  # the job's working folder (--chdir) too
    (work / "ds20").rename(base / "data 50%j")
    # submitit itself replaces %j in its folder by the job id: such a job folder is refused
    # relative paths: they work only when the job runs in its --chdir
    argv = ["train", "data 50%j", "--out", "out %A/m.keras"]
    argv += ["--epochs", "1", "--size", SIZE, "--batch-size", "2", *TRAIN_ARGS]
    argv += ["--slurm", "--time", "10", "--cpus", "1"]
    assert spine_seg([*argv, "--job-dir", str(base / "job %j")]) == 2
    out, err = capfd.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert "holds '%j', which submitit replaces by the job id; give another --job-dir" in err
    folder = base / "job 7% done"
    rc = spine_seg([*argv, "--job-dir", str(folder), "--wait"])
    out, err = capfd.readouterr()
    assert rc == 0, err
    job_id = out.strip().splitlines()[0]
    log = folder / "logs" / f"{job_id}_0_log.err"
    assert log.is_file(), sorted(p.name for p in work.rglob("*"))
    assert "spine-seg job: running " in (folder / "logs" / f"{job_id}_0_log.out").read_text()
    assert (base / "out %A" / "m.keras").is_file()
    # nothing was written where an expanded pattern would point (%x is the job name)
    assert not [p for p in work.rglob("*") if "spine-seg-train" in str(p)]
    # the plain job.sbatch, submitted by hand, logs into the same folder
    done = subprocess.run(
        ["sbatch", "--parsable", str(folder / "job.sbatch")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    again = done.stdout.strip().split(";")[0]

    def ended():
        state = normalise_slurm_state(task_states(again).get(again, "PENDING"))
        return state in FINAL_STATES and state

    _wait_for(ended, 240, "the job submitted by hand")
    by_hand = (folder / "logs" / f"{again}_0_log.err").read_text(errors="replace")
    # it continued from the model's checkpoint (trained 1 of 1 epochs: nothing left)
    assert "has trained all 1 epochs; nothing left to do" in by_hand, by_hand[-2000:]


def test_a_waiting_job_shows_slurms_reason(work, capfd):
    """A job slurm keeps waiting (here: asked to begin in an hour) says why."""
    job = submit_training(
        TrainConfig("ds20", "later/m.keras", epochs=1, size=SIZE),
        options=SlurmOptions(cpus=1, time_min=5, extra_sbatch=("--begin=now+3600",)),
    )
    status = _wait_for(lambda: (s := job.status()).detail.endswith("(BeginTime)") and s, 30, "it")
    assert status.state == "PENDING"
    assert status.detail == f"slurm: {job.job_id} PENDING (BeginTime)"
    assert spine_seg(["jobs", "show", job.job_id]) == 0
    assert f"state from: slurm: {job.job_id} PENDING (BeginTime)" in capfd.readouterr().out
    job.cancel()
