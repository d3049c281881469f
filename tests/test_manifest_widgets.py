"""Every widget the manifest lists opens from the Plugins menu's path in a real viewer."""

from __future__ import annotations

import pytest
from npe2 import PluginManifest

MANIFEST = PluginManifest.from_distribution("napari-spine-seg")
WIDGETS = [w.display_name for w in MANIFEST.contributions.widgets or []]


def test_the_manifest_lists_widgets():
    assert {
        "Train or load model",
        "Predict",
        "Gap inspector",
        "Review queue",
        "Spine curve",
        "Landmark review",
    } <= set(WIDGETS)


@pytest.mark.parametrize("display_name", WIDGETS)
def test_widget_opens_from_the_manifest(make_napari_viewer, display_name):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-spine-seg", display_name)
    assert widget is not None
    assert dock.isVisible() or dock.isFloating() or dock.widget() is not None
