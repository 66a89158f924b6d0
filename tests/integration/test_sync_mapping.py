"""The design document's mapping of a Project B client to Project A's columns, in Project A's SQL
(private.synced_columns), the one place that names them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Databases

AT = datetime(2026, 1, 1, tzinfo=UTC)


def mapped(db: Databases, profile: dict[str, Any]) -> dict[str, Any]:
    row = db.a.execute(
        "select full_name, email, notes, source_attributes, source_updated_at from private.synced_columns(%s, %s)",
        (json.dumps(profile), AT),
    ).fetchone()
    return dict(zip(("full_name", "email", "notes", "source_attributes", "source_updated_at"), row, strict=True))


def test_mapping_follows_the_design_document(db: Databases) -> None:
    profile = {
        "name": "Jane Doe",
        "email": "jane@example.com",
        "age": 35,
        "gender_identity": "female",
        "avatar_url": "https://example.com/a.png",
    }
    assert mapped(db, profile) == {
        "full_name": "Jane Doe",
        "email": "jane@example.com",
        "notes": "Synced from Project B. Age: 35, Gender: female",
        "source_attributes": {"age": 35, "gender_identity": "female", "avatar_url": "https://example.com/a.png"},
        "source_updated_at": AT,
    }


@pytest.mark.parametrize(
    ("age", "gender", "notes"),
    [
        (None, "female", "Synced from Project B. Gender: female"),
        (35, None, "Synced from Project B. Age: 35"),
        (None, None, "Synced from Project B."),
        (0, "", "Synced from Project B. Age: 0"),
    ],
)
def test_notes_leave_out_missing_parts(db: Databases, age: int | None, gender: str | None, notes: str) -> None:
    assert mapped(db, {"name": "A", "age": age, "gender_identity": gender})["notes"] == notes


def test_blank_name_and_email_are_handled(db: Databases) -> None:
    row = mapped(db, {"name": "   ", "email": "  "})
    assert (row["full_name"], row["email"]) == ("Unnamed client", None)
    assert mapped(db, {"name": " Ada ", "email": " ada@example.com "})["full_name"] == "Ada"
