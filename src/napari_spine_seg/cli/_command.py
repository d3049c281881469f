"""How a subcommand registers itself with ``spine-seg``."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_command(
    subparsers, name: str, run: Callable[[argparse.Namespace], int], summary: str, description: str
) -> argparse.ArgumentParser:
    """Add subcommand `name`, done by ``run(args)``, and return its parser for the arguments.

    `summary` is its line in ``spine-seg --help``; `description` heads its own ``--help``
    (argparse wraps it, so it may be written over several lines).
    """
    parser = subparsers.add_parser(name, help=summary, description=description)
    parser.set_defaults(func=run)
    return parser
