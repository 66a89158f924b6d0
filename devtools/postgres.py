"""The embedded Postgres of `make dev` (pgserver) in DEV_DIR/pgdata: started by a helper, stopped and verified gone.

pgserver stops a server only when the process exiting holds the last handle in `pgdata/.handle_pids.json`, and
only the postmaster it saw start: a stale or reused pid in that list, or a server restarted meanwhile, and
"stopped" leaves it running. So `make dev` only lets pgserver initialise and start the server, in a helper
process of its own session (`python -m devtools.postgres PGDATA`: a terminal's Ctrl-C cannot cut initdb or
pg_ctl short), and stops it itself: the postmaster of `postmaster.pid`, fast shutdown (SIGINT, what `pg_ctl stop`
sends), waited for with its children, then immediate shutdown (SIGQUIT) and SIGKILL for whatever is left.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import warnings
from pathlib import Path

import psutil

from devtools.processes import alive, wait_gone

FAST_SHUTDOWN_SECONDS = 15.0
IMMEDIATE_SHUTDOWN_SECONDS = 5.0
_POSTGRES_TOOLS = {"pg_ctl", "initdb"}


def _mentions(process: psutil.Process, pgdata: Path) -> bool:
    return str(pgdata) in " ".join(process.cmdline())


def _serves(process: psutil.Process, pgdata: Path) -> bool:
    """A postgres process of `pgdata`: it runs in its data directory (a server restarted with pg_ctl has no -D)."""
    try:
        return process.name() == "postgres" and alive(process) and Path(process.cwd()) == pgdata.resolve()
    except psutil.Error:
        return False


def postmaster(pgdata: Path) -> psutil.Process | None:
    """The postmaster running on `pgdata` (the pid in its postmaster.pid), or None."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
    except (OSError, ValueError, psutil.Error):
        return None
    return process if _serves(process, pgdata) else None


def server_processes(pgdata: Path) -> list[psutil.Process]:
    """Live processes of the server on `pgdata` (postmaster, backends, auxiliaries), and pg_ctl or initdb on it."""
    found = []
    for process in psutil.process_iter():
        try:
            if _serves(process, pgdata) or (
                process.name() in _POSTGRES_TOOLS and alive(process) and _mentions(process, pgdata)
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def helpers(pgdata: Path) -> list[psutil.Process]:
    """Live start helpers (`python -m devtools.postgres PGDATA`) of `pgdata`."""
    found = []
    for process in psutil.process_iter():
        try:
            cmdline = process.cmdline()
            if "devtools.postgres" in cmdline and str(pgdata) in cmdline and alive(process):
                found.append(process)
        except psutil.Error:
            continue
    return found


def server_url(pgdata: Path) -> str:
    """The administrator's URL of the server running on `pgdata`, as pgserver builds it."""
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None:
        raise RuntimeError(f"no postmaster.pid in {pgdata}")
    return info.get_uri()


def _signal(process: psutil.Process, signum: int) -> None:
    with contextlib.suppress(psutil.Error):
        process.send_signal(signum)


def stop(pgdata: Path) -> int | None:
    """Stop the server running on `pgdata` and wait until it and its children are gone; its pid, or None.

    Also kills postgres processes of `pgdata` that no postmaster.pid names (left by a killed postmaster).
    """
    master = postmaster(pgdata)
    if master is not None:
        try:
            family = [master, *master.children(recursive=True)]
        except psutil.Error:
            family = [master]
        _signal(master, signal.SIGINT)  # fast shutdown: ends the sessions, checkpoints, exits
        left = wait_gone(family, FAST_SHUTDOWN_SECONDS)
        if left:
            _signal(master, signal.SIGQUIT)  # immediate shutdown
            left = wait_gone(left, IMMEDIATE_SHUTDOWN_SECONDS)
        for process in left:
            _signal(process, signal.SIGKILL)
        wait_gone(left, IMMEDIATE_SHUTDOWN_SECONDS)
    leftovers = server_processes(pgdata)
    for process in leftovers:
        _signal(process, signal.SIGKILL)
    wait_gone(leftovers, IMMEDIATE_SHUTDOWN_SECONDS)
    return master.pid if master is not None else None


def clear_stale(pgdata: Path) -> int | None:
    """Before a start, with DEV_DIR locked: stop a server an earlier, killed `make dev` left running (its pid).

    Then, with no server process left on it, removes the lock files a postmaster that did not exit cleanly left.
    """
    if not pgdata.exists():
        return None
    stale = stop(pgdata)
    if not server_processes(pgdata):
        _remove_lock_files(pgdata)
    return stale


def _remove_lock_files(pgdata: Path) -> None:
    """postmaster.pid and the socket's lock file, left by a postmaster that did not exit cleanly (killed, or
    unable to reach its files): Postgres refuses to start while the pid they name exists, even as a zombie that
    init has not reaped yet, or as an unrelated process that got the pid since."""
    pid_file = pgdata / "postmaster.pid"
    socket_dirs = {pgdata}
    with contextlib.suppress(OSError, IndexError):
        socket_dirs.add(Path(pid_file.read_text().splitlines()[4]))
    for path in [pid_file, *(lock for directory in socket_dirs for lock in directory.glob(".s.PGSQL.*.lock"))]:
        with contextlib.suppress(OSError):
            path.unlink()


def wait_for_helpers(pgdata: Path, timeout: float) -> None:
    """Wait for start helpers of `pgdata` to finish: stopping initdb or pg_ctl halfway would harm the data."""
    deadline = time.monotonic() + timeout
    while helpers(pgdata) and time.monotonic() < deadline:
        time.sleep(0.1)


def quiet_platformdirs() -> None:
    """pgserver asks platformdirs for a runtime directory as it is imported, which warns when XDG_RUNTIME_DIR is
    unset or not private (/tmp); nothing here uses that directory but pgserver's start lock."""
    try:
        from platformdirs import RuntimeDirWarning
    except ImportError:  # older platformdirs
        warnings.filterwarnings("ignore", category=UserWarning, module=r"platformdirs\.")
    else:
        warnings.filterwarnings("ignore", category=RuntimeDirWarning)


def main(argv: list[str]) -> int:
    """The start helper: initialise `argv[0]` if needed and start Postgres on it, then exit, leaving it running."""
    quiet_platformdirs()
    from pgserver.postgres_server import get_server

    pgdata = Path(argv[0])
    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: pgserver must not stop it when this helper exits; `make dev` stops it.
    get_server(pgdata, cleanup_mode=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
