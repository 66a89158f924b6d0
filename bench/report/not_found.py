"""not_found's table and verdict: every 404 of create_session (and of sync_client) the same answer, the same round
trips, and medians within 1 ms of an unknown id's to the same function, so that neither the answer nor its time
tells whether an id is a client."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.report import markdown_table, met, trips_text

TARGET_MEDIAN_SPREAD_MS = 1.0
UNKNOWN = "unknown"
CREATE_SESSION = "create_session"


@dataclass(frozen=True)
class CaseResult:
    """One case's requests to one function: its title, the answer it must give, the answers given (status and
    body), the round trips to each project of the counted requests, and the latencies (seconds) of the timed ones."""

    key: str
    title: str
    expected_status: int
    function: str = CREATE_SESSION
    bodies: dict[tuple[int, bytes], int] = field(default_factory=dict)
    round_trips_a: list[int] = field(default_factory=list)
    round_trips_b: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def unexpected(self) -> int:
        return sum(n for (status, _), n in self.bodies.items() if status != self.expected_status)

    def median_ms(self) -> float:
        return 1000 * statistics.median(self.latencies) if self.latencies else 0.0

    def percentile_ms(self, pct: int) -> float:
        if len(self.latencies) < 2:
            return self.median_ms()
        return 1000 * statistics.quantiles(self.latencies, n=100, method="inclusive")[pct - 1]


def _functions(results: list[CaseResult]) -> list[str]:
    return list(dict.fromkeys(result.function for result in results))


def _unknown_median(results: list[CaseResult], function: str) -> float:
    return next(r for r in results if r.key == UNKNOWN and r.function == function).median_ms()


def not_found_table(results: list[CaseResult]) -> str:
    rows = []
    for result in results:
        median = result.median_ms()
        delta = "" if result.key == UNKNOWN else f"{median - _unknown_median(results, result.function):+.2f}"
        rows.append(
            (
                result.function,
                result.title,
                str(result.expected_status),
                trips_text(result.round_trips_a),
                trips_text(result.round_trips_b),
                f"{median:.2f}",
                delta,
                f"{result.percentile_ms(95):.2f}",
                f"{len(result.latencies)} / {result.unexpected}",
            )
        )
    return markdown_table(
        [
            "Function",
            "Case",
            "Answer",
            "Round trips to A",
            "Round trips to B",
            "Median (ms)",
            "Median, difference to unknown id's (ms)",
            "p95 (ms)",
            "Requests timed / unexpected answers (of all)",
        ],
        "lllrrrrrr",
        rows,
    )


def _function_verdict(results: list[CaseResult], function: str) -> str:
    not_found = [r for r in results if r.function == function and r.expected_status == 404]
    unknown = _unknown_median(results, function)
    spread = max(abs(result.median_ms() - unknown) for result in not_found)
    bodies = {body for result in not_found for body in result.bodies}
    trips = {(tuple(sorted(set(r.round_trips_a))), tuple(sorted(set(r.round_trips_b)))) for r in not_found}
    parts = [
        f"one 404 body for every 404 case: {len(bodies)} -> {met(len(bodies) == 1)}",
        f"the same round trips on every 404: {len(trips)} pattern(s) -> {met(len(trips) == 1)}",
        f"404 medians within {TARGET_MEDIAN_SPREAD_MS:g} ms of the unknown id's: largest difference "
        f"{spread:.2f} ms -> {met(spread <= TARGET_MEDIAN_SPREAD_MS)}",
    ]
    return f"{function}: " + "; ".join(parts)


def not_found_verdict(results: list[CaseResult]) -> str:
    line = "Targets: " + ". ".join(_function_verdict(results, function) for function in _functions(results)) + "."
    unexpected = [f"{result.function} {result.key}" for result in results if result.unexpected]
    if unexpected:
        line += " Caution: unexpected answers in: " + ", ".join(unexpected) + "."
    return line
