"""A real one-node slurm cluster for tests: munged, slurmctld and slurmd in a temp folder.

Import the fixture into a test module with ``from slurm_cluster import slurm_cluster``.
The cluster starts once per test session (in a few seconds) and stops at its end. It
uses its own munge key and socket, free TCP ports, and state, spool and log folders
under a temporary folder, so it disturbs no system slurm and two sessions can run side
by side. ``SLURM_CONF`` points every slurm command of the session (and the jobs) at it.

When it cannot start, tests that use it are skipped with the daemons' log tails as the
reason; in CI (``CI`` true) the repository's conftest turns that skip into a failure.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo", "srun")
PARTITION = "debug"
#: seconds before the time limit at which the test cluster's jobs are warned; slurm checks
#: time limits every 30 s, so a 1-minute job is warned between 29 s and 59 s
SIGNAL_DELAY_S = 1


class ClusterError(RuntimeError):
    """The cluster could not start; the message holds the daemons' log tails."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def _real_memory_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return max(256, int(int(line.split()[1]) / 1024 * 0.8))
    return 1024


@dataclass
class SlurmCluster:
    """A running one-node cluster.

    Attributes
    ----------
    root : Path
        Its temporary folder (``slurm.conf``, logs, state).
    conf : Path
        The ``slurm.conf``.
    node : str
        The node name (this machine's short host name).
    partition : str
        The one partition.
    """

    root: Path
    conf: Path
    node: str
    partition: str = PARTITION
    procs: dict = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Environment for slurm commands (``SLURM_CONF``)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def logs(self) -> str:
        """The tails of the daemons' logs, for error messages."""
        parts = []
        for name in ("slurmctld", "slurmd", "munged"):
            parts.append(
                f"--- {name} log ({self.root / f'{name}.log'}):\n{_tail(self.root / f'{name}.log')}"
            )
        return "\n".join(parts)

    def run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a slurm command against this cluster."""
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def node_state(self) -> str:
        """``sinfo``'s state of the node (``idle``, ``mix``, ``alloc``, ``down*`` ...)."""
        done = self.run("sinfo", "--noheader", "--format=%t", timeout=10)
        return (
            done.stdout.strip() if done.returncode == 0 else f"sinfo failed: {done.stderr.strip()}"
        )

    def controller_up(self) -> bool:
        """True when ``scontrol ping`` says the controller is UP."""
        done = self.run("scontrol", "ping", timeout=10)
        return done.returncode == 0 and " is UP" in done.stdout

    def stop_controller(self) -> None:
        """Stop slurmctld only (SIGTERM: it saves its state); jobs on the node run on."""
        proc = self.procs["slurmctld"]
        proc.terminate()
        proc.wait(timeout=30)

    def start_controller(self, timeout: float = 30.0) -> None:
        """Start slurmctld again (it recovers its jobs from its state folder); wait for it."""
        proc = self.procs.get("slurmctld")
        if proc is not None and proc.poll() is None:
            return
        log = open(self.root / "slurmctld.stderr", "ab")
        self.procs["slurmctld"] = subprocess.Popen(
            ["slurmctld", "-D", "-f", str(self.conf)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        _wait_for(self.controller_up, timeout, "the controller back", self)

    def set_node(self, state: str, reason: str = "test") -> None:
        """``scontrol update nodename=NODE state=STATE`` (``down``, ``resume`` ...)."""
        command = ["scontrol", "update", f"nodename={self.node}", f"state={state}"]
        if state.lower() in ("down", "drain", "fail"):
            command.append(f"reason={reason}")
        done = self.run(*command)
        if done.returncode != 0:
            # ReturnToService=2: a node whose slurmd registers again is back in service
            # by itself, and slurm then refuses "resume" ("Invalid node state specified")
            back = not self.node_state().startswith(("down", "drain", "fail"))
            if state.lower() == "resume" and back:
                return
            raise ClusterError(f"{' '.join(command)} failed: {done.stderr.strip()}")

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until no job is queued or running and the node is idle (a healthy cluster)."""

        def idle() -> bool:
            left = self.run("squeue", "--noheader", "--states=PD,R,CG,CF,RQ,S", timeout=30)
            return left.returncode == 0 and not left.stdout.strip() and self.node_state() == "idle"

        _wait_for(idle, timeout, "an empty queue and an idle node", self)

    def stop(self) -> None:
        """Cancel every job, let the jobs end, and stop the daemons."""
        try:
            self.run("scancel", "--full", f"--partition={self.partition}", timeout=10)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                left = self.run("squeue", "--noheader", "--states=PD,R,CG,CF,RQ,S", timeout=10)
                if left.returncode != 0 or not left.stdout.strip():
                    break
                time.sleep(0.5)
            self.run("scontrol", "shutdown", timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None:
                continue
            if name == "munged":
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for pid in self._step_daemons():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def _step_daemons(self) -> list[int]:
        """slurmstepd processes of this cluster still alive (they write to its logs)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if b"slurmstepd" not in (entry / "cmdline").read_bytes():
                    continue
                links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            except OSError:
                continue
            if any(link.startswith(str(self.root)) for link in links):
                found.append(int(entry.name))
        return found


def _slurm_conf(root: Path, node: str, user: str, socket_path: Path) -> str:
    ctld_port, d_port = _free_port(), _free_port()
    return f"""\
# one-node test cluster written by tests/slurm_cluster.py
ClusterName=spinesegtest
SlurmctldHost={node}(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
# own munge socket; cred_expire is also how long a requeued job waits (default 120 s)
AuthInfo=socket={socket_path},cred_expire=5
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# refuse at submission what the partition cannot give (as most sites do), not queue it forever
EnforcePartLimits=ALL
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=600
InactiveLimit=0
SlurmdTimeout=60
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory={_real_memory_mb()} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=60 State=UP
"""


def start_cluster(root: Path, timeout: float = 30.0) -> SlurmCluster:
    """Write the configuration, start munged, slurmctld and slurmd, wait for an idle node.

    Raises
    ------
    ClusterError
        When a program is missing or the node is not idle within `timeout` seconds;
        the message holds the daemons' log tails.
    """
    missing = [p for p in DAEMONS + CLIENTS if shutil.which(p) is None]
    if missing:
        raise ClusterError(
            f"slurm/munge programs missing: {', '.join(missing)} (apt install slurm-wlm munge)"
        )
    node = socket.gethostname().split(".")[0]
    user = getpass.getuser()
    for sub in ("state", "spool", "munge", "munge-key"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o755)
    (root / "munge-key").chmod(0o700)
    key = root / "munge-key" / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o400)
    socket_path = root / "munge" / "munge.socket"
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, node, user, socket_path))
    cluster = SlurmCluster(root=root, conf=conf, node=node)
    env = cluster.env
    munged = [
        "munged", "--foreground", f"--key-file={key}", f"--socket={socket_path}",
        f"--pid-file={root}/munge/munged.pid", f"--log-file={root}/munged.log",
        f"--seed-file={root}/munge/munged.seed",
    ]  # fmt: skip
    if os.geteuid() == 0:
        munged.append("--force")  # munged refuses to run as root without it
    try:
        cluster.procs["munged"] = subprocess.Popen(
            munged, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for(lambda: socket_path.exists(), 10, "munged's socket", cluster)
        for name in ("slurmctld", "slurmd"):
            log = open(root / f"{name}.stderr", "wb")
            cluster.procs[name] = subprocess.Popen(
                [name, "-D", "-f", str(conf)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            log.close()
        _wait_for(lambda: cluster.node_state() == "idle", timeout, "an idle node in sinfo", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for(check, timeout: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited with status {proc.returncode}\n{cluster.logs()}")
        if check():
            return
        time.sleep(0.2)
    raise ClusterError(
        f"no {what} after {timeout:.0f} s (node: {cluster.node_state()})\n{cluster.logs()}"
    )


_CLUSTER: dict = {}


@pytest.fixture(scope="session")
def slurm_cluster(request, tmp_path_factory) -> SlurmCluster:
    """A running one-node slurm cluster, shared by the whole test session.

    ``SLURM_CONF`` is set for the session, so slurm's commands, submitit and jobs use it.
    """
    if "cluster" not in _CLUSTER:
        if "error" in _CLUSTER:
            pytest.skip(_CLUSTER["error"])
        # a short path: munge's socket path must fit in 108 bytes
        root = Path(tempfile.mkdtemp(prefix="spine-seg-slurm-"))
        try:
            cluster = start_cluster(root)
        except (ClusterError, OSError, subprocess.SubprocessError) as exc:
            _CLUSTER["error"] = f"cannot start a one-node slurm cluster: {exc}"
            pytest.skip(_CLUSTER["error"])
        old = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(cluster.conf)

        def _stop():
            cluster.stop()
            if old is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old
            shutil.rmtree(root, ignore_errors=True)
            _CLUSTER.clear()

        request.config.add_cleanup(_stop)
        _CLUSTER["cluster"] = cluster
    return _CLUSTER["cluster"]


# ----------------------------------------------------------------------------- the CLI


def spine_seg(argv: list[str]) -> int:
    """Run ``spine-seg`` in this process, exactly as the console script does."""
    from napari_spine_seg.cli import main

    return main(argv)
