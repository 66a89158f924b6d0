"""Why `make dev` stops before it was asked to."""

from __future__ import annotations


class StackFailed(Exception):
    """The stack cannot start or a service died; the message says which and why."""


class StopRequested(Exception):
    """Ctrl-C, SIGTERM or SIGHUP arrived: raised at a step boundary of the start, never from a signal handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
