"""``ledger project --processes N``: N projectors on one machine as one command, each its
own process and a member of the one consumer group (Kafka shares the partitions out).

The projector is one sequential loop bound by its own Python (~115 µs of CPU an event), so
one process uses one core. Each member is ``ledger project`` itself, started with the same
settings but one process, its own static member id and metrics port: what holds between
projectors on different machines (each batch's offsets claimed in its transaction) holds
between them. The command passes SIGTERM / Ctrl-C on to every member (each finishes its
batch and exits 0), and a member gets SIGTERM too when the command itself is killed; a
member that dies stops the others, and the command exits 1 saying which, for the service
manager to restart the whole.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from ledger.cli.base import CliError
from ledger.settings import LogBackend, Settings

__all__ = ["check_members", "member_environment", "run_members"]

Member = subprocess.Popen[bytes]

_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1


def member_environment(config: Settings, index: int) -> dict[str, str]:
    """The environment of member ``index``: this one's, one process, and what must differ
    between members of one group on one machine."""
    env = dict(os.environ, LEDGER_PROJECTOR_PROCESSES="1")
    if config.projector_instance_id is not None:
        env["LEDGER_PROJECTOR_INSTANCE_ID"] = f"{config.projector_instance_id}-{index}"
    if config.projector_metrics_port is not None:
        env["LEDGER_PROJECTOR_METRICS_PORT"] = str(config.projector_metrics_port + index)
    return env


def check_members(config: Settings, processes: int) -> None:
    """Refuse what cannot run as members, before any is started."""
    if processes > 1 and config.log_backend is LogBackend.SQLITE:
        raise CliError("--processes: more than 1 needs the Kafka log (LEDGER_BACKEND=kafka+postgres); "
                       "the embedded log has one reader")  # fmt: skip
    port = config.projector_metrics_port
    if port is not None and port + processes - 1 > 65535:
        raise CliError(f"--processes: member metrics ports {port}..{port + processes - 1} go past 65535 "
                       "(LEDGER_PROJECTOR_METRICS_PORT is the first member's)")  # fmt: skip


def run_members(arguments: Sequence[str], config: Settings, processes: int) -> None:
    """Run ``python -m ledger project ARGUMENTS`` ``processes`` times side by side until all
    have exited; raise ``CliError`` if one failed (the others are stopped then)."""
    check_members(config, processes)
    command = [sys.executable, "-m", "ledger", "project", *arguments, "--processes", "1"]
    members = [subprocess.Popen(command, env=member_environment(config, i), preexec_fn=_stop_with_parent)
               for i in range(processes)]  # fmt: skip
    stopping = threading.Event()

    def stop_all(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        stopping.set()
        for member in members:
            if member.poll() is None:
                member.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, stop_all) for s in (signal.SIGTERM, signal.SIGINT)}
    failed: tuple[int, Member] | None = None
    try:
        while any(member.poll() is None for member in members):
            if failed is None and not stopping.is_set():
                failed = _first_failed(members, stopped=False)
                if failed is not None:
                    stop_all()
            time.sleep(_POLL_S)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    failed = failed or _first_failed(members, stopped=stopping.is_set())
    if failed is not None:
        index, member = failed
        raise CliError(f"project: member {index + 1} of {processes} (pid {member.pid}) {_ended(member.returncode)}; "
                       "the others were stopped")  # fmt: skip


def _first_failed(members: list[Member], *, stopped: bool) -> tuple[int, Member] | None:
    """The first member that ended badly (a stopped member may have been ended by the
    SIGTERM itself, before it could catch it)."""
    fine = (0, -signal.SIGTERM) if stopped else (0,)
    return next(((i, m) for i, m in enumerate(members) if m.returncode is not None and m.returncode not in fine), None)


def _stop_with_parent() -> None:
    """In each member, before it runs: SIGTERM when the command dies, however it dies (a
    SIGKILL cannot be passed on), so no member outlives it projecting on its own. Linux's
    prctl(PR_SET_PDEATHSIG); elsewhere nothing (the service manager's stop reaches all)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _ended(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"
