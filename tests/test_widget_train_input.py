"""Bad slurm settings in the Train widget: one error notification, no exception, nothing sent."""

from __future__ import annotations

import pytest

from _files import write_aasce_layout

pytestmark = pytest.mark.gui


def new_widget(viewer):
    from napari.utils._proxies import PublicOnlyProxy

    from napari_spine_seg._napari._widgets.train_widget import TrainWidget

    widget = TrainWidget(PublicOnlyProxy(viewer))  # as napari hands it to plugins
    viewer.window.add_dock_widget(widget)
    return widget


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
    widget = new_widget(viewer)
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
