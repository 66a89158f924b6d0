"""shared/reconcile.py's cursor: the strings callers hand back parse to one typed value, and print as they did."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from shared.errors import InvalidRequest
from shared.ports import Watermark
from shared.reconcile import ChangesCursor, ConflictsCursor, SweepCursor, parse_reconcile_cursor

CLIENT = UUID("8d3c1f9e-2b4a-4c6d-9e8f-0a1b2c3d4e5f")
VERSION = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "cursor"),
    [
        (f"changes:2026-03-01T09:30:15.123456+00:00|{CLIENT}", ChangesCursor(Watermark(VERSION, CLIENT))),
        ("sweep:", SweepCursor()),  # where the changes end, on a full reconcile
        (f"sweep:{CLIENT}", SweepCursor(CLIENT)),
        ("conflicts", ConflictsCursor()),  # where the changes or the sweep end
        (f"conflicts:{CLIENT}", ConflictsCursor(CLIENT)),
    ],
)
def test_each_cursor_a_reconcile_gives_out_parses_and_prints_back_the_same(text: str, cursor: object) -> None:
    assert parse_reconcile_cursor(text) == cursor
    assert str(cursor) == text


@pytest.mark.parametrize(
    ("text", "cursor"),
    [
        (None, ChangesCursor()),
        ("changes:", ChangesCursor()),
        ("sweep", SweepCursor()),
        ("conflicts:", ConflictsCursor()),
    ],
)
def test_a_phase_without_a_position_starts_that_phase(text: str | None, cursor: object) -> None:
    assert parse_reconcile_cursor(text) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nope",
        "changes:yesterday|x",
        f"changes:2026-03-01T09:30:15|{CLIENT}",  # no offset
        "changes:2026-03-01T09:30:15+00:00|",
        "sweep:not-an-id",
        "conflicts:42",
        str(CLIENT),  # a backfill's cursor
    ],
)
def test_anything_else_is_an_invalid_cursor(text: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_reconcile_cursor(text)
    assert (refused.value.message, refused.value.details) == (
        "cursor: not a cursor of this reconcile",
        {"fields": ["cursor"]},
    )
