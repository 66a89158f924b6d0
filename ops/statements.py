"""Splits a SQL file into statements exactly as the Supabase CLI does (supabase/cli, pkg/parser/state.go and
token.go: a state machine over quotes, dollar quotes, comments and BEGIN ATOMIC bodies; each statement trimmed
of trailing semicolons and whitespace). `ops.migrate` runs and records migrations statement by statement, so a
file it applies is one the CLI applies the same way, and the ledger's `statements` column holds what the CLI's
would."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _State:
    """One state of the CLI's tokenizer; `kind` names it, the other fields are what that state keeps."""

    kind: str = "ready"  # ready | tag | dollar | quote | comment | block | escape | atomic
    delimiter: str = ""
    offset: int = 0
    escape: bool = False
    depth: int = 0
    prev: _State | None = field(default=None, repr=False)


def _is_identifier(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _begins_atomic(data: str) -> bool:
    """`data` ends with the keywords BEGIN ATOMIC (ATOMIC is not reserved, so BEGIN must precede it)."""
    if data[-len("ATOMIC") :].upper() != "ATOMIC":
        return False
    offset = len(data) - len("ATOMIC")
    if offset > 0 and _is_identifier(data[offset - 1]):
        return False
    prefix = data[:offset].rstrip()
    if not prefix.upper().endswith("BEGIN"):
        return False
    start = len(prefix) - len("BEGIN")
    return start == 0 or not _is_identifier(prefix[start - 1])


def _next(state: _State, char: str, data: str) -> _State | None:
    """The state after `char` (the last character of `data`, the statement so far); None ends a statement."""
    kind = state.kind
    if kind == "ready":
        if char == "$":
            return _State("tag", offset=len(data) - 1)
        if char in "'\"":
            return _State("quote", delimiter=char)
        if char == "-":
            return _State("comment")
        if char == "/":
            return _State("block")
        if char == "\\":
            return _State("escape")
        if char == ";":
            return None
        if char == "(":
            return _State("atomic", delimiter=")", prev=state)
        if char in "cC" and _begins_atomic(data):
            return _State("atomic", delimiter="END", prev=state)
        return state
    if kind == "comment":
        return _State("dollar", delimiter="\n") if char == "-" else _next(_State(), char, data)
    if kind == "block":
        window = data[-2:]
        if window == "/*":
            state.depth += 1
            return state
        if state.depth == 0:
            return _next(_State(), char, data)
        if window == "*/":
            state.depth -= 1
            if state.depth == 0:
                return _State()
        return state
    if kind == "quote":
        if state.escape:
            if char == state.delimiter:
                state.escape = False
                return state
            return _next(_State(), char, data)
        if char == state.delimiter:
            state.escape = True
        return state
    if kind == "dollar":
        return _State() if data.endswith(state.delimiter) else state
    if kind == "tag":
        if char == "$":
            return _State("dollar", delimiter=data[state.offset :])
        if char.isalnum() or char == "_":
            return state
        return _next(_State(), char, data)
    if kind == "escape":
        return _State()
    # atomic: a body in parentheses or BEGIN ATOMIC ... END, where a semicolon does not end the statement
    assert state.prev is not None
    current = _next(state.prev, char, data)
    if current is not None:
        state.prev = current
    if state.prev.kind == "ready" and data[-len(state.delimiter) :].upper() == state.delimiter.upper():
        return _State()
    return state


def split_statements(sql: str) -> list[str]:
    """The statements of `sql`, comments kept, each without its trailing semicolons and surrounding space."""
    statements: list[str] = []
    state = _State()
    start = 0
    for end, char in enumerate(sql, start=1):
        following = _next(state, char, sql[start:end])
        if following is None:
            statements.append(sql[start:end])
            start, state = end, _State()
        else:
            state = following
    statements.append(sql[start:])
    trimmed = (statement.rstrip(";").strip() for statement in statements)
    return [statement for statement in trimmed if statement]
