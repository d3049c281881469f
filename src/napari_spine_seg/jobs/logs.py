"""Read what a running job leaves behind: log tails, its error line, its epochs."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

#: ``spine-seg CMD: error: PATH: problem`` — the command line's one-line error
_CLI_ERROR = re.compile(r"^spine-seg [\w-]+: error: .+")
#: the last line of a Python traceback, e.g. ``ValueError: bad value``
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")
#: slurm's own complaints (``slurmstepd: error: *** JOB 7 ... DUE TO TIME LIMIT ***``)
_SLURM_ERROR = re.compile(r"^(slurmstepd|srun)(-[\w.-]+)?: error: .+")


def tail(path: str | os.PathLike, lines: int = 20, max_bytes: int = 64 * 1024) -> str:
    """The last `lines` lines of a text file ("" when it does not exist).

    Carriage-return progress bars are reduced to their last state.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    rows = [row.rsplit("\r", 1)[-1] for row in text.split("\n")]
    rows = [row for row in rows if row.strip()]
    return "\n".join(rows[-lines:])


def error_line(*texts: str) -> str | None:
    """The line that best says what went wrong, from log texts (first text wins ties).

    The command line's own ``spine-seg CMD: error: ...`` line is preferred, then the
    last line of a Python traceback, then slurm's ``error:`` lines.
    """
    for pattern in (_CLI_ERROR, _EXCEPTION, _SLURM_ERROR):
        for text in texts:
            found = [row.strip() for row in text.splitlines() if pattern.match(row.strip())]
            if found:
                return found[-1]
    return None


def epochs_done(history_csv: str | os.PathLike | None) -> int | None:
    """Epochs completed according to a training history CSV (its last ``epoch``).

    Returns None when there is no history yet. A half-written or odd file counts
    as no progress rather than an error: a job may be writing it right now.
    """
    if history_csv is None:
        return None
    try:
        text = Path(history_csv).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        return 0
    try:
        return int(float(rows[-1].get("epoch") or len(rows)))
    except ValueError:
        return len(rows)
