"""The contract, fuzzed: schemathesis generates requests from docs/openapi.json, valid and invalid, with the
right and the wrong credentials, and sends them to each function served over HTTP on both backends. Every answer
must match the document (status, error code, body, headers), none may be a 5xx, and the row counts of both
databases may change only through a request that answered 2xx. FUZZ_EXAMPLES sets the requests per operation and
backend (`make fuzz`: 10,000); FUZZ_SEED picks other requests."""

from __future__ import annotations

import copy
import json
import os
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.localdb import LocalProjects, auth_admin_url
from devtools.tokens import sign_service_role_token
from ops.openapi.document import EXAMPLES, OPERATIONS
from shared.wiring import sync_service
from tests.conftest import JWT_SECRET, Databases
from tests.integration.fuzzing import (
    FUZZED,
    RowStates,
    caller_headers,
    changed,
    seed_clients,
    webhook_headers,
    with_known_ids,
)
from tests.integration.helpers import ROOT, serve_function

REQUESTS = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
# make test's runs are the same each time; `make fuzz` draws a seed (FUZZ_SEED=random) and the summary names it.
SEED = int(os.environ.get("FUZZ_SEED", "20261203").replace("random", str(random.randrange(2**32))))
DOCUMENT = json.loads((ROOT / "docs" / "openapi.json").read_text())
FUNCTIONS = {"/sessions": "create_session", "/webhooks/project-b": "project_b_webhook", "/sync": "sync_client"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def operation_of(path: str) -> Any:
    (operation,) = (operation for operation in OPERATIONS if operation.path == path)
    return operation


@pytest.fixture
def configured(
    backend: str,
    fresh_projects: LocalProjects,
    fresh: Databases,
    aws: Any,
    reconfigure: Callable[..., None],
    tmp_path: Any,
) -> Iterator[None]:
    """The fresh projects with everything configured: invites (Project B's Auth stand-in over the fresh Project B)
    and the retry queue with its dead-letter queue (moto)."""
    from devtools.auth_admin import serving

    queue = aws.create_queue(QueueName=f"retry-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dead = aws.create_queue(QueueName=f"dead-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    auth_db = auth_admin_url(fresh_projects.server_url, fresh_projects.project_b_url)
    with serving(auth_db, JWT_SECRET, mail_dir=tmp_path) as auth:
        reconfigure(
            PROJECT_B_AUTH_URL=auth.url,
            PROJECT_B_SERVICE_ROLE_KEY=sign_service_role_token(JWT_SECRET),
            SYNC_RETRY_QUEUE_URL=queue,
            SYNC_DEAD_LETTER_QUEUE_URL=dead,
        )
        yield


@pytest.mark.parametrize("path", FUNCTIONS)
def test_every_answer_matches_the_document_and_only_2xx_writes(
    path: str, backend: str, configured: None, fresh: Databases, token: Callable[..., str]
) -> None:
    seeded = seed_clients(fresh)
    for _, user in seeded.link_pairs:  # in Project A with a native client's email: the link is suggested
        sync_service().sync_client(user)
    operation = schemathesis.openapi.from_dict(DOCUMENT)[path]["POST"]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    examples = [example for model in operation_of(path).requests for example in EXAMPLES[model]]
    credentials = webhook_headers(token) if path == "/webhooks/project-b" else caller_headers(token)
    rows = RowStates(fresh.a, fresh.b)
    statuses: Counter[int] = Counter()
    answered: Counter[str] = Counter()  # 2xx answers by the body's mode
    generated = [0]
    session = requests.Session()
    latest = {"rows": rows.snapshot()}

    with serve_function(FUNCTIONS[path]) as url:

        @seed(SEED)
        @settings(
            # A fifth of the bodies are the document's examples: the generated ones are still REQUESTS or more.
            max_examples=REQUESTS * 5 // 4 + 50,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        @given(
            case=cases,
            headers=st.sampled_from(credentials),
            client=st.sampled_from([None, *seeded.ids]),
            pair=st.sampled_from([None, *seeded.link_pairs]),
            source=st.sampled_from([None, ("public", "profiles"), ("auth", "users")]),
            # The document's examples now and then, in place of a generated body: every mode gets its turn.
            example=st.sampled_from([None] * 4 * len(examples) + examples),
        )
        def send(
            case: Any,
            headers: dict[str, str] | None,
            client: uuid.UUID | None,
            pair: tuple[uuid.UUID, uuid.UUID] | None,
            source: tuple[str, str] | None,
            example: dict[str, Any] | None,
        ) -> None:
            if example is not None:
                case.body = copy.deepcopy(example)
            else:
                generated[0] += 1
            case.body = with_known_ids(case.body, client, pair)
            if source is not None and isinstance(case.body, dict) and {"schema", "table"} <= case.body.keys():
                case.body = {**case.body, "schema": source[0], "table": source[1]}
            if headers is not None:
                case.headers = {key: value for key, value in (case.headers or {}).items() if key != "Authorization"}
                case.headers.update(headers)
            response = case.call(base_url=url.rstrip("/"), session=session)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)
            after = rows.snapshot()
            if 200 <= response.status_code < 300:
                answered[str(case.body.get("mode", "one client"))] += 1
            else:
                assert changed(latest["rows"], after) == [], (
                    f"{response.status_code} {response.text} changed: {changed(latest['rows'], after)}"
                )
            latest["rows"] = after

        send()

    FUZZED.append(
        f"{FUNCTIONS[path]} ({backend}, seed {SEED}): {sum(statuses.values())} requests ({generated[0]} generated), "
        f"by status {dict(sorted(statuses.items()))}"
        + (f", 2xx by mode {dict(sorted(answered.items()))}" if path == "/sync" else "")
    )
    assert generated[0] >= REQUESTS
    assert sum(answered.values()) > 0, "no request reached the function's work: are the right credentials refused?"
    if path == "/sync" and REQUESTS >= 1000:
        assert set(answered) >= {"one client", "backfill", "reconcile", "status", "invite", "links", "reject_link"}
