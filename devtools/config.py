"""Where `make dev` keeps its state (DEV_DIR) and which ports it serves on (DEV_PORT_BASE)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from devtools.errors import StackFailed

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"

DEFAULT_PORT_BASE = 8080
# Ports are DEV_PORT_BASE + these.
CREATE_SESSION_OFFSET = 1
SYNC_CLIENT_OFFSET = 2
PROJECT_B_WEBHOOK_OFFSET = 3
SQS_OFFSET = 5
# With BACKEND=supabase: the PostgREST stand-ins of Project A and Project B (devtools/postgrest.py).
PROJECT_A_API_OFFSET = 6
PROJECT_B_API_OFFSET = 7
# Project B's Auth stand-in (devtools/auth_admin.py), with either backend.
PROJECT_B_AUTH_OFFSET = 8
LAST_OFFSET = PROJECT_B_AUTH_OFFSET

# How the functions reach the projects: `direct`, Postgres as client_sync; `supabase`, each project's API (the
# PostgREST stand-ins) with its service-role key, the functions' client backend.
StackBackend = Literal["direct", "supabase"]
STACK_BACKENDS: tuple[StackBackend, ...] = ("direct", "supabase")


@dataclass(frozen=True)
class DevConfig:
    dev_dir: Path
    port_base: int = DEFAULT_PORT_BASE
    backend: StackBackend = "direct"

    @property
    def pgdata(self) -> Path:
        return self.dev_dir / "pgdata"

    @property
    def env_file(self) -> Path:
        return self.dev_dir / "env"

    @property
    def jwt_secret_file(self) -> Path:
        return self.dev_dir / "jwt_secret"

    @property
    def project_b_jwt_secret_file(self) -> Path:
        return self.dev_dir / "project_b_jwt_secret"

    @property
    def webhook_secret_file(self) -> Path:
        return self.dev_dir / "webhook_secret"

    @property
    def lock_file(self) -> Path:
        return self.dev_dir / "lock"

    @property
    def mail_dir(self) -> Path:
        """Where the Auth stand-in puts the messages it sends (DEV_MAIL_DIR), one .eml file each."""
        return self.dev_dir / "mail"

    @property
    def create_session_port(self) -> int:
        return self.port_base + CREATE_SESSION_OFFSET

    @property
    def sync_client_port(self) -> int:
        return self.port_base + SYNC_CLIENT_OFFSET

    @property
    def project_b_webhook_port(self) -> int:
        return self.port_base + PROJECT_B_WEBHOOK_OFFSET

    @property
    def sqs_port(self) -> int:
        return self.port_base + SQS_OFFSET

    @property
    def project_a_api_port(self) -> int:
        return self.port_base + PROJECT_A_API_OFFSET

    @property
    def project_b_api_port(self) -> int:
        return self.port_base + PROJECT_B_API_OFFSET

    @property
    def project_b_auth_port(self) -> int:
        return self.port_base + PROJECT_B_AUTH_OFFSET


def load_config(environ: Mapping[str, str] = os.environ, backend: StackBackend = "direct") -> DevConfig:
    """DEV_DIR (default: .dev in the repository) and DEV_PORT_BASE (default 8080: ports 8081, 8082, 8083, 8085 and
    8088, and 8086 and 8087 with the supabase backend)."""
    raw_dir = environ.get("DEV_DIR", "").strip()
    dev_dir = Path(raw_dir).expanduser().resolve() if raw_dir else ROOT / ".dev"
    raw_base = environ.get("DEV_PORT_BASE", "").strip()
    try:
        port_base = int(raw_base) if raw_base else DEFAULT_PORT_BASE
    except ValueError:
        raise StackFailed(f"DEV_PORT_BASE must be a number, not {raw_base!r}") from None
    if not 1 <= port_base <= 65535 - LAST_OFFSET:
        raise StackFailed(f"DEV_PORT_BASE must be between 1 and {65535 - LAST_OFFSET}, not {port_base}")
    return DevConfig(dev_dir=dev_dir, port_base=port_base, backend=backend)


def shown(path: Path) -> str:
    """`path` as the usage text shows it: relative to the current directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
