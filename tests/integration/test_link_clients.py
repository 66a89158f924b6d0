"""sync_client's link mode: a native client becomes the Project B user of its suggestion, in one transaction, once
Project B has confirmed the email; its sessions follow, and its old id still resolves for its therapist."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from devtools.tokens import sign_service_role_token
from tests.conftest import JWT_SECRET, OTHER_THERAPIST, THERAPIST, Databases
from tests.integration.helpers import function_client
from tests.random_refs import random_email, random_name

pytestmark = pytest.mark.usefixtures("backend")

SERVICE = sign_service_role_token(JWT_SECRET)


def call(bearer: str, body: dict[str, Any]) -> Any:
    return function_client("sync_client").post("/", json=body, headers={"Authorization": f"Bearer {bearer}"})


def book(bearer: str, client_id: Any, starts_at: str) -> Any:
    return function_client("create_session").post(
        "/",
        json={"client_id": str(client_id), "starts_at": starts_at, "duration_minutes": 50},
        headers={"Authorization": f"Bearer {bearer}"},
    )


def link(bearer: str, native: Any, user: Any) -> Any:
    return call(bearer, {"mode": "link", "client_id": str(native), "project_b_user_id": str(user)})


def suggested(db: Databases, therapist: uuid.UUID, *, confirmed: bool) -> tuple[uuid.UUID, uuid.UUID]:
    """A native client of `therapist` and a Project B user with its email, synced: an open suggestion."""
    email = random_email("pair")
    native, user = uuid.uuid4(), uuid.uuid4()
    db.add_project_a_client(native, therapist, random_name("Native"), email)
    db.add_project_b_client(user, random_name("Signed up"), email)
    if confirmed:
        confirm(db, user)
    assert call(SERVICE, {"client_id": str(user)}).status_code == 200
    return native, user


def confirm(db: Databases, user: uuid.UUID) -> None:
    db.b.execute("update auth.users set email_confirmed_at = now() where id = %s", (user,))


def test_a_link_waits_for_a_confirmed_email_then_moves_the_sessions_and_keeps_the_old_id(
    db: Databases, token: Callable[..., str]
) -> None:
    native, user = suggested(db, THERAPIST, confirmed=False)
    db.a.execute("update public.clients set phone = '+44 20 0000 0000', notes = 'clinical' where id = %s", (native,))
    assert book(token(THERAPIST), native, "2031-09-01T10:00:00Z").status_code == 201

    unconfirmed = link(token(THERAPIST), native, user)
    assert (unconfirmed.status_code, unconfirmed.json["error"]["code"]) == (409, "email_not_confirmed")
    assert db.client(native) is not None and db.client(user)["therapist_id"] is None  # nothing written
    confirm(db, user)
    linked = link(token(THERAPIST), native, user)

    assert (linked.status_code, linked.json) == (200, {"outcome": "linked", "client_id": str(user)})
    assert db.client(native) is None
    row = db.client(user)
    assert (row["therapist_id"], row["synced_from"], row["phone"], row["notes"]) == (
        THERAPIST,
        "project_b",
        "+44 20 0000 0000",
        "clinical",
    )
    assert db.count("a", "public.sessions", "client_id = %s", (native,)) == 0
    assert db.count("a", "public.sessions", "client_id = %s", (user,)) == 1

    by_old_id = book(token(THERAPIST), native, "2031-09-02T10:00:00Z")
    synced_by_old_id = call(token(THERAPIST), {"client_id": str(native)})
    by_another = book(token(OTHER_THERAPIST), native, "2031-09-03T10:00:00Z")
    again = link(token(THERAPIST), native, user)

    assert (by_old_id.status_code, by_old_id.json["session"]["client_id"]) == (201, str(user))
    assert (synced_by_old_id.status_code, synced_by_old_id.json["client_id"]) == (200, str(user))
    assert (by_another.status_code, by_another.json["error"]["code"]) == (404, "client_not_found")
    assert (again.status_code, again.json["error"]["code"]) == (404, "client_not_found")


def test_only_the_clients_therapist_or_the_service_role_links(db: Databases, token: Callable[..., str]) -> None:
    native, user = suggested(db, THERAPIST, confirmed=True)
    for_the_operator = suggested(db, THERAPIST, confirmed=True)

    by_another = link(token(OTHER_THERAPIST), native, user)
    of_nobody = link(token(OTHER_THERAPIST), uuid.uuid4(), user)
    stranger = link(token(uuid.uuid4()), native, user)
    by_the_operator = link(SERVICE, *for_the_operator)

    assert (by_another.status_code, by_another.json["error"]["code"]) == (404, "client_not_found")
    assert of_nobody.json == by_another.json
    assert (stranger.status_code, stranger.json["error"]["code"]) == (403, "not_a_therapist")
    assert by_the_operator.json == {"outcome": "linked", "client_id": str(for_the_operator[1])}
    assert db.client(native) is not None


def test_a_project_b_user_another_therapist_has_is_not_linked(db: Databases, token: Callable[..., str]) -> None:
    native, user = suggested(db, THERAPIST, confirmed=True)
    assert book(token(OTHER_THERAPIST), user, "2031-09-04T10:00:00Z").status_code == 201

    refused = link(token(THERAPIST), native, user)

    assert (refused.status_code, refused.json["error"]["code"]) == (404, "client_not_found")
    assert db.client(user)["therapist_id"] == OTHER_THERAPIST
    assert db.client(native) is not None


def test_an_old_id_resolves_only_for_the_caller_and_nobody_can_ask_for_another_therapist(
    projects: Any, db: Databases, token: Callable[..., str]
) -> None:
    native, user = suggested(db, THERAPIST, confirmed=True)
    assert link(token(THERAPIST), native, user).status_code == 200

    def resolved_as(therapist: uuid.UUID) -> Any:
        with psycopg.connect(projects.project_a_url) as conn:
            conn.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                (json.dumps({"sub": str(therapist), "role": "authenticated"}),),
            )
            return conn.execute("select private.resolved_client_id(%s)", (native,)).fetchone()[0]

    assert resolved_as(THERAPIST) == user
    assert resolved_as(OTHER_THERAPIST) == native
    overloads = db.a.execute("select count(*) from pg_proc where proname = 'resolved_client_id'").fetchone()[0]
    assert overloads == 1  # no variant that takes a therapist's id


def test_a_rejected_pair_and_a_user_gone_from_project_b_are_not_linked(
    db: Databases, token: Callable[..., str]
) -> None:
    rejected, gone = suggested(db, THERAPIST, confirmed=True), suggested(db, THERAPIST, confirmed=True)
    reject = {"mode": "reject_link", "client_id": str(rejected[0]), "project_b_user_id": str(rejected[1])}
    assert call(token(THERAPIST), reject).status_code == 200
    db.b.execute("delete from auth.users where id = %s", (gone[1],))

    answers = [link(token(THERAPIST), *pair) for pair in (rejected, gone)]

    assert [(a.status_code, a.json["error"]["code"]) for a in answers] == [(404, "client_not_found")] * 2
    assert db.client(rejected[0]) is not None and db.client(gone[0]) is not None


def test_only_a_confirmation_of_the_matched_email_counts(db: Databases) -> None:
    _, user = suggested(db, THERAPIST, confirmed=True)
    email = db.b.execute("select email from auth.users where id = %s", (user,)).fetchone()[0]

    def confirmed(address: str) -> bool:
        return bool(db.b.execute("select public.email_confirmed(%s, %s)", (user, address)).fetchone()[0])

    assert confirmed(email.upper())
    assert not confirmed(random_email("other"))
    assert not confirmed("")


@pytest.mark.direct_only("watches the functions' own database connection wait for the lock")
def test_a_reject_that_commits_while_a_link_waits_wins(projects: Any, db: Databases) -> None:
    """The link checks the suggestion, then waits for its row; a reject commits meanwhile: the link is a 404."""
    from shared.auth import ServiceRole
    from shared.errors import ClientNotFound
    from shared.wiring import link_service
    from tests.integration.test_sync_races import wait_until_blocked

    native, user = suggested(db, THERAPIST, confirmed=True)
    raised: list[BaseException] = []

    def linking() -> None:
        try:
            link_service().link(ServiceRole(), native, user)
        except BaseException as exc:
            raised.append(exc)

    with psycopg.connect(projects.project_a_url) as rejecting:
        rejecting.execute(
            "update private.link_suggestions set closed_at = now(), closed_as = 'rejected'"
            " where client_id = %s and project_b_user_id = %s",
            (native, user),
        )
        thread = threading.Thread(target=linking)
        thread.start()
        wait_until_blocked(db, "client-sync-project_a")
        rejecting.commit()
    thread.join(timeout=30)

    assert [type(exc) for exc in raised] == [ClientNotFound]
    assert db.client(native) is not None


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "link", "client_id": "\u0000", "project_b_user_id": str(uuid.uuid4())},
        {"mode": "link", "client_id": str(uuid.uuid4())},
        {"mode": "link", "client_id": 7, "project_b_user_id": str(uuid.uuid4())},
        {"mode": "reject_link", "client_id": str(uuid.uuid4()), "project_b_user_id": None},
        {"mode": "links", "therapist_id": str(OTHER_THERAPIST)},
    ],
)
def test_a_bad_link_body_is_400_in_the_error_shape_and_writes_nothing(
    db: Databases, token: Callable[..., str], body: dict[str, Any]
) -> None:
    before = db.counts()
    response = call(token(THERAPIST), body)

    assert response.status_code == 400
    assert set(response.json["error"]) >= {"code", "message"}
    assert db.counts() == before
