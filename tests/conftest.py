"""Shared test fixtures. napari's own (``make_napari_viewer``) come from its pytest plugin."""

from __future__ import annotations

import pytest


@pytest.fixture
def napari_notifications():
    """The napari notifications (errors, warnings, info) shown during the test, as a list."""
    from napari.utils.notifications import notification_manager

    shown = []
    notification_manager.notification_ready.connect(shown.append)
    yield shown
    notification_manager.notification_ready.disconnect(shown.append)
