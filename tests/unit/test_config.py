"""Settings: a request's worst case must end before the function's timeout. No environment leaks in."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import Settings
from shared.errors import ConfigurationError


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The integration tests leave their settings in the environment for the rest of the session.
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def test_the_defaults_answer_within_the_function_timeout() -> None:
    settings = Settings()
    assert settings.function_timeout_seconds == 29
    assert settings.retry_budget_seconds == 4.0
    assert settings.project_a_statement_timeout_ms == 3000
    assert settings.db_lock_timeout_ms == 1000
    assert (settings.queue_connect_timeout_seconds, settings.queue_read_timeout_seconds) == (1.0, 2.0)
    assert settings.queue_max_attempts == 2
    assert settings.worst_case_request_seconds < settings.function_timeout_seconds


def test_worst_case_counts_three_steps_and_the_queue() -> None:
    settings = Settings(
        retry_budget_seconds=2,
        db_pool_timeout_seconds=1,
        project_a_statement_timeout_ms=1000,
        project_b_statement_timeout_ms=2000,
        queue_max_attempts=3,
        queue_connect_timeout_seconds=0.5,
        queue_read_timeout_seconds=1.5,
    )
    assert settings.worst_case_http_seconds == pytest.approx(3 * (2 + 1 + 2) + 3 * (0.5 + 1.5))


def test_worst_case_of_a_job_counts_its_budget_and_the_page_it_started() -> None:
    settings = Settings(function_timeout_seconds=120, sync_job_budget_seconds=90)
    per_step = 4 + 0.5 + 3  # the retry budget, the pool's wait, the longest statement timeout
    assert settings.worst_case_request_seconds == pytest.approx(90 + 3 * per_step + 2 * (1 + 2))
    with pytest.raises(ValidationError, match="SYNC_JOB_BUDGET_SECONDS"):
        Settings(function_timeout_seconds=120, sync_job_budget_seconds=92)  # 92 + 22.5 + 6 = 120.5


def test_without_a_job_budget_a_job_gets_what_the_timeout_leaves() -> None:
    assert Settings(function_timeout_seconds=120).job_budget_seconds == pytest.approx(120 - 22.5 - 6 - 1)
    assert Settings(function_timeout_seconds=120).worst_case_request_seconds == pytest.approx(119)
    assert Settings().job_budget_seconds == 0  # 29 s leave no time beyond one page: a job does one page a run


def test_a_request_must_answer_before_the_http_api_gives_up_whatever_the_timeout() -> None:
    with pytest.raises(ValidationError, match="HTTP_TIMEOUT_SECONDS"):
        Settings(function_timeout_seconds=120, retry_budget_seconds=5)  # 3 x 8.5 + 6 = 31.5 >= 30


@pytest.mark.parametrize(
    "changes",
    [
        {"retry_budget_seconds": 8},
        {"db_pool_timeout_seconds": 5},
        {"project_a_statement_timeout_ms": 10_000},
        {"project_b_statement_timeout_ms": 10_000},
        {"queue_max_attempts": 5},
        {"queue_read_timeout_seconds": 10},
        {"function_timeout_seconds": 15},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_a_budget_over_the_function_timeout_is_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValidationError, match="FUNCTION_TIMEOUT_SECONDS"):
        Settings(**changes)


def test_a_worst_case_equal_to_the_timeout_is_refused() -> None:
    # 3 x (4 + 1 + 3) + 2 x (1 + 1.5) = 29
    with pytest.raises(ValidationError, match="could take 29 s"):
        Settings(db_pool_timeout_seconds=1, queue_read_timeout_seconds=1.5)


def test_the_environment_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_BUDGET_SECONDS", "4.3")  # 3 x (4.3 + 0.5 + 3) + 6 = 29.4: over 29 s, under 30 s
    with pytest.raises(ValidationError, match="RETRY_BUDGET_SECONDS"):
        Settings()
    monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", "120")
    assert Settings().retry_budget_seconds == 4.3


@pytest.mark.parametrize(
    ("name", "value"),
    [("project_a_statement_timeout_ms", 99), ("db_lock_timeout_ms", -1), ("queue_max_attempts", 0)],
)
def test_out_of_range_values_are_refused(name: str, value: int) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})


def test_a_refused_setting_does_not_quote_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECT_B_WEBHOOK_SECRET", "the-webhook-secret-value")
    monkeypatch.setenv("RETRY_BUDGET_SECONDS", "60")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "secret-value" not in str(refused.value)


PASSWORD = "pw-4f1e9c0d"
REMOTE = f"postgresql://client_sync.ref:{PASSWORD}@aws-0-eu-west-1.pooler.supabase.com:5432/postgres"


@pytest.mark.parametrize(
    "url",
    [
        f"{REMOTE}?sslmode=verify-full&sslrootcert=/var/task/prod-ca-2021.crt",
        f"{REMOTE}?sslmode=verify-ca&sslrootcert=/var/task/prod-ca-2021.crt",
        f"{REMOTE}?sslmode=require",
        f"host=db.ref.supabase.co user=client_sync password={PASSWORD} sslmode=verify-full",
        f"postgresql://client_sync:{PASSWORD}@localhost:5432/postgres",
        f"postgresql://client_sync:{PASSWORD}@127.0.0.1:5432/postgres?sslmode=disable",
        f"postgresql://client_sync:{PASSWORD}@127.3.2.1/postgres",
        f"postgresql://client_sync:{PASSWORD}@[::1]:5432/postgres?sslmode=prefer",
        "postgresql:///postgres?host=/tmp/pg-socket&user=client_sync",
        "host=/var/run/postgresql dbname=postgres user=client_sync",
        "dbname=postgres user=client_sync",  # no host: libpq's default unix socket
        f"postgresql://client_sync:{PASSWORD}@db.ref.supabase.co/postgres?hostaddr=127.0.0.1",
    ],
)
def test_a_database_url_is_encrypted_or_on_this_machine(url: str) -> None:
    assert Settings(project_a_db_url=url, project_b_db_url=url).project_a_db_url is not None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"{REMOTE}?sslmode=disable", "sslmode=disable"),
        (f"{REMOTE}?sslmode=allow", "sslmode=allow"),
        (f"{REMOTE}?sslmode=prefer", "sslmode=prefer"),
        (REMOTE, "no sslmode"),
        (f"{REMOTE}?sslmode=verify-{PASSWORD}", "an sslmode libpq does not know"),
        (f"host=10.0.0.5 user=client_sync password={PASSWORD}", "no sslmode"),
        (f"postgresql://client_sync:{PASSWORD}@localhost,db.ref.supabase.co/postgres", "no sslmode"),
        (f"postgresql://client_sync:{PASSWORD}@localhost/postgres?hostaddr=10.0.0.5", "no sslmode"),
        (f"postgresql://client_sync:{PASSWORD}@127.0.0.1.example.com/postgres", "no sslmode"),
        (f"postgresql://client_sync:{PASSWORD}@db/postgres?{PASSWORD}=1", "not a connection string"),
    ],
)
@pytest.mark.parametrize("variable", ["PROJECT_A_DB_URL", "PROJECT_B_DB_URL"])
def test_a_database_url_to_another_machine_without_an_encrypted_sslmode_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str, says: str
) -> None:
    monkeypatch.setenv(variable, url)
    with pytest.raises(ValidationError, match=f"{variable} .*{says}") as refused:
        Settings()
    assert PASSWORD not in str(refused.value)
    assert "supabase.com" not in str(refused.value) and "10.0.0.5" not in str(refused.value)


@pytest.mark.parametrize(
    ("environment", "url", "says"),
    [
        ({"PGHOST": "db.ref.supabase.co"}, "dbname=postgres user=client_sync", "no sslmode"),
        ({"PGHOSTADDR": "10.0.0.5"}, f"postgresql://client_sync:{PASSWORD}@localhost/postgres", "no sslmode"),
        ({"PGSSLMODE": "disable"}, REMOTE, "sslmode=disable"),
        ({}, "service=production user=client_sync", "no sslmode"),
        ({"PGSERVICE": "production"}, "dbname=postgres user=client_sync", "no sslmode"),
    ],
)
def test_what_libpq_takes_from_the_environment_counts_too(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], url: str, says: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=f"PROJECT_A_DB_URL .*{says}"):
        Settings(project_a_db_url=url)


def test_an_encrypted_sslmode_from_the_environment_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    assert Settings(project_a_db_url=REMOTE).project_a_db_url is not None


# Choosing each project's backend.

CLIENT_A = {"PROJECT_A_URL": "https://aaaa.supabase.co", "PROJECT_A_SERVICE_ROLE_KEY": "service-key-a"}
DIRECT_A = {"PROJECT_A_DB_URL": f"{REMOTE}?sslmode=verify-full"}


@pytest.mark.parametrize(
    ("environment", "backend"),
    [
        (DIRECT_A, "direct"),
        (CLIENT_A, "client"),
        ({**DIRECT_A, **CLIENT_A}, "direct"),
        ({**DIRECT_A, **CLIENT_A, "PROJECT_A_BACKEND": "client"}, "client"),
        ({**DIRECT_A, **CLIENT_A, "PROJECT_A_BACKEND": "direct"}, "direct"),
    ],
)
def test_each_project_chooses_its_backend(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], backend: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert Settings().backend_of("project_a") == backend


def test_the_two_projects_may_use_different_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECT_A_URL", "https://aaaa.supabase.co")
    monkeypatch.setenv("PROJECT_A_SERVICE_ROLE_KEY", "service-key-a")
    monkeypatch.setenv("PROJECT_B_DB_URL", f"{REMOTE}?sslmode=verify-full")
    settings = Settings()
    assert (settings.backend_of("project_a"), settings.backend_of("project_b")) == ("client", "direct")


@pytest.mark.parametrize(
    ("environment", "says"),
    [
        ({"PROJECT_B_URL": "https://bbbb.supabase.co"}, "PROJECT_B_URL is set without PROJECT_B_SERVICE_ROLE_KEY"),
        ({"PROJECT_A_SERVICE_ROLE_KEY": "service-key-a"}, "PROJECT_A_SERVICE_ROLE_KEY is set without PROJECT_A_URL"),
        ({**DIRECT_A, "PROJECT_A_BACKEND": "client"}, "PROJECT_A_BACKEND=client needs PROJECT_A_URL"),
        ({**CLIENT_A, "PROJECT_A_BACKEND": "direct"}, "PROJECT_A_BACKEND=direct needs PROJECT_A_DB_URL"),
        ({"PROJECT_A_BACKEND": "supabase"}, "PROJECT_A_BACKEND"),
        ({**CLIENT_A, "PROJECT_A_SERVICE_ROLE_KEY": ""}, "PROJECT_A_SERVICE_ROLE_KEY is empty"),
        ({**CLIENT_A, "PROJECT_A_URL": "http://aaaa.supabase.co"}, "PROJECT_A_URL must be the project's https URL"),
    ],
)
def test_a_backend_without_what_it_needs_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], says: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert says.lower() in str(refused.value).lower()
    assert "service-key-a" not in str(refused.value)


def test_a_project_with_neither_backend_is_refused_by_name() -> None:
    with pytest.raises(
        ConfigurationError, match=r"set PROJECT_B_DB_URL .*, or PROJECT_B_URL and PROJECT_B_SERVICE_ROLE_KEY"
    ):
        Settings(project_a_db_url="postgresql://u@localhost/a").backend_of("project_b")


# The client backend's time: its steps may make several calls, so the invocation's deadline bounds them.

CLIENT_BOTH = {
    "project_a_url": "https://aaaa.supabase.co",
    "project_a_service_role_key": "key-a",
    "project_b_url": "https://bbbb.supabase.co",
    "project_b_service_role_key": "key-b",
}


def test_on_the_client_backend_the_deadline_leaves_the_longest_attempt_and_the_queue_their_time() -> None:
    settings = Settings(**CLIENT_BOTH)
    call = 0.5 + 1.0 + 1.0 + 3.0 + 0.5  # pool wait, connect, send, statement timeout, margin
    assert settings.http_call_seconds("project_a") == pytest.approx(call)
    assert settings.request_deadline_seconds == pytest.approx(29 - 2 * call - 6 - 1)
    assert settings.worst_case_http_seconds == pytest.approx(29 - 1)


def test_a_client_attempt_that_leaves_no_time_to_start_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="leave no time to start one within 29 s"):
        Settings(**CLIENT_BOTH, project_a_statement_timeout_ms=9_000)  # 2 x 11.5 + 6 + 1 = 30


def test_a_job_budget_that_leaves_its_last_page_no_time_is_refused_on_the_client_backend() -> None:
    Settings(**CLIENT_BOTH, function_timeout_seconds=120, sync_job_budget_seconds=80)  # 80 + 3 x 10 + 6 = 116
    with pytest.raises(ValidationError, match="A job could take 121 s"):
        Settings(**CLIENT_BOTH, function_timeout_seconds=120, sync_job_budget_seconds=85)


def test_project_b_auth_is_its_url_and_key_whatever_the_data_backend() -> None:
    key = "service-role-key"
    assert Settings().project_b_auth is None
    assert Settings(project_b_url="https://b.supabase.co", project_b_service_role_key=key).project_b_auth == (
        "https://b.supabase.co/auth/v1",
        key,
    )
    # The direct backend for data, and the Auth API by its own URL (the key serves it alone).
    direct = Settings(
        project_b_db_url="postgresql://client_sync@localhost/b",
        project_b_auth_url="http://127.0.0.1:9999/auth/v1/",
        project_b_service_role_key=key,
    )
    assert direct.backend_of("project_b") == "direct"
    assert direct.project_b_auth == ("http://127.0.0.1:9999/auth/v1", key)
    assert Settings(project_b_auth_url="https://auth.example.com/auth/v1").project_b_auth is None


@pytest.mark.parametrize("url", ["http://auth.example.com/auth/v1", "https://auth.example.com/auth/v1?x=1", "ftp://h"])
def test_project_b_auth_url_is_https_unless_local(url: str) -> None:
    with pytest.raises(ValidationError, match="PROJECT_B_AUTH_URL"):
        Settings(project_b_auth_url=url)
