"""backends' tables and verdict: create_session over the direct backend (Postgres), the client backend (PostgREST's
rpc) and the design document's algorithm, one caller at a time, with its round trips to each project; for a synced
client, the client backend within 1.5 ms of the direct backend at p50. And the cold import of each backend."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.report import markdown_table, met, trips_text
from bench.report.not_found import CaseResult

TARGET_P50_GAP_MS = 1.5
DIRECT, CLIENT, BASELINE = "direct", "client", "baseline"
SYNCED, FIRST_SYNC = "synced", "first_sync"
IMPLEMENTATIONS = {
    DIRECT: "direct backend (Postgres, as client_sync)",
    CLIENT: "client backend (PostgREST rpc over HTTP)",
    BASELINE: "design document baseline (Postgres, as the service role)",
}


@dataclass(frozen=True)
class ColdImport:
    """Imports of one backend, each in a fresh interpreter: the whole (seconds per run), and the part after the
    modules both backends share (shared.config, shared.ports, shared.retry...)."""

    backend: str
    modules: str
    seconds: list[float]
    own_seconds: list[float]


def _result(results: list[CaseResult], case: str, implementation: str) -> CaseResult:
    return next(r for r in results if r.key == case and r.function == implementation)


def backends_table(results: list[CaseResult]) -> str:
    """A row per case and implementation, in the order of `results`; the p50's difference to the direct backend's
    for the same case."""
    rows = []
    for result in results:
        median = result.median_ms()
        direct = _result(results, result.key, DIRECT).median_ms()
        rows.append(
            (
                result.title,
                IMPLEMENTATIONS.get(result.function, result.function),
                trips_text(result.round_trips_a),
                trips_text(result.round_trips_b),
                f"{median:.2f}",
                f"{result.percentile_ms(95):.2f}",
                "" if result.function == DIRECT else f"{median - direct:+.2f}",
                f"{len(result.latencies)} / {result.unexpected}",
            )
        )
    return markdown_table(
        [
            "Case",
            "Implementation",
            "Round trips to Project A",
            "Round trips to Project B",
            "p50 (ms)",
            "p95 (ms)",
            "p50 - direct backend's (ms)",
            "Requests timed / unexpected answers (of all)",
        ],
        "llrrrrrr",
        rows,
    )


def backends_verdict(results: list[CaseResult]) -> str:
    direct, client = (_result(results, SYNCED, key).median_ms() for key in (DIRECT, CLIENT))
    gap = client - direct
    line = (
        f"Target: for a synced client, the client backend within {TARGET_P50_GAP_MS:g} ms of the direct backend at "
        f"p50: {client:.2f} ms against {direct:.2f} ms ({gap:+.2f} ms) -> {met(gap <= TARGET_P50_GAP_MS)}."
    )
    unexpected = [f"{result.function} {result.key}" for result in results if result.unexpected]
    if unexpected:
        line += " Caution: unexpected answers in: " + ", ".join(unexpected) + "."
    return line


def _ms(values: list[float]) -> float:
    return 1000 * statistics.median(values) if values else 0.0


def cold_imports_table(imports: list[ColdImport]) -> str:
    rows = [
        (
            IMPLEMENTATIONS.get(item.backend, item.backend),
            item.modules,
            f"{_ms(item.seconds):.0f}",
            f"{1000 * min(item.seconds):.0f}-{1000 * max(item.seconds):.0f}" if item.seconds else "-",
            f"{_ms(item.own_seconds):.0f}",
            str(len(item.seconds)),
        )
        for item in imports
    ]
    return markdown_table(
        [
            "Backend",
            "Imported",
            "Cold import, median (ms)",
            "Range (ms)",
            "Of which after the modules both share, median (ms)",
            "Runs",
        ],
        "llrrrr",
        rows,
    )


def standin_line(times: dict[str, list[float]]) -> str:
    """The time the PostgREST stand-in took per call (milliseconds by "Project X function", from its log)."""
    parts = [f"{name} {statistics.median(values):.2f}" for name, values in times.items() if values]
    return (
        "Of the client backend's time, inside the PostgREST stand-in per call (its log, median ms over the run): "
        + (", ".join(parts) or "-")
        + ". The stand-in (devtools/postgrest.py, a small HTTP/1.1 server on Python's socketserver) checks the key "
        "and the token, then runs the call's transaction (its settings, the call, the commit) in one pipelined round "
        "trip to its local database (not delayed), with the functions it has seen and their queries cached, as "
        "PostgREST's schema cache does."
    )


def backends_body(results: list[CaseResult], imports: list[ColdImport], standin: dict[str, list[float]]) -> str:
    return "\n\n".join(
        [
            backends_table(results),
            backends_verdict(results),
            standin_line(standin),
            "Cold import of each backend, each run in a fresh interpreter (`python -c`, the time of the import "
            "statement alone):",
            cold_imports_table(imports),
        ]
    )
