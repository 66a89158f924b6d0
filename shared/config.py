"""Configuration from the environment (pydantic-settings), read once per process."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting the functions read; names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    project_a_db_url: SecretStr | None = None
    project_b_db_url: SecretStr | None = None

    project_a_jwt_secret: SecretStr | None = None
    project_a_jwks_url: str | None = None
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    db_pool_max_size: int = Field(default=10, ge=1, le=100)
    db_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    db_pool_timeout_seconds: float = Field(default=2.0, gt=0)
    project_b_statement_timeout_ms: int = Field(default=3000, ge=100)

    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_max_wait_seconds: float = Field(default=1.0, ge=0)
    # Each step (a read of Project B, a write to Project A) stops retrying after this long, so that
    # a request ends with its own 503 well inside API Gateway's 30 s.
    retry_budget_seconds: float = Field(default=8.0, gt=0)
    retry_after_seconds: int = Field(default=5, ge=1)

    max_body_bytes: int = 64 * 1024
    webhook_max_body_bytes: int = 1024 * 1024

    project_b_webhook_secret: SecretStr | None = None
    sync_retry_queue_url: str | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
