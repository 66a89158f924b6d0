"""A webhook secret that sat in trigger arguments (readable by every role in pg_trigger) is replaced, never kept:
installing refuses it, and the migration of an earlier webhook retires it and turns the webhook off."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from ops.migrate import migration_files
from tests.conftest import Databases
from tests.integration.helpers import function_client
from tests.integration.test_project_b_webhook import deliver
from tests.integration.test_webhook_payload import URL, sent_for
from tests.random_refs import random_email, random_name

BASELINE = "20261202220000"
VAULT_NAME = "client_sync_webhook_secret"
RETIRE = "20261203002100_retire_webhook_secrets_kept_from_trigger_arguments.sql"


@pytest.fixture
def old_secret(db: Databases) -> Iterator[str]:
    """A secret of this test alone; the webhook is uninstalled (whichever kind) afterwards."""
    yield secrets.token_urlsafe(32)
    db.b.execute("select private.uninstall_client_sync_webhook()")


def make_dashboard_webhook(db: Databases, secret: str) -> None:
    """The webhook as the dashboard (and this project's earlier version) made it: the secret in its arguments."""
    headers = json.dumps({"Content-Type": "application/json", "Authorization": f"Bearer {secret}"})
    for table, when in (("public.profiles", "insert or update or delete"), ("auth.users", "update of email")):
        db.b.execute(
            sql.SQL(
                "create or replace trigger client_sync_webhook after {} on {} for each row"
                " execute function supabase_functions.http_request({}, 'POST', {}, '{{}}', '4000')"
            ).format(sql.SQL(when), sql.SQL(table), sql.Literal(URL), sql.Literal(headers))
        )


def install(db: Databases, secret: str) -> None:
    db.b.execute("select private.install_client_sync_webhook(%s, %s)", (URL, secret))


def assert_install_refused(db: Databases, secret: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"was in trigger arguments.*rotate it") as refused:
        install(db, secret)
    assert "PROJECT_B_WEBHOOK_SECRET" in (refused.value.diag.message_hint or "")


def vault_secrets(db: Databases) -> list[str]:
    rows = db.b.execute(
        "select decrypted_secret from vault.decrypted_secrets where name = 'client_sync_webhook_secret'"
    )
    return [secret for (secret,) in rows]


def webhook_functions(db: Databases) -> list[str]:
    rows = db.b.execute("select tgfoid::regproc::text from pg_trigger where tgname = 'client_sync_webhook'")
    return sorted(function for (function,) in rows)


def run_retire_migration(db: Databases) -> list[tuple[str, str]]:
    """The data migration, as a push runs it; returns the (message, hint) of each warning it raised."""
    (path,) = [path for path in migration_files("project_b") if path.name == RETIRE]
    warnings: list[tuple[str, str]] = []

    def keep_warning(diag: psycopg.errors.Diagnostic) -> None:  # diag is only valid during the call
        if diag.severity_nonlocalized == "WARNING":
            warnings.append((diag.message_primary or "", diag.message_hint or ""))

    db.b.add_notice_handler(keep_warning)
    db.b.execute(path.read_text())
    return warnings


def assert_says_rotate(warnings: list[tuple[str, str]]) -> None:
    ((message, hint),) = warnings
    assert "was in trigger arguments" in message and "rotate it" in message
    assert "install_client_sync_webhook" in hint and "PROJECT_B_WEBHOOK_SECRET" in hint


def assert_only_a_new_secret_installs(
    db: Databases, reconfigure: Callable[..., None], old: str, new: str | None = None
) -> None:
    """The old secret is refused; a new one installs, is what the trigger sends, and what the function accepts
    once PROJECT_B_WEBHOOK_SECRET is rotated too (the old one is then 401)."""
    assert_install_refused(db, old)
    new = new or secrets.token_urlsafe(32)
    install(db, new)
    assert vault_secrets(db) == [new]
    assert webhook_functions(db) == ["private.client_sync_webhook"] * 2
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name(), random_email())
    (request,) = sent_for(db, client_id)
    assert request["headers"]["Authorization"] == f"Bearer {new}"

    reconfigure(PROJECT_B_WEBHOOK_SECRET=new)
    webhook = function_client("project_b_webhook")
    assert deliver(webhook, request["body"], secret=old).status_code == 401
    assert deliver(webhook, request["body"], secret=new).status_code == 200


def test_install_refuses_a_secret_that_is_in_a_triggers_arguments(
    db: Databases, old_secret: str, reconfigure: Callable[..., None]
) -> None:
    make_dashboard_webhook(db, old_secret)
    assert_install_refused(db, old_secret)
    assert webhook_functions(db) == ["supabase_functions.http_request"] * 2  # nothing changed

    assert_only_a_new_secret_installs(db, reconfigure, old_secret)
    arguments = db.b.execute("select encode(tgargs, 'escape') from pg_trigger where tgname = 'client_sync_webhook'")
    assert all(old_secret not in args for (args,) in arguments)


def test_the_upgrade_drops_a_dashboard_made_webhook_and_retires_its_secret(
    db: Databases, old_secret: str, reconfigure: Callable[..., None]
) -> None:
    make_dashboard_webhook(db, old_secret)

    assert_says_rotate(run_retire_migration(db))

    assert webhook_functions(db) == []  # the webhook is off until it is installed again
    assert old_secret not in vault_secrets(db)
    assert_only_a_new_secret_installs(db, reconfigure, old_secret)


def at_the_baseline_with_a_moved_secret(db: Databases, secret: str) -> None:
    """What the baseline's earlier step left: the Vault secret written in the baseline's own transaction, with
    its ledger row (the row is rewritten as it was, so that both have this transaction's xmin)."""
    with db.b.transaction():
        (statements, name) = db.b.execute(
            "delete from supabase_migrations.schema_migrations where version = %s returning statements, name",
            (BASELINE,),
        ).fetchone()
        db.b.execute(
            "insert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, %s)",
            (BASELINE, name, statements),
        )
        db.b.execute("delete from vault.secrets where name = 'client_sync_webhook_secret'")
        db.b.execute("select vault.create_secret(%s, 'client_sync_webhook_secret')", (secret,))


def test_a_database_at_the_baseline_loses_the_secret_the_baseline_moved_to_vault(
    db: Databases, old_secret: str, reconfigure: Callable[..., None]
) -> None:
    at_the_baseline_with_a_moved_secret(db, old_secret)
    assert webhook_functions(db) == []

    assert_says_rotate(run_retire_migration(db))

    assert vault_secrets(db) == []
    assert_only_a_new_secret_installs(db, reconfigure, old_secret)


def test_a_secret_installed_after_the_baseline_is_kept(db: Databases, old_secret: str) -> None:
    install(db, old_secret)  # its Vault row is not the baseline's

    assert run_retire_migration(db) == []

    assert vault_secrets(db) == [old_secret]
    assert webhook_functions(db) == ["private.client_sync_webhook"] * 2
    install(db, old_secret)  # not retired: installing again (e.g. to another URL) keeps working


def test_the_retired_secrets_hold_digests_only(db: Databases, old_secret: str) -> None:
    make_dashboard_webhook(db, old_secret)
    run_retire_migration(db)
    rows = db.b.execute("select sha256 from private.retired_webhook_secrets").fetchall()
    assert any(bytes(digest) == hashlib.sha256(old_secret.encode()).digest() for (digest,) in rows)
    assert all(old_secret.encode() not in bytes(digest) for (digest,) in rows)
