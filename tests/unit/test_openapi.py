"""docs/openapi.json is what `make openapi` makes of the models today, and it names every answer the HTTP
functions can give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis

from ops.openapi import __main__ as openapi_main
from ops.openapi.document import EXAMPLES, OPERATIONS, build
from shared import errors

# Answered by a Lambda handler to events that are not HTTP requests, never to a request.
NOT_HTTP = {errors.InvalidEvent, errors.InvalidMessage, errors.EventKindNotHandled}


def _subclasses(cls: type[errors.ApiError]) -> set[type[errors.ApiError]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_the_committed_document_is_current() -> None:
    assert openapi_main.main(["--check"]) == 0, "docs/openapi.json is stale: run make openapi"


def test_check_mode_tells_a_stale_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text(openapi_main.render().replace('"client_synced"', '"client_copied"'))
    monkeypatch.setattr(openapi_main, "DOCUMENT", stale)
    assert openapi_main.main(["--check"]) == 1
    monkeypatch.setattr(openapi_main, "DOCUMENT", tmp_path / "missing.json")
    assert openapi_main.main(["--check"]) == 1


def test_every_error_code_a_request_can_get_is_in_the_document() -> None:
    http_errors = (_subclasses(errors.ApiError) - NOT_HTTP - {errors.HttpError}) | {errors.ApiError}
    listed = {error for operation in OPERATIONS for error in operation.errors}
    assert http_errors - listed == set()
    codes = json.dumps(build()["paths"])
    for error in http_errors:
        assert f'"{error.code}"' in codes, error


def test_each_operation_lists_its_errors_under_their_statuses() -> None:
    document = build()
    for operation in OPERATIONS:
        responses = document["paths"][operation.path]["post"]["responses"]
        for error in operation.errors:
            schema = responses[str(error.status)]["content"]["application/json"]["schema"]
            assert error.code in schema["properties"]["error"]["properties"]["code"]["enum"], (operation, error)


def test_every_mode_of_sync_client_is_a_body_of_the_document() -> None:
    body = build()["paths"]["/sync"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    names = {ref["$ref"].rsplit("/", 1)[1] for ref in body["oneOf"]}
    assert names == {
        "SyncOneRequest",
        "BulkSyncRequest",
        "StatusRequest",
        "InviteRequest",
        "LinkSuggestionsRequest",
        "LinkRequest",
        "RejectLinkRequest",
    }


def test_schemathesis_reads_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(build())
    labels = {operation.ok().label for operation in schema.get_all_operations()}
    assert labels == {"POST /sessions", "POST /webhooks/project-b", "POST /sync"}


def test_every_request_body_has_examples_its_model_takes() -> None:
    requests = {model for operation in OPERATIONS for model in operation.requests}
    assert requests == set(EXAMPLES)
    for model, examples in EXAMPLES.items():
        assert examples, model
        for example in examples:
            model.model_validate_json(json.dumps(example))


def test_each_listed_error_is_answered_as_the_document_says() -> None:
    import jsonschema_rs

    from shared.http import error_response

    document = build()
    for operation in OPERATIONS:
        responses = document["paths"][operation.path]["post"]["responses"]
        for error in operation.errors:
            details = {"fields": ["starts_at"]} if error.status == 400 else {}
            answer = error_response(error("A message", **details), retry_after_seconds=2)
            declared = responses[str(answer.status)]
            assert jsonschema_rs.validator_for(declared["content"]["application/json"]["schema"]).is_valid(
                answer.body
            ), (operation.operation_id, error, answer.body)
            for name, header in declared.get("headers", {}).items():
                if header.get("required"):
                    assert name in answer.headers, (operation.operation_id, error, name)
