"""What `make dev` prints: never an exception, even when its terminal is gone (SIGHUP) or its pipe closed."""

from __future__ import annotations

import os
import sys

_PREFIX = "[dev]"
_silenced = False


def set_prefix(prefix: str) -> None:
    global _PREFIX
    _PREFIX = prefix


def say(message: str) -> None:
    write(f"{_PREFIX} {message}\n")


def write(text: str) -> None:
    """`text` to stdout, flushed; dropped once stdout fails (EIO after a hangup, EPIPE), so that the shutdown
    that follows a SIGHUP still runs to its end."""
    global _silenced
    if _silenced:
        return
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError):
        _silenced = True
        # Also spares the interpreter's flush at exit the same error.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
