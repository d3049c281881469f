"""The one error type that reaches users: a file and what is wrong with it."""

from __future__ import annotations

import os


class SpineSegError(Exception):
    """Bad input or an impossible request, reported to the user as one line.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file or folder the problem is in (None when no file is involved).
    problem : str
        What is wrong, in words a user understands, without a trailing full stop.

    Examples
    --------
    >>> str(SpineSegError("labels/a.jpg.mat", "has no variable 'p2'"))
    "labels/a.jpg.mat: has no variable 'p2'"
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        return self.problem if self.path is None else f"{self.path}: {self.problem}"

    def __reduce__(self):  # keeps the error picklable across processes and slurm jobs
        return (type(self), (self.path, self.problem))
