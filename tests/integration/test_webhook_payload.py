"""What Project B's database webhook sends and keeps: ids only, and a secret that only Vault holds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import WEBHOOK_SECRET, Databases
from tests.random_refs import random_email, random_name

URL = "http://127.0.0.1:9/webhooks/project-b"


@pytest.fixture
def installed(db: Databases) -> Iterator[None]:
    """The webhook installed with no relay: its requests stay in net.http_request_queue."""
    db.b.execute("select private.install_client_sync_webhook(%s, %s)", (URL, WEBHOOK_SECRET))
    yield
    db.b.execute("select private.uninstall_client_sync_webhook()")


def sent_for(db: Databases, client_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = db.b.execute(
        "delete from net.http_request_queue"
        " where coalesce(body -> 'record' ->> 'id', body -> 'old_record' ->> 'id') = %s"
        " returning id, url, headers, body",
        (str(client_id),),
    ).fetchall()
    return [{"url": url, "headers": headers, "body": body} for _, url, headers, body in sorted(rows)]


def test_each_change_sends_ids_only(db: Databases, installed: None) -> None:
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name(), random_email(), age=33, gender_identity="f")
    db.b.execute("update public.profiles set name = %s where id = %s", (random_name(), client_id))
    db.b.execute("update auth.users set email = %s where id = %s", (random_email("new"), client_id))
    db.b.execute("delete from public.profiles where id = %s", (client_id,))

    sent = sent_for(db, client_id)

    row = {"id": str(client_id)}
    assert [request["body"] for request in sent] == [
        {"type": "INSERT", "table": "profiles", "schema": "public", "record": row, "old_record": None},
        {"type": "UPDATE", "table": "profiles", "schema": "public", "record": row, "old_record": row},
        {"type": "UPDATE", "table": "users", "schema": "auth", "record": row, "old_record": row},
        # the email change advances the profile's version: one more profile event
        {"type": "UPDATE", "table": "profiles", "schema": "public", "record": row, "old_record": row},
        {"type": "DELETE", "table": "profiles", "schema": "public", "record": None, "old_record": row},
    ]
    for request in sent:
        assert request["url"] == URL
        assert request["headers"] == {"Content-Type": "application/json", "Authorization": f"Bearer {WEBHOOK_SECRET}"}


def test_the_secret_is_in_vault_not_in_trigger_arguments(db: Databases, installed: None) -> None:
    arguments = db.b.execute(
        "select encode(tgargs, 'escape') from pg_trigger where tgname = 'client_sync_webhook'"
    ).fetchall()
    assert len(arguments) == 2
    assert all(WEBHOOK_SECRET not in args and URL in args for (args,) in arguments)
    vault = db.b.execute(
        "select decrypted_secret from vault.decrypted_secrets where name = 'client_sync_webhook_secret'"
    ).fetchall()
    assert vault == [(WEBHOOK_SECRET,)]


def test_installing_again_replaces_the_secret(db: Databases, installed: None) -> None:
    db.b.execute("select private.install_client_sync_webhook(%s, %s)", (URL, "rotated-secret"))
    try:
        client_id = uuid.uuid4()
        db.add_project_b_client(client_id, random_name(), random_email())
        (request,) = sent_for(db, client_id)
        assert request["headers"]["Authorization"] == "Bearer rotated-secret"
        names = db.b.execute("select count(*) from vault.secrets where name = 'client_sync_webhook_secret'")
        assert names.fetchone()[0] == 1
    finally:
        db.b.execute("select private.install_client_sync_webhook(%s, %s)", (URL, WEBHOOK_SECRET))


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
@pytest.mark.parametrize(
    "relation",
    [
        "vault.decrypted_secrets",
        "vault.secrets",
        "net.http_request_queue",
        "private.profile_deletions",
        "private.retired_webhook_secrets",
    ],
)
def test_no_api_role_reads_the_secret_or_the_queued_requests(
    projects: Any, db: Databases, installed: None, role: str, relation: str
) -> None:
    db.add_project_b_client(uuid.uuid4(), random_name(), random_email())  # something queued
    with psycopg.connect(projects.project_b_url) as conn:
        conn.execute(f"set local role {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"select * from {relation}")
