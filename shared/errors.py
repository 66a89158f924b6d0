"""The errors this project answers with, each with its status and code (shared/http.py's error_response), and
the faults that are retried before one is answered."""

from __future__ import annotations


class ApiError(Exception):
    """Base class of every error answered with a status and a code (in an HTTP answer, or in the log line of a
    failed SQS record)."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# What a request asks for, and what the sync and the booking answer.


class InvalidRequest(ApiError):
    """The request body or its headers do not match the contract."""

    status = 400
    code = "invalid_request"


class Unauthorized(ApiError):
    """The bearer token or webhook secret is missing, forged, expired or for another audience."""

    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """The caller may not do this (a backfill or reconcile needs the service role)."""

    status = 403
    code = "forbidden"


class NotATherapist(ApiError):
    """The token is valid, but its user is not a therapist of Project A."""

    status = 403
    code = "not_a_therapist"


class ClientNotFound(ApiError):
    """No client of the caller's has this id: in neither project, or another therapist's."""

    status = 404
    code = "client_not_found"


class EmailConflict(ApiError):
    """Another Project A client already has the email of the client being synced."""

    status = 409
    code = "email_conflict"


class EmailNotConfirmed(ApiError):
    """The Project B user has not confirmed their email: a stranger may have signed up with a client's email."""

    status = 409
    code = "email_not_confirmed"


class NotANativeClient(ApiError):
    """The client is a copy of a Project B user already: there is nobody to invite."""

    status = 409
    code = "not_a_native_client"


class ClientHasNoEmail(ApiError):
    """An invitation needs the client's email."""

    status = 409
    code = "client_has_no_email"


class EmailInUseInProjectB(ApiError):
    """Another Project B user has the client's email: nothing was written; the link is suggested once that user is
    synced (the invite queues its sync)."""

    status = 409
    code = "email_in_use_in_project_b"


class InvalidClientEmail(ApiError):
    """Project B's Auth refused the client's email address (its format, or a domain it does not allow)."""

    status = 409
    code = "client_email_invalid"


class IdInUseInProjectB(ApiError):
    """A Project B user of its own (not one an invite created) has the client's id."""

    status = 409
    code = "id_in_use_in_project_b"


class ClientArchived(ApiError):
    """The client was deleted in Project B and is archived in Project A."""

    status = 409
    code = "client_archived"


class IdempotencyKeyReused(ApiError):
    """The idempotency key was already used for a session with other details."""

    status = 422
    code = "idempotency_key_reused"


class UpstreamUnavailable(ApiError):
    """A project could not be reached, or kept failing, after the retries."""

    status = 503
    code = "upstream_unavailable"


class InvitesNotConfigured(ApiError):
    """Invites need Project B's Auth admin API: PROJECT_B_URL (or PROJECT_B_AUTH_URL) and
    PROJECT_B_SERVICE_ROLE_KEY, whatever Project B's data backend."""

    status = 503
    code = "project_b_auth_not_configured"


class QueueNotConfigured(ApiError):
    """A sharded backfill needs SYNC_RETRY_QUEUE_URL (a deployment without SQS pages its backfill instead)."""

    status = 503
    code = "queue_not_configured"


# The HTTP exchange itself, checked before a handler reads the body: nothing to do with the sync.


class HttpError(ApiError):
    """A request refused for how it was sent (method, size, media type), whatever it asks for."""


class MethodNotAllowed(HttpError):
    """The function takes another HTTP method."""

    status = 405
    code = "method_not_allowed"


class PayloadTooLarge(HttpError):
    """The body is over the size limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(HttpError):
    """The body is not JSON."""

    status = 415
    code = "unsupported_media_type"


# Lambda events that are not HTTP requests.


class InvalidEvent(InvalidRequest):
    """The Lambda event is none of the kinds a function takes (API Gateway HTTP API v2, SQS batch, EventBridge
    scheduled event), or is malformed for its kind. Raised out of the handler: Lambda records an invocation
    error (an SQS batch then returns to its queue whole). The message names keys and error types, never values."""

    code = "invalid_event"


class InvalidMessage(InvalidRequest):
    """An SQS message whose body is not JSON, holds a NUL character or does not match the expected model.
    The batch loop reports its record as failed and logs `invalid_message`; the message never quotes the body."""

    code = "invalid_message"

    def __init__(self, message: str, *, message_id: str) -> None:
        super().__init__(message, message_id=message_id)
        self.message_id = message_id


class EventKindNotHandled(ApiError):
    """A well-formed event of a kind this function does not take: for an HTTP request, a 404 (no such route)."""

    status = 404
    code = "not_found"


# Not answered as they are: retried, then answered as UpstreamUnavailable.


class ConfigurationError(Exception):
    """The functions' settings are refused or incomplete (e.g. a project with neither a database URL nor a URL and
    key). Its message names the variables, never their values; answered 500 and logged with it."""


class TransientError(Exception):
    """A fault of a project's backend that may pass (retried; answered 503 once the retries are spent)."""


# Project A's unique index on clients' emails: a violation of it after the upsert's check is a ConcurrentSyncRace.
EMAIL_UNIQUE_CONSTRAINT = "clients_synced_email_unique"


class ConcurrentSyncRace(TransientError):
    """A concurrent insert took the email after the upsert's check; try again (retried, never answered)."""
