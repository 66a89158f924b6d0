"""invites' table: the latency of sync_client's invite over each backend, beside Auth's own invite alone, and the
round trips of each to Project A, Project B's database (or its PostgREST) and Project B's Auth."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.report import markdown_table, trips_text

BASELINE_KEY = "baseline"


@dataclass
class InviteResult:
    """One implementation's invites: the round trips of each counted one (one number per proxy, in the order
    Project A, Project B, Auth; the baseline's Auth only) and the latencies (seconds) of the timed ones."""

    key: str
    title: str
    round_trips: list[list[int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    unexpected: int = 0

    def percentile_ms(self, pct: int) -> float:
        if len(self.latencies) < 2:
            return 1000 * statistics.fmean(self.latencies) if self.latencies else 0.0
        return 1000 * statistics.quantiles(self.latencies, n=100, method="inclusive")[pct - 1]

    def trips(self, index: int) -> str:
        return trips_text([trips[index] for trips in self.round_trips if index < len(trips)])


def invites_body(
    results: list[InviteResult], import_modules: tuple[str, ...], imports: list[tuple[float, float]]
) -> str:
    rows = []
    for result in results:
        a, b, auth = ("-", "-", result.trips(0)) if result.key == BASELINE_KEY else tuple(map(result.trips, range(3)))
        rows.append(
            (
                result.title,
                a,
                b,
                auth,
                f"{result.percentile_ms(50):.2f}",
                f"{result.percentile_ms(95):.2f}",
                f"{len(result.latencies)} / {result.unexpected}",
            )
        )
    header = (
        "Implementation",
        "Round trips to Project A",
        "Round trips to Project B",
        "Round trips to Project B's Auth",
        "p50 (ms)",
        "p95 (ms)",
        "Invites timed / unexpected answers",
    )
    whole = 1000 * statistics.median(seconds for seconds, _ in imports)
    own = 1000 * statistics.median(seconds for _, seconds in imports)
    modules = ", ".join(f"`{name}`" for name in import_modules)
    return (
        markdown_table(header, "lrrrrrr", rows)
        + f"\n\nCold import of the invite's Auth admin client ({modules}, after the shared modules), in"
        + f" {len(imports)} fresh interpreters: median {whole:.0f} ms in all, {own:.0f} ms of it its own."
    )
