"""Whether a database connection string keeps its traffic encrypted: one to another machine must say
`sslmode=require`, `verify-ca` or `verify-full` (verify-full, with the server's CA certificate, is what the docs
ask for). What it says is read with libpq's own parser, so URLs and `key=value` strings read as libpq reads them,
and what it leaves out is taken, as libpq takes it, from the environment (PGHOST, PGHOSTADDR, PGSSLMODE). A
connection service (`service=` or PGSERVICE) names a file's entry this does not read: it counts as another machine.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

ENCRYPTED_SSLMODES = frozenset({"require", "verify-ca", "verify-full"})
_UNENCRYPTED_SSLMODES = frozenset({"disable", "allow", "prefer"})
_LOCAL_NAMES = frozenset({"", "localhost"})


def is_local_host(host: str) -> bool:
    """Whether libpq reaches `host` without leaving this machine: a unix socket directory (a path; unset is the
    default socket), `localhost`, 127.0.0.0/8 or ::1."""
    if host.startswith("/") or host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unencrypted_remote_problem(conninfo: str) -> str | None:
    """Why `conninfo` may not be used (it cannot be parsed, or it reaches another machine without an encrypted
    sslmode), or None. The answer never quotes the string, which holds a password."""
    # Imported here, when the settings are first read, not at a cold start's imports (tests/unit/test_cold_start.py).
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(conninfo)
    except ProgrammingError:  # libpq's message can quote a part of the string
        return "is not a connection string libpq can read"
    # hostaddr, when given, is where libpq connects (host is then only the name the certificate is checked for).
    hosts = _given(params, "host").split(",")
    addresses = _given(params, "hostaddr").split(",")
    count = max(len(hosts), len(addresses))
    hosts, addresses = hosts + [""] * (count - len(hosts)), addresses + [""] * (count - len(addresses))
    local = all(is_local_host((address or host).strip()) for host, address in zip(hosts, addresses, strict=True))
    if local and not _given(params, "service"):
        return None
    sslmode = _given(params, "sslmode")
    if sslmode in ENCRYPTED_SSLMODES:
        return None
    if not sslmode:  # libpq's default is prefer: it falls back to an unencrypted connection without a word
        said = "no sslmode (libpq then prefers TLS but does not require it)"
    elif sslmode in _UNENCRYPTED_SSLMODES:
        said = f"sslmode={sslmode}"
    else:
        said = "an sslmode libpq does not know"
    return (
        f"reaches a database on another machine with {said}: add sslmode=verify-full with the server's CA "
        "certificate (sslrootcert=<path>), or at least sslmode=require"
    )


def _given(params: Mapping[str, object], key: str) -> str:
    """The connection parameter `key` as libpq takes it: from the string, else from its PG* environment variable."""
    return str(params.get(key) or os.environ.get(f"PG{key.upper()}") or "")
