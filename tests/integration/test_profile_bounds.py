"""Profile data is bounded on its way into Project A: full_name at most 200 characters, source_attributes at most
4 KiB (attributes that do not fit dropped, the largest first), avatar_url only as an https URL of at most 2,048
characters. A profile over these bounds fails nothing: it is stored within them and logged by id."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import THERAPIST, Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import book
from tests.integration.test_project_b_webhook import deliver, payload
from tests.integration.test_sync_client import page_through
from tests.random_refs import random_email

SAFE_AVATAR = "https://cdn.example.test/avatars/1.png"
LONGEST_AVATAR = "https://cdn.example.test/" + "a" * (2048 - len("https://cdn.example.test/"))


@dataclass(frozen=True)
class Case:
    profile: dict[str, Any]
    full_name: str
    source_attributes: dict[str, Any]
    logged: str | None


CASES = {
    "name_of_10000_characters": Case(
        {"name": "a" * 9_999 + "b"},
        "a" * 200,
        {"age": None, "gender_identity": None, "avatar_url": None},
        "full_name_cut",
    ),
    "multi_byte_characters_at_the_cut": Case(
        {"name": "ü" * 199 + "😀" + "z" * 50},
        "ü" * 199 + "😀",
        {"age": None, "gender_identity": None, "avatar_url": None},
        "full_name_cut",
    ),
    "javascript_avatar": Case(
        {"name": "Js", "avatar_url": "javascript:alert(1)"},
        "Js",
        {"age": None, "gender_identity": None, "avatar_url": None},
        "avatar_url_dropped",
    ),
    "http_avatar": Case(
        {"name": "Http", "avatar_url": "http://cdn.example.test/a.png"},
        "Http",
        {"age": None, "gender_identity": None, "avatar_url": None},
        "avatar_url_dropped",
    ),
    "avatar_over_2048_characters": Case(
        {"name": "Long url", "avatar_url": LONGEST_AVATAR + "a"},
        "Long url",
        {"age": None, "gender_identity": None, "avatar_url": None},
        "avatar_url_dropped",
    ),
    "https_avatar_of_2048_characters": Case(
        {"name": "Kept", "avatar_url": LONGEST_AVATAR},
        "Kept",
        {"age": None, "gender_identity": None, "avatar_url": LONGEST_AVATAR},
        None,
    ),
    "attributes_over_4_kib": Case(
        {"name": "Big", "age": 30, "gender_identity": "é" * 3000, "avatar_url": SAFE_AVATAR},  # 6,000 bytes
        "Big",
        {"age": 30, "avatar_url": SAFE_AVATAR},
        "source_attributes_cut",
    ),
}


def add_cases(db: Databases) -> dict[str, uuid.UUID]:
    ids = {name: uuid.uuid4() for name in CASES}
    for name, case in CASES.items():
        profile = dict(case.profile)
        db.add_project_b_client(ids[name], profile.pop("name"), random_email(), **profile)
    return ids


def sync_webhook(ids: dict[str, uuid.UUID], token: Callable[..., str]) -> None:
    webhook = function_client("project_b_webhook")
    responses = [deliver(webhook, payload("INSERT", client_id)) for client_id in ids.values()]
    assert [(response.status_code, response.json["outcome"]) for response in responses] == [(200, "inserted")] * len(
        ids
    )


def sync_booking(ids: dict[str, uuid.UUID], token: Callable[..., str]) -> None:
    client = function_client("create_session")
    responses = [book(client, token(THERAPIST), client_id) for client_id in ids.values()]
    assert [(response.status_code, response.json["client_synced"]) for response in responses] == [(201, True)] * len(
        ids
    )


def sync_backfill(ids: dict[str, uuid.UUID], token: Callable[..., str]) -> None:
    counts, _ = page_through("backfill")
    assert counts["inserted"] == len(ids)  # the page goes on past every profile over the bounds


@pytest.mark.parametrize("sync", [sync_webhook, sync_booking, sync_backfill], ids=["webhook", "booking", "backfill"])
def test_a_profile_over_the_bounds_is_stored_within_them_and_logged_by_id(
    fresh: Databases, token: Callable[..., str], capsys: pytest.CaptureFixture[str], sync: Callable[..., None]
) -> None:
    ids = add_cases(fresh)
    capsys.readouterr()

    sync(ids, token)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    bounded = {(line["event"], line["client_id"]) for line in lines if line["level"] == "warning"}
    for name, case in CASES.items():
        stored = fresh.client(ids[name])
        assert stored is not None, name
        assert (stored["full_name"], stored["source_attributes"]) == (case.full_name, case.source_attributes), name
        size = fresh.a.execute(
            "select octet_length(source_attributes::text) from public.clients where id = %s", (ids[name],)
        )
        assert size.fetchone()[0] <= 4096, name
    expected = {(case.logged, str(ids[name])) for name, case in CASES.items() if case.logged}
    assert bounded == expected
    assert all(
        set(line) <= {"level", "event", "client_id", "therapist_id"} for line in lines if line["level"] == "warning"
    )
