"""What a function server needs to reach both projects over either backend, each round trip delayed and counted
by a proxy (bench/rtt_proxy.py): the benches that compare the backends one caller at a time start their servers
with these."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from bench.rtt_proxy import RttProxy
from bench.stack import Implementation, database_urls, http_rtt_proxy, postgrest_server
from devtools.localdb import LocalProjects, authenticator_url
from devtools.tokens import client_backend_settings

KEY_SECONDS = 24 * 3600  # the service-role keys' lifetime: longer than any run

Proxies = tuple[RttProxy, RttProxy]  # Project A's, Project B's


def direct_env(
    stack: ExitStack, projects: LocalProjects, implementation: Implementation, db_rtt_ms: float, secret_a: str
) -> tuple[dict[str, str], Proxies]:
    """Postgres through proxies, logged in as `implementation` is deployed."""
    delay = db_rtt_ms / 1000
    a, b = (stack.enter_context(RttProxy(url, delay_seconds=delay)) for url in database_urls(projects, implementation))
    return {"PROJECT_A_JWT_SECRET": secret_a, "PROJECT_A_DB_URL": a.url(), "PROJECT_B_DB_URL": b.url()}, (a, b)


def client_env(
    stack: ExitStack, projects: LocalProjects, db_rtt_ms: float, logs: Path, secret_a: str, secret_b: str
) -> tuple[dict[str, str], Proxies]:
    """Each project's PostgREST stand-in (a process of its own) through a proxy, with its service-role key; no
    database URL."""
    env = {"PROJECT_A_JWT_SECRET": secret_a}
    proxies = []
    for project, database, secret in (
        ("project_a", projects.project_a_url, secret_a),
        ("project_b", projects.project_b_url, secret_b),
    ):
        login = authenticator_url(projects.server_url, database)
        standin = stack.enter_context(postgrest_server(login, secret, logs, label=project))
        proxy, url = http_rtt_proxy(stack, standin, db_rtt_ms)
        proxies.append(proxy)
        env |= client_backend_settings(project, url, secret, expires_in=KEY_SECONDS)
    return env, (proxies[0], proxies[1])
