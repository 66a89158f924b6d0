"""What the contract fuzz test (test_api_fuzz.py) sends and checks: the seeded clients whose ids it swaps into
generated bodies, the right and wrong credentials it tries, and the row counts of both databases."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import psycopg

from devtools.tokens import sign_anon_token, sign_service_role_token
from tests.conftest import JWT_SECRET, OTHER_THERAPIST, THERAPIST, WEBHOOK_SECRET, Databases
from tests.random_refs import random_email, random_name

# One line per fuzzed operation and backend: its requests by status (printed at the end of the run).
FUZZED: list[str] = []


@dataclass(frozen=True)
class Seeded:
    """Clients of every kind the functions tell apart, in freshly migrated projects."""

    project_b_only: list[uuid.UUID]  # bookable: copied on the first booking
    native: list[uuid.UUID]  # THERAPIST's, created in Project A, with an email: invitable
    native_without_email: uuid.UUID
    other_therapists: uuid.UUID
    link_pairs: list[tuple[uuid.UUID, uuid.UUID]]  # (native client, Project B user with its email)
    ids: list[uuid.UUID] = field(default_factory=list)


def seed_clients(db: Databases) -> Seeded:
    def project_b_user(email: str, *, confirmed: bool = True) -> uuid.UUID:
        user = uuid.uuid4()
        db.add_project_b_client(user, random_name("B"), email)
        if confirmed:
            db.b.execute("update auth.users set email_confirmed_at = now() where id = %s", (user,))
        return user

    def native(therapist: uuid.UUID, email: str | None) -> uuid.UUID:
        client = uuid.uuid4()
        db.add_project_a_client(client, therapist, random_name("A"), email)
        return client

    email = random_email
    shared = [email(), email()]
    seeded = Seeded(
        project_b_only=[project_b_user(email()) for _ in range(3)],
        native=[native(THERAPIST, email()) for _ in range(3)],
        native_without_email=native(THERAPIST, None),
        other_therapists=native(OTHER_THERAPIST, email()),
        link_pairs=[
            (native(THERAPIST, shared[0]), project_b_user(shared[0])),
            (native(THERAPIST, shared[1]), project_b_user(shared[1], confirmed=False)),
        ],
    )
    seeded.ids.extend(
        [
            *seeded.project_b_only,
            *seeded.native,
            seeded.native_without_email,
            seeded.other_therapists,
            *(client for pair in seeded.link_pairs for client in pair),
            THERAPIST,
        ]
    )
    return seeded


def bearer(token: str) -> str:
    return f"Bearer {token}"


def caller_headers(sign: Callable[..., str]) -> list[dict[str, str] | None]:
    """Authorization headers for create_session and sync_client, the right ones more often; None keeps what the
    generator made (the document's bearer scheme, with a made-up token)."""
    right = [bearer(sign(THERAPIST))] * 4 + [bearer(sign_service_role_token(JWT_SECRET))] * 3
    wrong = [
        bearer(sign_service_role_token("x" * 48)),  # forged: the privileged role's claims, another key
        bearer(sign_service_role_token(JWT_SECRET, expires_in=-3600)),
        bearer(unsigned({"sub": str(THERAPIST), "role": "service_role", "aud": "authenticated"})),
        bearer(sign(OTHER_THERAPIST)),
        bearer(sign(uuid.uuid4())),  # a user who is not a therapist
        bearer(sign(THERAPIST, expires_in=-3600)),
        bearer(sign(THERAPIST, secret="x" * 48)),  # forged
        bearer(sign(THERAPIST, audience="anon")),
        bearer(sign(THERAPIST, is_anonymous=True)),
        bearer(sign_anon_token(JWT_SECRET)),
        "Basic dGhlcmFwaXN0OnBhc3N3b3Jk",
    ]
    return [*({"Authorization": value} for value in [*right, *wrong]), {}, None]


def unsigned(claims: dict[str, Any]) -> str:
    """A token with `alg: none` and no signature."""
    return jwt.encode({**claims, "exp": int(time.time()) + 3600}, key=None, algorithm="none")


def webhook_headers(sign: Callable[..., str]) -> list[dict[str, str] | None]:
    right = [bearer(WEBHOOK_SECRET)] * 4
    wrong = [bearer(WEBHOOK_SECRET[:-1]), bearer(sign(THERAPIST)), WEBHOOK_SECRET]
    return [*({"Authorization": value} for value in [*right, *wrong]), {}, None]


def with_known_ids(body: Any, client: uuid.UUID | None, pair: tuple[uuid.UUID, uuid.UUID] | None) -> Any:
    """The generated body with its ids swapped for seeded ones (None: as generated), so that requests reach
    the functions' work and not only their refusals."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if pair is not None and "project_b_user_id" in body:
        body["client_id"], body["project_b_user_id"] = str(pair[0]), str(pair[1])
    elif client is not None and "client_id" in body:
        body["client_id"] = str(client)
    for key in ("record", "old_record"):
        if client is not None and isinstance(body.get(key), dict):
            body[key] = {**body[key], "id": str(client)}
    return body


class RowStates:
    """Every table of both databases, as its row count and a digest of its rows, in one statement each: a refused
    request may neither add nor remove rows nor change one."""

    def __init__(self, a: psycopg.Connection, b: psycopg.Connection) -> None:
        self.connections = {"a": a, "b": b}
        self.queries = {name: self._query(connection) for name, connection in self.connections.items()}

    @staticmethod
    def _query(connection: psycopg.Connection) -> str:
        table = "select %L, count(*), md5(coalesce(string_agg(t::text, ',' order by t::text), '')) from %I.%I t"
        (query,) = connection.execute(
            "select string_agg(format(%s, schemaname || '.' || tablename, schemaname, tablename), ' union all ')"
            " from pg_tables where schemaname not in ('pg_catalog', 'information_schema')",
            (table,),
        ).fetchone()
        return str(query)

    def snapshot(self) -> dict[str, tuple[int, str]]:
        states: dict[str, tuple[int, str]] = {}
        for name, connection in self.connections.items():
            for table, count, digest in connection.execute(self.queries[name]).fetchall():
                states[f"{name}:{table}"] = (count, digest)
        return states


def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    """The tables whose rows differ, with their row counts before and after."""
    return [
        f"{table} ({before.get(table, (0, ''))[0]} -> {state[0]} rows)"
        for table, state in sorted(after.items())
        if before.get(table) != state
    ]
