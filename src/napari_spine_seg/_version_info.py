"""Version strings for `--version` and model metadata (no heavy imports)."""

from __future__ import annotations

import platform

from . import __version__


def version_line() -> str:
    """Return ``"napari-spine-seg X (Python Y)"``."""
    return f"napari-spine-seg {__version__} (Python {platform.python_version()})"
