"""The train widget with "run: slurm", against a real one-node slurm cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from _files import write_aasce
from _widget_helpers import new_widget
from slurm_cluster import slurm_cluster
from test_widget_train import WIDGET, write_compiled_model

pytestmark = [pytest.mark.gui, pytest.mark.slurm, pytest.mark.slow]
__all__ = ["slurm_cluster"]  # the fixture, imported for pytest


def test_training_on_slurm_is_followed_to_the_end(
    slurm_cluster, make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPINE_SEG_JOBS_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.chdir(tmp_path)
    dataset = write_aasce(tmp_path / "phantoms", {"training": (4, 0)})
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.where.value = "slurm"
    assert widget.partition.native.isVisibleTo(widget.native)  # the slurm options show
    widget.time_min.value = 10
    widget.dataset.value = dataset
    widget.out.value = tmp_path / "m.keras"
    widget.size.value = "64x32"
    widget.epochs.value = 2
    widget.batch_size.value = 2
    said = []  # every status line: the first ones pass quickly once the job runs
    say = widget._say
    widget._say = lambda text: (said.append(text), say(text))
    widget.start()
    assert widget.running
    qtbot.waitUntil(lambda: not widget.running, timeout=340_000)
    assert any("submitted slurm job" in line for line in said), said
    qtbot.waitUntil(lambda: widget.state.model is not None, timeout=60_000)
    assert widget.state.model.path == Path(tmp_path / "m.keras")
    assert [int(r["epoch"]) for r in widget.plot.history] == [1, 2]
    assert "input 64x32" in widget.model_info.value

    assert widget.log_tail.value  # the log's tail was shown while following

    # napari closed and opened again: the job is in the on-disk index; following it
    # reattaches, sees it COMPLETED and loads its model
    viewer.close()
    again = new_widget(make_napari_viewer(), WIDGET)
    again.where.value = "slurm"  # the job list is shown only there, as a person sees it
    job_ids = [value for value in again.jobs.choices if value is not None]
    assert len(job_ids) == 1
    again.jobs.value = job_ids[0]
    assert "completed" in again.jobs.native.currentText()
    again.follow_job()
    qtbot.waitUntil(lambda: again.state.model is not None, timeout=60_000)
    assert again.state.model.path == Path(tmp_path / "m.keras")
    assert [int(r["epoch"]) for r in again.plot.history] == [1, 2]  # read from its history


def test_retraining_on_slurm_is_followed_to_the_end(
    slurm_cluster, make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    """Retrain with "run: slurm": the review's corrections go to the cluster as a job of
    their own, the widget follows it, and the retrained model comes back."""
    from napari.utils._proxies import PublicOnlyProxy

    from napari_spine_seg._napari._widgets._state import ModelRef
    from napari_spine_seg._napari._widgets.review_widget import ReviewWidget
    from napari_spine_seg.model.files import read_metadata

    monkeypatch.setenv("SPINE_SEG_JOBS_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.chdir(tmp_path)
    dataset = write_aasce(tmp_path / "phantoms", {"training": (4, 0)})
    model = write_compiled_model(tmp_path / "tiny.keras", dataset, {"spine_dice": 0.0})
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    review = ReviewWidget(PublicOnlyProxy(viewer))
    viewer.window.add_dock_widget(review)
    review.dataset_edit.value = dataset
    review.folder_edit.value = tmp_path / "review"
    review.open_review()
    qtbot.waitUntil(lambda: review._key is not None, timeout=30_000)
    first = review._key
    review.accept_and_next()
    qtbot.waitUntil(lambda: review._key not in (None, first), timeout=30_000)
    widget.state.set_model(ModelRef(model, read_metadata(model)))
    widget.where.value = "slurm"
    widget.time_min.value = 10
    widget.retrain_epochs.value = 1
    said = []
    say = widget._say
    widget._say = lambda text: (said.append(text), say(text))
    widget.retrain()
    assert widget.running
    qtbot.waitUntil(lambda: not widget.running, timeout=340_000)
    assert any("submitted slurm job" in line for line in said), said
    retrained = tmp_path / "tiny-retrained.keras"
    qtbot.waitUntil(lambda: widget.state.model.path == retrained, timeout=60_000)
    assert read_metadata(retrained).training["epoch"] == 1
    # the job kept its own copy of the review; the review's snapshot is gone
    assert not list((tmp_path / "review").glob(".snapshot-*"))
