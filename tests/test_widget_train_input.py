"""Bad slurm settings in the Train widget: one error notification, no exception, nothing sent."""

from __future__ import annotations

import pytest

from _files import write_aasce_layout
from _widget_helpers import new_widget
from napari_spine_seg.model.defaults import TRAIN_DEFAULTS

WIDGET = "train_widget:TrainWidget"

pytestmark = pytest.mark.gui


@pytest.mark.parametrize(
    ("partition", "minutes", "says"),
    [
        ("a;rm -rf /", 60, "partition"),
        ("gpu", 1, "time limit"),  # 1 min is shorter than the 90 s warning before it
    ],
)
def test_bad_slurm_settings_are_one_notification(
    make_napari_viewer, tmp_path, napari_notifications, partition, minutes, says
):
    dataset = write_aasce_layout(tmp_path / "set", n_train=2, n_test=0, size=(120, 48))
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    widget.dataset.value = dataset
    widget.out.value = tmp_path / "model.keras"
    widget.where.value = "slurm"
    widget.partition.value = partition
    widget.time_min.value = minutes
    widget.start_button.clicked()  # an exception here would fail the test
    shown = [str(n.message) for n in napari_notifications if n.severity.name == "ERROR"]
    assert len(shown) == 1 and says in shown[0] and "\n" not in shown[0]
    assert widget.status.value == shown[0]
    assert not widget.running and widget.start_button.enabled
    assert not (tmp_path / "model.keras").exists()


def shown(widget, magic) -> bool:
    return magic.native.isVisibleTo(widget.native)


def test_slurm_controls_show_only_when_slurm_is_chosen(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = new_widget(viewer, WIDGET)
    slurm_only = [
        widget.partition,
        widget.time_min,
        widget.jobs,
        widget.refresh_jobs_button,
        widget.follow_button,
        widget.log_tail,
    ]
    assert widget.where.value == "here"
    assert not any(shown(widget, w) for w in slurm_only)
    assert shown(widget, widget.start_button) and shown(widget, widget.epochs)
    widget.where.value = "slurm"
    assert all(shown(widget, w) for w in slurm_only)
    widget.where.value = "here"
    assert not any(shown(widget, w) for w in slurm_only)


def test_the_empty_loss_plot_has_a_sane_axis(make_napari_viewer, qtbot):
    from napari_spine_seg._napari._widgets._loss_plot import NO_EPOCHS, PLOT_PANELS

    viewer = make_napari_viewer(show=True)
    widget = new_widget(viewer, WIDGET)
    plot = widget.plot
    plot.resize(600, 160)
    plot.grab()  # paints it
    assert set(plot.drawn) == {key for _, key in PLOT_PANELS}
    for key, drawn in plot.drawn.items():
        assert drawn["top"] == "1", (key, drawn)  # not 1e-06
        assert drawn["note"] == NO_EPOCHS and drawn["x"] == ""
    plot.add(1, {"loss": 0.5, "val_loss": 0.8, "accuracy": 0.9, "spine_dice": 0.4})
    plot.add(2, {"loss": 0.4, "val_loss": 0.6, "accuracy": 0.95, "spine_dice": 0.6})
    plot.grab()
    assert plot.drawn["loss"] == {"top": "0.88", "x": "epoch 1–2", "note": ""}
    assert plot.drawn["spine_dice"]["top"] == "1"
    plot.reset()
    plot.grab()
    assert plot.drawn["loss"]["top"] == "1" and plot.drawn["loss"]["note"] == NO_EPOCHS


def test_the_training_choices_reach_the_training_config(make_napari_viewer, tmp_path):
    dataset = write_aasce_layout(tmp_path / "set", n_train=2, n_test=0, size=(120, 48))
    widget = new_widget(make_napari_viewer(), WIDGET)
    widget.dataset.value = dataset
    widget.out.value = tmp_path / "model.keras"
    # checked by default: on when the model learns vertebrae (None), off when unchecked
    assert widget.zoom_pass.value is True
    assert widget.training_config().zoom_pass is None
    widget.zoom_pass.value = False
    config = widget.training_config()
    assert config.zoom_pass is False and config.dataset == dataset
    # the bending augmentation: the default, or what the box says (0: off)
    assert config.bend_deg == TRAIN_DEFAULTS["bend_deg"] > 0
    widget.bend_deg.value = 0.0
    assert widget.training_config().bend_deg == 0.0
    # what the network learns and how its rate falls: the defaults, or the choices
    assert (config.outputs, config.lr_schedule) == ("auto", TRAIN_DEFAULTS["lr_schedule"])
    widget.zoom_pass.value = True
    widget.outputs.value = "trimap"
    widget.lr_schedule.value = "plateau"
    # a trimap model has no zoom pass: the box is greyed out and not passed on as "on"
    assert not widget.zoom_pass.enabled
    config = widget.training_config()
    assert (config.outputs, config.lr_schedule, config.zoom_pass) == ("trimap", "plateau", False)
    widget.outputs.value = "vertebrae"
    assert widget.zoom_pass.enabled and widget.training_config().zoom_pass is None
    assert config.out == tmp_path / "model.keras"
