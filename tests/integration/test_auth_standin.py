"""devtools.auth_admin, the local stand-in for Supabase Auth's `POST /auth/v1/admin/users` and `POST /auth/v1/invite`:
driven through the Auth admin client the functions use (supabase_auth.SyncGoTrueAdminAPI) and through raw HTTP for
the answers' shapes, against Project B's real local database, logged in as supabase_auth_admin."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from supabase_auth import SyncGoTrueAdminAPI
from supabase_auth.errors import AuthApiError

from devtools.auth_admin import AuthStandIn, serving
from devtools.auth_admin_mail import read_messages
from devtools.localdb import LocalProjects, auth_admin_url
from devtools.tokens import sign_access_token, sign_anon_token, sign_service_role_token
from tests.conftest import JWT_SECRET, Databases
from tests.random_refs import random_email

# Project B's own JWT secret: the tests' JWT_SECRET stands for Project A's.
SECRET = secrets.token_urlsafe(48)
SERVICE_KEY = sign_service_role_token(SECRET)
ANON_KEY = sign_anon_token(SECRET)
VERSION = {"X-Supabase-Api-Version": "2024-01-01"}
DUPLICATE_EMAIL = "A user with this email address has already been registered"


@pytest.fixture(scope="module")
def mail_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mail")


@pytest.fixture(scope="module")
def standin(projects: LocalProjects, mail_dir: Path) -> Iterator[AuthStandIn]:
    with serving(auth_admin_url(projects.server_url, projects.project_b_url), SECRET, mail_dir=mail_dir) as started:
        yield started


def admin_client(standin: AuthStandIn, key: str = SERVICE_KEY) -> SyncGoTrueAdminAPI:
    """The client as shared/stores/auth_admin.py makes it: the key as `apikey` and as the bearer."""
    return SyncGoTrueAdminAPI(url=standin.url, headers={"apikey": key, "Authorization": f"Bearer {key}"})


@pytest.fixture
def admin(standin: AuthStandIn) -> Iterator[SyncGoTrueAdminAPI]:
    client = admin_client(standin)
    yield client
    client.close()


def post(
    standin: AuthStandIn,
    path: str,
    body: Any = None,
    *,
    key: str | None = SERVICE_KEY,
    bearer: str | None = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    method: str = "POST",
) -> httpx.Response:
    """A raw request to `{standin.url}{path}`: `key` as apikey, the bearer (the key unless given) as Authorization."""
    sent = {"Content-Type": "application/json", **(headers if headers is not None else VERSION)}
    if key is not None:
        sent["apikey"] = key
    if bearer or key:
        sent["Authorization"] = f"Bearer {bearer or key}"
    data = content if content is not None else json.dumps(body if body is not None else {}).encode()
    url = standin.url.removesuffix("/auth/v1") + path if path.startswith("/") else f"{standin.url}/{path}"
    return httpx.request(method, url, content=data, headers=sent, timeout=30)


def error(response: httpx.Response) -> tuple[int, str, str]:
    """The status, code and message of a 2024-01-01 error answer (the version echoed, as the client needs)."""
    assert response.headers.get("X-Supabase-Api-Version") == "2024-01-01", response.headers
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert response.headers["x-sb-error-code"] == body["code"]
    return response.status_code, body["code"], body["message"]


def user_row(db: Databases, user_id: Any) -> dict[str, Any] | None:
    columns = (
        "email, aud, role, email_confirmed_at, invited_at, confirmation_sent_at, confirmation_token,"
        " encrypted_password, raw_app_meta_data, raw_user_meta_data"
    )
    row = db.b.execute(f"select {columns} from auth.users where id = %s", (user_id,)).fetchone()
    return dict(zip([name.strip() for name in columns.split(",")], row, strict=True)) if row else None


def mail_to(mail_dir: Path, address: str) -> list[Any]:
    return [message for message in read_messages(mail_dir) if message["To"] == address]


# Creating users


def test_create_user_with_an_id_writes_that_user_to_auth_users(admin: SyncGoTrueAdminAPI, db: Databases) -> None:
    user_id, address = uuid.uuid4(), random_email("created")
    attributes: Any = {
        "id": str(user_id),
        "email": address.replace("created", "CrEaTeD"),
        "email_confirm": False,
        "app_metadata": {"invited_from": "project_a"},
        "user_metadata": {"name": "Ada"},
    }

    user = admin.create_user(attributes).user

    assert (user.id, user.email, user.aud, user.role) == (str(user_id), address, "authenticated", "authenticated")
    assert user.app_metadata == {"provider": "email", "providers": ["email"], "invited_from": "project_a"}
    assert (user.user_metadata, user.identities, user.email_confirmed_at) == ({"name": "Ada"}, [], None)
    assert user_row(db, user_id) == {
        "email": address,  # lower-cased, as GoTrue's validateEmail does
        "aud": "authenticated",
        "role": "authenticated",
        "email_confirmed_at": None,
        "invited_at": None,
        "confirmation_sent_at": None,
        "confirmation_token": "",
        "encrypted_password": "",
        "raw_app_meta_data": {"provider": "email", "providers": ["email"], "invited_from": "project_a"},
        "raw_user_meta_data": {"name": "Ada"},
    }


def test_email_confirm_confirms_the_email(admin: SyncGoTrueAdminAPI, db: Databases) -> None:
    user = admin.create_user({"email": random_email("confirmed"), "email_confirm": True}).user

    row = user_row(db, user.id)
    assert row is not None and row["email_confirmed_at"] is not None
    assert user.email_confirmed_at == row["email_confirmed_at"]
    assert user.user_metadata == row["raw_user_meta_data"] == {"email_verified": True}  # models.User.Confirm


def test_a_taken_email_is_422_email_exists_whatever_its_case(admin: SyncGoTrueAdminAPI, db: Databases) -> None:
    address, by_hand = random_email("taken"), random_email("by-hand")
    admin.create_user({"email": address})
    db.b.execute("insert into auth.users (id, email) values (%s, %s)", (uuid.uuid4(), by_hand.upper()))

    for taken in (address, address.upper(), by_hand):
        with pytest.raises(AuthApiError) as refused:
            admin.create_user({"id": str(uuid.uuid4()), "email": taken})
        assert (refused.value.status, refused.value.code, refused.value.message) == (
            422,
            "email_exists",
            DUPLICATE_EMAIL,
        )
    assert db.count("b", "auth.users", "lower(email) = %s", (address,)) == 1


def test_a_taken_id_is_500_as_a_failed_insert(admin: SyncGoTrueAdminAPI, db: Databases) -> None:
    user_id = uuid.uuid4()
    admin.create_user({"id": str(user_id), "email": random_email("first")})

    with pytest.raises(AuthApiError) as failed:
        admin.create_user({"id": str(user_id), "email": random_email("second")})

    assert (failed.value.status, failed.value.code) == (500, "unexpected_failure")
    assert failed.value.message == "Database error creating new user"
    assert db.count("b", "auth.users", "id = %s", (user_id,)) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Cannot create a user without either an email or phone"),
        ({"email": "not an email"}, "Unable to validate email address: invalid format"),
        ({"email": "a@example.test\n"}, "Unable to validate email address: invalid format"),
        ({"email": f"{'a' * 250}@example.test"}, "An email address is too long"),
        ({"email": "a@example.test", "id": "42"}, "ID must conform to the uuid v4 format"),
        ({"email": "a@example.test", "id": str(uuid.UUID(int=0))}, "ID cannot be a nil uuid"),
        ({"email": "a@example.test", "password": "secret"}, "The local Auth stand-in does not support `password`"),
    ],
)
def test_what_gotrue_refuses_to_create_is_400_validation_failed(
    standin: AuthStandIn, body: dict[str, Any], message: str
) -> None:
    assert error(post(standin, "admin/users", body)) == (400, "validation_failed", message)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "unexpected end of JSON input"),
        (b"{", None),
        (b"[]", "json: cannot unmarshal array into Go value of type api.AdminUserParams"),
        (b'{"email": 42}', "json: cannot unmarshal number into Go struct field AdminUserParams.email of type string"),
        (
            b'{"email_confirm": "yes"}',
            "json: cannot unmarshal string into Go struct field AdminUserParams.email_confirm",
        ),
        (b'{"app_metadata": []}', "json: cannot unmarshal array into Go struct field AdminUserParams.app_metadata"),
    ],
)
def test_a_body_go_cannot_decode_is_400_bad_json(standin: AuthStandIn, content: bytes, message: str | None) -> None:
    status, code, said = error(post(standin, "admin/users", content=content))
    assert (status, code) == (400, "bad_json")
    assert said.startswith(f"Could not parse request body as JSON: {message or ''}")


def test_keys_match_case_insensitively_and_others_are_ignored_as_by_go(admin: SyncGoTrueAdminAPI) -> None:
    address = random_email("go-json")
    attributes: Any = {"EMAIL": address, "Email_Confirm": True, "nickname": "ignored"}
    user = admin.create_user(attributes).user
    assert (user.email, user.email_confirmed_at is not None) == (address, True)


# Who may call


def expired_service_key() -> str:
    now = int(time.time())
    return jwt.encode({"iss": "supabase", "role": "service_role", "iat": now - 120, "exp": now - 60}, SECRET)


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, (401, "no_authorization", "This endpoint requires a valid Bearer token")),
        (f"Basic {SERVICE_KEY}", (401, "no_authorization", "This endpoint requires a valid Bearer token")),
        (f"Bearer  {SERVICE_KEY}", (401, "no_authorization", "This endpoint requires a valid Bearer token")),
        (f"Bearer {sign_service_role_token(JWT_SECRET)}", (403, "bad_jwt", "signature is invalid")),
        (f"Bearer {expired_service_key()}", (403, "bad_jwt", "token is expired")),
        ("Bearer not.a-jwt", (403, "bad_jwt", "token is malformed")),
        (f"Bearer {ANON_KEY}", (403, "not_admin", "User not allowed")),
        (f"Bearer {sign_access_token(SECRET, uuid.uuid4())}", (403, "not_admin", "User not allowed")),
        (f"bearer {jwt.encode({'role': 'supabase_admin'}, SECRET)}", None),
    ],
)
@pytest.mark.parametrize("path", ["admin/users", "invite"])
def test_only_an_admin_jwt_of_the_project_passes_as_gotrue_checks_it(
    standin: AuthStandIn, path: str, authorization: str | None, expected: tuple[int, str, str] | None
) -> None:
    headers = VERSION | ({"Authorization": authorization} if authorization else {})
    response = httpx.post(
        f"{standin.url}/{path}",
        json={"email": random_email("who")},
        headers={"apikey": SERVICE_KEY, **headers},
        timeout=30,
    )
    if expected is None:
        assert response.status_code == 200, response.text
        return
    status, code, message = error(response)
    assert (status, code) == expected[:2]
    assert expected[2] in message
    if code == "bad_jwt":
        assert message.startswith("invalid JWT: unable to parse or verify signature, ")


def test_the_client_with_the_anon_key_is_refused_not_admin(standin: AuthStandIn) -> None:
    with admin_client(standin, ANON_KEY) as client, pytest.raises(AuthApiError) as refused:
        client.create_user({"email": random_email("anon")})
    assert (refused.value.status, refused.value.code) == (403, "not_admin")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "No API key found in request"),
        (sign_service_role_token(JWT_SECRET), "Invalid API key"),  # another project's key
        (jwt.encode({"role": "authenticated"}, SECRET), "Invalid API key"),  # not an API key
    ],
)
def test_the_gateway_wants_an_api_key_of_the_project_first(standin: AuthStandIn, key: str | None, message: str) -> None:
    response = post(standin, "admin/users", {"email": random_email("gateway")}, key=key, bearer=SERVICE_KEY)
    assert (response.status_code, response.json()["message"]) == (401, message)


def test_other_routes_are_404(standin: AuthStandIn) -> None:
    listing = post(standin, "admin/users", method="GET")
    assert error(listing)[:2] == (404, "not_found")
    outside = post(standin, "/rest/v1/rpc/client_states", {})
    assert (outside.status_code, outside.json()) == (404, {"message": "no Route matched with those values"})


# Inviting


def test_inviting_an_unconfirmed_user_mails_a_link_and_marks_the_user_invited(
    admin: SyncGoTrueAdminAPI, standin: AuthStandIn, mail_dir: Path, db: Databases
) -> None:
    address, user_id = random_email("invited"), uuid.uuid4()
    admin.create_user({"id": str(user_id), "email": address, "app_metadata": {"invited_from": "project_a"}})

    user = admin.invite_user_by_email(address.upper(), {"redirect_to": "http://127.0.0.1:5173/welcome"}).user

    row = user_row(db, user_id)
    assert row is not None and row["invited_at"] is not None and row["confirmation_sent_at"] == row["invited_at"]
    assert (user.id, user.invited_at, user.confirmation_sent_at) == (str(user_id), row["invited_at"], row["invited_at"])
    assert user.app_metadata["invited_from"] == "project_a"
    (message,) = mail_to(mail_dir, address)
    assert (message["From"], message["Subject"]) == ("Project B <noreply@project-b.local>", "You have been invited")
    (link,) = [word for word in message.get_content().split() if "/verify?" in word]
    assert link.startswith(f"{standin.url}/verify?")
    query = parse_qs(urlsplit(link).query)
    assert query == {
        "token": [row["confirmation_token"]],
        "type": ["invite"],
        "redirect_to": ["http://127.0.0.1:5173/welcome"],
    }
    assert len(row["confirmation_token"]) == len(hashlib.sha224().hexdigest())  # sha224(email + otp)
    assert not list(mail_dir.glob(".*"))  # no partial file left


def test_inviting_a_new_email_creates_the_user_with_the_data(
    admin: SyncGoTrueAdminAPI, mail_dir: Path, db: Databases
) -> None:
    address = random_email("new")

    user = admin.invite_user_by_email(
        address, {"data": {"name": "Grace"}, "redirect_to": "https://elsewhere.test/"}
    ).user

    row = user_row(db, user.id)
    assert row is not None and row["raw_user_meta_data"] == {"name": "Grace"} and row["invited_at"] is not None
    assert (row["email"], row["email_confirmed_at"], row["raw_app_meta_data"]["provider"]) == (address, None, "email")
    (message,) = mail_to(mail_dir, address)
    assert message.get_content().rstrip().endswith("redirect_to=http://127.0.0.1:3000")  # another host: the site


def test_inviting_a_confirmed_user_is_422_email_exists_and_mails_nothing(
    admin: SyncGoTrueAdminAPI, mail_dir: Path, db: Databases
) -> None:
    address = random_email("confirmed")
    user_id = admin.create_user({"email": address, "email_confirm": True}).user.id

    with pytest.raises(AuthApiError) as refused:
        admin.invite_user_by_email(address)

    assert (refused.value.status, refused.value.code) == (422, "email_exists")
    assert mail_to(mail_dir, address) == []
    row = user_row(db, user_id)
    assert row is not None and row["invited_at"] is None


def test_an_invite_is_400_for_an_email_gotrue_refuses(standin: AuthStandIn) -> None:
    assert error(post(standin, "invite", {"data": {}})) == (400, "validation_failed", "An email address is required")


# Races and shapes


@pytest.mark.parametrize("round_", range(5))
def test_two_concurrent_creates_of_one_email_create_one_user(standin: AuthStandIn, db: Databases, round_: int) -> None:
    address = random_email("race")
    barrier = threading.Barrier(2)
    outcomes: list[int] = []

    def create() -> None:
        with admin_client(standin) as client:
            barrier.wait()
            try:
                client.create_user({"id": str(uuid.uuid4()), "email": address})
                outcomes.append(200)
            except AuthApiError as exc:
                outcomes.append(exc.status)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == [200, 422]
    assert db.count("b", "auth.users", "lower(email) = %s", (address,)) == 1


def test_without_the_api_version_header_errors_have_the_legacy_shape(standin: AuthStandIn) -> None:
    address, user_id = random_email("legacy"), str(uuid.uuid4())
    assert post(standin, "admin/users", {"id": user_id, "email": address}, headers={}).status_code == 200

    taken = post(standin, "admin/users", {"email": address}, headers={})
    assert "X-Supabase-Api-Version" not in taken.headers
    assert (taken.status_code, taken.json()) == (
        422,
        {"code": 422, "error_code": "email_exists", "msg": DUPLICATE_EMAIL},
    )
    old_version = post(standin, "admin/users", {"email": address}, headers={"X-Supabase-Api-Version": "2023-12-31"})
    assert old_version.json()["error_code"] == "email_exists"

    # A 500 caused by a Postgres integrity error shows that error (GoTrue's utilities.NewPostgresError).
    same_id = post(standin, "admin/users", {"id": user_id, "email": random_email("legacy")}, headers={})
    assert same_id.status_code == 500
    assert same_id.json() == {
        "code": "23505",
        "message": 'duplicate key value violates unique constraint "users_pkey"',
        "detail": f"Key (id)=({user_id}) already exists.",
    }


def test_the_log_has_no_email_key_or_body(admin: SyncGoTrueAdminAPI, capsys: pytest.CaptureFixture[str]) -> None:
    address = random_email("logged")
    admin.create_user({"email": address, "user_metadata": {"name": "Secret Name"}})
    admin.invite_user_by_email(address)

    # The stand-in's thread writes its line with print (the line, then its newline); another thread of the session
    # may write between the two, so each event is found by its braces, not by line.
    logged = capsys.readouterr().err
    events = [json.loads(found) for found in re.findall(r'\{[^{}]*"auth_request"[^{}]*\}', logged)]
    assert [(event["path"], event["status"]) for event in events][-2:] == [
        ("/auth/v1/admin/users", 200),
        ("/auth/v1/invite", 200),
    ]
    assert address not in logged and SERVICE_KEY not in logged and "Secret Name" not in logged
