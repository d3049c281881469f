"""Small JSON files that hold one entry per image: ``{"images": {name: entry}}``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import SpineSegError

T = TypeVar("T")


def read_image_entries(
    path: str | os.PathLike, entry: Callable[[object], T], what: str
) -> dict[str, T]:
    """The entries of `path`'s ``"images"`` object, each read by `entry`.

    A missing file is no entries.

    Parameters
    ----------
    path : path-like
    entry : callable
        Reads one image's JSON value; raises KeyError, TypeError or ValueError on a bad one.
    what : str
        What the file is, for the error: ``"checked gaps"``, ``"vertebra counts"`` …

    Raises
    ------
    SpineSegError
        When the file is not one this package wrote.
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {str(name): entry(value) for name, value in raw["images"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SpineSegError(path, f"not a file of {what} ({exc})") from None
