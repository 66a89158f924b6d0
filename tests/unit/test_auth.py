"""Token verification and secret comparison, without network or database."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from devtools.tokens import sign_access_token, sign_service_role_token
from shared.auth import ServiceRole, bearer_token, secrets_match, verify_access_token, verify_caller
from shared.config import Settings
from shared.errors import Unauthorized
from shared.models import Therapist

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
SETTINGS = Settings(project_a_jwt_secret=SECRET)


def test_valid_token_gives_the_therapist_from_sub() -> None:
    therapist = uuid.uuid4()
    result = verify_access_token(f"Bearer {sign_access_token(SECRET, therapist)}", SETTINGS)
    assert result.id == therapist
    assert result.claims["role"] == "authenticated"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Token abc", "Bearer  "])
def test_malformed_authorization_headers(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_leeway_is_bounded() -> None:
    token = sign_access_token(SECRET, uuid.uuid4(), expires_in=-(SETTINGS.jwt_leeway_seconds + 5))
    with pytest.raises(Unauthorized, match="expired"):
        verify_access_token(f"Bearer {token}", SETTINGS)


def test_without_a_secret_hs256_is_refused() -> None:
    token = sign_access_token(SECRET, uuid.uuid4())
    with pytest.raises(Unauthorized):
        verify_access_token(f"Bearer {token}", Settings())


def test_secrets_match() -> None:
    assert secrets_match("abc", "abc")
    assert not secrets_match("abd", "abc")
    assert not secrets_match(None, "abc")
    assert not secrets_match("", "abc")


def test_an_empty_secret_refuses_hs256_with_401_not_500() -> None:
    token = sign_access_token(SECRET, uuid.uuid4())
    with pytest.raises(Unauthorized):
        verify_access_token(f"Bearer {token}", Settings(project_a_jwt_secret=""))


def test_an_anonymous_users_token_is_refused() -> None:
    token = sign_access_token(SECRET, uuid.uuid4(), is_anonymous=True)
    with pytest.raises(Unauthorized, match="Anonymous"):
        verify_access_token(f"Bearer {token}", SETTINGS)


def test_a_signed_in_users_token_with_is_anonymous_false_is_accepted() -> None:
    therapist = uuid.uuid4()
    token = sign_access_token(SECRET, therapist, is_anonymous=False)
    assert verify_access_token(f"Bearer {token}", SETTINGS).id == therapist


@pytest.mark.parametrize("is_anonymous", ["true", 1, None, "false"])
def test_is_anonymous_other_than_false_is_refused(is_anonymous: object) -> None:
    token = sign_access_token(SECRET, uuid.uuid4(), is_anonymous=is_anonymous)
    with pytest.raises(Unauthorized):
        verify_access_token(f"Bearer {token}", SETTINGS)


@pytest.mark.parametrize("role", ["anon", "service_role", "supabase_admin", "Authenticated", "", None])
def test_a_role_other_than_authenticated_is_refused(role: str | None) -> None:
    token = sign_access_token(SECRET, uuid.uuid4(), role=role)
    with pytest.raises(Unauthorized, match="signed-in user"):
        verify_access_token(f"Bearer {token}", SETTINGS)


def test_a_token_without_a_role_claim_is_refused() -> None:
    claims = {"sub": str(uuid.uuid4()), "aud": "authenticated", "exp": int(time.time()) + 600}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match="signed-in user"):
        verify_access_token(f"Bearer {token}", SETTINGS)


def test_verify_caller_takes_a_service_role_token_signed_with_the_secret() -> None:
    assert isinstance(verify_caller(f"Bearer {sign_service_role_token(SECRET)}", SETTINGS), ServiceRole)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (sign_service_role_token("another-secret-that-is-long-enough-for-hs256"), "Invalid token"),
        (sign_service_role_token(SECRET, expires_in=-3600), "Token expired"),
        ("not.a.token", "Malformed token"),
    ],
    ids=["forged", "expired", "malformed"],
)
def test_verify_caller_refuses_a_service_role_token_it_cannot_verify(token: str, message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        verify_caller(f"Bearer {token}", SETTINGS)


def test_verify_caller_holds_a_user_token_to_a_users_checks() -> None:
    therapist_id = uuid.uuid4()
    caller = verify_caller(f"Bearer {sign_access_token(SECRET, therapist_id)}", SETTINGS)
    assert isinstance(caller, Therapist) and caller.id == therapist_id
    no_audience = jwt.encode({"sub": str(therapist_id), "role": "authenticated", "exp": int(time.time()) + 60}, SECRET)
    with pytest.raises(Unauthorized):
        verify_caller(f"Bearer {no_audience}", SETTINGS)
