"""Email uniqueness by kind and link suggestions: a therapist's write of their own client answers the same whether
or not another therapist's client has the email; a Project B user with a native client's email is synced anyway,
and the native client's therapist, only they, is told (sync_client's `links` mode)."""

from __future__ import annotations

import json
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


def as_therapist(conn: psycopg.Connection[Any], therapist_id: uuid.UUID) -> None:
    conn.execute(
        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
        (json.dumps({"sub": str(therapist_id), "role": "authenticated"}),),
    )


def insert_as(projects: Any, therapist_id: uuid.UUID, email: str) -> str:
    """A therapist's insert of a native client through row level security, as PostgREST would run it: the
    outcome it gives ("inserted", or the SQLSTATE that refused it)."""
    with psycopg.connect(projects.project_a_url) as conn:
        as_therapist(conn, therapist_id)
        try:
            conn.execute(
                "insert into public.clients (full_name, email, therapist_id) values (%s, %s, %s)",
                (random_name("Probe"), email, therapist_id),
            )
        except psycopg.Error as exc:
            return str(exc.sqlstate)
    return "inserted"


def update_as(projects: Any, therapist_id: uuid.UUID, client_id: uuid.UUID, email: str) -> str:
    with psycopg.connect(projects.project_a_url) as conn:
        as_therapist(conn, therapist_id)
        try:
            updated = conn.execute("update public.clients set email = %s where id = %s", (email, client_id)).rowcount
        except psycopg.Error as exc:
            return str(exc.sqlstate)
    return "updated" if updated == 1 else "nothing"


def call(bearer: str, body: dict[str, Any]) -> Any:
    return function_client("sync_client").post("/", json=body, headers={"Authorization": f"Bearer {bearer}"})


def links(bearer: str) -> list[dict[str, Any]]:
    response = call(bearer, {"mode": "links"})
    assert response.status_code == 200, response.json
    return list(response.json["suggestions"])


def pairs(suggestions: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(s["client_id"], s["project_b_user_id"]) for s in suggestions}


def taken_emails(db: Databases) -> tuple[str, str]:
    """An email of another therapist's native client and one of a synced client."""
    theirs, synced = random_email("theirs"), random_email("synced")
    db.add_project_a_client(uuid.uuid4(), OTHER_THERAPIST, random_name("Theirs"), theirs)
    synced_id = uuid.uuid4()
    db.add_project_b_client(synced_id, random_name("Synced"), synced)
    assert call(SERVICE, {"client_id": str(synced_id)}).status_code == 200
    return theirs, synced


def same_email(db: Databases, therapist: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A native client of `therapist` and a Project B user (not synced yet) with the same email."""
    email = random_email("pair")
    native, user = uuid.uuid4(), uuid.uuid4()
    db.add_project_a_client(native, therapist, random_name("Native"), email)
    db.add_project_b_client(user, random_name("Signed up"), email)
    return native, user, email


def test_a_therapists_write_answers_the_same_whoever_else_has_the_email(projects: Any, db: Databases) -> None:
    """The probe: another therapist's native client, a synced client and a fresh email all answer alike."""
    inserted = [insert_as(projects, THERAPIST, email) for email in (*taken_emails(db), random_email("fresh"))]
    mine = uuid.uuid4()
    db.add_project_a_client(mine, THERAPIST, random_name("Mine"), random_email("mine"))
    updated = [update_as(projects, THERAPIST, mine, email) for email in (*taken_emails(db), random_email("fresh"))]

    assert inserted == ["inserted"] * 3
    assert updated == ["updated"] * 3


def test_a_therapists_own_clients_still_have_one_email_each(projects: Any) -> None:
    email = random_email("twice")
    assert insert_as(projects, THERAPIST, email) == "inserted"
    assert insert_as(projects, THERAPIST, email.upper()) == "23505"  # only the caller's own client has it


def test_a_project_b_user_with_a_native_clients_email_is_synced_and_suggested_to_that_therapist_only(
    db: Databases, token: Callable[..., str]
) -> None:
    email = random_email("shared")
    native, user = uuid.uuid4(), uuid.uuid4()
    db.add_project_a_client(native, THERAPIST, random_name("Native"), email)
    db.add_project_b_client(user, random_name("Signed up"), email.upper())

    synced = call(SERVICE, {"client_id": str(user)})
    again = call(SERVICE, {"client_id": str(user)})

    assert (synced.status_code, synced.json["outcome"]) == (200, "inserted")
    assert again.json["outcome"] == "unchanged"
    assert db.client(native)["email"] == email  # the native client is not touched
    mine = [s for s in links(token(THERAPIST)) if s["client_id"] == str(native)]
    assert pairs(mine) == {(str(native), str(user))}
    assert set(mine[0]) == {"client_id", "project_b_user_id", "since"}
    assert (str(native), str(user)) not in pairs(links(token(OTHER_THERAPIST)))
    assert (str(native), str(user)) in pairs(links(SERVICE))
    assert db.count("a", "private.link_suggestions", "client_id = %s", (native,)) == 1


def test_another_therapist_books_a_project_b_user_whose_email_a_native_client_has(
    db: Databases, token: Callable[..., str]
) -> None:
    """Before, the native client kept the user out of Project A and every booking of them was 409 email_conflict."""
    native, user, _ = same_email(db, THERAPIST)

    booked = function_client("create_session").post(
        "/",
        json={"client_id": str(user), "starts_at": "2031-05-06T10:00:00Z", "duration_minutes": 50},
        headers={"Authorization": f"Bearer {token(OTHER_THERAPIST)}"},
    )

    assert booked.status_code == 201, booked.json
    assert db.client(user)["therapist_id"] == OTHER_THERAPIST
    recorded = "client_id = %s and project_b_user_id = %s and closed_at is null"
    assert db.count("a", "private.link_suggestions", recorded, (native, user)) == 1
    # Shown to nobody: the user is now another therapist's client.
    assert (str(native), str(user)) not in pairs(links(token(THERAPIST)) + links(token(OTHER_THERAPIST)))


def test_a_suggestion_is_shown_while_the_emails_match_and_never_again_once_rejected(
    db: Databases, token: Callable[..., str]
) -> None:
    native, user, email = same_email(db, THERAPIST)
    assert call(SERVICE, {"client_id": str(user)}).status_code == 200
    pair = (str(native), str(user))

    db.a.execute("update public.clients set email = %s where id = %s", (random_email("changed"), native))
    while_changed = pairs(links(token(THERAPIST)))
    db.a.execute("update public.clients set email = %s where id = %s", (email, native))
    matching_again = pairs(links(token(THERAPIST)))
    db.a.execute("update public.clients set status = 'archived' where id = %s", (user,))
    user_archived = pairs(links(token(THERAPIST)))
    db.a.execute("update public.clients set status = 'active' where id = %s", (user,))
    rejected = call(token(THERAPIST), {"mode": "reject_link", "client_id": pair[0], "project_b_user_id": pair[1]})
    assert (rejected.status_code, rejected.json) == (200, {"outcome": "rejected"})
    db.b.execute("update public.profiles set name = %s where id = %s", (random_name("Renamed"), user))
    assert call(SERVICE, {"client_id": str(user)}).json["outcome"] == "updated"

    assert pair not in while_changed
    assert pair in matching_again
    assert pair not in user_archived
    assert pair not in pairs(links(token(THERAPIST)))


def test_links_is_for_therapists_and_the_service_role(fresh: Databases, token: Callable[..., str]) -> None:
    stranger = call(token(uuid.uuid4()), {"mode": "links"})
    unknown_field = call(SERVICE, {"mode": "links", "client_id": str(uuid.uuid4())})

    assert (stranger.status_code, stranger.json["error"]["code"]) == (403, "not_a_therapist")
    assert unknown_field.status_code == 400


def suggested(db: Databases, therapist: uuid.UUID) -> tuple[str, str]:
    """A native client of `therapist` and a synced Project B user with its email: an open suggestion."""
    native, user, _ = same_email(db, therapist)
    assert call(SERVICE, {"client_id": str(user)}).status_code == 200
    return str(native), str(user)


def reject(bearer: str, pair: tuple[str, str]) -> Any:
    return call(bearer, {"mode": "reject_link", "client_id": pair[0], "project_b_user_id": pair[1]})


def test_only_the_clients_therapist_or_the_service_role_rejects_and_twice_answers_the_same(
    db: Databases, token: Callable[..., str]
) -> None:
    mine, for_the_operator = suggested(db, THERAPIST), suggested(db, THERAPIST)
    unknown = (str(uuid.uuid4()), str(uuid.uuid4()))

    by_another = reject(token(OTHER_THERAPIST), mine)
    of_nobody = reject(token(OTHER_THERAPIST), unknown)
    first, second = reject(token(THERAPIST), mine), reject(token(THERAPIST), mine)
    by_the_operator = reject(SERVICE, for_the_operator)

    assert (by_another.status_code, by_another.json["error"]["code"]) == (404, "client_not_found")
    assert of_nobody.json == by_another.json
    assert [r.json for r in (first, second, by_the_operator)] == [{"outcome": "rejected"}] * 3
    assert not {mine, for_the_operator} & pairs(links(token(THERAPIST)))


def test_reject_link_refuses_a_user_who_is_not_a_therapist_and_a_bad_body(
    db: Databases, token: Callable[..., str]
) -> None:
    pair = suggested(db, THERAPIST)

    stranger = reject(token(uuid.uuid4()), pair)
    no_user = call(token(THERAPIST), {"mode": "reject_link", "client_id": pair[0]})

    assert (stranger.status_code, stranger.json["error"]["code"]) == (403, "not_a_therapist")
    assert no_user.status_code == 400
    assert pair in pairs(links(token(THERAPIST)))


def test_a_suggestion_is_not_shown_once_another_therapist_has_the_project_b_user(
    db: Databases, token: Callable[..., str]
) -> None:
    pair = suggested(db, THERAPIST)
    shown = pairs(links(token(THERAPIST)))

    booked = function_client("create_session").post(
        "/",
        json={"client_id": pair[1], "starts_at": "2031-07-08T10:00:00Z", "duration_minutes": 50},
        headers={"Authorization": f"Bearer {token(OTHER_THERAPIST)}"},
    )

    assert booked.status_code == 201
    assert pair in shown
    assert pair not in pairs(links(token(THERAPIST)))
    assert pair not in pairs(links(token(OTHER_THERAPIST)))


def test_a_suggestion_its_therapist_may_not_see_cannot_be_rejected_either(
    db: Databases, token: Callable[..., str]
) -> None:
    """Once another therapist has the Project B user, rejecting the pair answers as for a pair that never was."""
    pair = suggested(db, THERAPIST)
    booked = function_client("create_session").post(
        "/",
        json={"client_id": pair[1], "starts_at": "2031-07-09T10:00:00Z", "duration_minutes": 50},
        headers={"Authorization": f"Bearer {token(OTHER_THERAPIST)}"},
    )
    assert booked.status_code == 201

    hidden = reject(token(THERAPIST), pair)
    never_was = reject(token(THERAPIST), (pair[0], str(uuid.uuid4())))

    assert (hidden.status_code, hidden.json) == (404, never_was.json)


def test_no_suggestion_is_recorded_for_a_user_the_upsert_does_not_write(db: Databases) -> None:
    """A user whose email another synced client holds is a conflict: no suggestion for a native client with it."""
    email = random_email("conflicted")
    native, holder, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    db.add_project_a_client(native, THERAPIST, random_name("Native"), email)
    db.add_project_a_client(holder, None, random_name("Holder"), email, synced=True)
    db.add_project_b_client(user, random_name("Signed up"), email)

    assert call(SERVICE, {"client_id": str(user)}).json["outcome"] == "conflict"
    assert db.count("a", "private.link_suggestions", "project_b_user_id = %s", (user,)) == 0


def reconcile() -> None:
    cursor = None
    while True:
        page = call(SERVICE, {"mode": "reconcile", "cursor": cursor} if cursor else {"mode": "reconcile"})
        assert page.status_code == 200, page.json
        cursor = page.json["next_cursor"]
        if cursor is None:
            return


def test_reconcile_closes_a_suggestion_whose_emails_no_longer_match_and_opens_it_when_they_match_again(
    fresh: Databases, token: Callable[..., str]
) -> None:
    native, user, email = same_email(fresh, THERAPIST)
    reconcile()
    suggestion = "select closed_as from private.link_suggestions where client_id = %s and project_b_user_id = %s"
    opened = fresh.a.execute(suggestion, (native, user)).fetchone()

    fresh.b.execute("update auth.users set email = %s where id = %s", (random_email("moved"), user))
    fresh.b.execute("update public.profiles set updated_at = now() where id = %s", (user,))
    reconcile()
    closed = fresh.a.execute(suggestion, (native, user)).fetchone()
    listed_while_closed = pairs(links(token(THERAPIST)))
    fresh.b.execute("update auth.users set email = %s where id = %s", (email, user))
    fresh.b.execute("update public.profiles set updated_at = now() where id = %s", (user,))
    reconcile()

    assert opened == (None,)
    assert closed == ("stale",)
    assert (str(native), str(user)) not in listed_while_closed
    assert fresh.a.execute(suggestion, (native, user)).fetchone() == (None,)
    assert (str(native), str(user)) in pairs(links(token(THERAPIST)))
