"""devtools.postgrest, the local stand-in for `POST /rest/v1/rpc/<function>`: auth as Supabase's gateway and
PostgREST do it, the call in one transaction as the JWT's role, PostgREST's answers and errors. Against the real
local Postgres, logged in as `authenticator`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from postgrest import APIError, SyncPostgrestClient

from devtools.localdb import LocalProjects, authenticator_url
from devtools.postgrest import PostgrestStandIn, serving
from devtools.tokens import sign_access_token, sign_anon_token, sign_service_role_token
from tests.conftest import JWT_SECRET, OTHER_THERAPIST, THERAPIST, Databases
from tests.random_refs import random_name, random_suffix

SERVICE_KEY = sign_service_role_token(JWT_SECRET)
ANON_KEY = sign_anon_token(JWT_SECRET)
OTHER_SECRET = "another project's secret, as long as a real one"
STARTS_AT = "2031-03-04T10:00:00+00:00"


@pytest.fixture(scope="module")
def project_a(projects: LocalProjects) -> Iterator[PostgrestStandIn]:
    with serving(authenticator_url(projects.server_url, projects.project_a_url), JWT_SECRET) as standin:
        yield standin


@pytest.fixture(scope="module")
def project_b(projects: LocalProjects) -> Iterator[PostgrestStandIn]:
    with serving(authenticator_url(projects.server_url, projects.project_b_url), JWT_SECRET) as standin:
        yield standin


def rpc(
    standin: PostgrestStandIn,
    function: str,
    body: Any = None,
    *,
    key: str | None = SERVICE_KEY,
    bearer: str | None = None,
    content: bytes | None = None,
    method: str = "POST",
    path: str | None = None,
) -> httpx.Response:
    """A request as the postgrest client sends it: the key in `apikey`, the JWT (the key unless given) as bearer."""
    headers = {"Content-Type": "application/json", "Accept": "application/json", "X-Client-Info": "test"}
    if key is not None:
        headers["apikey"] = key
    if bearer or key:
        headers["Authorization"] = f"Bearer {bearer or key}"
    url = standin.url + (path or f"/rest/v1/rpc/{function}")
    data = content if content is not None else json.dumps(body if body is not None else {}).encode()
    return httpx.request(method, url, content=data, headers=headers, timeout=30)


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"code", "message", "details", "hint"}, body
    return response.status_code, body["code"]


@pytest.fixture
def probe(db: Databases) -> str:
    """A function of Project A's public schema writing one row of its own table: returns void, a unique key."""
    name = f"standin_probe_{random_suffix()}"
    db.a.execute(f"create table public.{name} (id integer primary key, note text)")
    db.a.execute(
        f"""create function public.{name}(p_id integer, p_note text default 'default note') returns void
            language sql as $$ insert into public.{name} (id, note) values (p_id, p_note) $$"""
    )
    return name


def test_the_service_role_key_calls_a_service_only_function_of_project_b_and_gets_its_rows(
    project_b: PostgrestStandIn, db: Databases
) -> None:
    db.add_project_b_client(uuid.uuid4(), random_name(), None)

    response = rpc(project_b, "client_page", {"p_after": None, "p_limit": 10})  # p_until left to its default

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    rows = response.json()
    assert isinstance(rows, list)
    assert len(rows) == 1  # client_page answers one page row
    assert set(rows[0]) == {"clients", "last_id", "count"}
    assert rows[0]["count"] >= 1
    assert isinstance(rows[0]["clients"], list)


def test_a_set_of_scalars_is_an_array_of_values(project_a: PostgrestStandIn, db: Databases) -> None:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, None, random_name())
    db.a.execute("update public.clients set synced_from = 'project_b' where id = %s", (client_id,))
    after = str(uuid.UUID(int=client_id.int - 1))

    response = rpc(project_a, "synced_client_ids", {"p_after": after, "p_limit": 1})

    assert response.status_code == 200, response.text
    assert response.json() == [str(client_id)]


def test_every_argument_left_to_its_default(project_a: PostgrestStandIn) -> None:
    response = rpc(project_a, "sync_conflicts", {})

    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)


def test_a_therapist_books_as_the_token_subject_under_row_level_security(
    project_a: PostgrestStandIn, db: Databases
) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    db.add_project_a_client(mine, THERAPIST, random_name())
    db.add_project_a_client(theirs, OTHER_THERAPIST, random_name())
    therapist = sign_access_token(JWT_SECRET, THERAPIST)

    booked = rpc(project_a, "create_session", {"p_client_id": str(mine), "p_starts_at": STARTS_AT}, key=ANON_KEY,
                 bearer=therapist)  # fmt: skip
    refused = rpc(project_a, "create_session", {"p_client_id": str(theirs), "p_starts_at": STARTS_AT},
                  key=ANON_KEY, bearer=therapist)  # fmt: skip

    assert booked.status_code == 200, booked.text
    assert booked.json()["outcome"] == "created"
    assert booked.json()["session"]["therapist_id"] == str(THERAPIST)  # auth.uid() is the token's subject
    assert booked.json()["session"]["duration_minutes"] == 50  # the omitted defaults
    assert refused.json() == {"outcome": "not_found"}
    assert db.count("a", "public.sessions", "client_id = %s", (theirs,)) == 0
    assert db.count("a", "public.clients", "id = %s and therapist_id = %s", (theirs, OTHER_THERAPIST)) == 1


def test_the_anon_key_may_not_call_a_service_only_function(project_a: PostgrestStandIn) -> None:
    response = rpc(project_a, "synced_client_ids", {"p_after": None, "p_limit": 1}, key=ANON_KEY)

    assert error(response) == (401, "42501")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_therapist_may_not_call_a_service_only_function(project_a: PostgrestStandIn) -> None:
    therapist = sign_access_token(JWT_SECRET, THERAPIST)

    response = rpc(project_a, "synced_client_ids", {"p_after": None, "p_limit": 1}, key=ANON_KEY, bearer=therapist)

    assert error(response) == (403, "42501")


def test_a_role_the_login_cannot_become_is_refused(project_a: PostgrestStandIn) -> None:
    superuser = sign_access_token(JWT_SECRET, THERAPIST, role="postgres")
    unknown = sign_access_token(JWT_SECRET, THERAPIST, role=f"nobody_{random_suffix()}")

    assert error(rpc(project_a, "sync_conflicts", {}, bearer=superuser)) == (403, "42501")
    assert error(rpc(project_a, "sync_conflicts", {}, bearer=unknown)) == (401, "22023")


def test_an_unknown_function_is_404_pgrst202(project_a: PostgrestStandIn) -> None:
    response = rpc(project_a, "synced_client_idz", {"p_after": None, "p_limit": 1})

    assert error(response) == (404, "PGRST202")
    assert response.json()["message"] == (
        "Could not find the function public.synced_client_idz(p_after, p_limit) in the schema cache"
    )
    assert response.json()["hint"] == "Perhaps you meant to call the function public.synced_client_ids"


def test_arguments_no_overload_takes_are_404_pgrst202(project_a: PostgrestStandIn) -> None:
    response = rpc(project_a, "synced_client_ids", {"p_after": None})  # p_limit has no default

    assert error(response) == (404, "PGRST202")
    assert response.json()["details"] == (
        "Searched for the function public.synced_client_ids with parameter p_after or with a single unnamed"
        " json/jsonb parameter, but no matches were found in the schema cache."
    )


def test_a_request_without_an_api_key_is_401(project_a: PostgrestStandIn) -> None:
    response = rpc(project_a, "sync_conflicts", {}, key=None, bearer=SERVICE_KEY)

    assert response.status_code == 401
    assert response.json()["message"] == "No API key found in request"


@pytest.mark.parametrize(
    "key",
    [
        sign_service_role_token(OTHER_SECRET),
        sign_access_token(JWT_SECRET, THERAPIST),  # a user's token is no API key
        "not-a-jwt",
    ],
)
def test_an_api_key_not_of_the_project_is_401(project_a: PostgrestStandIn, key: str) -> None:
    response = rpc(project_a, "sync_conflicts", {}, key=key, bearer=SERVICE_KEY)

    assert response.status_code == 401
    assert response.json()["message"] == "Invalid API key"


@pytest.mark.parametrize(
    ("bearer", "code", "message"),
    [
        (sign_service_role_token(OTHER_SECRET), "PGRST301", "JWT cryptographic operation failed"),
        (sign_service_role_token(JWT_SECRET, expires_in=-60), "PGRST303", "JWT expired"),
        ("abc.def", "PGRST301", "Expected 3 parts in JWT; got 2"),
    ],
)
def test_a_bad_or_expired_token_is_401(project_a: PostgrestStandIn, bearer: str, code: str, message: str) -> None:
    response = rpc(project_a, "sync_conflicts", {}, bearer=bearer)

    assert error(response) == (401, code)
    assert response.json()["message"] == message
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_a_void_function_answers_204_with_no_body(project_a: PostgrestStandIn, db: Databases, probe: str) -> None:
    response = rpc(project_a, probe, {"p_id": 1})

    assert response.status_code == 204
    assert response.content == b""
    assert db.a.execute(f"select id, note from public.{probe}").fetchall() == [(1, "default note")]


def test_a_unique_violation_is_409_and_writes_nothing(project_a: PostgrestStandIn, db: Databases, probe: str) -> None:
    db.a.execute(f"insert into public.{probe} (id, note) values (1, 'first')")
    db.a.execute(
        f"""create function public.{probe}_twice(p_id integer) returns integer language sql
            as $$ insert into public.{probe} (id, note) values (p_id + 1, 'half'); select 1;
                  insert into public.{probe} (id, note) values (p_id, 'duplicate'); select 2 $$"""
    )

    response = rpc(project_a, f"{probe}_twice", {"p_id": 1})

    assert error(response) == (409, "23505")
    assert response.json()["details"].startswith("Key (id)=(1) already exists")
    assert db.a.execute(f"select id, note from public.{probe}").fetchall() == [(1, "first")]


def test_a_stable_function_runs_read_only(project_a: PostgrestStandIn, db: Databases, probe: str) -> None:
    db.a.execute(
        f"""create function public.{probe}_stable(p_id integer) returns integer language plpgsql stable
            as $$ begin perform public.{probe}(p_id); return p_id; end $$"""
    )

    response = rpc(project_a, f"{probe}_stable", {"p_id": 7})

    assert error(response) == (405, "25006")
    assert db.a.execute(f"select count(*) from public.{probe}").fetchone() == (0,)


@pytest.mark.parametrize("content", [b"[1, 2]", b'"text"', b"{not json"])
def test_a_body_that_is_not_a_json_object_is_400_pgrst102(project_a: PostgrestStandIn, content: bytes) -> None:
    assert error(rpc(project_a, "sync_conflicts", content=content)) == (400, "PGRST102")


def test_only_post_on_the_rpc_path_is_served(project_a: PostgrestStandIn) -> None:
    assert error(rpc(project_a, "sync_conflicts", method="GET")) == (405, "PGRST101")
    assert error(rpc(project_a, "", path="/rest/v1/clients")) == (404, "PGRST125")
    assert rpc(project_a, "", path="/auth/v1/token").status_code == 404


def test_another_schema_is_406(project_a: PostgrestStandIn) -> None:
    response = httpx.post(
        f"{project_a.url}/rest/v1/rpc/sync_conflicts",
        json={},
        headers={"apikey": SERVICE_KEY, "Content-Profile": "private"},
    )

    assert error(response) == (406, "PGRST106")


def test_the_postgrest_client_calls_through_it(project_a: PostgrestStandIn) -> None:
    headers = {"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"}
    with SyncPostgrestClient(f"{project_a.url}/rest/v1", headers=headers) as client:
        answer = client.rpc("sync_conflicts", {"p_limit": "1"}).execute()
        with pytest.raises(APIError) as missing:
            client.rpc("no_such_function", {}).execute()

    assert isinstance(answer.data, list)
    assert missing.value.code == "PGRST202"


def test_concurrent_requests_are_all_answered(project_a: PostgrestStandIn) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: rpc(project_a, "sync_conflicts", {}).status_code, range(48)))

    assert statuses == [200] * 48


def test_it_connects_as_authenticator_which_is_no_superuser(
    project_a: PostgrestStandIn, projects: LocalProjects, db: Databases
) -> None:
    assert rpc(project_a, "sync_conflicts", {}).status_code == 200
    logins = db.a.execute(
        """select distinct a.usename, r.rolsuper, r.rolbypassrls, r.rolinherit
             from pg_stat_activity a join pg_roles r on r.rolname = a.usename
            where a.application_name = 'postgrest-standin' and a.datname = current_database()"""
    ).fetchall()
    memberships = db.a.execute(
        """select array_agg(m.roleid::regrole::text order by 1) from pg_auth_members m
            where m.member = 'authenticator'::regrole"""
    ).fetchone()

    assert logins == [("authenticator", False, False, False)]
    assert memberships == (["anon", "authenticated", "service_role"],)


def test_an_unreachable_database_is_503_pgrst000() -> None:
    with serving("host=127.0.0.1 port=1 dbname=nowhere user=authenticator", JWT_SECRET, pool_timeout=0.5) as down:
        response = rpc(down, "sync_conflicts", {})

    assert error(response) == (503, "PGRST000")


def test_logs_carry_no_token_nor_body(
    project_a: PostgrestStandIn, db: Databases, probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    therapist = sign_access_token(JWT_SECRET, THERAPIST)
    secret_note = f"note-{random_suffix()}"
    rpc(project_a, probe, {"p_id": 5, "p_note": secret_note}, key=ANON_KEY, bearer=therapist)
    rpc(project_a, probe, {"p_id": 5, "p_note": secret_note})
    rpc(project_a, probe, {"p_id": 5, "p_note": secret_note})  # a 409 whose details quote the row

    logged = capsys.readouterr().err
    assert '"event": "postgrest_request"' in logged
    for leak in (therapist, ANON_KEY, SERVICE_KEY, secret_note, "already exists"):
        assert leak not in logged


def test_a_chunked_body_is_411_and_an_oversized_one_413_and_either_closes_the_connection(
    project_a: PostgrestStandIn,
) -> None:
    """The stand-in reads no chunked body: left unread, its bytes would be taken for the next request."""
    headers = {"apikey": SERVICE_KEY, "Content-Type": "application/json"}
    url = f"{project_a.url}/rest/v1/rpc/sync_conflicts"

    def chunks() -> Iterator[bytes]:
        yield b"{}"

    with httpx.Client(timeout=30) as client:
        chunked = client.post(url, content=chunks(), headers=headers)
        oversized = client.post(url, content=b" " * (10 * 1024 * 1024 + 1), headers=headers)

    assert (chunked.status_code, chunked.headers.get("connection")) == (411, "close")
    assert (oversized.status_code, oversized.headers.get("connection")) == (413, "close")


def test_a_query_built_while_another_call_reads_the_functions_again_is_used_once_not_kept(
    projects: LocalProjects, monkeypatch: pytest.MonkeyPatch
) -> None:
    import devtools.postgrest_rpc as rpc

    cache, keys, built = rpc.SchemaCache(), frozenset({"p_limit"}), []
    real = rpc.call_statement

    with psycopg.connect(authenticator_url(projects.server_url, projects.project_a_url)) as conn:

        def build(routine: Any, given: frozenset[str]) -> Any:
            if not built:  # meanwhile, another call's miss reads sync_conflicts' functions again
                with pytest.raises(rpc.ApiError):
                    cache.find(conn, "sync_conflicts", frozenset({"no_such_argument"}))
            built.append(given)
            return real(routine, given)

        monkeypatch.setattr(rpc, "call_statement", build)
        for _ in range(3):
            cache.query(conn, "sync_conflicts", keys)

    assert len(built) == 2  # the first, built from the older list, was not kept; the second was
