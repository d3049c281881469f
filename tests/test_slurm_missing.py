"""Without slurm: one clear line, and jobs still run on this machine.

"Not installed" is a PATH without slurm's commands; "not answering" is a real
``slurm.conf`` whose controller is not running. No cluster is started here.
"""

from __future__ import annotations

import shutil
import time

import pytest

from _files import write_folder_layout
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.jobs import (
    SlurmOptions,
    job_status,
    prediction_spec,
    run_job,
    submit_training,
)
from napari_spine_seg.jobs.logs import epochs_done
from napari_spine_seg.jobs.slurm import check_slurm
from napari_spine_seg.jobs.status import CANCELLED, COMPLETED, FAILED
from napari_spine_seg.model.config import TrainConfig
from napari_spine_seg.model.predict_config import PredictConfig
from slurm_cluster import _slurm_conf, spine_seg


@pytest.fixture
def index(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINE_SEG_JOBS_DIR", str(tmp_path / "index"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_slurm(index, monkeypatch):
    """A PATH without slurm's commands (python is called by its full path)."""
    empty = index / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return index


@pytest.fixture
def dead_slurm(index, monkeypatch):
    """slurm's commands, and a slurm.conf whose controller does not run."""
    if shutil.which("scontrol") is None:
        pytest.skip("slurm's commands are not installed (apt install slurm-wlm)")
    conf = index / "slurm.conf"
    conf.write_text(_slurm_conf(index, "nonode", "nobody", index / "munge.socket"))
    monkeypatch.setenv("SLURM_CONF", str(conf))
    return index


def test_slurm_not_installed_is_one_line(no_slurm, capsys):
    (no_slurm / "ds").mkdir()
    with pytest.raises(SpineSegError, match="slurm is not installed here") as info:
        submit_training(TrainConfig("ds", "m.keras", epochs=1))
    assert "\n" not in str(info.value)
    rc = spine_seg(["train", "ds", "--out", "m.keras", "--slurm"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [
        "spine-seg train: error: slurm is not installed here (no sbatch, squeue, scancel, "
        "scontrol, srun on the PATH); run without --slurm to work on this machine"
    ]


def test_slurm_not_answering_is_one_line(dead_slurm, capsys):
    start = time.monotonic()
    with pytest.raises(SpineSegError, match="slurm is not answering: .* is DOWN"):
        check_slurm()
    write_folder_layout(dead_slurm / "ds", n=1, size=(64, 32))
    rc = spine_seg(["predict", "m.keras", "ds", "--out", "preds", "--slurm", "--wait"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("spine-seg predict: error: slurm is not answering")
    assert time.monotonic() - start < 30


def test_local_training_still_works(dead_slurm):
    write_folder_layout(dead_slurm / "ds", n=3, size=(64, 32))
    config = TrainConfig("ds", "local/m.keras", epochs=1, size="64x32", batch_size=2, cache=None)
    job = submit_training(config, where="local")
    assert job.job_id.startswith("local-")
    status = job.wait(poll_s=1.0, timeout_s=300)
    assert status.state == COMPLETED, status.log_tail
    assert status.epoch == status.epochs == 1
    assert (dead_slurm / "local" / "m.keras").is_file()
    assert (dead_slurm / "local" / "m.job" / "job.sbatch").is_file()  # still there to submit later


def test_local_job_can_be_cancelled(index):
    write_folder_layout(index / "ds", n=3, size=(64, 32))
    config = TrainConfig("ds", "long/m.keras", epochs=10_000, size="64x32", batch_size=2)
    job = submit_training(config, where="local")
    spec = job.record.spec
    # at work once its first epoch is in the history
    deadline = time.monotonic() + 180
    while not (epochs_done(spec.history) or 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.status().state == "RUNNING"
    job.cancel()
    status = job.wait(poll_s=0.2, timeout_s=60)
    assert status.state == CANCELLED
    assert 1 <= epochs_done(spec.history) < 10_000


def test_in_process_job_reports_its_failure(index, capsys):
    write_folder_layout(index / "ds", n=1, size=(64, 32))
    spec = prediction_spec(PredictConfig("no-model.keras", ["ds"], "p"))
    assert spec.folder == index / "p.job" and spec.config["model"] == str(index / "no-model.keras")
    job = run_job(spec, "process", SlurmOptions())
    status = job_status(job.job_id)
    assert status.state == FAILED
    assert status.backend == "process"
    err = capsys.readouterr().err
    assert f"spine-seg predict: error: {index / 'no-model.keras'}: no such model file" in err
