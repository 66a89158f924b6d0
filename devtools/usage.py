"""What `make dev` prints once the stack is ready."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from devtools.config import ROOT, DevConfig, shown
from devtools.console import write
from devtools.services import Service

DEV_THERAPIST_ID = "11111111-1111-4111-8111-111111111111"  # Dr. Rivera in db/project_a/supabase/seed.sql
JANE_DOE = "aaaaaaaa-0000-4000-8000-000000000001"  # in both projects, already synced
BOB_WILSON = "bbbbbbbb-0000-4000-8000-000000000003"  # only in Project B


def _curl(body: str) -> str:
    return (
        '  curl -sS -i -X POST "$CREATE_SESSION_URL" \\\n'
        '    -H "Authorization: Bearer $DEV_THERAPIST_TOKEN" -H "Content-Type: application/json" \\\n'
        f"    -d '{body}'"
    )


def _psql() -> str:
    """The psql that comes with pgserver, so that nothing needs installing."""
    import pgserver

    path = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


def _logins(psql: str, config: DevConfig) -> list[str]:
    """How the functions reach the databases, and the query that shows it."""
    if config.backend == "supabase":
        said = [
            "  # The functions call each project's API ($PROJECT_A_URL, $PROJECT_B_URL) with its service-role key;",
            "  # the APIs log in as authenticator:",
        ]
        application = "postgrest-standin"
    else:
        said = ["  # The functions log in as client_sync ($FUNCTIONS_PROJECT_A_DB_URL, $FUNCTIONS_PROJECT_B_DB_URL):"]
        application = "client-sync-%"
    return [
        *said,
        f'  {psql} "$PROJECT_A_DB_URL" -c "select datname, usename, application_name from pg_stat_activity',
        f"    where application_name like '{application}'\"",
    ]


def print_usage(config: DevConfig, services: Iterable[Service]) -> None:
    psql = _psql()
    env_file = shown(config.env_file)
    lines = [
        "",
        f"Ready. Settings and a 12-hour token of therapist {DEV_THERAPIST_ID} are in {env_file}:",
        "",
        f"  source {env_file}",
        "",
        "  # Bob Wilson is only in Project B: copied to Project A with the same id, client_synced true",
        f"  # (the first time: {shown(config.pgdata)} is kept between runs; delete {shown(config.dev_dir)}/ to start"
        " from the sample data again)",
        _curl(f'{{"client_id": "{BOB_WILSON}", "starts_at": "2030-01-15T10:00:00+00:00"}}'),
        "",
        "  # Jane Doe is in both projects already: client_synced false",
        _curl(
            f'{{"client_id": "{JANE_DOE}", "starts_at": "2030-01-16T10:00:00+00:00", '
            '"duration_minutes": 60, "notes": "Intake"}'
        ),
        "",
        "  # Proactive sync: a new client in Project B shows up in Project A through the database webhook",
        f'  {psql} "$PROJECT_B_DB_URL" -c "with u as (insert into auth.users (email)',
        "    values ('ada@example.com') returning id) insert into public.profiles (id, name, age) select id, 'Ada',",
        '    30 from u"',
        f'  {psql} "$PROJECT_A_DB_URL" -c "select id, full_name, email, status from clients order by created_at"',
        "",
        *_logins(psql, config),
        "",
        f"  # Project B's Auth stand-in invites a user; the message lands in {shown(config.mail_dir)}/, one .eml each:",
        '  curl -sS -X POST "$PROJECT_B_AUTH_URL/invite" -H "apikey: $PROJECT_B_SERVICE_ROLE_KEY" \\',
        '    -H "Authorization: Bearer $PROJECT_B_SERVICE_ROLE_KEY" -H "Content-Type: application/json" \\',
        """    -d '{"email": "grace@example.com"}'""",
        f'  cat "$(ls -d {shown(config.mail_dir)}/*.eml | tail -1)"',
        "",
        "  # Backfill or reconcile a page as the service role, or queue a sharded backfill (the poller feeds the",
        "  # queue to sync_client as Lambda would; reconcile also runs every DEV_RECONCILE_SECONDS, default 60):",
        '  curl -sS -X POST "$SYNC_CLIENT_URL" -H "Authorization: Bearer $DEV_SERVICE_ROLE_TOKEN" \\',
        """    -H "Content-Type: application/json" -d '{"mode": "backfill", "shards": 4}'""",
        "  make sync   # a whole backfill with a progress bar (python -m ops.cli)",
        "",
        "Serving: " + ", ".join(f"{service.name} {service.url}" for service in services if service.url),
        "Ctrl-C (or SIGTERM, SIGHUP) stops everything.",
        "",
    ]
    write("\n".join(lines) + "\n")
