"""The ``spine-seg`` command line: argument parsing, progress, one-line errors.

Each subcommand is a module of this package with ``add_parser(subparsers)`` and
``run(args) -> int``; the work itself is done by the core functions they call.
Errors from bad input (:class:`~napari_spine_seg.errors.SpineSegError`) reach the
user as one line on stderr with exit status 2; ``--debug`` shows the traceback.

TensorFlow writes several lines to the terminal when it is imported (absl, oneDNN, CUDA
drivers) and on its first operation (``failed call to cuInit`` without a GPU), which
read as failures. Unless ``--debug`` is given, :func:`main` quietens its logging through
the environment (only variables the user has not set) and imports it with file
descriptor 2 sent to a temporary log, shown only when the import fails.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence

from .._version_info import version_line
from ..errors import SpineSegError
from ..model.defaults import QUIET_TENSORFLOW_ENV

#: subcommand name -> module (imported only when that subcommand runs, so that
#: `spine-seg cobb` never pays for importing Keras).
COMMANDS = {
    "synth": "synth",
    "trimaps": "trimaps",
    "cobb": "cobb",
    "train": "train",
    "retrain": "retrain",
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


#: libraries reading users' files, whose log records and warnings about a damaged file
#: would come before (or instead of) our one line
_QUIET_LIBRARIES = ("tifffile", "pydicom", "PIL", "h5py", "scipy.io")
#: modules whose import writes to file descriptor 2 from C++ before Python can stop it
_NOISY_IMPORTS = ("tensorflow",)


def _quiet_environment() -> None:
    for name, value in QUIET_TENSORFLOW_ENV.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def _stderr_fd_to(log) -> Iterator[None]:
    """Send file descriptor 2 (C++ writes there directly) to `log` meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` with file descriptor 2 sent to a log."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with tempfile.TemporaryFile() as log:
            try:
                with _stderr_fd_to(log):
                    self.loader.exec_module(module)
            except BaseException:
                log.seek(0)  # the import failed: what it wrote says why
                sys.stderr.write(log.read().decode("utf-8", "replace"))
                raise
            finally:
                module.__loader__ = self.loader
                if module.__spec__ is not None:
                    module.__spec__.loader = self.loader


class _QuietImports(importlib.abc.MetaPathFinder):
    """Finds :data:`_NOISY_IMPORTS` as the other finders do, with a :class:`_QuietLoader`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _NOISY_IMPORTS:
            return None
        others = [finder for finder in sys.meta_path if finder is not self]
        for finder in others:
            find = getattr(finder, "find_spec", None)
            spec = None if find is None else find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


@contextlib.contextmanager
def quiet_tensorflow(debug: bool = False) -> Iterator[None]:
    """Keep TensorFlow's start-up lines, and the warnings and log records of Keras and
    of the file readers' libraries, off the terminal meanwhile.

    Parameters
    ----------
    debug : bool
        Change nothing: TensorFlow logs as it would.
    """
    if debug:
        yield
        return
    _quiet_environment()
    finder = _QuietImports()
    sys.meta_path.insert(0, finder)
    # the readers' libraries log and warn about damaged files that we report in one line
    loggers = [logging.getLogger(name) for name in _QUIET_LIBRARIES]
    levels = [logger.level for logger in loggers]
    try:
        with warnings.catch_warnings():
            for module in ("keras", "tensorflow", "absl", "jax", *_QUIET_LIBRARIES):
                warnings.filterwarnings("ignore", module=rf"{module}(\.|$)")
            for logger in loggers:
                logger.setLevel(logging.CRITICAL)
            yield
    finally:
        sys.meta_path.remove(finder)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


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
    if "--debug" not in argv:
        _quiet_environment()  # before anything can import TensorFlow
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with quiet_tensorflow(args.debug):
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
