"""Slurm options for a job, validated before anything reaches ``sbatch`` or a shell.

Everything a user types goes through :class:`SlurmOptions`: names must be plain names,
numbers must be in range, setup lines must be single lines without control characters,
and extra ``#SBATCH`` lines must look like ``--key=value``. The job scripts quote every
value with :func:`shlex.quote`; setup lines are the one exception, since running them in
the job's shell (``module load …``, ``source venv/bin/activate``) is their purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from ..errors import SpineSegError

#: a partition, account, QoS or job name: letters, digits and ``_ . , : + -``
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.,:+-]{0,127}")
#: an extra sbatch option: ``--key`` or ``--key=value``, value without blanks or quotes
_SBATCH_LINE = re.compile(
    r"--(?P<key>[a-z][a-z0-9-]*)(?:=(?P<value>[A-Za-z0-9_.,:=@%/+\[\]*&|!-]+))?"
)
#: sbatch keys that spine-seg writes itself, and what to use instead
_RESERVED_KEYS = {
    "partition": "--partition",
    "p": "--partition",
    "time": "--time",
    "cpus-per-task": "--cpus",
    "mem": "--mem",
    "gpus": "--gpus",
    "gpus-per-node": "--gpus",
    "gres": "--gpus",
    "account": "--account",
    "qos": "--qos",
    "nodes": None,
    "ntasks": None,
    "ntasks-per-node": None,
    "job-name": None,
    "output": None,
    "error": None,
    "chdir": None,
    "signal": None,
    "open-mode": None,
    "array": None,
    "wrap": None,
    "requeue": None,
    "no-requeue": None,
}
MAX_TIME_MIN = 366 * 24 * 60
MAX_LINE = 1000


def check_line(text: object, what: str) -> str:
    """Return `text` when it is one line of printable text, else raise.

    Parameters
    ----------
    text : object
        What the user typed.
    what : str
        What it is, for the message ("setup line", "argument", ...).

    Raises
    ------
    SpineSegError
        When `text` is not a string, is empty, is longer than 1000 characters, or holds
        a newline or another control character.
    """
    if not isinstance(text, str):
        raise SpineSegError(None, f"{what} must be text, got {type(text).__name__}")
    if not text.strip():
        raise SpineSegError(None, f"{what} is empty")
    if len(text) > MAX_LINE:
        raise SpineSegError(None, f"{what} is longer than {MAX_LINE} characters")
    bad = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise SpineSegError(
            None, f"{what} {text!r} holds a control character ({bad!r}); give one line"
        )
    return text


def check_argument(text: object) -> str:
    """Return a command-line argument when it holds no control character, else raise.

    Arguments are quoted with :func:`shlex.quote` in job scripts; rejecting newlines
    and other control characters keeps the script readable and one command per line.
    """
    if not isinstance(text, str):
        raise SpineSegError(None, f"argument must be text, got {type(text).__name__}")
    bad = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise SpineSegError(None, f"argument {text!r} holds a control character ({bad!r})")
    return text


def check_name(text: object, what: str) -> str:
    """Return a slurm name (partition, account, QoS, job name) when it is plain, else raise."""
    if not isinstance(text, str) or not _NAME.fullmatch(text):
        raise SpineSegError(
            None, f"{what} {text!r} is not a slurm name (letters, digits and _ . , : + - only)"
        )
    return text


def parse_sbatch_line(text: object) -> str:
    """Normalise an extra ``#SBATCH`` line to ``--key=value`` (or ``--key``), or raise.

    A leading ``#SBATCH`` is accepted and dropped, and so is a missing ``--`` (on the
    command line ``--extra-sbatch constraint=a100`` is easier to type than
    ``--extra-sbatch=--constraint=a100``). Keys that spine-seg writes itself (time,
    partition, output, ...) are refused with the option to use instead.

    Examples
    --------
    >>> parse_sbatch_line("#SBATCH --constraint=a100")
    '--constraint=a100'
    >>> parse_sbatch_line("exclusive")
    '--exclusive'
    """
    line = check_line(text, "extra sbatch line").strip()
    if line.startswith("#SBATCH"):
        line = line[len("#SBATCH") :].strip()
    if line[:1].isalpha():
        line = "--" + line
    match = _SBATCH_LINE.fullmatch(line)
    if match is None:
        raise SpineSegError(
            None,
            f"extra sbatch line {text!r} must look like --key=value "
            "(lower-case key; value without blanks or quotes)",
        )
    key = match.group("key")
    if key in _RESERVED_KEYS:
        instead = _RESERVED_KEYS[key]
        hint = f"use {instead} instead" if instead else "spine-seg sets it itself"
        raise SpineSegError(None, f"extra sbatch line {text!r} sets --{key}; {hint}")
    return line


def _check_int(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpineSegError(None, f"{what} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise SpineSegError(None, f"{what} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class SlurmOptions:
    """Where and with what a slurm job runs; validated when made.

    Parameters
    ----------
    partition : str, optional
        Partition (``--partition``); the cluster's default when None.
    time_min : int
        Time limit in minutes (``--time``). A training that reaches it is requeued and
        resumes from its last checkpoint (see `max_requeues`).
    cpus : int
        CPUs for the task (``--cpus-per-task``).
    mem_gb : float, optional
        Memory in GB (``--mem``); the cluster's default when None.
    gpus : int
        GPUs on the node (``--gpus-per-node``); none when 0.
    account, qos : str, optional
        ``--account`` and ``--qos``.
    setup : tuple of str
        Shell lines run before the job, e.g. ``module load cuda`` or
        ``source /path/venv/bin/activate``; one line each, run as written.
    extra_sbatch : tuple of str
        More ``#SBATCH`` options, each ``--key=value`` (or ``--key``).
    job_name : str
        ``--job-name``.
    signal_delay_s : int
        Seconds before the time limit at which slurm warns the job (``--signal``),
        so that it can stop, keep its checkpoint and requeue itself.
    max_requeues : int
        How many times a job that reaches its time limit is requeued.

    Raises
    ------
    SpineSegError
        When an option is out of range or could smuggle text into the job script.
    """

    partition: str | None = None
    time_min: int = 60
    cpus: int = 2
    mem_gb: float | None = None
    gpus: int = 0
    account: str | None = None
    qos: str | None = None
    setup: tuple[str, ...] = field(default_factory=tuple)
    extra_sbatch: tuple[str, ...] = field(default_factory=tuple)
    job_name: str = "spine-seg"
    signal_delay_s: int = 90
    max_requeues: int = 3

    def __post_init__(self):
        for name in ("partition", "account", "qos"):
            value = getattr(self, name)
            if value is not None:
                check_name(value, name)
        check_name(self.job_name, "job name")
        _check_int(self.time_min, "time limit (minutes)", 1, MAX_TIME_MIN)
        _check_int(self.cpus, "CPUs", 1, 4096)
        _check_int(self.gpus, "GPUs", 0, 64)
        _check_int(self.signal_delay_s, "signal delay (seconds)", 1, 3600)
        _check_int(self.max_requeues, "requeues", 0, 100)
        if self.signal_delay_s >= self.time_min * 60:
            raise SpineSegError(
                None,
                f"the signal delay ({self.signal_delay_s} s) must be shorter than the time limit "
                f"({self.time_min} min); give --signal-delay",
            )
        if self.mem_gb is not None:
            if isinstance(self.mem_gb, bool) or not isinstance(self.mem_gb, int | float):
                raise SpineSegError(None, f"memory (GB) must be a number, got {self.mem_gb!r}")
            if not 0 < self.mem_gb <= 1 << 20:
                raise SpineSegError(None, f"memory (GB) must be positive, got {self.mem_gb}")
        if isinstance(self.setup, str) or isinstance(self.extra_sbatch, str):
            raise SpineSegError(None, "setup and extra sbatch lines must be lists of lines")
        setup = tuple(check_line(line, "setup line").strip() for line in self.setup)
        extra = tuple(parse_sbatch_line(line) for line in self.extra_sbatch)
        object.__setattr__(self, "setup", setup)
        object.__setattr__(self, "extra_sbatch", extra)

    def sbatch_options(self) -> list[tuple[str, str | None]]:
        """The ``#SBATCH`` options these settings ask for, as ``(key, value)`` pairs.

        A value of None is a flag without value. Paths and signal handling are added by
        the job script, not here.
        """
        options: list[tuple[str, str | None]] = [("job-name", self.job_name)]
        if self.partition:
            options.append(("partition", self.partition))
        options.append(("time", str(self.time_min)))
        options.append(("nodes", "1"))
        options.append(("ntasks-per-node", "1"))
        options.append(("cpus-per-task", str(self.cpus)))
        if self.mem_gb is not None:
            options.append(("mem", _mem(self.mem_gb)))
        if self.gpus:
            options.append(("gpus-per-node", str(self.gpus)))
        if self.account:
            options.append(("account", self.account))
        if self.qos:
            options.append(("qos", self.qos))
        for line in self.extra_sbatch:
            key, sep, value = line[2:].partition("=")
            options.append((key, value if sep else None))
        return options

    def to_dict(self) -> dict:
        """A JSON-able dict (lists for the tuples); :meth:`from_dict` reads it back."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["setup"] = list(self.setup)
        out["extra_sbatch"] = list(self.extra_sbatch)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> SlurmOptions:
        """Options from :meth:`to_dict`'s dict (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpineSegError(None, f"unknown slurm option(s): {', '.join(unknown)}")
        data = dict(data)
        for key in ("setup", "extra_sbatch"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def _mem(mem_gb: float) -> str:
    """``--mem`` value: whole gigabytes as ``NG``, fractions as ``NM`` (mebibytes)."""
    if float(mem_gb) == int(mem_gb):
        return f"{int(mem_gb)}G"
    return f"{max(1, int(round(mem_gb * 1024)))}M"
