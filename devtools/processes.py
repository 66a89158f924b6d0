"""The processes `make dev` starts: each in its own session and process group, stopped by group.

Its own session keeps a terminal's Ctrl-C and hangup away from it (`make dev` decides when it stops), and its own
group lets one signal reach whatever it forked (gunicorn's workers). On Linux each also gets SIGTERM from the
kernel when `make dev` dies, however it dies (PR_SET_PDEATHSIG), as a backstop for the watchdog.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with(parent: int) -> Callable[[], None] | None:
    """For preexec_fn: SIGTERM to the child when `parent` (its creating thread, the main thread) ends."""
    libc = _LIBC
    if libc is None:
        return None

    def arrange() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl could take effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = True,
    stdin: int | IO[bytes] | None = None,
    stdout: int | IO[bytes] | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session and process group (its pid is the group's id)."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=stdin,
        stdout=stdout,
        start_new_session=True,
        preexec_fn=_die_with(os.getpid()) if die_with_parent else None,  # no threads in `make dev`
        pass_fds=tuple(pass_fds),
    )


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to process group `pgid`; False when the group has no process left.

    A group's id is not reused while any process of the group lives, so this never reaches a stranger while it
    has anything to reach.
    """
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies left, on some systems
        return False
    return True


def group_members(pgid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of group `pgid`."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (psutil.Error, OSError):
            continue
    return members


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie: a zombie holds no port or file, and its parent (init, for a daemon such as the
    postmaster) may take its time to reap it."""
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def wait_gone(processes: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to `timeout` for `processes` to end; those still alive then."""
    remaining = list(processes)
    deadline = time.monotonic() + timeout
    while True:
        remaining = [process for process in remaining if alive(process)]
        if not remaining or time.monotonic() > deadline:
            return remaining
        time.sleep(0.02)


def wait_groups_gone(pgids: Iterable[int], timeout: float, kill_after: float = 0.0) -> list[int]:
    """Wait until no live process is left in `pgids`, SIGKILLing what is left after `kill_after` seconds; the
    groups still there after `timeout`."""
    remaining = list(pgids)
    start = time.monotonic()
    while remaining:
        remaining = [pgid for pgid in remaining if group_members(pgid)]
        elapsed = time.monotonic() - start
        if not remaining or elapsed > timeout:
            break
        if elapsed >= kill_after:
            for pgid in remaining:
                signal_group(pgid, signal.SIGKILL)
        time.sleep(0.05)
    return remaining


def stop_groups(processes: Sequence[subprocess.Popen[bytes]], timeout: float) -> list[subprocess.Popen[bytes]]:
    """SIGTERM to each process's group (in the order given), SIGKILL to what is left after `timeout`.

    Returns once every leader is reaped and no process of any of the groups is left (workers whose leader died
    included); the processes that had to be killed.
    """
    for process in processes:
        signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = []
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killed.append(process)
    for process in processes:
        signal_group(process.pid, signal.SIGKILL)  # also reaches workers left behind by a dead leader
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5.0)
    wait_groups_gone([process.pid for process in processes], 5.0)
    return killed
