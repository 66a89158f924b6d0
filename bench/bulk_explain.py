"""EXPLAIN (ANALYZE, BUFFERS) of a SQL function's query as the function runs it.

A `language sql` function that is not inlined (security definer, or a SET clause) plans its query with its
arguments as parameters: a generic plan, the same for every call. EXPLAIN of the call only shows a Function
Scan, so the body is read from pg_catalog, its arguments turned into $1..$n, prepared, and explained with
plan_cache_mode = force_generic_plan: the plan the function itself gets, without copying its text here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

_BODY = """
select p.prosrc, (p.proargnames)[1:p.pronargs],
       array(select format_type(t, null) from unnest(p.proargtypes::oid[]) with ordinality as a (t, i) order by i)
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = %s and p.proname = %s and p.prolang = (select oid from pg_language where lanname = 'sql')
"""

_SCAN_NODES = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan")


@dataclass(frozen=True)
class Plan:
    text: str
    rows_scanned: int  # rows the plan's table scans returned (actual rows x loops), filters' removals added
    seq_scans: list[str]  # tables read by a sequential scan
    shared_buffers: int  # shared buffers hit + read
    milliseconds: float


def explain_function(url: str, function: str, arguments: list[Any]) -> Plan:
    """The generic plan of `schema.function`'s query with `arguments`, executed (in a transaction rolled back)."""
    schema, _, name = function.partition(".")
    with psycopg.connect(url) as conn:
        row = conn.execute(_BODY, (schema, name)).fetchone()
        if row is None:
            raise LookupError(f"No SQL function {function}")
        body, names, types = row
        for index, arg in sorted(enumerate(names, start=1), key=lambda item: -len(item[1])):
            body = re.sub(rf"\b{re.escape(arg)}\b", f"${index}", body)
        conn.execute("set local search_path = ''")
        conn.execute("set local plan_cache_mode = force_generic_plan")
        conn.execute(f"prepare bench_explained ({', '.join(types)}) as {body}")
        execute = sql.SQL("execute bench_explained ({})").format(sql.SQL(", ").join(map(sql.Literal, arguments)))
        prefix = sql.SQL("explain (analyze, buffers, format {}) ")
        plan_json = conn.execute(prefix.format(sql.SQL("json")) + execute).fetchone()
        plan_text = conn.execute(prefix.format(sql.SQL("text")) + execute).fetchall()
        conn.rollback()
    assert plan_json is not None
    root = plan_json[0] if isinstance(plan_json[0], list) else json.loads(plan_json[0])
    top = root[0]
    scanned, seq_scans, buffers = _walk(top["Plan"])
    return Plan(
        text="\n".join(line[0] for line in plan_text),
        rows_scanned=scanned,
        seq_scans=seq_scans,
        shared_buffers=buffers,
        milliseconds=float(top.get("Execution Time", 0.0)),
    )


def _walk(node: dict[str, Any]) -> tuple[int, list[str], int]:
    scanned, seq_scans = 0, []
    buffers = int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))
    if node.get("Node Type") in _SCAN_NODES:
        loops = int(node.get("Actual Loops", 1))
        scanned += int(node.get("Actual Rows", 0)) * loops + int(node.get("Rows Removed by Filter", 0)) * loops
        if node["Node Type"] == "Seq Scan":
            seq_scans.append(str(node.get("Relation Name")))
    for child in node.get("Plans", []):
        child_scanned, child_seq, _ = _walk(child)
        scanned += child_scanned
        seq_scans += child_seq
    return scanned, seq_scans, buffers
