"""``spine-seg gaps TRIMAPS [--json FILE]``: where a folder of trimaps needs a look.

Every trimap PNG of the folder is searched for breaks in the spine column, stray
pieces, holes and narrowings (:func:`napari_spine_seg.spine.gaps.find_gaps`). The JSON
file maps each trimap's file name to its list of gaps::

    {"a.png": [{"row": 812, "col": 240, "height": 35, "kind": "break"}], "b.png": []}

A folder written by ``spine-seg predict`` with a model that finds vertebrae holds
``vertebrae.json``: each image whose count is not 17 gets one more gap of kind
``"vertebrae"`` on the column's middle, with a ``"detail"`` saying what was found
(:mod:`napari_spine_seg.spine.vertebra_count`).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from ..atomic import check_writable_folder, write_text_atomic
from ..data.masks import looks_like_trimap, read_trimap_png, trimap_name
from ..errors import SpineSegError
from ..outputs import check_output
from ..spine.gaps import KINDS, find_gaps
from ..spine.vertebra_count import VERTEBRAE_FILE, count_gap, count_message, read_vertebra_counts
from ._command import add_command
from ._progress import progress

#: ``spine-seg gaps`` in the list of subcommands, and the head of its --help
SUMMARY = "find breaks, stray pieces, holes and narrowings in trimap PNGs"
DESCRIPTION = """\
Search every trimap PNG in TRIMAPS for places a reviewer should look at: breaks in the spine
column, spine pieces away from it, holes and narrowings, and (from a prediction's
vertebrae.json) images where the count of vertebrae is not 17. Prints a summary; --json
writes every gap (row, col, height, kind; detail for a count) per file.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``gaps`` with the ``spine-seg`` subcommand parsers."""
    parser = add_command(subparsers, "gaps", run, SUMMARY, DESCRIPTION)
    parser.add_argument("trimaps", metavar="TRIMAPS", help="folder of trimap PNGs")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the gaps here")
    parser.add_argument(
        "--min-rows",
        type=int,
        default=None,
        metavar="N",
        help="shortest break or narrowing reported (default: 0.5%% of the column's height)",
    )
    return parser


def trimap_files(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """The trimap PNGs of `folder`, sorted by name, and the other PNGs in it.

    A PNG that is meant as a trimap but holds stray values counts as a trimap, so that
    reading it names the values; one that cannot be read at all is an error, not
    "another PNG".

    Raises
    ------
    SpineSegError
        When `folder` is not a folder, holds no trimap PNG, or holds a PNG that cannot
        be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SpineSegError(folder, "is not a folder of trimap PNGs")
    pngs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    trimaps = [p for p in pngs if looks_like_trimap(p, strict=True)]
    if not trimaps:
        found = f"{len(pngs)} PNG file(s), none a trimap" if pngs else "no PNG files"
        raise SpineSegError(folder, f"has no trimap PNGs ({found})")
    return trimaps, [p for p in pngs if p not in set(trimaps)]


def _describe(counts: Counter) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"


def run(args: argparse.Namespace) -> int:
    """Find the gaps of every trimap in ``args.trimaps``; return the exit status."""
    if args.min_rows is not None and args.min_rows < 1:
        raise SpineSegError(None, f"--min-rows must be 1 or more, not {args.min_rows}")
    files, others = trimap_files(args.trimaps)
    if args.json:  # never over a trimap, nor into the folder being read
        check_output(args.json, [args.trimaps], suffixes=(".json",))
        check_writable_folder(Path(args.json).resolve().parent)
    found: dict[str, list[dict]] = {}
    totals: Counter = Counter()
    lines = []
    vertebrae = _vertebra_counts(Path(args.trimaps))
    for path in progress(files, total=len(files), desc="gaps", unit="trimap"):
        trimap = read_trimap_png(path)
        gaps = [g.to_dict() for g in find_gaps(trimap, min_gap_rows=args.min_rows)]
        details = []
        entry = vertebrae.get(path.name)
        counted = None if entry is None else count_gap(entry["found"], trimap=trimap)
        if counted is not None:
            details.append(count_message(entry["found"], entry["faults"]))
            gaps = sorted([*gaps, {**counted.to_dict(), "detail": details[0]}], key=_order)
        found[path.name] = gaps
        counts = Counter(g["kind"] for g in gaps)
        totals.update(counts)
        if gaps:
            lines.append(f"  {path.name}: {'; '.join([_describe(counts), *details])}")
    if args.json:
        write_text_atomic(args.json, json.dumps(found, indent=1) + "\n")
    _print_summary(files, others, lines, totals, args.json)
    return 0


def _vertebra_counts(folder: Path) -> dict[str, dict]:
    """A prediction folder's vertebra counts, by trimap file name (none without the file)."""
    return {trimap_name(n): e for n, e in read_vertebra_counts(folder / VERTEBRAE_FILE).items()}


def _order(gap: dict) -> tuple:
    return gap["row"], gap["col"], KINDS.index(gap["kind"])


def _print_summary(files, others, lines, totals, json_path) -> None:
    flagged = len(lines)
    print(f"{len(files)} trimap(s), {flagged} with something to look at")
    for line in lines:
        print(line)
    if flagged:
        print(f"in all: {_describe(totals)}")
    if others:
        print(f"skipped {len(others)} PNG file(s) that are not trimaps")
    if json_path:
        print(f"wrote {json_path}")
