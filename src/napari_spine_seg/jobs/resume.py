"""Print the checkpoint a training should continue from (used by ``job.sbatch``).

``python -m napari_spine_seg.jobs.resume FILE...`` prints the readable checkpoint among
FILE... that has trained the most epochs, or nothing when there is none.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .spec import pick_checkpoint


def main(argv: list[str] | None = None) -> int:
    """Print the most trained checkpoint among `argv`; always exit 0."""
    argv = sys.argv[1:] if argv is None else argv
    picked = pick_checkpoint([Path(a) for a in argv])
    if picked is not None:
        print(picked[0])
    return 0


if __name__ == "__main__":  # pragma: no cover - run by job scripts
    sys.exit(main())
