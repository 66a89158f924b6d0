"""Where a command writes: rich's consoles (tables on stdout, progress on stderr) and the sync's log lines."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from shared.logs import LOGGER_NAME, CurrentStreamHandler

if TYPE_CHECKING:
    from rich.console import Console

# Wide enough for the conflicts table when the output is not a terminal (a file, a pipe, a test's capture).
PLAIN_WIDTH = 200


def consoles(terminal: bool | None) -> tuple[Console, Console]:
    """stdout for the tables, stderr for the progress; plain text, wide enough, when not a terminal. `terminal`
    forces a terminal (True) or plain text (False); None detects it."""
    from rich.console import Console

    both = Console(file=sys.stdout, force_terminal=terminal), Console(file=sys.stderr, force_terminal=terminal)
    for console in both:
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = PLAIN_WIDTH
    return both


@contextmanager
def logs_to_stderr(*, verbose: bool) -> Iterator[None]:
    """The sync's JSON log lines go to stderr, not among the tables: its warnings (conflicts, clients bounded on the
    way in), or all with -v. psycopg_pool's warnings (each failed connection attempt) only with -v: the error line
    names the cause."""
    logger, pool_logger = logging.getLogger(LOGGER_NAME), logging.getLogger("psycopg.pool")
    handlers, level, pool_level = list(logger.handlers), logger.level, pool_logger.level
    handler = CurrentStreamHandler("stderr")
    handler.setFormatter(logging.Formatter("%(message)s"))
    for previous in handlers:
        logger.removeHandler(previous)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    pool_logger.setLevel(logging.NOTSET if verbose else logging.ERROR)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        for previous in handlers:
            logger.addHandler(previous)
        logger.setLevel(level)
        pool_logger.setLevel(pool_level)
