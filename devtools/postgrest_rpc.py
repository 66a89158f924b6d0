"""The database half of devtools.postgrest: finds the function a `POST /rpc/<name>` means and calls it in one
transaction as PostgREST does, and turns a Postgres error into PostgREST's answer.

Sources (PostgREST's own source, github.com/PostgREST/postgrest, read at commit 4834678):
- function resolution: src/library/PostgREST/Plan.hs `findProc` (name plus the set of argument keys; arguments
  with a default may be left out; one function with a single unnamed json/jsonb parameter is the fallback);
- the call: src/library/PostgREST/Query/QueryBuilder.hs `callPlanToQuery` (the body through json_to_record,
  `fn(a := pgrst_body.a, ...)`) and Query/SqlFragment.hs `asJsonF` (a set: a JSON array of rows, or of values for
  a set of scalars; a single value or composite: that JSON value);
- the transaction's settings: src/library/PostgREST/Query/PreQuery.hs (search_path, role, request.jwt.claims with
  the role in them, request.method, request.path, request.headers), all `set_config(..., true)`;
- read-only for stable and immutable functions: docs/references/transactions.rst ("Access Mode");
- errors: src/library/PostgREST/Error.hs (`mapSQLtoHTTP`, `NoRpc`, `AmbiguousRpc`) and docs/references/errors.rst.
"""

from __future__ import annotations

import difflib
import json
import threading
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Supabase's PostgREST exposes `public` (db-schemas) with `extensions` on the search path (db-extra-search-path).
SCHEMA = "public"
SEARCH_PATH = '"public", "extensions"'


class ApiError(Exception):
    """An answer PostgREST gives with its error body {code, message, details, hint}."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details, "hint": self.hint}


@dataclass(frozen=True)
class Param:
    name: str  # "" when unnamed
    type: str  # format_type of the argument's type
    required: bool  # no default
    variadic: bool


@dataclass(frozen=True)
class Routine:
    name: str
    params: tuple[Param, ...]
    returns_set: bool
    returns_composite: bool
    returns_void: bool
    read_only: bool  # stable or immutable

    def signature(self) -> str:
        return f"{SCHEMA}.{self.name}({', '.join(f'{p.name} => {p.type}' for p in self.params)})"


_ROUTINES = """
select p.proretset, p.prorettype = 'pg_catalog.void'::regtype,
       t.typrelid <> 0 or p.prorettype = 'pg_catalog.record'::regtype, p.provolatile in ('s', 'i'),
       p.pronargdefaults, coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),
       array(select format_type(u.oid, null) from unnest(p.proargtypes::oid[]) with ordinality u (oid, n) order by n)
  from pg_proc p join pg_type t on t.oid = p.prorettype
 where p.pronamespace = %s::regnamespace and p.proname = %s and p.prokind = 'f'
"""

_NAMES = "select distinct proname from pg_proc where pronamespace = %s::regnamespace and prokind = 'f'"


def routines(conn: psycopg.Connection[Any], name: str) -> list[Routine]:
    """Every function of `name` in the exposed schema, privileges aside (PostgREST's schema cache holds them all)."""
    found = []
    for returns_set, returns_void, composite, read_only, n_defaults, names, modes, types in conn.execute(
        _ROUTINES, (SCHEMA, name)
    ):
        # proargnames and proargmodes cover OUT arguments too; proargtypes only the input ones.
        input_names = [n for n, m in zip(names, modes, strict=False) if m in ("i", "b", "v")] if modes else names
        input_modes = [m for m in modes if m in ("i", "b", "v")] if modes else ["i"] * len(types)
        input_names = [*input_names, *[""] * (len(types) - len(input_names))]
        params = tuple(
            Param(name=n, type=t, required=i < len(types) - n_defaults, variadic=m == "v")
            for i, (n, t, m) in enumerate(zip(input_names, types, input_modes, strict=True))
        )
        found.append(Routine(name, params, returns_set, composite, returns_void, read_only))
    return found


def _matches(routine: Routine, keys: frozenset[str]) -> bool:
    if not routine.params:
        return not keys
    required = {p.name for p in routine.params if p.required}
    optional = {p.name for p in routine.params if not p.required}
    return keys - optional == required


def _single_unnamed_json(routine: Routine) -> bool:
    return len(routine.params) == 1 and routine.params[0].name == "" and routine.params[0].type in ("json", "jsonb")


class SchemaCache:
    """The functions by name, read on first use, as PostgREST's schema cache holds them, and the query that calls
    each with a given set of argument keys. PostgREST reloads its cache on NOTIFY; this one reads a name again
    when a call finds no match, so a function created since is found at once."""

    def __init__(self) -> None:
        self._routines: dict[str, tuple[int, list[Routine]]] = {}  # name -> (generation, its functions)
        self._queries: dict[tuple[str, frozenset[str]], tuple[Routine, str]] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def find(self, conn: psycopg.Connection[Any], name: str, keys: frozenset[str]) -> Routine:
        return self._find(conn, name, keys)[0]

    def _find(self, conn: psycopg.Connection[Any], name: str, keys: frozenset[str]) -> tuple[Routine, int]:
        """The function and the generation of the list it was found in."""
        cached = self._routines.get(name)
        if cached is not None:
            try:
                return find_routine(conn, name, keys, cached[1]), cached[0]
            except ApiError:
                pass  # a miss reads the catalog again
        fresh = routines(conn, name)
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._routines[name] = (generation, fresh)
            self._queries = {key: plan for key, plan in self._queries.items() if key[0] != name}
        return find_routine(conn, name, keys, fresh), generation

    def query(self, conn: psycopg.Connection[Any], name: str, keys: frozenset[str]) -> tuple[Routine, str]:
        """The function these keys call and the query text of the call with its settings (see `call`). A query
        built from a list another thread has read again since is used once, not kept."""
        planned = self._queries.get((name, keys))
        if planned is not None:
            return planned
        routine, generation = self._find(conn, name, keys)
        settings_query = _SETTINGS + (_READ_ONLY if routine.read_only else "")
        text = sql.SQL("{}; {}").format(sql.SQL(settings_query), call_statement(routine, keys)).as_string(conn)
        with self._lock:
            current = self._routines.get(name)
            if current is not None and current[0] == generation:
                self._queries[(name, keys)] = (routine, text)
        return routine, text


def find_routine(
    conn: psycopg.Connection[Any], name: str, keys: frozenset[str], candidates: list[Routine] | None = None
) -> Routine:
    """The function PostgREST's findProc picks for these argument keys, or its PGRST202/PGRST203 error."""
    if candidates is None:
        candidates = routines(conn, name)
    named = [r for r in candidates if _matches(r, keys)]
    fallback = [r for r in candidates if _single_unnamed_json(r)]
    chosen = named or fallback
    if len(chosen) == 1:
        return chosen[0]
    if chosen:
        raise ApiError(
            300,
            "PGRST203",
            "Could not choose the best candidate function between: " + ", ".join(r.signature() for r in chosen),
            hint="Try renaming the parameters or the function itself in the database so function overloading can"
            " be resolved",
        )
    raise _no_rpc(conn, name, sorted(keys), candidates)


def _no_rpc(conn: psycopg.Connection[Any], name: str, keys: list[str], overloads: list[Routine]) -> ApiError:
    function = f"{SCHEMA}.{name}"
    if keys:
        listed = f"({', '.join(keys)})"
        searched = f" with parameter{'s' if len(keys) > 1 else ''} {', '.join(keys)}"
    else:
        listed = searched = " without parameters"
    hint = None
    if overloads:
        lists = {"(" + ", ".join(sorted(p.name for p in r.params)) + ")": r for r in overloads}
        close = difflib.get_close_matches("(" + ", ".join(keys) + ")", list(lists), n=1)
        hint = f"Perhaps you meant to call the function {function}{close[0]}" if close else None
    else:
        names = [row[0] for row in conn.execute(_NAMES, (SCHEMA,))]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"Perhaps you meant to call the function {SCHEMA}.{close[0]}" if close else None
    return ApiError(
        404,
        "PGRST202",
        f"Could not find the function {function}{listed} in the schema cache",
        details=f"Searched for the function {function}{searched} or with a single unnamed json/jsonb parameter,"
        " but no matches were found in the schema cache.",
        hint=hint,
    )


def call_statement(routine: Routine, keys: frozenset[str]) -> sql.Composed:
    """The query calling `routine` with the body (its one parameter, JSON text) and answering JSON text."""
    function = sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(routine.name))
    given = [p for p in routine.params if p.name in keys]
    source: sql.Composable
    arguments: sql.Composable
    result: sql.Composable
    if _single_unnamed_json(routine) and not _matches(routine, keys):
        source = sql.SQL("")
        arguments = sql.SQL("%s::{}").format(sql.SQL(routine.params[0].type))
    elif given:
        columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(p.name), sql.SQL(p.type)) for p in given)
        source = sql.SQL("json_to_record(%s::json) as pgrst_body ({}), lateral ").format(columns)
        arguments = sql.SQL(", ").join(
            sql.SQL("{}{} => pgrst_body.{}").format(
                sql.SQL("variadic " if p.variadic else ""), sql.Identifier(p.name), sql.Identifier(p.name)
            )
            for p in given
        )
    else:
        source = sql.SQL("(select %s::json) as pgrst_body, lateral ")  # the body still takes the one parameter
        arguments = sql.SQL("")
    call = sql.SQL("{}({})").format(function, arguments)
    if routine.returns_composite:
        result = sql.SQL("json_agg(pgrst_call)") if routine.returns_set else sql.SQL("json_agg(pgrst_call)->0")
        called = sql.SQL("{} as pgrst_call").format(call)
    else:
        scalar = sql.SQL("json_agg(pgrst_call.pgrst_scalar)")
        result = scalar if routine.returns_set else sql.SQL("{}->0").format(scalar)
        called = sql.SQL("(select {} as pgrst_scalar) as pgrst_call").format(call)
    if routine.returns_void:
        return sql.SQL("select count(*)::text from {}{}").format(source, called)
    empty = sql.SQL("'[]'" if routine.returns_set else "'null'")
    return sql.SQL("select coalesce({}, {})::text from {}{}").format(result, empty, source, called)


_SETTINGS = (
    "select set_config('search_path', %s, true), set_config('role', %s, true),"
    " set_config('request.jwt.claims', %s, true), set_config('request.method', 'POST', true),"
    " set_config('request.path', %s, true), set_config('request.headers', %s, true)"
)
_READ_ONLY = ", set_config('transaction_read_only', 'on', true)"


def settings(role: str, claims: dict[str, Any], path: str, headers: dict[str, str]) -> tuple[str, ...]:
    """The values of the request's transaction settings (_SETTINGS), as PostgREST's txVarQuery sets them."""
    return (SEARCH_PATH, role, json.dumps({**claims, "role": role}), path, json.dumps(headers))


def call(
    conn: psycopg.Connection[Any],
    name: str,
    body: str,
    keys: frozenset[str],
    role: str,
    claims: dict[str, Any],
    path: str,
    headers: dict[str, str],
    cache: SchemaCache | None = None,
) -> str | None:
    """Calls the function in one transaction (rolled back on any error); its JSON answer, None for void. The
    transaction's settings and the call go in one query message, so one round trip and one implicit transaction
    (set_config(..., true) lasts until its end), as PostgREST sends them in one pipeline."""
    routine, query = (cache or SchemaCache()).query(conn, name, keys)
    cursor = psycopg.ClientCursor(conn)
    cursor.execute(query, (*settings(role, claims, path, headers), body))
    cursor.nextset()
    if routine.returns_void:
        return None
    row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def error_status(sqlstate: str, message: str, authed: bool) -> int:
    """PostgREST's HTTP status for a Postgres error (Error.hs mapSQLtoHTTP); `authed`: the role is not anon."""
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
        "42P01": 404,
        "42P17": 500,
        "42501": 403 if authed else 401,
    }
    if sqlstate in exact:
        return exact[sqlstate]
    if sqlstate == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate == "22023":  # a role in the JWT that does not exist
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if sqlstate == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    by_class = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500}
    by_class |= {"39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500}
    by_class |= {"F0": 500, "HV": 500, "P0": 500, "XX": 500}
    return by_class.get(sqlstate[:2], 400)


def database_error(exc: psycopg.Error, role: str, anon_role: str = "anon") -> ApiError:
    """PostgREST's answer to an error the database raised (or, without a SQLSTATE, the connection's loss)."""
    diag = exc.diag
    sqlstate = diag.sqlstate
    if sqlstate is None:
        return ApiError(503, "PGRST001", "Database client error. Retrying the connection.", details=str(exc) or None)
    message = diag.message_primary or ""
    status = error_status(sqlstate, message, role != anon_role)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return ApiError(status, sqlstate, message, details=diag.message_detail, hint=diag.message_hint, headers=headers)
