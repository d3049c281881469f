"""Progress bars for the command line (tqdm on stderr, quiet when not a terminal).

The one implementation is :func:`napari_spine_seg.jobs.console.progress`, which jobs use too.
"""

from __future__ import annotations

from ..jobs.console import progress

__all__ = ["progress"]
