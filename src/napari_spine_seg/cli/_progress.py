"""Progress bars for the command line (tqdm on stderr, quiet when not a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "image"
) -> Iterator[T]:
    """Iterate over `items` with a progress bar on stderr.

    The bar appears only after a second (``delay=1``), so quick jobs print nothing, and
    only on a terminal (``disable=None``), so that logs and pipes get the results and
    the error lines alone.
    """
    from tqdm.auto import tqdm

    yield from tqdm(
        items,
        total=total,
        desc=desc,
        unit=unit,
        delay=1.0,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=None,
    )
