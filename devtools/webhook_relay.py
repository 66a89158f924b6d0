"""Sends the requests that the local net.http_post() queued, once each, as pg_net does on Supabase.

Listens on `net_http_request`, takes queued requests with SKIP LOCKED (so two relays never send one
twice), and POSTs each with its own headers and timeout. A failed delivery is logged and dropped:
Supabase's database webhooks do not retry either.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg.rows import dict_row

_TAKE_QUEUED = """
delete from net.http_request_queue
 where id in (select id from net.http_request_queue order by id for update skip locked limit 100)
returning id, method, url, headers, body, timeout_milliseconds
"""


def send(request: dict[str, Any]) -> int | None:
    """POST one queued request; the status, or None when nothing answered."""
    http_request = urllib.request.Request(  # noqa: S310 - URLs come from the project's own triggers
        request["url"],
        data=json.dumps(request["body"]).encode(),
        headers=request["headers"],
        method=request["method"],
    )
    try:
        with urllib.request.urlopen(http_request, timeout=request["timeout_milliseconds"] / 1000) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, TimeoutError, OSError):
        return None


class WebhookRelay:
    """Relays Project B's queued webhook requests until stopped."""

    def __init__(self, project_b_url: str, *, workers: int = 8) -> None:
        self.project_b_url = project_b_url
        self.stopped = threading.Event()
        self.listening = threading.Event()  # set while LISTEN is in place
        self.statuses: Counter[int | None] = Counter()  # deliveries by HTTP status (None: no answer)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relay")

    def _deliver(self, request: dict[str, Any]) -> None:
        status = send(request)
        self.statuses[status] += 1
        print(
            json.dumps({"event": "webhook_delivered", "request_id": request["id"], "status": status}),
            flush=True,
        )

    def _drain(self, conn: psycopg.Connection) -> None:
        while True:
            with conn.transaction():
                requests = conn.cursor(row_factory=dict_row).execute(_TAKE_QUEUED).fetchall()
            for request in requests:
                self._executor.submit(self._deliver, request)
            if len(requests) < 100:
                return

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                try:
                    self._listen()
                except psycopg.OperationalError as exc:
                    self.listening.clear()
                    # Project B restarted or the connection dropped: what was queued meanwhile waits in
                    # the table and is sent after the reconnect.
                    print(json.dumps({"event": "relay_reconnecting", "error_type": type(exc).__name__}), flush=True)
                    self.stopped.wait(1.0)
        finally:
            self._executor.shutdown(wait=True)

    def _listen(self) -> None:
        with psycopg.connect(self.project_b_url, autocommit=True, application_name="webhook-relay") as conn:
            conn.execute("listen net_http_request")
            self.listening.set()
            self._drain(conn)
            while not self.stopped.is_set():
                for _ in conn.notifies(timeout=0.5, stop_after=1):
                    break
                self._drain(conn)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="webhook-relay", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopped.set()


def main() -> None:
    import os
    import signal

    relay = WebhookRelay(os.environ["PROJECT_B_DB_URL"])
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    try:
        relay.run()
    except KeyboardInterrupt:
        relay.stop()


if __name__ == "__main__":
    main()
