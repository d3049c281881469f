"""Retraining on a review's corrections, submitted to a real one-node slurm cluster."""

from __future__ import annotations

import os

import pytest

from _files import write_aasce
from napari_spine_seg.jobs import SlurmOptions
from napari_spine_seg.jobs.retraining import submit_retraining
from slurm_cluster import slurm_cluster
from test_review_retrain import (
    NAME,
    SPLITS,
    check_retrained,
    reviewed_test_split,
    untrained_model,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
__all__ = ["slurm_cluster"]  # the fixture, imported for pytest


def test_retrain_runs_on_slurm_like_training(slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("SPINE_SEG_JOBS_DIR", os.fspath(tmp_path / "jobs index"))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    aasce = write_aasce(tmp_path / "phantoms", SPLITS, name=NAME)
    model = untrained_model(aasce, tmp_path / "m.keras")
    out = tmp_path / "m-retrained.keras"
    with reviewed_test_split(aasce, tmp_path / "review") as session:
        job = submit_retraining(
            session,
            model,
            out,
            epochs=1,
            where="slurm",
            options=SlurmOptions(cpus=1, time_min=10),
            batch_size=4,
        )
        session.reset(session.keys[0])  # the job trains on the review as submitted
    assert job.record.backend == "slurm" and job.job_id.isdigit()
    status = job.wait(poll_s=2.0, timeout_s=400)
    check_retrained(status, out)
    assert "napari_spine_seg.jobs.run" in (job.folder / "job.sbatch").read_text()
    assert job.record.spec.config["retrain_set"].endswith("retrain-set.json")
