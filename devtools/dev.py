"""`make dev`: both projects in the embedded Postgres, the functions served on 127.0.0.1, until Ctrl-C.

Starts (or reuses) the embedded Postgres in DEV_DIR/pgdata (default .dev/) with the databases `project_a` and
`project_b`, applies the migrations and the sample data, serves the local SQS, both functions, the webhook relay and
Project B's Auth stand-in on ports from DEV_PORT_BASE (default 8080: 8081, 8083, 8085, 8088), writes DEV_DIR/env
and waits. `--backend supabase`
(`make dev BACKEND=supabase`) also serves each project's API, the PostgREST stand-in (8086, 8087), and runs the
functions over it (their client backend) instead of Postgres.

Ctrl-C, SIGTERM or SIGHUP, at any moment, stop everything it started; a service that dies on its own stops
everything with a non-zero exit. How:

- the signal handler only records the signal (stop_signals.py); the start checks between its steps, and one
  shutdown (`Stack.shutdown`) runs at the end whatever happens, with later signals only recorded;
- every service runs in a session and process group of its own and is stopped by group: SIGTERM, SIGKILL after
  a timeout, and then until no process of the group is left (processes.py);
- Postgres is stopped by its postmaster.pid and waited for with its children (postgres.py);
- a watchdog process stops all of it if this process is killed with SIGKILL (watchdog.py), and a start clears a
  postmaster that a killed run left behind.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from devtools.config import STACK_BACKENDS, StackBackend, load_config, shown
from devtools.console import say
from devtools.errors import StackFailed, StopRequested
from devtools.stop_signals import StopSignals

if TYPE_CHECKING:
    from devtools.stack import Stack

# Only light modules above: the handlers must be in place before anything slow runs (devtools.stack imports
# psycopg, psutil, pgserver).


def parse_backend(argv: Sequence[str] | None = None) -> StackBackend:
    parser = argparse.ArgumentParser(prog="python -m devtools.dev", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        choices=STACK_BACKENDS,
        default="direct",
        help="direct: the functions use Postgres as client_sync (default); supabase: each project's API (PostgREST)",
    )
    backend: StackBackend = parser.parse_args(argv).backend
    return backend


def main(argv: Sequence[str] | None = None) -> int:
    stop = StopSignals()
    stop.install()  # first: from here on, no signal finds Python's default handlers
    backend = parse_backend(argv)  # a usage error exits with code 2 before anything starts
    from devtools.postgres import quiet_platformdirs  # here, once the handlers are in place

    quiet_platformdirs()
    code = 0
    stack: Stack | None = None
    try:
        config = load_config(backend=backend)
        say(
            f"make dev (pid {os.getpid()}): DEV_DIR {shown(config.dev_dir)}, DEV_PORT_BASE {config.port_base}, "
            f"backend {config.backend}"
        )
        from devtools.stack import Stack  # here, once the handlers are in place

        stack = Stack(config, stop)
        stack.start()
        stack.serve()
    except StopRequested:
        pass
    except StackFailed as exc:
        say(f"ERROR: {exc}")
        code = 1
    except Exception:
        import traceback

        say(f"ERROR:\n{traceback.format_exc()}")
        code = 1
    finally:
        if stack is not None:
            stack.shutdown()
        stop.ignore_from_now_on()
    if stop.requested:
        say(f"{stop.first_name} received; stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
