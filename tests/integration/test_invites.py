"""sync_client's invite mode: a therapist's own client joins Project B under the same UUID, through the Auth admin
API (devtools' GoTrue stand-in over the real Project B database), and becomes synced from Project B."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devtools.localdb import register_therapists
from devtools.tokens import sign_service_role_token
from shared import wiring
from tests.conftest import JWT_SECRET, OTHER_THERAPIST, THERAPIST, AuthStandIn, Databases
from tests.integration.helpers import function_client, function_module
from tests.integration.test_sync_client_messages import sqs_event
from tests.random_refs import random_email, random_name

pytestmark = pytest.mark.usefixtures("backend")

SERVICE = sign_service_role_token(JWT_SECRET)
PHONE, NOTES, BIRTH = "+44 20 7946 0000", "Clinical: panic attacks since May", "1984-03-07"


@pytest.fixture
def auth(backend: str, project_b_auth: AuthStandIn, reconfigure: Callable[..., None]) -> AuthStandIn:
    """Invites configured: Project B's Auth API (the stand-in) and its service-role key."""
    reconfigure(PROJECT_B_AUTH_URL=project_b_auth.url, PROJECT_B_SERVICE_ROLE_KEY=SERVICE)
    return project_b_auth


def call(bearer: str, body: dict[str, Any]) -> Any:
    return function_client("sync_client").post("/", json=body, headers={"Authorization": f"Bearer {bearer}"})


def invite(bearer: str, client_id: Any) -> Any:
    return call(bearer, {"mode": "invite", "client_id": str(client_id)})


def native_client(db: Databases, therapist: uuid.UUID, email: str | None = "") -> tuple[uuid.UUID, str]:
    """A native client of `therapist` with clinical fields and a session; its id and email."""
    client_id = uuid.uuid4()
    address = random_email("Native") if email == "" else email
    db.add_project_a_client(client_id, therapist, random_name("Native"), address)
    db.a.execute(
        "update public.clients set phone = %s, notes = %s, date_of_birth = %s where id = %s",
        (PHONE, NOTES, BIRTH, client_id),
    )
    db.a.execute(
        "insert into public.sessions (therapist_id, client_id, starts_at, duration_minutes, notes)"
        " values (%s, %s, now() + interval '1 day', 50, 'session notes')",
        (therapist, client_id),
    )
    return client_id, address or ""


def mail_to(auth: AuthStandIn, address: str) -> list[EmailMessage]:
    parser = BytesParser(policy=policy.default)
    found = []
    for path in sorted(Path(auth.mail_dir).glob("*.eml")):
        message = parser.parsebytes(path.read_bytes())
        if str(message["To"]).lower() == address.lower():
            found.append(message)
    return found  # type: ignore[return-value]


def project_b_user(db: Databases, client_id: uuid.UUID) -> dict[str, Any] | None:
    row = db.b.execute("select row_to_json(u)::jsonb from auth.users u where u.id = %s", (client_id,)).fetchone()
    return row[0] if row else None


def test_an_invite_creates_the_user_profile_and_invitation_and_the_client_becomes_synced(
    db: Databases, auth: AuthStandIn, token: Callable[..., str]
) -> None:
    client_id, email = native_client(db, THERAPIST)
    name = db.client(client_id)["full_name"]

    response = invite(token(THERAPIST), client_id)

    assert (response.status_code, response.json) == (200, {"outcome": "invited", "client_id": str(client_id)})
    user = project_b_user(db, client_id)
    assert user is not None and user["email"] == email.lower() and user["email_confirmed_at"] is None
    assert user["invited_at"] is not None and user["raw_app_meta_data"]["invited_from"] == "project_a"
    # What Project B holds of the client: the id, the email and the name; nothing else of Project A's.
    assert db.source(client_id) == {
        "id": client_id,
        "name": name,
        "email": email.lower(),
        "age": None,
        "gender_identity": None,
        "avatar_url": None,
        "updated_at": db.source(client_id)["updated_at"],
    }
    profile = db.b.execute("select row_to_json(p) from public.profiles p where id = %s", (client_id,)).fetchone()
    held = json.dumps([user, profile[0]])
    for clinical in (PHONE, NOTES, BIRTH, "session notes"):
        assert clinical not in held
    assert not user.get("raw_user_meta_data")
    (message,) = mail_to(auth, email)
    assert "type=invite" in message.get_content()
    # Project A's client is synced from Project B now, and keeps its own fields and sessions.
    row = db.client(client_id)
    assert (row["synced_from"], row["therapist_id"], row["phone"], row["notes"], str(row["date_of_birth"])) == (
        "project_b",
        THERAPIST,
        PHONE,
        NOTES,
        BIRTH,
    )
    assert row["source_updated_at"] is not None
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


def test_an_invite_asked_again_creates_and_sends_nothing_more(
    db: Databases, auth: AuthStandIn, token: Callable[..., str]
) -> None:
    client_id, email = native_client(db, THERAPIST)
    assert invite(token(THERAPIST), client_id).status_code == 200
    before = db.counts()

    again = invite(token(THERAPIST), client_id)

    assert (again.status_code, again.json) == (200, {"outcome": "already_invited", "client_id": str(client_id)})
    assert db.counts() == before
    assert len(mail_to(auth, email)) == 1


def test_project_b_owns_the_name_and_email_once_invited(
    db: Databases, auth: AuthStandIn, token: Callable[..., str]
) -> None:
    client_id, _ = native_client(db, THERAPIST)
    assert invite(token(THERAPIST), client_id).status_code == 200
    db.b.execute("update public.profiles set name = 'Chosen Name' where id = %s", (client_id,))

    assert call(SERVICE, {"client_id": str(client_id)}).status_code == 200

    row = db.client(client_id)
    assert (row["full_name"], row["notes"], row["phone"]) == ("Chosen Name", NOTES, PHONE)


@pytest.mark.parametrize("step", ["create_invited_profile", "send_invitation", "record_invite"])
def test_a_crash_between_the_steps_converges_on_the_next_call(
    db: Databases, auth: AuthStandIn, token: Callable[..., str], monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """The process dies before `step` (the user, or the user and profile, or all of Project B's part exist); the
    next call goes on from there: one user, one profile, at most one more invitation, and the client synced."""
    client_id, email = native_client(db, THERAPIST)
    crashed_before(monkeypatch, step, token(THERAPIST), client_id)
    assert project_b_user(db, client_id) is not None
    assert db.client(client_id)["synced_from"] is None

    response = invite(token(THERAPIST), client_id)

    assert (response.status_code, response.json) == (200, {"outcome": "invited", "client_id": str(client_id)})
    assert db.count("b", "auth.users", "id = %s", (client_id,)) == 1
    assert db.count("b", "public.profiles", "id = %s", (client_id,)) == 1
    # One invitation, or one more when the crash came after it was sent.
    assert len(mail_to(auth, email)) == (2 if step == "record_invite" else 1)
    assert db.client(client_id)["synced_from"] == "project_b"
    assert invite(token(THERAPIST), client_id).json["outcome"] == "already_invited"


def test_another_therapists_client_and_an_unknown_id_are_the_same_404_and_write_nothing(
    db: Databases, auth: AuthStandIn, token: Callable[..., str]
) -> None:
    theirs, email = native_client(db, OTHER_THERAPIST)
    before = db.counts()

    mine = invite(token(THERAPIST), theirs)
    unknown = invite(token(THERAPIST), uuid.uuid4())

    assert mine.status_code == unknown.status_code == 404
    assert (
        mine.json["error"]
        == unknown.json["error"]
        == {
            "code": "client_not_found",
            "message": "No client of yours has this id",
        }
    )
    assert db.counts() == before and project_b_user(db, theirs) is None and mail_to(auth, email) == []


def test_a_user_who_is_not_a_therapist_is_403(db: Databases, auth: AuthStandIn, token: Callable[..., str]) -> None:
    client_id, _ = native_client(db, THERAPIST)

    response = invite(token(uuid.uuid4()), client_id)

    assert (response.status_code, response.json["error"]["code"]) == (403, "not_a_therapist")
    assert project_b_user(db, client_id) is None


def test_the_service_role_invites_any_native_client(
    db: Databases, auth: AuthStandIn, token: Callable[..., str]
) -> None:
    client_id, _ = native_client(db, OTHER_THERAPIST)

    response = invite(SERVICE, client_id)

    assert (response.status_code, response.json["outcome"]) == (200, "invited")
    assert db.client(client_id)["therapist_id"] == OTHER_THERAPIST


@pytest.mark.parametrize(
    ("arrange", "status", "code"),
    [
        ("synced", 409, "not_a_native_client"),
        ("no_email", 409, "client_has_no_email"),
        ("blank_email", 409, "client_has_no_email"),
        ("archived", 409, "client_archived"),
    ],
)
def test_what_cannot_be_invited_is_refused_and_nothing_is_written(
    projects: Any, db: Databases, auth: AuthStandIn, token: Callable[..., str], arrange: str, status: int, code: str
) -> None:
    email: str | None = {"no_email": None, "blank_email": "  "}.get(arrange, "")
    therapist = THERAPIST
    if arrange == "blank_email":  # a therapist of its own: a blank email is still unique among their clients
        therapist = uuid.uuid4()
        register_therapists(projects.project_a_url, [therapist])
    client_id, _ = native_client(db, therapist, email)
    if arrange == "synced":
        db.a.execute("update public.clients set synced_from = 'project_b' where id = %s", (client_id,))
    if arrange == "archived":
        db.a.execute("update public.clients set status = 'archived' where id = %s", (client_id,))
    before = db.counts()

    response = invite(token(therapist), client_id)

    assert (response.status_code, response.json["error"]["code"]) == (status, code)
    assert db.counts() == before and project_b_user(db, client_id) is None


def test_an_email_another_project_b_user_has_writes_nothing_and_its_queued_sync_suggests_the_link(
    db: Databases,
    auth: AuthStandIn,
    token: Callable[..., str],
    aws: Any,
    reconfigure: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = aws.create_queue(QueueName=f"invite-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    reconfigure(SYNC_RETRY_QUEUE_URL=queue)
    client_id, email = native_client(db, THERAPIST)
    user = uuid.uuid4()
    db.add_project_b_client(user, random_name("Signed up"), email.upper())  # not synced into Project A yet
    before = db.counts()

    response = invite(token(THERAPIST), client_id)

    assert (response.status_code, response.json["error"]["code"]) == (409, "email_in_use_in_project_b")
    assert db.counts() == before and db.client(user) is None and project_b_user(db, client_id) is None
    assert mail_to(auth, email) == [] and db.client(client_id)["synced_from"] is None
    (queued,) = aws.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert json.loads(queued["Body"]) == {"client_id": str(user), "table": "auth.users", "type": "UPDATE"}
    logged = [json.loads(r.getMessage()) for r in caplog.records if '"invite_email_in_use"' in r.getMessage()]
    assert logged == [
        {
            "level": "info",
            "event": "invite_email_in_use",
            "client_id": str(client_id),
            "project_b_user_id": str(user),
            "queued": "True",
        }
    ]  # ids only: an operator can sync it

    answer = function_module("sync_client").lambda_handler(
        sqs_event({queued["MessageId"]: json.loads(queued["Body"])}), None
    )

    assert answer == {"batchItemFailures": []}
    listed = call(token(THERAPIST), {"mode": "links"})
    assert {"client_id": str(client_id), "project_b_user_id": str(user)} in [
        {key: s[key] for key in ("client_id", "project_b_user_id")} for s in listed.json["suggestions"]
    ]


def test_concurrent_invites_of_one_client_create_one_user(
    db: Databases, auth: AuthStandIn, token: Callable[..., str]
) -> None:
    client_id, email = native_client(db, THERAPIST)
    bearer = token(THERAPIST)
    barrier = threading.Barrier(4)
    answers: list[Any] = []

    def run() -> None:
        barrier.wait()
        answers.append(invite(bearer, client_id))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answer.status_code for answer in answers) == [200] * 4
    assert {answer.json["outcome"] for answer in answers} <= {"invited", "already_invited"}
    assert db.count("b", "auth.users", "id = %s", (client_id,)) == 1
    assert db.count("b", "public.profiles", "id = %s", (client_id,)) == 1
    assert 1 <= len(mail_to(auth, email)) <= 4
    assert db.client(client_id)["synced_from"] == "project_b"


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "invite"},
        {"mode": "invite", "client_id": "not-a-uuid"},
        {"mode": "invite", "client_id": str(uuid.uuid4()), "email": "someone@example.test"},
        {"mode": "invite", "client_id": 7},
    ],
)
def test_a_bad_invite_body_is_400_and_writes_nothing(
    db: Databases, auth: AuthStandIn, token: Callable[..., str], body: dict[str, Any]
) -> None:
    before = db.counts()

    response = call(token(THERAPIST), body)

    assert (response.status_code, response.json["error"]["code"]) == (400, "invalid_request")
    assert db.counts() == before


@pytest.mark.direct_only("on the client backend, PROJECT_B_URL and its key configure Project B's Auth API too")
def test_without_project_b_auth_configured_an_invite_is_503_and_the_rest_works(
    db: Databases, token: Callable[..., str]
) -> None:
    client_id, _ = native_client(db, THERAPIST)

    response = invite(token(THERAPIST), client_id)

    assert response.status_code == 503
    assert response.json["error"]["code"] == "project_b_auth_not_configured"
    assert "PROJECT_B_SERVICE_ROLE_KEY" in response.json["error"]["message"]
    assert call(token(THERAPIST), {"mode": "links"}).status_code == 200
    assert db.client(client_id)["synced_from"] is None


def test_a_project_b_user_of_its_own_with_the_clients_id_is_409_and_gets_no_profile(
    db: Databases, auth: AuthStandIn, token: Callable[..., str]
) -> None:
    client_id, email = native_client(db, THERAPIST)
    db.b.execute("insert into auth.users (id, email) values (%s, %s)", (client_id, random_email("own")))

    response = invite(token(THERAPIST), client_id)

    assert (response.status_code, response.json["error"]["code"]) == (409, "id_in_use_in_project_b")
    assert db.count("b", "public.profiles", "id = %s", (client_id,)) == 0 and mail_to(auth, email) == []
    assert db.client(client_id)["synced_from"] is None


def test_in_sql_only_a_user_an_invite_created_gets_a_profile_from_create_invited_profile(db: Databases) -> None:
    own, invited = uuid.uuid4(), uuid.uuid4()
    db.b.execute("insert into auth.users (id, email) values (%s, %s)", (own, random_email("own")))
    db.b.execute(
        'insert into auth.users (id, email, raw_app_meta_data) values (%s, %s, \'{"invited_from": "project_a"}\')',
        (invited, random_email("invited")),
    )

    for user in (own, invited):
        db.b.execute("select * from public.create_invited_profile(%s, 'Name')", (user,))

    assert db.count("b", "public.profiles", "id = %s", (own,)) == 0
    assert db.count("b", "public.profiles", "id = %s", (invited,)) == 1
    targets = [
        db.b.execute("select public.invite_target(%s, 'x@example.test')", (u,)).fetchone()[0] for u in (own, invited)
    ]
    assert [t["user"] for t in targets] == ["other", "invited"]


def test_in_sql_a_second_record_of_one_invite_waits_for_the_first_and_answers_already_invited(
    projects: Any, db: Databases
) -> None:
    client_id, email = native_client(db, THERAPIST)
    state = json.dumps({"profile": {"name": "Invited", "email": email}, "updated_at": "2030-01-01T00:00:00Z"})
    record = "select public.record_invite_as(null, %s, %s)"
    answers: list[Any] = []
    with psycopg.connect(projects.project_a_url) as first, psycopg.connect(projects.project_a_url) as second:
        assert first.execute(record, (client_id, state)).fetchone()[0]["outcome"] == "invited"  # not committed
        pid = second.info.backend_pid
        waiter = threading.Thread(target=lambda: answers.append(second.execute(record, (client_id, state)).fetchone()))
        waiter.start()
        waiting = "select wait_event_type from pg_stat_activity where pid = %s"
        while waiter.is_alive() and db.a.execute(waiting, (pid,)).fetchone()[0] != "Lock":
            waiter.join(0.01)
        first.commit()
        waiter.join()
        second.commit()

    assert answers[0][0] == {"outcome": "already_invited", "client_id": str(client_id)}
    assert db.count("a", "private.client_invites", "client_id = %s", (client_id,)) == 1


def crashed_before(monkeypatch: pytest.MonkeyPatch, step: str, bearer: str, client_id: uuid.UUID) -> None:
    """An invite whose process dies before `step`."""
    service = wiring.invite_service()
    owner = {"create_invited_profile": service.project_b, "send_invitation": service.auth}.get(step, service.project_a)

    def crash(*_: Any, **__: Any) -> Any:
        raise SystemExit("crashed")

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(owner, step, crash)
        invite(bearer, client_id)


def test_after_a_crash_the_invitation_goes_to_the_email_project_b_has_not_to_a_new_one(
    db: Databases, auth: AuthStandIn, token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id, email = native_client(db, THERAPIST)
    crashed_before(monkeypatch, "send_invitation", token(THERAPIST), client_id)
    changed = random_email("Changed")
    db.a.execute("update public.clients set email = %s where id = %s", (changed, client_id))

    response = invite(token(THERAPIST), client_id)

    assert (response.status_code, response.json["outcome"]) == (200, "invited")
    assert len(mail_to(auth, email)) == 1 and mail_to(auth, changed) == []
    assert db.count("b", "auth.users", "lower(email) = lower(%s)", (changed,)) == 0
    assert db.client(client_id)["email"] == email.lower()  # Project B owns the email from now on


def test_a_sync_between_the_profile_and_the_record_converges(
    db: Databases, auth: AuthStandIn, token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook syncs the new profile before the invite is recorded: a conflict of kind id, which the invite's
    record resolves."""
    client_id, _ = native_client(db, THERAPIST)
    crashed_before(monkeypatch, "record_invite", token(THERAPIST), client_id)
    synced = call(SERVICE, {"client_id": str(client_id)})
    conflict = "select count(*) from private.sync_conflicts where client_id = %s and resolved_at is null"
    open_before = db.a.execute(conflict, (client_id,)).fetchone()[0]

    response = invite(token(THERAPIST), client_id)

    assert synced.json["outcome"] == "conflict" and open_before == 1
    assert (response.status_code, response.json["outcome"]) == (200, "invited")
    assert db.a.execute(conflict, (client_id,)).fetchone()[0] == 0
    assert call(SERVICE, {"client_id": str(client_id)}).json["outcome"] == "unchanged"


def test_a_profile_project_b_made_without_a_name_gets_the_clients_name(
    db: Databases, auth: AuthStandIn, token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id, _ = native_client(db, THERAPIST)
    name = db.client(client_id)["full_name"]
    crashed_before(monkeypatch, "create_invited_profile", token(THERAPIST), client_id)
    db.b.execute("insert into public.profiles (id) values (%s)", (client_id,))  # as a sign-up trigger would

    assert invite(token(THERAPIST), client_id).status_code == 200

    assert db.source(client_id)["name"] == name and db.client(client_id)["full_name"] == name


@pytest.mark.parametrize("status", ["active", "archived"])
def test_an_email_a_synced_client_holds_is_refused_before_project_b_is_touched(
    db: Databases, auth: AuthStandIn, token: Callable[..., str], status: str
) -> None:
    client_id, email = native_client(db, THERAPIST)
    holder = uuid.uuid4()
    db.add_project_a_client(holder, None, random_name("Copy"), email.upper(), synced=True)
    db.a.execute("update public.clients set status = %s where id = %s", (status, holder))
    before = db.count("b", "auth.users")

    response = invite(token(THERAPIST), client_id)

    assert (response.status_code, response.json["error"]["code"]) == (409, "email_in_use_in_project_b")
    assert db.count("b", "auth.users") == before and mail_to(auth, email) == []
    assert db.client(client_id)["synced_from"] is None


def test_in_sql_a_record_the_upsert_refuses_keeps_nothing(db: Databases) -> None:
    """A synced client took the email after the invite's check: the record answers email_in_use and keeps neither
    the invite nor the conflict the upsert noted."""
    client_id, email = native_client(db, THERAPIST)
    db.add_project_a_client(uuid.uuid4(), None, random_name("Copy"), email, synced=True)
    state = json.dumps({"profile": {"name": "Invited", "email": email}, "updated_at": "2030-01-01T00:00:00Z"})

    answer = db.a.execute("select public.record_invite_as(null, %s, %s)", (client_id, state)).fetchone()[0]

    assert answer == {"outcome": "email_in_use", "client_id": str(client_id)}
    assert db.count("a", "private.client_invites", "client_id = %s", (client_id,)) == 0
    assert db.count("a", "private.sync_conflicts", "client_id = %s", (client_id,)) == 0
    assert db.client(client_id)["synced_from"] is None
