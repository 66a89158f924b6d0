"""`make dev`'s watchdog: stops what `make dev` started when `make dev` dies without stopping it (SIGKILL, a crash).

`make dev` starts it first, in a session of its own, reading a pipe that only `make dev` writes to, and tells it:

    group PGID       a process group it started (a service)
    postgres PGDATA  the data directory of the embedded Postgres
    done             `make dev` stopped everything itself: exit

The end of the pipe without `done` means `make dev` is gone. The watchdog then stops the groups (SIGTERM, SIGKILL
after a timeout), lets a Postgres start helper finish, and stops Postgres. It holds `make dev`'s lock on DEV_DIR
(the same open file), so a new `make dev` on that directory waits until it is done.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from devtools import postgres
from devtools.console import say, set_prefix
from devtools.processes import signal_group, wait_groups_gone

GROUP_STOP_SECONDS = 5.0
HELPER_WAIT_SECONDS = 60.0


def clean_up(groups: list[int], pgdata: Path | None) -> None:
    live = [pgid for pgid in groups if signal_group(pgid, signal.SIGTERM)]
    left = wait_groups_gone(live, GROUP_STOP_SECONDS + 5.0, kill_after=GROUP_STOP_SECONDS)
    if left:
        say(f"process groups {left} would not die")
    if pgdata is not None:
        postgres.wait_for_helpers(pgdata, HELPER_WAIT_SECONDS)
        pid = postgres.stop(pgdata)
        if pid is not None:
            say(f"Postgres (pid {pid}) stopped")


def main() -> int:
    set_prefix("[dev watchdog]")
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    parent = os.getppid()
    groups: list[int] = []
    pgdata: Path | None = None
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "done":
            return 0
        if command == "group":
            groups.append(int(argument))
        elif command == "postgres":
            pgdata = Path(argument)
    say(f"make dev (pid {parent}) ended without stopping what it started; stopping it")
    clean_up(groups, pgdata)
    return 0


if __name__ == "__main__":
    sys.exit(main())
