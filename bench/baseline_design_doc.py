"""The design document's create_session, re-implemented faithfully on the same stack, as a baseline.

Same contract as functions/create_session (POST JSON, Bearer token, 201 {"session", "client_synced"}),
same settings, pools and JSON parsing. The algorithm is the document's: every step is its own
autocommit statement, run as the service role (the document used the service-role key, so no RLS):

1. check: select the client in Project A;
2. if missing: fetch the profile, then the email, from Project B (two calls); 404 when there is no profile;
3. insert the client into Project A; any unique violation means "a concurrent request synced it";
4. insert the session, returning it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

import functions_framework
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.auth import verify_access_token
from shared.config import Settings, get_settings
from shared.errors import ClientNotFound
from shared.http import HttpRequest, HttpResponse, answer_flask, parse_body, require_json_post
from shared.logs import log_event
from shared.models import CreateSessionRequest, Session
from shared.stores.pools import get_pool, pooled_connection

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from psycopg import Connection

_CHECK_CLIENT = "select id from clients where id = %s"
_FETCH_PROFILE = "select id, name, age, gender_identity, avatar_url, created_at, updated_at from profiles where id = %s"
_FETCH_EMAIL = "select email from auth.users where id = %s"
INSERT_CLIENT = """
insert into clients
  (id, full_name, email, notes, therapist_id, status, synced_from,
   source_attributes, source_updated_at, last_synced_at)
values (%(id)s, %(full_name)s, %(email)s, %(notes)s, %(therapist_id)s, 'active', 'project_b',
        %(source_attributes)s, %(source_updated_at)s, now())
"""
_INSERT_SESSION = """
insert into sessions (client_id, therapist_id, starts_at, duration_minutes, notes)
values (%s, %s, %s, %s, %s)
returning id, client_id, therapist_id, starts_at, duration_minutes, status, notes, created_at
"""


def _autocommit(conn: Connection) -> Connection:
    """Each statement its own transaction, as separate API calls are (a client-side switch, no round trip)."""
    if not conn.autocommit:
        conn.autocommit = True
    return conn


def _project_a(settings: Settings) -> AbstractContextManager[Connection]:
    assert settings.project_a_db_url is not None, "PROJECT_A_DB_URL is not set"
    return pooled_connection(get_pool("project_a", settings.project_a_db_url.get_secret_value(), settings))


def _project_b(settings: Settings) -> AbstractContextManager[Connection]:
    assert settings.project_b_db_url is not None, "PROJECT_B_DB_URL is not set"
    return pooled_connection(get_pool("project_b", settings.project_b_db_url.get_secret_value(), settings))


def _client_exists(settings: Settings, client_id: UUID) -> bool:
    with _project_a(settings) as conn:
        return _autocommit(conn).execute(_CHECK_CLIENT, (client_id,)).fetchone() is not None


def _fetch_source(settings: Settings, client_id: UUID) -> dict[str, Any] | None:
    with _project_b(settings) as conn:
        cursor = _autocommit(conn).cursor(row_factory=dict_row)
        profile = cursor.execute(_FETCH_PROFILE, (client_id,)).fetchone()
        if profile is None:
            return None
        user = cursor.execute(_FETCH_EMAIL, (client_id,)).fetchone()
    return {**profile, "email": user["email"] if user else None}


def client_from_source(source: dict[str, Any]) -> dict[str, Any]:
    """The design document's mapping: same id, name, email, a note of what Project B knew."""
    details = []
    if source.get("age") is not None:
        details.append(f"Age: {source['age']}")
    if source.get("gender_identity"):
        details.append(f"Gender: {source['gender_identity']}")
    email = (source.get("email") or "").strip()
    return {
        "id": source["id"],
        "full_name": (source.get("name") or "").strip() or "Unnamed client",
        "email": email or None,
        "notes": "Synced from Project B." + (" " + ", ".join(details) if details else ""),
        "source_attributes": {key: source.get(key) for key in ("age", "gender_identity", "avatar_url")},
        "source_updated_at": source.get("updated_at"),
    }


def client_params(client: dict[str, Any], therapist_id: UUID | None) -> dict[str, Any]:
    """The parameters of INSERT_CLIENT for a mapped client."""
    params = dict(client)
    params["therapist_id"] = therapist_id
    params["source_attributes"] = Jsonb(params["source_attributes"])
    return params


def _insert_client(settings: Settings, client: dict[str, Any], therapist_id: UUID) -> bool:
    with _project_a(settings) as conn:
        try:
            _autocommit(conn).execute(INSERT_CLIENT, client_params(client, therapist_id))
        except psycopg.errors.UniqueViolation:
            return False  # the document: a concurrent request synced it first
    return True


def _insert_session(settings: Settings, therapist_id: UUID, body: CreateSessionRequest) -> Session:
    with _project_a(settings) as conn:
        row = (
            _autocommit(conn)
            .cursor(row_factory=dict_row)
            .execute(_INSERT_SESSION, (body.client_id, therapist_id, body.starts_at, body.duration_minutes, body.notes))
            .fetchone()
        )
    return Session.model_validate(row)


def handle(request: HttpRequest) -> HttpResponse:
    settings = get_settings()
    require_json_post(request, settings.max_body_bytes)
    therapist = verify_access_token(request.headers.get("authorization"), settings)
    body = parse_body(request, CreateSessionRequest)
    ids = {"client_id": body.client_id, "therapist_id": therapist.id}
    client_synced = False
    if not _client_exists(settings, body.client_id):
        log_event("client_missing_in_project_a", **ids)
        source = _fetch_source(settings, body.client_id)
        if source is None:
            log_event("client_not_found", **ids)
            raise ClientNotFound("Client not found in either project")
        client_synced = _insert_client(settings, client_from_source(source), therapist.id)
        log_event("client_synced" if client_synced else "client_already_synced_concurrently", **ids)
    session = _insert_session(settings, therapist.id, body)
    log_event("session_created", session_id=session.id, **ids)
    return HttpResponse(201, {"session": session.model_dump(mode="json"), "client_synced": client_synced})


@functions_framework.http
def create_session(request: Any) -> tuple[str, int, dict[str, str]]:
    return answer_flask("create_session", request, handle, lambda: get_settings().max_body_bytes)
