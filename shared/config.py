"""Configuration from the environment (pydantic-settings), read once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db_urls import is_local_host, unencrypted_remote_problem
from shared.errors import ConfigurationError

Project = Literal["project_a", "project_b"]
# direct: a Postgres connection (PROJECT_X_DB_URL); client: PostgREST's rpc over HTTP (PROJECT_X_URL and
# PROJECT_X_SERVICE_ROLE_KEY). Both call the same SQL functions.
Backend = Literal["direct", "client"]

# The sequential database steps of the longest request: create_session books in Project A, reads the
# client from Project B, then books again with the copied client.
STEPS_PER_REQUEST = 3
# The most clients in a page of a backfill or reconcile (the SQL functions cap their pages at this too).
MAX_PAGE_SIZE = 5000
# A job (a backfill range, a scheduled reconcile) checks its budget between pages: the page started just before
# the budget ran out still runs its steps, three for reconcile's sweep and retry pages (list ids in Project A,
# read them in Project B, write Project A).
STEPS_PER_PAGE = 3


class Settings(BaseSettings):
    """Every setting the functions read; names are the environment variables, upper-cased."""

    # A refused setting's error must not quote the environment it was read from (secrets included).
    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    project_a_db_url: SecretStr | None = None
    project_b_db_url: SecretStr | None = None
    # Each project's API (https://<ref>.supabase.co) and service-role key: the client backend's way in.
    project_a_url: str | None = None
    project_a_service_role_key: SecretStr | None = None
    project_b_url: str | None = None
    project_b_service_role_key: SecretStr | None = None
    # Project B's Auth API (invites), when it is not PROJECT_B_URL's /auth/v1 (a local stand-in, a custom domain).
    project_b_auth_url: str | None = None
    # How long a call of Project B's Auth waits for its answer: an invite's includes Auth sending the mail.
    project_b_auth_timeout_seconds: float = Field(default=10.0, gt=0, le=25)
    # None: direct when the project has a database URL, else client (backend_of).
    project_a_backend: Backend | None = None
    project_b_backend: Backend | None = None
    # The client backend's HTTP client: connect timeout; a call's read timeout is the project's statement
    # timeout plus this margin, so that PostgREST's own answer to a cancelled statement arrives first.
    http_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    http_read_margin_seconds: float = Field(default=0.5, ge=0)

    project_a_jwt_secret: SecretStr | None = None
    project_a_jwks_url: str | None = None
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    db_pool_max_size: int = Field(default=10, ge=1, le=100)
    db_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    # The longest wait for a pooled connection. Short: on Lambda a process serves one request at a time,
    # so the wait is for a connection being opened, and a step retries a PoolTimeout within its budget.
    db_pool_timeout_seconds: float = Field(default=0.5, gt=0)
    # Set on every pooled connection (shared/stores/pools.py), with the lock timeout.
    project_a_statement_timeout_ms: int = Field(default=3000, ge=100)
    project_b_statement_timeout_ms: int = Field(default=3000, ge=100)
    db_lock_timeout_ms: int = Field(default=1000, ge=0)

    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_max_wait_seconds: float = Field(default=1.0, ge=0)
    # Each step (a read of Project B, a write to Project A) starts no new attempt after this long; see
    # worst_case_request_seconds for why a request then still answers within the function's timeout.
    retry_budget_seconds: float = Field(default=4.0, gt=0)
    retry_after_seconds: int = Field(default=5, ge=1)

    # The Lambda function's Timeout in template.yaml, and how long the HTTP front waits for an answer (API
    # Gateway's HTTP API: 30 s, whatever the function's Timeout).
    function_timeout_seconds: int = Field(default=29, ge=1, le=900)
    http_timeout_seconds: int = Field(default=30, ge=1, le=900)

    max_body_bytes: int = Field(default=64 * 1024, ge=1)
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1)

    project_b_webhook_secret: SecretStr | None = None
    sync_retry_queue_url: str | None = None
    # The retry queue's dead-letter queue: sync_client's status reads its depth (null without it).
    sync_dead_letter_queue_url: str | None = None
    # The SQS client of the retry queue: per-attempt timeouts and the total number of attempts.
    queue_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    queue_read_timeout_seconds: float = Field(default=2.0, gt=0)
    queue_max_attempts: int = Field(default=2, ge=1, le=10)

    # sync_client: clients per page of a backfill or reconcile job, how long a job or a scheduled reconcile
    # runs before it stops (a job then queues its remainder), and how far before the watermark reconcile
    # starts again, so that a change stamped before another but committed after it is not missed.
    sync_page_size: int = Field(default=1000, ge=1, le=MAX_PAGE_SIZE)
    # None: what FUNCTION_TIMEOUT_SECONDS leaves after a page's worst case and the queue's (job_budget_seconds).
    sync_job_budget_seconds: float | None = Field(default=None, gt=0)
    reconcile_overlap_seconds: float = Field(default=300.0, ge=0)
    # How far past the time of reading a version from Project B may be: a later (or infinite) one is read as that
    # time, so it never becomes a stored version or reconcile's watermark. Set on every connection as
    # client_sync.max_version_skew_seconds, which the SQL reads (60 s when unset, as for PostgREST's callers).
    max_version_skew_seconds: float = Field(default=60.0, ge=0, le=3600)

    @property
    def _direct_attempt_seconds(self) -> float:
        """One attempt on a direct connection: a pooled connection's wait, then a statement until its timeout."""
        return (
            self.db_pool_timeout_seconds
            + max(self.project_a_statement_timeout_ms, self.project_b_statement_timeout_ms) / 1000
        )

    @property
    def _step_seconds(self) -> float:
        """One step's longest on a direct connection: it stops retrying after retry_budget_seconds, but an attempt
        started just before then still runs."""
        return self.retry_budget_seconds + self._direct_attempt_seconds

    @property
    def _queue_seconds(self) -> float:
        return self.queue_max_attempts * (self.queue_connect_timeout_seconds + self.queue_read_timeout_seconds)

    def http_call_seconds(self, project: Project) -> float:
        """The longest one PostgREST call of the client backend takes: a pooled connection, connecting, sending,
        then the answer, which waits the project's statement timeout plus the margin."""
        statement_seconds = float(getattr(self, f"{project}_statement_timeout_ms")) / 1000
        return (
            self.db_pool_timeout_seconds
            + 2 * self.http_connect_timeout_seconds  # connect, then write
            + statement_seconds
            + self.http_read_margin_seconds
        )

    @property
    def _client_calls(self) -> dict[Project, float]:
        """The longest call of each project on the client backend (none when no project uses it)."""
        projects: tuple[Project, ...] = ("project_a", "project_b")
        return {p: self.http_call_seconds(p) for p in projects if self._configured_backend(p) == "client"}

    def _configured_backend(self, project: Project) -> Backend | None:
        try:
            return self.backend_of(project)
        except ConfigurationError:
            return None

    @property
    def _client_attempt_seconds(self) -> float | None:
        """The longest attempt of a request's step on the client backend (a booking's makes two calls to
        Project A), or None when no project uses it."""
        calls_per_attempt = {"project_a": 2, "project_b": 1}
        attempts = [calls_per_attempt[project] * call for project, call in self._client_calls.items()]
        return max(attempts) if attempts else None

    @property
    def _longest_attempt_seconds(self) -> float:
        return max(self._direct_attempt_seconds, self._client_attempt_seconds or 0.0)

    @property
    def _job_attempt_seconds(self) -> float:
        """A job's longest attempt: a statement, or one call on the client backend (a page's steps make one)."""
        return max([self._direct_attempt_seconds, *self._client_calls.values()])

    @property
    def _job_step_seconds(self) -> float:
        return self.retry_budget_seconds + self._job_attempt_seconds

    def _attempts_deadline(self, limit: float) -> float:
        """How long an HTTP request with `limit` seconds may start attempts: what its longest attempt, the queue's
        send and a second to spare leave (shared/deadline.py's attempts_until)."""
        return limit - self._longest_attempt_seconds - self._queue_seconds - 1.0

    @property
    def request_deadline_seconds(self) -> float:
        """No attempt of an HTTP request starts after this long."""
        return self._attempts_deadline(min(self.function_timeout_seconds, self.http_timeout_seconds))

    @property
    def job_deadline_seconds(self) -> float:
        """No attempt of a queued job or a scheduled reconcile starts after this long (its budget decides when
        it stops paging; this bounds the page it started)."""
        return self.function_timeout_seconds - self._job_attempt_seconds - self._queue_seconds - 1.0

    @property
    def job_budget_seconds(self) -> float:
        """How long a job pages before it stops: SYNC_JOB_BUDGET_SECONDS, or else what the function's timeout
        leaves (a second to spare) after the page started last and the remainder's send (0: one page a run)."""
        if self.sync_job_budget_seconds is not None:
            return self.sync_job_budget_seconds
        spare = self.function_timeout_seconds - STEPS_PER_PAGE * self._job_step_seconds - self._queue_seconds - 1.0
        return max(spare, 0.0)

    @property
    def worst_case_http_seconds(self) -> float:
        """The longest an HTTP request can take before it answers on its own (a 503 at worst): its steps, then
        the webhook's send of the event to the retry queue, with its own attempts and timeouts. On the client
        backend, whose steps may make several calls, the request's deadline bounds them instead: no attempt
        starts after request_deadline_seconds."""
        if self._client_attempt_seconds is not None:
            return max(self.request_deadline_seconds, 0.0) + self._longest_attempt_seconds + self._queue_seconds
        return STEPS_PER_REQUEST * self._step_seconds + self._queue_seconds

    @property
    def worst_case_request_seconds(self) -> float:
        """The longest any invocation can take: an HTTP request, or a job (its budget, then the page it started,
        then its remainder's send). A budget set by SYNC_JOB_BUDGET_SECONDS must leave its last page that time,
        so that a job always makes progress; a derived one is bounded by the job's deadline too."""
        job = self.job_budget_seconds + STEPS_PER_PAGE * self._job_step_seconds
        if self.sync_job_budget_seconds is None:
            # The derived budget (0 when the timeout leaves no room: one page a run) is bounded by the deadline.
            job = min(job, max(self.job_deadline_seconds, 0.0) + self._job_attempt_seconds)
        return max(self.worst_case_http_seconds, job + self._queue_seconds)

    @field_validator("project_a_db_url", "project_b_db_url")
    @classmethod
    def _encrypted_unless_local(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        problem = unencrypted_remote_problem(value.get_secret_value()) if value is not None else None
        if problem is not None:
            raise ValueError(f"{str(info.field_name).upper()} {problem}")
        return value

    @field_validator("project_a_url", "project_b_url", "project_b_auth_url")
    @classmethod
    def _https_unless_local(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        local = parts.scheme == "http" and is_local_host(parts.hostname or "")
        if not (parts.scheme == "https" or local) or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(
                f"{str(info.field_name).upper()} must be the project's https URL (http only to this machine), "
                "without a query"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _each_backend_has_what_it_needs(self) -> Settings:
        for project in ("project_a", "project_b"):
            prefix = project.upper()
            url, key = getattr(self, f"{project}_url"), getattr(self, f"{project}_service_role_key")
            if key is not None and not key.get_secret_value().strip():
                raise ValueError(f"{prefix}_SERVICE_ROLE_KEY is empty")
            if project == "project_b" and url is None and key is not None and self.project_b_auth_url is not None:
                url = self.project_b_auth_url  # the key serves the Auth API alone (invites)
            if (url is None) != (key is None):
                given, missing = ("URL", "SERVICE_ROLE_KEY") if url is not None else ("SERVICE_ROLE_KEY", "URL")
                raise ValueError(f"{prefix}_{given} is set without {prefix}_{missing}: give both, or neither")
            backend = getattr(self, f"{project}_backend")
            if backend == "client" and url is None:
                raise ValueError(f"{prefix}_BACKEND=client needs {prefix}_URL and {prefix}_SERVICE_ROLE_KEY")
            if backend == "direct" and getattr(self, f"{project}_db_url") is None:
                raise ValueError(f"{prefix}_BACKEND=direct needs {prefix}_DB_URL")
        return self

    @property
    def project_b_auth(self) -> tuple[str, str] | None:
        """Project B's Auth API base URL (ending in /auth/v1) and service-role key, or None when either is not
        configured (invites answer 503 then)."""
        url = self.project_b_auth_url or (f"{self.project_b_url}/auth/v1" if self.project_b_url else None)
        if url is None or self.project_b_service_role_key is None:
            return None
        return url.rstrip("/"), self.project_b_service_role_key.get_secret_value()

    def backend_of(self, project: Project) -> Backend:
        """Which backend serves `project`: PROJECT_X_BACKEND, else direct with PROJECT_X_DB_URL, else client with
        PROJECT_X_URL and PROJECT_X_SERVICE_ROLE_KEY. With neither, a ConfigurationError that names the variables."""
        chosen: Backend | None = getattr(self, f"{project}_backend")
        if chosen is not None:
            return chosen
        if getattr(self, f"{project}_db_url") is not None:
            return "direct"
        if getattr(self, f"{project}_url") is not None:
            return "client"
        prefix = project.upper()
        raise ConfigurationError(
            f"{prefix} is not configured: set {prefix}_DB_URL (a Postgres connection), or {prefix}_URL and "
            f"{prefix}_SERVICE_ROLE_KEY (the project's API)"
        )

    @model_validator(mode="after")
    def _answers_within_the_function_timeout(self) -> Settings:
        http_limit = min(self.function_timeout_seconds, self.http_timeout_seconds)
        if self.request_deadline_seconds <= 0:
            raise ValueError(
                f"A request's longest attempt ({self._longest_attempt_seconds:g} s) and the queue's attempts leave "
                f"no time to start one within {http_limit:g} s (FUNCTION_TIMEOUT_SECONDS or HTTP_TIMEOUT_SECONDS, "
                "the less): lower the statement timeouts, DB_POOL_TIMEOUT_SECONDS or HTTP_CONNECT_TIMEOUT_SECONDS"
            )
        if self.worst_case_http_seconds >= http_limit:
            raise ValueError(
                f"A request could take {self.worst_case_http_seconds:g} s, not less than {http_limit:g} s "
                "(FUNCTION_TIMEOUT_SECONDS or HTTP_TIMEOUT_SECONDS, the less), so it would be cut off without "
                f"an answer: {STEPS_PER_REQUEST} x (RETRY_BUDGET_SECONDS + "
                "DB_POOL_TIMEOUT_SECONDS + the longest statement timeout) + QUEUE_MAX_ATTEMPTS x "
                "(QUEUE_CONNECT_TIMEOUT_SECONDS + QUEUE_READ_TIMEOUT_SECONDS) must stay below it; lower one of them"
            )
        if self.worst_case_request_seconds >= self.function_timeout_seconds:
            raise ValueError(
                f"A job could take {self.worst_case_request_seconds:g} s, not less than FUNCTION_TIMEOUT_SECONDS "
                f"({self.function_timeout_seconds:g} s): SYNC_JOB_BUDGET_SECONDS + {STEPS_PER_PAGE} x "
                "(RETRY_BUDGET_SECONDS + DB_POOL_TIMEOUT_SECONDS + the longest statement timeout) + the queue's "
                "attempts must stay below it; lower SYNC_JOB_BUDGET_SECONDS or leave it unset"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process; ConfigurationError, naming the variables, when they are refused."""
    try:
        return Settings()
    except ValidationError as exc:
        reasons = "; ".join(
            ": ".join(
                filter(None, [".".join(map(str, error["loc"])).upper(), error["msg"].removeprefix("Value error, ")])
            )
            for error in exc.errors()
        )
        raise ConfigurationError(reasons) from None
