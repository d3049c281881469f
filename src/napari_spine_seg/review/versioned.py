"""The JSON files a review keeps (its state, a retrain set, a landmark review's state):
one object naming its ``format`` and, for most, its ``version``."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SpineSegError


def read_versioned_json(
    path: Path, format_name: str, what: str, version: int | None = None
) -> dict:
    """The JSON object in `path`, checked to be a `what` of `format_name` and `version`.

    Parameters
    ----------
    path : pathlib.Path
    format_name : str
        The ``format`` the object must name.
    what : str
        What the file is, for the errors: ``"review state"``, ``"retrain set"`` …
    version : int, optional
        The ``version`` the object must name (None: not checked).

    Raises
    ------
    SpineSegError
        When the file is unreadable, not JSON, not a `what`, or of another version.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpineSegError(path, f"is not a readable {what} ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != format_name:
        raise SpineSegError(path, f"is not a napari-spine-seg {what}")
    if version is not None and data.get("version") != version:
        raise SpineSegError(
            path, f"has {what} version {data.get('version')}; this version reads {version}"
        )
    return data
