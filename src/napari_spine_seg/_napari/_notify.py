"""napari notifications for the readers: a bad file is a message, never a crash."""

from __future__ import annotations


def notify_error(message: str) -> None:
    """Show `message` as an error in napari's notification area (and its console)."""
    from napari.utils.notifications import show_error

    show_error(message)


def notify_warning(message: str) -> None:
    """Show `message` as a warning in napari's notification area."""
    from napari.utils.notifications import show_warning

    show_warning(message)


def notify_info(message: str) -> None:
    """Show `message` as information in napari's notification area."""
    from napari.utils.notifications import show_info

    show_info(message)
