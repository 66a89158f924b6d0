"""What the two endpoints of the Auth stand-in (devtools/auth_admin.py) do to auth.users, as GoTrue does it: its
request parameters (decoded as Go's encoding/json decodes them into its structs), its email check, its user JSON,
and the create and the invite, each in one transaction.

Sources (github.com/supabase/auth, as in devtools/auth_admin.py): internal/api/admin.go (AdminUserParams,
adminUserCreate), invite.go (InviteParams, Invite), signup.go (ToUserModel, signupNewUser), mail.go (validateEmail,
sendInvite), helpers.go (retrieveRequestParams), crypto/crypto.go (GenerateOtp, GenerateTokenHash), models/user.go
(NewUser, Confirm, UpdateAppMetaData, UpdateUserMetaData, the User JSON), badoux/checkmail (the email pattern).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

AUDIENCE = "authenticated"  # GOTRUE_JWT_AUD and GOTRUE_JWT_DEFAULT_GROUP_NAME on Supabase
DUPLICATE_EMAIL = "A user with this email address has already been registered"
OTP_LENGTH = 6  # GOTRUE_MAILER_OTP_LENGTH's default

# A params struct: its Go name, and its fields' json tags -> the Python type each decodes from, the Go type errors
# name.
Params = tuple[str, dict[str, tuple[type, str]]]
_STRING: tuple[type, str] = (str, "string")
_BOOL: tuple[type, str] = (bool, "bool")
_MAP: tuple[type, str] = (dict, "map[string]interface {}")
CREATE_PARAMS: Params = (
    "AdminUserParams",
    {
        "id": _STRING,
        "aud": _STRING,
        "role": _STRING,
        "email": _STRING,
        "phone": _STRING,
        "password": _STRING,
        "password_hash": _STRING,
        "email_confirm": _BOOL,
        "phone_confirm": _BOOL,
        "user_metadata": _MAP,
        "app_metadata": _MAP,
        "ban_duration": _STRING,
    },
)
INVITE_PARAMS: Params = "InviteParams", {"email": _STRING, "data": _MAP}
# What the stand-in does not do; GoTrue would, so a request using one is refused rather than half served.
UNSUPPORTED = ("aud", "role", "phone", "password", "password_hash", "phone_confirm", "ban_duration")

_EMAIL = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)
_HEX = "[0-9a-fA-F]"
_CANONICAL = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_UUID_TEXT = re.compile(f"{_CANONICAL}|\\{{{_CANONICAL}\\}}|urn:uuid:{_CANONICAL}|{_HEX}{{32}}")  # gofrs/uuid's
_COLUMNS = (
    "id, aud, role, email, email_confirmed_at, invited_at, confirmation_sent_at, last_sign_in_at,"
    " raw_app_meta_data, raw_user_meta_data, created_at, updated_at"
)
_LOCK_EMAIL = "select pg_advisory_xact_lock(hashtext('auth.users.email'), hashtext(lower(%s)))"
_FIND = f"select {_COLUMNS} from auth.users where lower(email) = lower(%s) order by created_at, id limit 1"
_INSERT = f"""
insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at, confirmation_token,
                        raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values (%s, '{AUDIENCE}', '{AUDIENCE}', %s, '', case when %s then now() end, '', %s, %s, now(), now())
returning {_COLUMNS}"""
_INVITED = f"""
update auth.users set confirmation_token = %s, confirmation_sent_at = now(), invited_at = now(), updated_at = now()
 where id = %s
returning {_COLUMNS}"""


class AuthError(Exception):
    """An answer of GoTrue's HTTPError: a status, an error code, a message; `cause`, the database error of a 500."""

    def __init__(self, status: int, code: str, message: str, cause: psycopg.Error | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.cause = cause


def _kind(value: Any) -> str:
    """The JSON kind Go's errors name."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "number"


def _bad_json(detail: str) -> AuthError:
    return AuthError(400, "bad_json", f"Could not parse request body as JSON: {detail}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def decode_params(raw: bytes, params: Params) -> dict[str, Any]:
    """Go's json.Unmarshal of `raw` into GoTrue's params struct: keys matched case-insensitively, others ignored,
    null leaving the zero value ("", False, None); malformed JSON or a value of another kind is 400 bad_json."""
    struct, fields = params
    if not raw.strip():
        raise _bad_json("unexpected end of JSON input")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_json(str(exc)) from None
    decoded: dict[str, Any] = {name: {str: "", bool: False}.get(kind) for name, (kind, _) in fields.items()}
    if value is None:
        return decoded
    if not isinstance(value, dict):
        raise _bad_json(f"json: cannot unmarshal {_kind(value)} into Go value of type api.{struct}")
    for key, item in value.items():
        name = key.lower()
        if name not in fields or item is None:
            continue
        kind, go_type = fields[name]
        if not isinstance(item, kind):
            message = f"json: cannot unmarshal {_kind(item)} into Go struct field {struct}.{name} of type {go_type}"
            raise _bad_json(message)
        decoded[name] = item
    return decoded


def refuse_unsupported(decoded: dict[str, Any]) -> None:
    for name in UNSUPPORTED:
        if decoded.get(name):
            raise AuthError(400, "validation_failed", f"The local Auth stand-in does not support `{name}`")


def validate_email(address: str) -> str:
    """GoTrue's validateEmail: the address lower-cased, or 400 validation_failed."""
    if address == "":
        raise AuthError(400, "validation_failed", "An email address is required")
    if len(address.encode()) > 255:
        raise AuthError(400, "validation_failed", "An email address is too long")
    if not _EMAIL.fullmatch(address):
        raise AuthError(400, "validation_failed", "Unable to validate email address: invalid format")
    return address.lower()


def custom_id(text: str) -> uuid.UUID:
    """adminUserCreate's `id`: a UUID in a form gofrs/uuid reads, not the nil UUID."""
    if not _UUID_TEXT.fullmatch(text):
        raise AuthError(400, "validation_failed", "ID must conform to the uuid v4 format")
    value = uuid.UUID(text)
    if value.int == 0:
        raise AuthError(400, "validation_failed", "ID cannot be a nil uuid")
    return value


def _merged(base: dict[str, Any], updates: dict[str, Any] | None) -> dict[str, Any]:
    """models.User.UpdateAppMetaData / UpdateUserMetaData: each key set, a null deleting it."""
    merged = dict(base)
    for key, value in (updates or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def go_time(value: datetime) -> str:
    """A time as Go's encoding/json writes it (RFC 3339, fraction without trailing zeros, Z for UTC)."""
    value = value.astimezone(UTC)
    fraction = f"{value.microsecond:06d}".rstrip("0")
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def user_json(row: dict[str, Any]) -> dict[str, Any]:
    """GoTrue's User as JSON, its fields in its order (omitempty ones left out when null; no phone, factors or
    identities here). Rows inserted by hand may lack GoTrue's columns: their metadata answer as {}."""
    user: dict[str, Any] = {"id": str(row["id"]), "aud": row["aud"] or "", "role": row["role"] or ""}
    user["email"] = row["email"] or ""
    user |= {key: go_time(row[key]) for key in ("email_confirmed_at", "invited_at") if row[key] is not None}
    user["phone"] = ""
    user |= {key: go_time(row[key]) for key in ("confirmation_sent_at", "last_sign_in_at") if row[key] is not None}
    user["app_metadata"] = row["raw_app_meta_data"] or {}
    user["user_metadata"] = row["raw_user_meta_data"] or {}
    user["identities"] = []
    user |= {"created_at": go_time(row["created_at"]), "updated_at": go_time(row["updated_at"])}
    user["is_anonymous"] = False
    return user


def _find(conn: psycopg.Connection[Any], address: str, failure: str) -> dict[str, Any] | None:
    """The user with this email (any case, any aud), after taking the email's lock until the transaction ends."""
    try:
        with conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(_LOCK_EMAIL, (address,))
            return cursor.execute(_FIND, (address,)).fetchone()
    except psycopg.Error as exc:
        raise AuthError(500, "unexpected_failure", failure, exc) from exc


def _insert(
    conn: psycopg.Connection[Any],
    user_id: uuid.UUID,
    address: str,
    *,
    confirmed: bool,
    app_metadata: dict[str, Any],
    user_metadata: dict[str, Any],
    failure: str,
) -> dict[str, Any]:
    row = (user_id, address, confirmed, Jsonb(app_metadata), Jsonb(user_metadata))
    try:
        with conn.cursor(row_factory=dict_row) as cursor:
            inserted = cursor.execute(_INSERT, row).fetchone()
    except psycopg.Error as exc:
        raise AuthError(500, "unexpected_failure", failure, exc) from exc
    assert inserted is not None
    return inserted


def create_user(conn: psycopg.Connection[Any], params: dict[str, Any]) -> dict[str, Any]:
    """adminUserCreate: the new user's JSON."""
    refuse_unsupported(params)
    if not params["email"]:
        raise AuthError(400, "validation_failed", "Cannot create a user without either an email or phone")
    address = validate_email(params["email"])
    with conn.transaction():
        if _find(conn, address, "Database error checking email") is not None:
            raise AuthError(422, "email_exists", DUPLICATE_EMAIL)
        user_id = custom_id(params["id"]) if params["id"] else uuid.uuid4()
        providers = {"provider": "email", "providers": ["email"]}
        user_metadata = params["user_metadata"] or {}
        if params["email_confirm"]:
            user_metadata = _merged(user_metadata, {"email_verified": True})  # models.User.Confirm
        row = _insert(
            conn,
            user_id,
            address,
            confirmed=params["email_confirm"],
            app_metadata=_merged(providers, params["app_metadata"]),
            user_metadata=user_metadata,
            failure="Database error creating new user",
        )
    return user_json(row)


def invite(conn: psycopg.Connection[Any], params: dict[str, Any], send: Callable[[str, str], None]) -> dict[str, Any]:
    """Invite: the user (created when there is none with this email, refused when confirmed) gets an invitation
    through `send(email, token_hash)`; the user's JSON."""
    address = validate_email(params["email"])
    with conn.transaction():
        user = _find(conn, address, "Database error finding user")
        if user is None:
            user = _insert(
                conn,
                uuid.uuid4(),
                address,
                confirmed=False,
                app_metadata={"provider": "email", "providers": ["email"]},
                user_metadata=params["data"] or {},
                failure="Database error saving new user",
            )
        elif user["email_confirmed_at"] is not None:
            raise AuthError(422, "email_exists", DUPLICATE_EMAIL)
        otp = f"{secrets.randbelow(10**OTP_LENGTH):0{OTP_LENGTH}d}"
        token_hash = hashlib.sha224((user["email"] + otp).encode()).hexdigest()
        try:
            send(user["email"], token_hash)
        except OSError as exc:
            raise AuthError(500, "unexpected_failure", "Error sending invite email") from exc
        try:
            with conn.cursor(row_factory=dict_row) as cursor:
                invited = cursor.execute(_INVITED, (token_hash, user["id"])).fetchone()
        except psycopg.Error as exc:
            raise AuthError(500, "unexpected_failure", "Error inviting user", exc) from exc
    assert invited is not None
    return user_json(invited)
