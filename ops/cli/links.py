"""The link suggestions, as the service role: the open ones as a table, linking one, and rejecting one for good."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ops.cli import OK

if TYPE_CHECKING:
    from rich.console import Console


def links(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich import box
    from rich.table import Table

    from ops.cli.commands import utc
    from shared.auth import ServiceRole
    from shared.links import LINKS_LIMIT
    from shared.wiring import link_service

    found = link_service().suggestions(ServiceRole())
    if not found:
        out.print("No open link suggestions.", markup=False, highlight=False)
        return OK
    table = Table(box=box.SIMPLE_HEAD, title="Open link suggestions", title_justify="left")
    for column in ("native client id", "Project B user id", "since (UTC)"):
        table.add_column(column, no_wrap=True)
    for suggestion in found:
        table.add_row(str(suggestion.client_id), str(suggestion.project_b_user_id), utc(suggestion.since))
    out.print(table)
    line = f"{len(found)} open link suggestions"
    if len(found) == LINKS_LIMIT:
        line += f" (the oldest {LINKS_LIMIT}; link or reject some to see more)"
    out.print(line, markup=False, highlight=False)
    return OK


def reject_link(args: argparse.Namespace, out: Console, err: Console) -> int:
    from shared.auth import ServiceRole
    from shared.wiring import link_service

    link_service().reject(ServiceRole(), args.client_id, args.project_b_user_id)
    out.print(f"rejected: {args.client_id} {args.project_b_user_id}", markup=False, highlight=False)
    return OK


def link(args: argparse.Namespace, out: Console, err: Console) -> int:
    from shared.auth import ServiceRole
    from shared.wiring import link_service

    linked = link_service().link(ServiceRole(), args.client_id, args.project_b_user_id)
    out.print(f"linked: {args.client_id} is now {linked}", markup=False, highlight=False)
    return OK
