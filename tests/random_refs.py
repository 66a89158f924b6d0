"""Random ids and names, so tests need no teardown (as Cosmic Python's random_refs.py)."""

from __future__ import annotations

import uuid


def random_suffix() -> str:
    return uuid.uuid4().hex[:8]


def random_email(name: str = "client") -> str:
    return f"{name}-{random_suffix()}@example.test"


def random_name(name: str = "Client") -> str:
    return f"{name} {random_suffix()}"
