"""Ctrl-C, SIGTERM and SIGHUP: the handler only records the signal and wakes the main loop.

The handler never raises. An exception raised from a signal handler lands wherever the main thread happens to be:
inside library code, inside `subprocess` holding a lock, or, when a second signal follows the first, inside the
`finally` that was stopping the stack (`signal.signal()` itself runs the handlers of pending signals), which it
then leaves with nothing stopped. Here the start checks `StopSignals.check()` between its steps, and the one
shutdown runs after that, whatever arrives meanwhile.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
from types import FrameType

from devtools.errors import StopRequested

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    def __init__(self) -> None:
        self.received: list[int] = []
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def install(self) -> None:
        # The C-level handler writes a byte to the socket as the signal arrives, so `sleep()` wakes at once.
        signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._record)

    def ignore_from_now_on(self) -> None:
        """Once everything is stopped: a late signal must not kill the exiting interpreter (exit code -15), which
        restores the default handlers of handled signals as it finalises, but leaves ignored ones ignored."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)

    @property
    def requested(self) -> bool:
        return bool(self.received)

    @property
    def first_name(self) -> str:
        return signal.Signals(self.received[0]).name if self.received else ""

    def check(self) -> None:
        """Raise StopRequested when a stop signal has arrived: called between the steps of the start."""
        if self.received:
            raise StopRequested(self.received[0])

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds`, or less when a stop signal arrives; whether one has arrived."""
        if not self.received:
            with contextlib.suppress(InterruptedError):
                select.select([self._reader], [], [], max(0.0, seconds))
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._reader.recv(512):
                pass
        return self.requested
