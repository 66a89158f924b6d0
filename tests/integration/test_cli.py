"""The operators' command line (ops/cli), run in-process against the test databases, and `make sync`.

The databases are shared by the whole session, so a backfill or reconcile also meets other tests' clients: the
assertions are on this file's own ids, or on counts that only its own clients can change.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devtools.localdb import LocalProjects
from ops.cli.commands import estimated_backfill_total
from ops.cli.errors import one_line
from ops.cli.main import main
from shared import wiring
from shared.backfill import UUID_SPACE
from shared.ports import OutcomeCounts
from tests.backends import StandIns
from tests.conftest import THERAPIST, Databases
from tests.random_refs import random_email, random_name

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=1"
COUNTS = ("inserted", "updated", "unchanged", "archived", "conflicts", "rows", "pages")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """main(argv) with plain (non-terminal) consoles: the exit code, stdout and stderr."""
    capsys.readouterr()
    code = main(list(argv), terminal=False)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def summary(out: str) -> dict[str, int]:
    """The counts of the summary table."""
    pattern = rf"^\s*({'|'.join(COUNTS)})\s+(\d+)\s*$"
    return {match[1]: int(match[2]) for match in re.finditer(pattern, out, re.MULTILINE)}


def new_project_b_clients(db: Databases, count: int) -> list[uuid.UUID]:
    """`count` new Project B clients, their ids in order."""
    ids = sorted(uuid.uuid4() for _ in range(count))
    for client_id in ids:
        db.add_project_b_client(client_id, random_name(), random_email(), age=30)
    return ids


def before(client_id: uuid.UUID) -> str:
    """The cursor that starts a backfill at `client_id` (cursors are exclusive)."""
    return str(uuid.UUID(int=client_id.int - 1))


def conflict_line(out: str, client_id: uuid.UUID) -> str | None:
    return next((line for line in out.splitlines() if str(client_id) in line), None)


def test_backfill_copies_project_b_clients_and_counts_them(db: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "backfill")  # whatever other tests left unsynced: this run's counts are its own
    assert code == 0
    ids = new_project_b_clients(db, 3)

    code, out, err = run(capsys, "backfill", "--limit", "2")

    assert code == 0, err
    for client_id in ids:
        client = db.client(client_id)
        source = db.source(client_id)
        assert client is not None and source is not None
        assert (client["full_name"], client["email"], client["synced_from"]) == (
            source["name"],
            source["email"],
            "project_b",
        )
    counts = summary(out)
    assert counts["inserted"] == 3
    assert counts["updated"] == 0
    assert counts["archived"] == 0
    assert counts["rows"] >= 3
    assert counts["pages"] >= 2
    assert "Backfill summary" in out
    assert re.search(r"^\s*rows/s\s+\d+\s*$", out, re.MULTILINE)
    assert re.search(r"^\s*elapsed\s+[\d.]+ s\s*$", out, re.MULTILINE)
    # Each page's cursor, for a resume by hand, and the bar's last state, on stderr.
    assert re.search(r"^backfill: page 1, \d+ rows, next cursor [0-9a-f-]{36}$", err, re.MULTILINE)
    assert "rows/s" in err


def test_a_backfill_run_again_changes_nothing(db: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    ids = new_project_b_clients(db, 2)
    assert run(capsys, "backfill", "--cursor", before(ids[0]))[0] == 0

    code, out, _ = run(capsys, "backfill", "--cursor", before(ids[0]))

    assert code == 0
    counts = summary(out)
    assert counts["inserted"] == 0
    assert counts["unchanged"] >= 2


def test_dry_run_writes_nothing(db: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    ids = new_project_b_clients(db, 2)

    code, out, err = run(capsys, "backfill", "--dry-run", "--cursor", before(ids[0]))

    assert code == 0, err
    assert "dry run: nothing written" in out
    assert summary(out)["inserted"] >= 2
    assert all(db.client(client_id) is None for client_id in ids)


def test_reconcile_archives_a_client_deleted_in_project_b(db: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    kept, deleted = new_project_b_clients(db, 2)
    assert run(capsys, "backfill", "--cursor", before(kept))[0] == 0
    db.b.execute("delete from public.profiles where id = %s", (deleted,))

    code, out, err = run(capsys, "reconcile", "--dry-run")
    assert code == 0, err
    assert "Reconcile summary (dry run: nothing written)" in out
    assert db.client(deleted)["status"] == "active"

    code, out, err = run(capsys, "reconcile", "--limit", "50")

    assert code == 0, err
    assert summary(out)["archived"] >= 1
    assert db.client(deleted)["status"] == "archived"
    assert db.client(kept)["status"] == "active"
    assert run(capsys, "reconcile", "--full")[0] == 0


def test_conflicts_lists_an_email_conflict_until_reconcile_resolves_it(
    db: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    email = random_email("taken")
    holder = uuid.uuid4()
    db.add_project_a_client(holder, THERAPIST, random_name("Holder"), email, synced=True)
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name("Synced"), email)

    code, out, err = run(capsys, "backfill", "--cursor", before(client_id))
    assert code == 0, err
    assert summary(out)["conflicts"] >= 1
    assert db.client(client_id) is None

    code, out, err = run(capsys, "conflicts", "--limit", "5000")
    assert code == 0, err
    line = conflict_line(out, client_id)
    assert line is not None, out
    fields = line.split()
    assert fields[:3] == [str(client_id), "email", str(holder)]
    assert fields[-1] == "-"  # not resolved
    assert re.search(r"\d+ conflicts: \d+ open, 0 resolved", out)

    db.a.execute("update public.clients set email = %s where id = %s", (random_email("freed"), holder))
    code, _, err = run(capsys, "reconcile")
    assert code == 0, err
    assert db.client(client_id)["email"] == email

    code, out, _ = run(capsys, "conflicts", "--limit", "5000")
    assert code == 0
    assert conflict_line(out, client_id) is None
    code, out, _ = run(capsys, "conflicts", "--all", "--limit", "5000")
    assert code == 0
    line = conflict_line(out, client_id)
    assert line is not None, out
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", line.rstrip())  # resolved at


def test_ctrl_c_stops_after_the_page_and_prints_the_resume_cursor(
    db: Databases, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = new_project_b_clients(db, 3)
    backfill = wiring.backfill_service()
    apply_sync_page = backfill.project_a.apply_sync_page

    def interrupted_page(*args: Any, **kwargs: Any) -> OutcomeCounts:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the page is written (the next one read meanwhile)
        return apply_sync_page(*args, **kwargs)

    monkeypatch.setattr(backfill.project_a, "apply_sync_page", interrupted_page)
    code, out, err = run(capsys, "backfill", "--limit", "1", "--cursor", before(ids[0]))
    monkeypatch.undo()

    assert code == 130
    assert summary(out)["pages"] == 1
    assert "(stopped early)" in out
    assert db.client(ids[0]) is not None
    assert db.client(ids[2]) is None
    resume = re.search(r"^Resume with: python -m ops\.cli backfill --limit 1 --cursor (\S+)$", err, re.MULTILINE)
    assert resume is not None, err
    assert resume[1] == str(ids[0])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is as it was

    code, _, err = run(capsys, "backfill", "--cursor", resume[1])
    assert code == 0, err
    assert all(db.client(client_id) is not None for client_id in ids)


def test_errors_are_one_line_with_exit_code_1(
    reconfigure: Callable[..., None], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "backfill", "--cursor", "not-a-cursor")
    assert code == 1
    assert err.strip().splitlines()[-1] == "error: cursor: not a cursor of this backfill"
    assert "Traceback" not in err

    reconfigure(PROJECT_B_DB_URL=UNREACHABLE, DB_POOL_TIMEOUT_SECONDS="0.3", RETRY_ATTEMPTS="1")
    code, _, err = run(capsys, "reconcile")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "unavailable" in errors[0]
    assert "Resume" not in err  # nothing was done: the same command again
    assert "Traceback" not in err

    monkeypatch.delenv("PROJECT_A_DB_URL")
    reconfigure()
    code, _, err = run(capsys, "conflicts")
    assert (code, err.strip()) == (
        1,
        "error: PROJECT_A_DB_URL is not set (the client_sync connection string, as the functions get it), nor "
        "PROJECT_A_URL with its service-role key (the client backend)",
    )


@pytest.mark.parametrize(
    "argv", [[], ["nope"], ["backfill", "--limit", "0"], ["backfill", "--limit", "x"], ["conflicts", "--full"]]
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("usage: python -m ops.cli")


def test_the_backfill_total_is_estimated_from_the_id_space() -> None:
    halfway = str(uuid.UUID(int=UUID_SPACE // 2 - 1))
    assert estimated_backfill_total(None, halfway, 500) == pytest.approx(1000)
    quarter = str(uuid.UUID(int=UUID_SPACE // 4 - 1))
    assert estimated_backfill_total(quarter, halfway, 500) == pytest.approx(1500)
    assert estimated_backfill_total(None, None, 42) == 42
    assert estimated_backfill_total(None, "changes:opaque", 42) is None


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("dev_backend", ["direct", "supabase"])
def test_make_sync_backfills_the_stack_of_dev_env(
    projects: LocalProjects, db: Databases, tmp_path: Path, request: pytest.FixtureRequest, dev_backend: str
) -> None:
    """`make sync` over the backend of the env file: as client_sync, or (DEV_BACKEND=supabase, as `make dev
    BACKEND=supabase` writes it) through the projects' APIs with their service-role keys and no database URL."""
    (client_id,) = new_project_b_clients(db, 1)
    lines = [
        f"PROJECT_A_DB_URL='{projects.project_a_url}'",
        f"PROJECT_B_DB_URL='{projects.project_b_url}'",
        f"FUNCTIONS_PROJECT_A_DB_URL='{projects.project_a_functions_url}'",
        f"FUNCTIONS_PROJECT_B_DB_URL='{projects.project_b_functions_url}'",
    ]
    keys: list[str] = []
    if dev_backend == "supabase":
        standins: StandIns = request.getfixturevalue("standins")
        for project, functions_url in (
            ("project_a", projects.project_a_functions_url),
            ("project_b", projects.project_b_functions_url),
        ):
            settings = standins.env(project, functions_url)
            lines += [f"{key}='{settings[key]}'" for key in settings if not key.endswith("_BACKEND")]
            keys.append(settings[f"{project.upper()}_SERVICE_ROLE_KEY"])
        # The functions' login may not log in: the backfill must go through the APIs.
        lines += ["FUNCTIONS_PROJECT_A_DB_URL='postgresql://nobody@127.0.0.1:1/none?connect_timeout=1'"]
    (tmp_path / "env").write_text("\n".join([*lines, f"DEV_BACKEND={dev_backend}", ""]))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("_DB_URL", "_BACKEND", "_SERVICE_ROLE_KEY"))
        and key not in ("PROJECT_A_URL", "PROJECT_B_URL")
    }
    # This interpreter: the one whose packages the tests run with (the worktree may have no .venv of its own).
    make = ["make", "--no-print-directory", "-o", ".venv/.ready", f"PY={sys.executable}", "sync", f"DEV_DIR={tmp_path}"]

    done = subprocess.run(  # noqa: S603
        [*make, f"ARGS=--cursor {before(client_id)}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert "Backfill summary" in done.stdout
    assert db.client(client_id) is not None
    assert all(key not in done.stdout + done.stderr for key in keys)  # its log lines carry no key

    missing = subprocess.run(  # noqa: S603
        [*make[:-1], f"DEV_DIR={tmp_path / 'none'}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode != 0
    assert "env is missing" in missing.stderr
    assert "make dev" in missing.stderr


def test_an_error_line_quotes_no_row_of_the_database(db: Databases) -> None:
    email = random_email("quoted")
    db.add_project_a_client(uuid.uuid4(), THERAPIST, random_name("First"), email)
    with pytest.raises(psycopg.errors.UniqueViolation) as refused:
        db.add_project_a_client(uuid.uuid4(), THERAPIST, random_name("Second"), email)
    assert email in str(refused.value)  # the server's detail names the key

    line = one_line(refused.value)

    assert line is not None and "clients_native_email_unique" in line
    assert email not in line


def backfilled_pair(db: Databases, capsys: pytest.CaptureFixture[str]) -> tuple[uuid.UUID, uuid.UUID]:
    """A native client and a Project B user with its email, brought in by a backfill: a link suggestion."""
    email = random_email("pair")
    native, user = uuid.uuid4(), uuid.uuid4()
    db.add_project_a_client(native, THERAPIST, random_name("Native"), email)
    db.add_project_b_client(user, random_name("Signed up"), email)
    assert run(capsys, "backfill", "--cursor", before(user))[0] == 0
    return native, user


def test_links_lists_the_open_suggestions_and_reject_link_closes_one_for_good(
    db: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    native, user = backfilled_pair(db, capsys)

    code, listed, err = run(capsys, "links")
    assert code == 0, err
    assert re.search(rf"^\s*{native}\s+{user}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s*$", listed, re.MULTILINE), listed

    rejected = run(capsys, "reject-link", str(native), str(user))
    unknown = run(capsys, "reject-link", str(uuid.uuid4()), str(user))
    _, after, _ = run(capsys, "links")

    assert rejected[:2] == (0, f"rejected: {native} {user}\n")
    assert unknown[0] == 1
    assert unknown[2].startswith("error: ") and str(user) not in unknown[2]
    assert str(native) not in after


def test_link_links_a_suggested_client_once_its_email_is_confirmed(
    db: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    native, user = backfilled_pair(db, capsys)

    unconfirmed = run(capsys, "link", str(native), str(user))
    db.b.execute("update auth.users set email_confirmed_at = now() where id = %s", (user,))
    linked = run(capsys, "link", str(native), str(user))

    assert unconfirmed[0] == 1
    assert unconfirmed[2] == "error: The client has not confirmed this email in the clients' app yet\n"
    assert linked[:2] == (0, f"linked: {native} is now {user}\n")
    assert db.client(native) is None
