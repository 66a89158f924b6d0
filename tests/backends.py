"""The functions' two backends in the integration suites: `direct` (Postgres, as client_sync) and `client`
(PostgREST's rpc, through devtools' stand-in, with the service-role key). A suite runs over both with
`pytestmark = pytest.mark.usefixtures("backend")`; a test of the functions' own database connections (it counts
their round trips, or breaks them) is marked `direct_only("why")`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict

from devtools.localdb import AUTHENTICATOR_ROLE, database_url, login_url, role_login
from devtools.tokens import client_backend_settings

Project = Literal["project_a", "project_b"]
BACKENDS = ("direct", "client")


class StandIns:
    """A PostgREST stand-in per database, started on first use and kept for the session, or until released."""

    def __init__(self, server_url: str, jwt_secret: str) -> None:
        self.server_url = server_url
        self.jwt_secret = jwt_secret
        self._running: dict[str, AbstractContextManager[Any]] = {}
        self._urls: dict[str, str] = {}

    def url_for(self, functions_url: str) -> str:
        """The project URL of a stand-in over the database of `functions_url` (the functions' own URL for it)."""
        from devtools.postgrest import serving

        params = conninfo_to_dict(functions_url)
        name = str(params.get("dbname"))
        if name not in self._urls:
            target = database_url(self.server_url, name)
            try:
                password = role_login(self.server_url, target, AUTHENTICATOR_ROLE)
            except (RuntimeError, psycopg.Error):
                password = None  # a database a test made unreachable: the stand-in answers 503, as PostgREST does
            authenticator = login_url(functions_url, AUTHENTICATOR_ROLE, password)
            running = serving(authenticator, self.jwt_secret)
            self._urls[name] = running.__enter__().url
            self._running[name] = running
        return self._urls[name]

    def release(self, database_url: str) -> None:
        """Stop the stand-in over the database of `database_url`, if one runs (its connections go with it)."""
        self._stop(str(conninfo_to_dict(database_url).get("dbname")))

    def _stop(self, name: str) -> None:
        running = self._running.pop(name, None)
        self._urls.pop(name, None)
        if running is not None:
            running.__exit__(None, None, None)

    def env(self, project: Project, functions_url: str) -> dict[str, str]:
        """The settings that put `project` on the client backend, over the database of `functions_url`."""
        return client_backend_settings(project, self.url_for(functions_url), self.jwt_secret, expires_in=24 * 3600)

    def close(self) -> None:
        for name in list(self._running):
            self._stop(name)
        self._urls.clear()
