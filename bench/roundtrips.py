"""Round trips per request, counted by proxies between a function server and each project's database."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from bench.load import post, session_body
from bench.rtt_proxy import RttProxy
from bench.stack import FunctionServer, Implementation, database_urls, function_server
from devtools.localdb import LocalProjects

_SETTLE_SECONDS = 0.05  # lets the proxy threads forward the last bytes before the counters are read


@dataclass(frozen=True)
class RoundTrips:
    """Round trips to each project per request (one value per measured request)."""

    project_a: list[int]
    project_b: list[int]
    new_connections: int  # connections opened during the measured requests (should be 0: the pools are warm)


@dataclass(frozen=True)
class RoundTripReport:
    synced: RoundTrips
    first_sync: RoundTrips


class _Probe:
    """A running server whose Project A and Project B traffic goes through counting proxies."""

    def __init__(self, server: FunctionServer, token: str, proxy_a: RttProxy, proxy_b: RttProxy) -> None:
        self.server = server
        self.token = token
        self.proxies = (proxy_a, proxy_b)
        self.conn = server.connection()

    def request(self, client_id: UUID) -> None:
        status, body = post(self.conn, self.token, session_body(client_id))
        if status != 201:
            raise RuntimeError(f"{self.server.implementation.title} answered {status}: {body[:300]!r}")

    def measure(self, client_ids: list[UUID]) -> RoundTrips:
        counts: tuple[list[int], list[int]] = ([], [])
        opened = 0
        for client_id in client_ids:
            time.sleep(_SETTLE_SECONDS)
            for proxy in self.proxies:
                proxy.reset()
            self.request(client_id)
            time.sleep(_SETTLE_SECONDS)
            for proxy, values in zip(self.proxies, counts, strict=True):
                snapshot = proxy.snapshot()
                values.append(snapshot.total)
                opened += snapshot.connections_opened
        return RoundTrips(project_a=counts[0], project_b=counts[1], new_connections=opened)


@contextlib.contextmanager
def _probe(
    implementation: Implementation, projects: LocalProjects, env: dict[str, str], token: str, log_dir: Path
) -> Iterator[_Probe]:
    # Between the function server and the databases, each logged in as `implementation` is deployed.
    url_a, url_b = database_urls(projects, implementation)
    with RttProxy(url_a) as proxy_a, RttProxy(url_b) as proxy_b:
        urls = {"PROJECT_A_DB_URL": proxy_a.url(), "PROJECT_B_DB_URL": proxy_b.url()}
        with function_server(implementation, {**env, **urls}, log_dir, label="roundtrips") as server:
            probe = _Probe(server, token, proxy_a, proxy_b)
            try:
                yield probe
            finally:
                probe.conn.close()


def measure_round_trips(
    implementation: Implementation,
    projects: LocalProjects,
    env: dict[str, str],
    token: str,
    log_dir: Path,
    *,
    synced: list[UUID],
    unsynced: list[UUID],
    repeats: int,
) -> RoundTripReport:
    """Warm both pools with real requests (a synced client, a first sync), then count `repeats` of each case."""
    warm = 2
    if len(unsynced) < warm + repeats or len(synced) < warm + repeats:
        raise ValueError("not enough clients for the warm-up and the measured requests")
    with _probe(implementation, projects, env, token, log_dir) as probe:
        for client_id in [*synced[:warm], *unsynced[:warm]]:
            probe.request(client_id)
        return RoundTripReport(
            synced=probe.measure(synced[warm : warm + repeats]),
            first_sync=probe.measure(unsynced[warm : warm + repeats]),
        )
