"""The test stack: a real Postgres (embedded, or TEST_DATABASE_URL) with both projects migrated."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devtools.localdb import LocalProjects, prepare_projects, register_therapists, start_server
from devtools.tokens import sign_access_token
from shared import wiring
from shared.config import get_settings
from shared.stores.pools import close_pools
from shared.stores.rpc_http import close_http_clients
from tests.backends import BACKENDS, StandIns
from tests.random_refs import random_suffix

JWT_SECRET = secrets.token_urlsafe(48)
WEBHOOK_SECRET = secrets.token_urlsafe(32)

_TEST_ENV = {
    "PROJECT_A_JWT_SECRET": JWT_SECRET,
    "PROJECT_B_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "RETRY_MAX_WAIT_SECONDS": "0.05",
    "DB_POOL_TIMEOUT_SECONDS": "5",
    "DB_POOL_MAX_SIZE": "10",
    # The 5 s pool wait above puts a request's worst case over Lambda's 29 s and the HTTP API's 30 s; these do
    # not run on Lambda.
    "FUNCTION_TIMEOUT_SECONDS": "120",
    "HTTP_TIMEOUT_SECONDS": "120",
}


# The therapists of the tests: users of Project A with a row in public.therapists.
THERAPIST = uuid.UUID("11111111-1111-4111-8111-111111111111")
OTHER_THERAPIST = uuid.UUID("22222222-2222-4222-8222-222222222222")
THERAPISTS = (THERAPIST, OTHER_THERAPIST)


def reset_configuration() -> None:
    """Forget cached settings, services and pools so the next call reads the environment again."""
    close_pools()
    close_http_clients()
    wiring.reset()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def projects() -> Iterator[LocalProjects]:
    server_url = start_server()
    local = prepare_projects(server_url, prefix=f"test_{random_suffix()}_")
    register_therapists(local.project_a_url, THERAPISTS)
    previous = {key: os.environ.get(key) for key in [*_TEST_ENV, "PROJECT_A_DB_URL", "PROJECT_B_DB_URL"]}
    # The functions log in as client_sync, as deployed; the `db` fixture keeps the administrator's URLs.
    os.environ.update(
        _TEST_ENV,
        PROJECT_A_DB_URL=local.project_a_functions_url,
        PROJECT_B_DB_URL=local.project_b_functions_url,
    )
    reset_configuration()
    yield local
    reset_configuration()
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def standins(projects: LocalProjects) -> Iterator[StandIns]:
    """PostgREST stand-ins over the test databases, for the client backend."""
    started = StandIns(projects.server_url, JWT_SECRET)
    yield started
    started.close()


@dataclass(frozen=True)
class AuthStandIn:
    """Project B's Auth API (devtools/auth_admin.py, GoTrue's stand-in) and the folder its mail goes to."""

    url: str
    mail_dir: Path


@pytest.fixture(scope="session")
def project_b_auth(projects: LocalProjects, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStandIn]:
    """The Auth stand-in over the test Project B, logged in as GoTrue's own role, for the session."""
    from devtools.auth_admin import serving
    from devtools.localdb import auth_admin_url

    mail_dir = tmp_path_factory.mktemp("mail")
    with serving(auth_admin_url(projects.server_url, projects.project_b_url), JWT_SECRET, mail_dir=mail_dir) as auth:
        yield AuthStandIn(url=auth.url, mail_dir=mail_dir)


@pytest.fixture
def reconfigure(
    projects: LocalProjects, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Callable[..., None]]:
    """Change settings for one test (environment names as keys); restored afterwards. On the client backend, a
    project's new database URL moves its PostgREST stand-in there too."""

    def apply(**env: str) -> None:
        for project in ("project_a", "project_b"):
            prefix = project.upper()
            url = env.get(f"{prefix}_DB_URL")
            if url is not None and os.environ.get(f"{prefix}_BACKEND") == "client" and f"{prefix}_URL" not in env:
                env = {**request.getfixturevalue("standins").env(project, url), **env}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_configuration()

    yield apply
    monkeypatch.undo()
    reset_configuration()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, reconfigure: Callable[..., None]) -> str:
    """The backend the functions use in this test: each test of a suite that uses this runs over both."""
    if request.param == "client":
        direct_only = request.node.get_closest_marker("direct_only")
        if direct_only is not None:
            pytest.skip(f"direct backend only: {direct_only.args[0]}")
        standins: StandIns = request.getfixturevalue("standins")
        reconfigure(
            **standins.env("project_a", os.environ["PROJECT_A_DB_URL"]),
            **standins.env("project_b", os.environ["PROJECT_B_DB_URL"]),
        )
    return str(request.param)


@dataclass
class Databases:
    """Superuser connections to both projects, for arranging and checking rows."""

    a: psycopg.Connection
    b: psycopg.Connection

    def count(self, project: str, table: str, where: str = "true", params: tuple[Any, ...] = ()) -> int:
        conn = self.a if project == "a" else self.b
        return conn.execute(f"select count(*) from {table} where {where}", params).fetchone()[0]

    def counts(self) -> dict[str, int]:
        return {
            "a.clients": self.count("a", "public.clients"),
            "a.sessions": self.count("a", "public.sessions"),
            "b.profiles": self.count("b", "public.profiles"),
            "b.users": self.count("b", "auth.users"),
        }

    def add_project_b_client(self, client_id: Any, name: str | None, email: str | None, **profile: Any) -> None:
        self.b.execute("insert into auth.users (id, email) values (%s, %s)", (client_id, email))
        self.b.execute(
            "insert into public.profiles (id, name, age, gender_identity, avatar_url) values (%s, %s, %s, %s, %s)",
            (client_id, name, profile.get("age"), profile.get("gender_identity"), profile.get("avatar_url")),
        )

    def add_project_a_client(
        self, client_id: Any, therapist_id: Any, name: str, email: str | None = None, *, synced: bool = False
    ) -> None:
        """A native client of Project A, or with `synced` one it holds as synced from Project B (whether or not
        Project B still has it: an email it holds is one Project A has not caught up with)."""
        self.a.execute(
            "insert into public.clients (id, full_name, email, therapist_id, synced_from, source_updated_at)"
            " values (%s, %s, %s, %s, %s, case when %s then now() end)",
            (client_id, name, email, therapist_id, "project_b" if synced else None, synced),
        )

    def source(self, client_id: Any) -> dict[str, Any] | None:
        """Project B's client as the sync reads it: name, email, the other synced fields, and updated_at."""
        row = self.b.execute(
            "select profile, updated_at from public.client_states(array[%s]::uuid[])", (client_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return {"id": client_id, **row[0], "updated_at": row[1]}

    def client(self, client_id: Any) -> dict[str, Any] | None:
        from psycopg.rows import dict_row

        return (
            self.a.cursor(row_factory=dict_row)
            .execute("select * from public.clients where id = %s", (client_id,))
            .fetchone()
        )


@pytest.fixture
def db(projects: LocalProjects) -> Iterator[Databases]:
    with (
        psycopg.connect(projects.project_a_url, autocommit=True) as a,
        psycopg.connect(projects.project_b_url, autocommit=True) as b,
    ):
        yield Databases(a=a, b=b)


@pytest.fixture
def token() -> Callable[..., str]:
    def make(therapist_id: Any, **options: Any) -> str:
        return sign_access_token(options.pop("secret", JWT_SECRET), therapist_id, **options)

    return make
