"""The ``spine-seg`` command line: argument parsing, progress, one-line errors.

Each subcommand is a module of this package with ``add_parser(subparsers)`` and
``run(args) -> int``; the work itself is done by the core functions they call.
Errors from bad input (:class:`~napari_spine_seg.errors.SpineSegError`) reach the
user as one line on stderr with exit status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .._version_info import version_line
from ..errors import SpineSegError

#: subcommand name -> module (imported only when that subcommand runs, so that
#: `spine-seg cobb` never pays for importing Keras).
COMMANDS = {
    "synth": "synth",
    "trimaps": "trimaps",
    "cobb": "cobb",
    "train": "train",
    "predict": "predict",
    "evaluate": "evaluate",
    "gaps": "gaps",
    "demo": "demo",
    "jobs": "jobs",
    "check": "check",
}


def _available_commands() -> dict[str, object]:
    modules = {}
    for name, module_name in COMMANDS.items():
        try:
            modules[name] = importlib.import_module(f".{module_name}", __name__)
        except ModuleNotFoundError as exc:
            # a subcommand whose module is not written yet is simply not offered
            if exc.name != f"{__name__}.{module_name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    """Return the ``spine-seg`` argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="spine-seg",
        description="Segment the spine in posteroanterior X-rays, and review the masks.",
    )
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _available_commands().values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``spine-seg`` with `argv` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpineSegError as exc:
        if args.debug:
            raise
        print(f"spine-seg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spine-seg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
