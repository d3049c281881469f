"""``python -m napari_spine_seg.cli``: the same as ``spine-seg`` (used in job scripts)."""

import sys

from . import main

sys.exit(main())
