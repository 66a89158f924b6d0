"""A misconfigured project is refused when a function starts work: a 500 without details to the caller, and one
log line that names the settings (never their values)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.conftest import THERAPIST
from tests.integration.helpers import function_client


@pytest.mark.parametrize(
    ("unset", "env", "says"),
    [
        (
            ["PROJECT_A_DB_URL"],
            {},
            "PROJECT_A is not configured: set PROJECT_A_DB_URL (a Postgres connection), or PROJECT_A_URL and "
            "PROJECT_A_SERVICE_ROLE_KEY (the project's API)",
        ),
        (
            [],
            {"PROJECT_B_URL": "https://bbbb.supabase.co"},
            "PROJECT_B_URL is set without PROJECT_B_SERVICE_ROLE_KEY: give both, or neither",
        ),
        (
            [],
            {"PROJECT_A_BACKEND": "client"},
            "PROJECT_A_BACKEND=client needs PROJECT_A_URL and PROJECT_A_SERVICE_ROLE_KEY",
        ),
        ([], {"PROJECT_B_BACKEND": "supabase"}, "PROJECT_B_BACKEND: Input should be 'direct' or 'client'"),
    ],
)
def test_a_misconfigured_project_is_a_500_and_a_log_line_that_names_the_settings(
    reconfigure: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    token: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
    unset: list[str],
    env: dict[str, str],
    says: str,
) -> None:
    for name in unset:
        monkeypatch.delenv(name)
    reconfigure(**env)
    answer = function_client("create_session").post(
        "/",
        json={"client_id": str(THERAPIST), "starts_at": "2030-01-07T09:00:00Z"},
        headers={"Authorization": f"Bearer {token(THERAPIST)}"},
    )

    assert (answer.status_code, answer.json) == (
        500,
        {"error": {"code": "internal_error", "message": "Internal error"}},
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    refused = [line for line in lines if line["event"] == "configuration_refused"]
    assert [line["reason"] for line in refused] == [says]
