"""A TCP proxy in front of Postgres that counts round trips: each turn of the flow from client to server."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_CHUNK = 64 * 1024


@dataclass
class _Flow:
    """One proxied connection: which side spoke last, and the round trips seen since the last reset."""

    id: int
    last_sender: str = ""
    round_trips: int = 0


@dataclass(frozen=True)
class Snapshot:
    """Round trips since the last reset, in total and per connection that had any, and connections opened."""

    total: int
    per_connection: dict[int, int] = field(default_factory=dict)
    connections_opened: int = 0


class RttProxy:
    """Listens on 127.0.0.1 (a free port) and forwards every connection to one Postgres server.

    A round trip is counted each time the server answers after the client has sent something: the
    moment the flow turns from client->server to server->client. Bytes the client sends in several
    writes before any reply (a pipeline) are one burst, so one round trip.
    """

    def __init__(self, target_url: str, *, delay_seconds: float = 0.0) -> None:
        self._target_url = target_url
        self._delay = delay_seconds
        self._target = _socket_address(target_url)
        self._lock = threading.Lock()
        self._flows: dict[int, _Flow] = {}
        self._ids = itertools.count(1)
        self._opened = 0
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"rtt-proxy-{self.port}", daemon=True)
        self._acceptor.start()

    def url(self, dbname: str | None = None) -> str:
        """The target's connection URL, pointed at this proxy (user, password and database kept)."""
        params = {key: value for key, value in conninfo_to_dict(self._target_url).items() if key not in ("hostaddr",)}
        params.update(host="127.0.0.1", port=str(self.port))
        if dbname:
            params["dbname"] = dbname
        return make_conninfo("", **params)

    def reset(self) -> None:
        """Zero the counters; the side that spoke last is kept, so a reply in flight is not lost."""
        with self._lock:
            for flow in self._flows.values():
                flow.round_trips = 0
            self._opened = 0

    def snapshot(self) -> Snapshot:
        with self._lock:
            per_connection = {flow.id: flow.round_trips for flow in self._flows.values() if flow.round_trips}
            return Snapshot(sum(per_connection.values()), per_connection, self._opened)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._acceptor.join(timeout=2)

    def __enter__(self) -> RttProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = _connect(self._target)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                if sock.family != socket.AF_UNIX:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            flow = _Flow(next(self._ids))
            with self._lock:
                self._flows[flow.id] = flow
                self._opened += 1
                self._sockets.update((client, server))
            for source, sink, sender in ((client, server, "client"), (server, client, "server")):
                threading.Thread(
                    target=self._pump, args=(flow, source, sink, sender), name=f"rtt-flow-{flow.id}", daemon=True
                ).start()

    def _pump(self, flow: _Flow, source: socket.socket, sink: socket.socket, sender: str) -> None:
        try:
            for chunk in _chunks(source):
                with self._lock:
                    turned = sender == "server" and flow.last_sender == "client"
                    if turned:
                        flow.round_trips += 1
                    flow.last_sender = sender
                if turned and self._delay:
                    time.sleep(self._delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._flows.pop(flow.id, None)
                for sock in (source, sink):
                    self._sockets.discard(sock)
            with contextlib.suppress(OSError):
                source.close()


def _chunks(sock: socket.socket) -> Iterator[bytes]:
    while chunk := sock.recv(_CHUNK):
        yield chunk


def _socket_address(url: str) -> tuple[int, str | tuple[str, int]]:
    """Where a libpq URL points: a unix socket (`<dir>/.s.PGSQL.<port>`) or a TCP host and port."""
    params = conninfo_to_dict(url)
    if not params.get("host"):
        raise ValueError("The database URL must name its host or socket directory")
    host = str(params["host"]).split(",")[0]
    port = int(str(params.get("port") or "5432").split(",")[0])
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET, (str(params.get("hostaddr") or host), port)


def _connect(address: tuple[int, str | tuple[str, int]]) -> socket.socket:
    family, where = address
    if family == socket.AF_UNIX:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(where)
        return sock
    assert isinstance(where, tuple)
    return socket.create_connection(where)
