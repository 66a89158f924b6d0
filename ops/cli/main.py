"""The command line's entry: its arguments, and the command they name run with its consoles and log lines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from ops.cli import ERROR, PROG, USAGE
from ops.cli.commands import backfill, conflicts, reconcile
from ops.cli.errors import check_settings, one_line
from ops.cli.links import link, links, reject_link
from ops.cli.output import consoles, logs_to_stderr
from ops.cli.status import status
from shared.config import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from rich.console import Console


def main(argv: Sequence[str] | None = None, *, terminal: bool | None = None) -> int:
    """Run the command of `argv` (default sys.argv[1:]); the exit code. `terminal` forces rich's consoles to a
    terminal (True) or to plain text (False); None detects it."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage or the help
        return exit_.code if isinstance(exit_.code, int) else USAGE
    out, err = consoles(terminal)
    try:
        with logs_to_stderr(verbose=args.verbose):
            check_settings()
            command: Callable[[argparse.Namespace, Console, Console], int] = args.run
            return command(args, out, err)
    except Exception as exc:
        message = one_line(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return ERROR
    finally:
        close_connections()


def close_connections() -> None:
    """Close the database pools and, when the client backend opened any, the HTTP clients (httpx is imported only
    then)."""
    from shared.stores.pools import close_pools

    close_pools()
    if "shared.stores.rpc_http" in sys.modules:
        from shared.stores.rpc_http import close_http_clients

        close_http_clients()


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show the sync's log lines (stderr)")
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Backfill, reconcile, the sync's conflicts, link suggestions and status, against "
        "PROJECT_A_DB_URL and PROJECT_B_DB_URL (or each project's API: PROJECT_X_URL and PROJECT_X_SERVICE_ROLE_KEY).",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{backfill,reconcile,conflicts,links,link,reject-link,status}"
    )

    run = commands.add_parser("backfill", parents=[common], help="copy every Project B client to Project A")
    _page_options(run)
    run.add_argument("--cursor", metavar="C", help="go on after this cursor (printed by an interrupted run)")
    run.set_defaults(run=backfill)

    run = commands.add_parser(
        "reconcile", parents=[common], help="apply Project B's changes since the last reconcile, then retry conflicts"
    )
    run.add_argument("--full", action="store_true", help="also sweep Project A's synced clients for deletions")
    _page_options(run)
    run.add_argument("--cursor", metavar="C", help="go on from this cursor (printed by an interrupted run)")
    run.set_defaults(run=reconcile)

    run = commands.add_parser("conflicts", parents=[common], help="list the conflicts the sync remembers")
    run.add_argument("--all", action="store_true", help="resolved ones too (default: the open ones)")
    run.add_argument("--limit", type=_page_size, default=1000, metavar="N", help="at most N (default 1000)")
    run.set_defaults(run=conflicts)

    run = commands.add_parser("links", parents=[common], help="list the open link suggestions")
    run.set_defaults(run=links)

    run = commands.add_parser("link", parents=[common], help="link a native client to the Project B user suggested")
    run.add_argument("client_id", type=UUID, help="the native client's id")
    run.add_argument("project_b_user_id", type=UUID, help="the Project B user's id")
    run.set_defaults(run=link)

    run = commands.add_parser("reject-link", parents=[common], help="reject a link suggestion for good")
    run.add_argument("client_id", type=UUID, help="the native client's id")
    run.add_argument("project_b_user_id", type=UUID, help="the Project B user's id")
    run.set_defaults(run=reject_link)

    run = commands.add_parser("status", parents=[common], help="the sync's status: lag, last runs, conflicts, queue")
    run.set_defaults(run=status)
    return parser


def _page_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_page_size, metavar="N", help="clients per page (default SYNC_PAGE_SIZE)")
    parser.add_argument("--dry-run", action="store_true", help="apply each page in a transaction that is rolled back")


def _page_size(text: str) -> int:
    """A page size: 1 to the largest page the SQL functions take."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_PAGE_SIZE}")
    return value
