"""What `make dev` keeps in DEV_DIR: its lock, the secrets (generated once) and the env file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shlex
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote, urlencode

import psutil

from devtools.errors import StackFailed


class DevDirLock:
    """One `make dev` per DEV_DIR: an exclusive flock on DEV_DIR/lock, held until this process and the watchdog
    (which gets the same open file) have both exited; the kernel releases it however they end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, timeout: float, waiting: Callable[[str], None], sleep: Callable[[float], bool]) -> bool:
        """Take the lock. Held by a live `make dev`: StackFailed at once. Held only by the watchdog of a killed one,
        still stopping what it left: wait up to `timeout`. False when `sleep` (a wait that returns True once a stop
        signal arrived) says to give up."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            if not holder.isdigit() or _running(int(holder)) or time.monotonic() > deadline:
                os.close(fd)
                raise StackFailed(f"Another `make dev` (pid {holder or '?'}) uses {self.path.parent}; stop it first.")
            if not told:
                waiting(f"Waiting for the watchdog of the killed `make dev` (pid {holder}) to stop what it left ...")
                told = True
            if sleep(0.2):
                os.close(fd)
                return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _running(pid: int) -> bool:
    from devtools.processes import alive

    try:
        return alive(psutil.Process(pid))
    except psutil.Error:
        return False


def kept_secret(path: Path) -> str:
    """The secret kept in `path`, created on the first run so that it outlives a restart."""
    if path.exists():
        secret = path.read_text().strip()
        if secret:
            return secret
    secret = secrets.token_urlsafe(48)
    write_private(path, secret + "\n")
    return secret


def write_private(path: Path, text: str) -> None:
    """Write `text` readable by the owner only, replacing the file in one step."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    partial.replace(path)


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """KEY=VALUE lines, shell-quoted only where needed, for `source DEV_DIR/env`."""
    write_private(path, "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items()))


def read_env_file(path: Path) -> dict[str, str]:
    """The values of an env file written by write_env_file."""
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        parts = shlex.split(value)
        values[key] = parts[0] if parts else ""
    return values


def as_url(conninfo: str) -> str:
    """A libpq URL of `conninfo` (pgserver's socket directory percent-encoded), free of spaces and '&'."""
    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(conninfo).items()}
    host = params.pop("host", "")
    if "," in host:  # several hosts: keep the key=value form
        return conninfo
    user = quote(params.pop("user", ""), safe="")
    password = quote(params.pop("password", ""), safe="")
    port = params.pop("port", "")
    dbname = quote(params.pop("dbname", ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    address = quote(host, safe="") + (f":{port}" if port else "")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{credentials}{address}/{dbname}{query}"
