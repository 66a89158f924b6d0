"""Token checks of create_session: signature, expiry, audience, and the JWKS keys; failures write nothing."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask.testing import FlaskClient

from tests.conftest import JWT_SECRET, Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import STARTS_AT, THERAPIST
from tests.random_refs import random_name

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def client(projects: Any) -> FlaskClient:
    return function_client("create_session")


@pytest.fixture
def own_client_id(db: Databases) -> uuid.UUID:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, THERAPIST, random_name())
    return client_id


def post(client: FlaskClient, client_id: uuid.UUID, authorization: str | None) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return client.post("/", json={"client_id": str(client_id), "starts_at": STARTS_AT}, headers=headers)


def unsigned_token(therapist_id: uuid.UUID) -> str:
    claims = {"sub": str(therapist_id), "aud": "authenticated", "exp": int(time.time()) + 600}
    return jwt.encode(claims, key=None, algorithm="none")


def token_without_a_role(therapist_id: uuid.UUID) -> str:
    claims = {"sub": str(therapist_id), "aud": "authenticated", "exp": int(time.time()) + 600}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


BAD_AUTHORIZATIONS: list[tuple[str, Callable[[Callable[..., str]], str | None]]] = [
    ("missing header", lambda token: None),
    ("empty header", lambda token: ""),
    ("not bearer", lambda token: f"Basic {token(THERAPIST)}"),
    ("bearer without token", lambda token: "Bearer "),
    ("garbage", lambda token: "Bearer not.a.jwt"),
    ("forged signature", lambda token: f"Bearer {token(THERAPIST, secret='another-secret-of-enough-length-123456')}"),
    ("expired", lambda token: f"Bearer {token(THERAPIST, expires_in=-3600)}"),
    ("wrong audience", lambda token: f"Bearer {token(THERAPIST, audience='anon')}"),
    ("service role token", lambda token: f"Bearer {token(THERAPIST, role='service_role')}"),
    ("anon role", lambda token: f"Bearer {token(THERAPIST, role='anon')}"),
    ("no role claim", lambda token: f"Bearer {token_without_a_role(THERAPIST)}"),
    ("anonymous user", lambda token: f"Bearer {token(THERAPIST, is_anonymous=True)}"),
    ("subject not a uuid", lambda token: f"Bearer {token('not-a-uuid')}"),
    ("alg none", lambda token: f"Bearer {unsigned_token(THERAPIST)}"),
    ("HS384 with the secret", lambda token: f"Bearer {token(THERAPIST, algorithm='HS384')}"),
]


@pytest.mark.parametrize(("case", "authorization"), BAD_AUTHORIZATIONS, ids=[case for case, _ in BAD_AUTHORIZATIONS])
def test_bad_token_is_401_and_writes_nothing(
    client: FlaskClient,
    db: Databases,
    token: Callable[..., str],
    own_client_id: uuid.UUID,
    case: str,
    authorization: Callable[[Callable[..., str]], str | None],
) -> None:
    before = db.counts()
    response = post(client, own_client_id, authorization(token))
    assert response.status_code == 401, response.json
    assert response.json["error"]["code"] == "unauthorized"
    assert db.counts() == before


def test_valid_token_books(client: FlaskClient, token: Callable[..., str], own_client_id: uuid.UUID) -> None:
    assert post(client, own_client_id, f"Bearer {token(THERAPIST)}").status_code == 201


class _JwksServer:
    """Serves a JWKS document on loopback, as Supabase's /auth/v1/.well-known/jwks.json does."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        body = json.dumps({"keys": keys}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/auth/v1/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def signing_keys(reconfigure: Callable[..., None]) -> Iterator[dict[str, Any]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    public = []
    for kid, key, alg in (("rsa-1", rsa_key, "RS256"), ("ec-1", ec_key, "ES256")):
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
        public.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
    server = _JwksServer(public)
    reconfigure(PROJECT_A_JWKS_URL=server.url)
    yield {"rsa-1": (rsa_key, "RS256"), "ec-1": (ec_key, "ES256")}
    server.close()


def asymmetric_token(key: Any, alg: str, kid: str, **changes: Any) -> str:
    claims = {"sub": str(THERAPIST), "aud": "authenticated", "role": "authenticated", "exp": int(time.time()) + 600}
    return jwt.encode({**claims, **changes}, key, algorithm=alg, headers={"kid": kid})


@pytest.mark.direct_only("the PostgREST stand-in verifies HS256 tokens only (PostgREST takes the project's JWKS)")
@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_token_signed_with_a_jwks_key_books(signing_keys: dict[str, Any], own_client_id: uuid.UUID, kid: str) -> None:
    key, alg = signing_keys[kid]
    response = post(function_client("create_session"), own_client_id, f"Bearer {asymmetric_token(key, alg, kid)}")
    assert response.status_code == 201, response.json


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]


def test_token_with_an_unknown_key_id_is_401(
    signing_keys: dict[str, Any], own_client_id: uuid.UUID, db: Databases
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    before = db.counts()
    response = post(
        function_client("create_session"), own_client_id, f"Bearer {asymmetric_token(stranger, 'RS256', 'rsa-9')}"
    )
    assert_refused(response, 401, "unauthorized")
    assert db.counts() == before


def test_token_signed_by_another_key_under_a_known_id_is_401(
    signing_keys: dict[str, Any], own_client_id: uuid.UUID, db: Databases
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    before = db.counts()
    response = post(
        function_client("create_session"), own_client_id, f"Bearer {asymmetric_token(stranger, 'RS256', 'rsa-1')}"
    )
    assert_refused(response, 401, "unauthorized")
    assert db.counts() == before


def test_expired_jwks_token_is_401(signing_keys: dict[str, Any], own_client_id: uuid.UUID, db: Databases) -> None:
    key, alg = signing_keys["rsa-1"]
    bearer = asymmetric_token(key, alg, "rsa-1", exp=int(time.time()) - 3600)
    before = db.counts()
    assert_refused(post(function_client("create_session"), own_client_id, f"Bearer {bearer}"), 401, "unauthorized")
    assert db.counts() == before


@pytest.mark.parametrize(
    "changes",
    [{"role": "anon"}, {"role": "service_role"}, {"role": None}, {"is_anonymous": True}],
    ids=["anon role", "service role", "null role", "anonymous user"],
)
def test_jwks_token_of_no_signed_in_user_is_401(
    signing_keys: dict[str, Any], own_client_id: uuid.UUID, db: Databases, changes: dict[str, Any]
) -> None:
    key, alg = signing_keys["ec-1"]
    before = db.counts()
    response = post(
        function_client("create_session"), own_client_id, f"Bearer {asymmetric_token(key, alg, 'ec-1', **changes)}"
    )
    assert_refused(response, 401, "unauthorized")
    assert db.counts() == before


def closed_loopback_port() -> int:
    """A loopback port nobody listens on (bound for a moment, then released): connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_unreachable_jwks_is_503_with_retry_after_and_writes_nothing(
    reconfigure: Callable[..., None], own_client_id: uuid.UUID, db: Databases, alg: str
) -> None:
    reconfigure(PROJECT_A_JWKS_URL=f"http://127.0.0.1:{closed_loopback_port()}/auth/v1/.well-known/jwks.json")
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    before = db.counts()

    response = post(function_client("create_session"), own_client_id, f"Bearer {asymmetric_token(key, alg, 'key-1')}")

    assert_refused(response, 503, "upstream_unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert db.counts() == before
