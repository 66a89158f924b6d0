"""The OpenAPI 3.1 document of the three HTTP functions: each one POST route, its request body (every mode of
sync_client's), its answers and every error status with the codes it can carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ops.openapi import answers
from shared import errors, models

THERAPIST: dict[str, list[str]] = {"therapistToken": []}
SERVICE_ROLE: dict[str, list[str]] = {"serviceRoleToken": []}
WEBHOOK_SECRET: dict[str, list[str]] = {"webhookSecret": []}

# Every function refuses these the same way (docs/http-api.md, "Common to all three"), and may fail unexpectedly.
COMMON_ERRORS: tuple[type[errors.ApiError], ...] = (
    errors.InvalidRequest,
    errors.Unauthorized,
    errors.MethodNotAllowed,
    errors.PayloadTooLarge,
    errors.UnsupportedMediaType,
    errors.UpstreamUnavailable,
    errors.ApiError,  # 500 internal_error
)


@dataclass(frozen=True)
class Operation:
    path: str
    operation_id: str
    summary: str
    description: str
    security: list[dict[str, list[str]]]
    requests: tuple[type[BaseModel], ...]
    answers: dict[int, tuple[str, tuple[type[BaseModel], ...]]]
    errors: tuple[type[errors.ApiError], ...]
    parameters: list[dict[str, Any]] = field(default_factory=list)
    answer_headers: dict[int, dict[str, Any]] = field(default_factory=dict)


OPERATIONS = (
    Operation(
        path="/sessions",
        operation_id="create_session",
        summary="Book a session for the therapist of the token",
        description=(
            "A client Project A does not have yet is first copied from Project B, with the same id, in the same "
            "transaction. The therapist is the token's `sub`, never a field. A client that is not yours, or in "
            "neither project, is one answer: 404 client_not_found."
        ),
        security=[THERAPIST],
        requests=(models.CreateSessionRequest,),
        answers={201: ("The session, booked (or replayed for the same Idempotency-Key)", (answers.CreatedSession,))},
        answer_headers={
            201: {
                "Idempotent-Replayed": {
                    "description": "`true` when an earlier request with this Idempotency-Key booked the session",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            }
        },
        errors=(
            *COMMON_ERRORS,
            errors.NotATherapist,
            errors.ClientNotFound,
            errors.EmailConflict,
            errors.ClientArchived,
            errors.IdempotencyKeyReused,
        ),
        parameters=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Per therapist: the same key with the same details answers the same session",
                "schema": models.IdempotencyKeyHeader.json_schema(),
            }
        ],
    ),
    Operation(
        path="/webhooks/project-b",
        operation_id="project_b_webhook",
        summary="Project B's database webhook: sync the changed client into Project A",
        description=(
            "Only the ids of `record` and `old_record` are used; the client is read again from Project B. The "
            "sources taken are public.profiles and auth.users. An INSERT or UPDATE needs `record`, a DELETE "
            "`old_record`."
        ),
        security=[WEBHOOK_SECRET],
        requests=(models.WebhookEvent,),
        answers={
            200: ("Applied (a conflict writes nothing)", (answers.Applied,)),
            202: ("A project stayed unavailable: the client's id is on the retry queue", (answers.QueuedForRetry,)),
        },
        errors=COMMON_ERRORS,
    ),
    Operation(
        path="/sync",
        operation_id="sync_client",
        summary="Sync one client, page a backfill or reconcile, invite, link, or read the sync's status",
        description=(
            "The body's `mode` picks what it does; without one it syncs one client. Backfill, reconcile and status "
            "need a service_role token (else 403 forbidden). A sharded backfill (`shards`) starts from the "
            "beginning, without cursor or dry_run; `full` is for reconcile only."
        ),
        security=[THERAPIST, SERVICE_ROLE],
        requests=(
            models.SyncOneRequest,
            models.BulkSyncRequest,
            models.StatusRequest,
            models.InviteRequest,
            models.LinkSuggestionsRequest,
            models.LinkRequest,
            models.RejectLinkRequest,
        ),
        answers={
            200: (
                "Done: the answer of the body's mode",
                (
                    answers.Applied,
                    answers.Page,
                    answers.Status,
                    answers.Invited,
                    answers.LinkSuggestions,
                    answers.Linked,
                    answers.Rejected,
                ),
            ),
            202: ("A sharded backfill: its jobs are queued", (answers.JobsQueued,)),
        },
        errors=(
            *COMMON_ERRORS,
            errors.Forbidden,
            errors.NotATherapist,
            errors.ClientNotFound,
            errors.ClientArchived,
            errors.EmailNotConfirmed,
            errors.NotANativeClient,
            errors.ClientHasNoEmail,
            errors.InvalidClientEmail,
            errors.EmailInUseInProjectB,
            errors.IdInUseInProjectB,
            errors.InvitesNotConfigured,
            errors.QueueNotConfigured,
        ),
    ),
)

_B_USER = "bbbbbbbb-0000-4000-8000-000000000003"  # the sample data's Bob Wilson, only in Project B
_NATIVE = "aaaaaaaa-0000-4000-8000-000000000002"  # and a native client of Project A
# Request bodies as the document shows them (the fuzz test sends them too, with its seeded ids).
EXAMPLES: dict[type[BaseModel], list[dict[str, Any]]] = {
    models.CreateSessionRequest: [
        {"client_id": _B_USER, "starts_at": "2030-01-15T10:00:00+02:00", "duration_minutes": 50}
    ],
    models.WebhookEvent: [
        {
            "type": "UPDATE",
            "table": "profiles",
            "schema": "public",
            "record": {"id": _B_USER},
            "old_record": {"id": _B_USER},
        },
        {"type": "DELETE", "table": "users", "schema": "auth", "record": None, "old_record": {"id": _B_USER}},
    ],
    models.SyncOneRequest: [{"client_id": _B_USER}],
    models.BulkSyncRequest: [
        {"mode": "backfill", "cursor": None, "limit": 1000},
        {"mode": "backfill", "dry_run": True},
        {"mode": "backfill", "shards": 4},
        {"mode": "reconcile", "full": True},
    ],
    models.StatusRequest: [{"mode": "status"}],
    models.InviteRequest: [{"mode": "invite", "client_id": _NATIVE}],
    models.LinkSuggestionsRequest: [{"mode": "links"}],
    models.LinkRequest: [{"mode": "link", "client_id": _NATIVE, "project_b_user_id": _B_USER}],
    models.RejectLinkRequest: [{"mode": "reject_link", "client_id": _NATIVE, "project_b_user_id": _B_USER}],
}

ERROR_HEADERS: dict[int, dict[str, Any]] = {
    405: {
        "Allow": {"description": "The method to use", "required": True, "schema": {"type": "string", "enum": ["POST"]}}
    },
    503: {
        "Retry-After": {
            "description": "With upstream_unavailable: seconds to wait before trying again (a configuration's 503 has "
            "none)",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}


def build() -> dict[str, Any]:
    schemas = _component_schemas()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "client-sync",
            "version": "1.0.0",
            "description": (
                "The three HTTP functions that keep therapy clients consistent between two Supabase projects. "
                'Every body, in and out, is JSON; every error is `{"error": {"code", "message"}}`. '
                "Generated from the functions' pydantic models by `make openapi`: do not edit by hand. "
                "Deployed behind API Gateway's HTTP API, a method or path it has no route for is its own "
                '`404 {"message": "Not Found"}`, and its throttling (429) and timeouts (503, 504) answer in its '
                "shape, not this one."
            ),
        },
        "servers": [{"url": "https://{api}.execute-api.{region}.amazonaws.com", "variables": _server_variables()}],
        "paths": {operation.path: {"post": _operation(operation)} for operation in OPERATIONS},
        "components": {"schemas": schemas, "securitySchemes": _security_schemes()},
    }


def _component_schemas() -> dict[str, Any]:
    requests: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "validation") for operation in OPERATIONS for model in operation.requests
    ]
    answered: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "serialization")
        for operation in OPERATIONS
        for _, models_ in operation.answers.values()
        for model in models_
    ]
    _, schema = models_json_schema(
        list(dict.fromkeys([*requests, *answered])), ref_template="#/components/schemas/{model}"
    )
    for model, examples in EXAMPLES.items():
        schema["$defs"][model.__name__]["examples"] = examples
    return dict(sorted(schema["$defs"].items()))


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _one_of(models_: tuple[type[BaseModel], ...], keyword: str) -> dict[str, Any]:
    return _ref(models_[0]) if len(models_) == 1 else {keyword: [_ref(model) for model in models_]}


def _operation(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (description, models_) in operation.answers.items():
        # anyOf: some answers share a shape ({outcome, client_id}), which oneOf would refuse.
        responses[str(status)] = _response(description, _one_of(models_, "anyOf"), operation.answer_headers.get(status))
    by_status: dict[int, list[type[errors.ApiError]]] = {}
    for error in operation.errors:
        by_status.setdefault(error.status, []).append(error)
    for status in sorted(by_status):
        refused = by_status[status]
        description = "; ".join(f"`{error.code}`: {_first_line(error)}" for error in refused)
        responses[str(status)] = _response(
            description,
            _error_schema([error.code for error in refused], fields=status == 400),
            ERROR_HEADERS.get(status),
        )
    return {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": operation.description,
        "security": operation.security,
        "parameters": operation.parameters,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _one_of(operation.requests, "oneOf")}},
        },
        "responses": dict(sorted(responses.items())),
    }


def _response(description: str, schema: dict[str, Any], headers: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error_schema(codes: list[str], *, fields: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {"code": {"type": "string", "enum": sorted(codes)}, "message": {"type": "string"}}
    if fields:
        properties["fields"] = {
            "type": "array",
            "items": {"type": "string"},
            "description": "The fields the request is refused for (body fields, or a header's name)",
        }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "message"],
                "properties": properties,
            }
        },
    }


def _first_line(error: type[errors.ApiError]) -> str:
    if error is errors.ApiError:
        return "anything unexpected (no details; the log has the error type)"
    paragraph = " ".join((error.__doc__ or "").strip().split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip(".")


def _security_schemes() -> dict[str, Any]:
    return {
        "therapistToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A Project A access token of a therapist (supabase-js: session.access_token)",
        },
        "serviceRoleToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Project A's service_role key: backfill, reconcile, status, and any client",
        },
        "webhookSecret": {
            "type": "http",
            "scheme": "bearer",
            "description": "PROJECT_B_WEBHOOK_SECRET, as Project B's webhook sends it",
        },
    }


def _server_variables() -> dict[str, Any]:
    return {
        "api": {"default": "example", "description": "The HTTP API's id (the stack's outputs give the URLs)"},
        "region": {"default": "eu-west-1"},
    }
