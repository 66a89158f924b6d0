"""Fixtures of the integration tests that more than one module uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from devtools.localdb import LocalProjects, prepare_projects, register_therapists
from tests.backends import StandIns
from tests.conftest import OTHER_THERAPIST, THERAPIST, Databases, reset_configuration
from tests.random_refs import random_suffix


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The contract fuzz test's counts (test_api_fuzz.py), whatever pytest captured."""
    from tests.integration.fuzzing import FUZZED

    if FUZZED:
        terminalreporter.section("contract fuzzing")
        for line in FUZZED:
            terminalreporter.write_line(line)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's SQS with test credentials in the environment; yields a boto3 SQS client."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("sqs", region_name="eu-west-1")


@pytest.fixture(scope="session")
def schema_databases(projects: Any) -> dict[str, str]:
    """A database per project built from its schema files (db/<project>/supabase/schemas), with random names."""
    from ops.sql_surface import build_schema_databases

    return dict(build_schema_databases(projects.server_url, f"schemas_{random_suffix()}_"))


@pytest.fixture
def fresh_projects(
    projects: LocalProjects, reconfigure: Callable[..., None], standins: StandIns
) -> Iterator[LocalProjects]:
    """Both projects migrated afresh (so a backfill of everything is this test's alone), functions pointed there.
    Their PostgREST stand-ins (the client backend) stop with the test, so that fresh databases do not use up the
    server's connection slots."""
    local = prepare_projects(projects.server_url, prefix=f"test_{random_suffix()}_bulk_")
    register_therapists(local.project_a_url, [THERAPIST, OTHER_THERAPIST])
    reconfigure(PROJECT_A_DB_URL=local.project_a_functions_url, PROJECT_B_DB_URL=local.project_b_functions_url)
    yield local
    reset_configuration()  # the functions' pools and HTTP clients to the fresh projects
    standins.release(local.project_a_functions_url)
    standins.release(local.project_b_functions_url)


@pytest.fixture
def fresh(fresh_projects: LocalProjects) -> Iterator[Databases]:
    """Superuser connections to the fresh projects of `fresh_projects`."""
    with (
        psycopg.connect(fresh_projects.project_a_url, autocommit=True) as a,
        psycopg.connect(fresh_projects.project_b_url, autocommit=True) as b,
    ):
        yield Databases(a=a, b=b)
