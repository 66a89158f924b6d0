"""Project B names what a client is made of in one place (private.synced_profile_fields): a field added there
by a migration flows to Project A through the webhook and through a booking, with no other change."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from devtools.localdb import LocalProjects, prepare_projects, register_therapists
from tests.conftest import THERAPIST, Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import book
from tests.integration.test_project_b_webhook import deliver, payload
from tests.random_refs import random_email, random_name, random_suffix

SCRATCH_MIGRATION = """
alter table public.profiles add column pronouns text;
insert into private.synced_profile_fields (name) values ('pronouns');
"""


@pytest.fixture
def scratch(projects: LocalProjects, reconfigure: Callable[..., None]) -> Iterator[Databases]:
    """Both projects migrated afresh, plus a scratch migration adding a field; the functions pointed at them."""
    fresh = prepare_projects(projects.server_url, prefix=f"test_{random_suffix()}_fields_")
    register_therapists(fresh.project_a_url, [THERAPIST])
    with psycopg.connect(fresh.project_b_url, autocommit=True) as conn:
        conn.execute(SCRATCH_MIGRATION)
    reconfigure(PROJECT_A_DB_URL=fresh.project_a_functions_url, PROJECT_B_DB_URL=fresh.project_b_functions_url)
    with (
        psycopg.connect(fresh.project_a_url, autocommit=True) as a,
        psycopg.connect(fresh.project_b_url, autocommit=True) as b,
    ):
        yield Databases(a=a, b=b)


def add_client(db: Databases, pronouns: str) -> uuid.UUID:
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name(), random_email())
    db.b.execute("update public.profiles set pronouns = %s where id = %s", (pronouns, client_id))
    return client_id


def test_an_added_field_reaches_project_a_through_the_webhook_and_a_booking(
    scratch: Databases, token: Callable[..., str]
) -> None:
    synced = add_client(scratch, "they/them")
    assert deliver(function_client("project_b_webhook"), payload("INSERT", synced)).json["outcome"] == "inserted"
    assert scratch.client(synced)["source_attributes"]["pronouns"] == "they/them"

    scratch.b.execute("update public.profiles set pronouns = 'she/her' where id = %s", (synced,))
    assert deliver(function_client("project_b_webhook"), payload("UPDATE", synced)).json["outcome"] == "updated"
    assert scratch.client(synced)["source_attributes"]["pronouns"] == "she/her"

    booked = add_client(scratch, "he/him")
    response = book(function_client("create_session"), token(THERAPIST), booked)
    assert (response.status_code, response.json["client_synced"]) == (201, True)
    assert scratch.client(booked)["source_attributes"] == {
        "age": None,
        "gender_identity": None,
        "avatar_url": None,
        "pronouns": "he/him",
    }


def test_every_synced_field_is_a_column_of_profiles(db: Databases) -> None:
    missing = db.b.execute(
        "select name from private.synced_profile_fields f where not exists (select 1 from information_schema.columns c"
        " where c.table_schema = 'public' and c.table_name = 'profiles' and c.column_name = f.name)"
    ).fetchall()
    assert missing == []


def test_a_field_not_listed_does_not_leave_project_b(projects: Any, db: Databases) -> None:
    """avatar_url is listed; created_at is not, so it is not sent (the list is an allow-list)."""
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name(), random_email())
    profile = db.b.execute("select profile from public.client_states(array[%s]::uuid[])", (client_id,)).fetchone()[0]
    assert set(profile) == {"name", "email", "age", "gender_identity", "avatar_url"}
