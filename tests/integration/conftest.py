"""Fixtures of the integration tests that more than one module uses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws


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
    from tests.random_refs import random_suffix

    return dict(build_schema_databases(projects.server_url, f"schemas_{random_suffix()}_"))
