"""project_b_webhook's tables and verdict: the median from a Project B write to the row in Project A under 100 ms
on loopback."""

from __future__ import annotations

from dataclasses import dataclass

from bench.load import LoadResult
from bench.report import markdown_table, met
from bench.webhook_bookings import Bookings
from bench.webhook_events import failures, without_write
from bench.webhook_propagation import KINDS, Burst, PropagationResult

TARGET_MEDIAN_MS = 100.0
_KIND_LABELS = {"insert": "new client", "name": "renamed profile", "email": "changed email"}


@dataclass(frozen=True)
class WebhookMeasurement:
    senders: int
    updates: LoadResult
    inserts: LoadResult
    propagation: PropagationResult
    deadline_seconds: float
    burst: Burst
    relay_deliveries: dict[str, int]
    relay_alive: bool
    bookings: Bookings


def _ms(values: list[float], pct: int) -> float:
    return LoadResult(latencies=values).percentile_ms(pct)


def _event_rows(label: str, load: LoadResult, senders: int) -> list[tuple[str, str, str]]:
    return [
        (f"Events/s, {senders} senders, {label}", f"{load.per_second:.0f}", "-"),
        (
            f"Latency per event p50 / p95 (ms), {label}",
            f"{load.percentile_ms(50):.1f} / {load.percentile_ms(95):.1f}",
            "-",
        ),
        (
            f"Events measured / failed / wrote nothing, {label}",
            f"{load.requests} / {failures(load)} / {without_write(load)}",
            "0 failed, 0 without a write",
        ),
    ]


def _propagation_rows(m: WebhookMeasurement) -> list[tuple[str, str, str]]:
    p = m.propagation
    arrived = p.arrived()
    by_kind = " / ".join(f"{_ms(p.arrived(kind), 50):.1f}" for kind in KINDS)
    deliveries = sum(m.relay_deliveries.values())
    not_ok = deliveries - m.relay_deliveries.get("200", 0)
    burst_arrived = "" if m.burst.arrived == len(m.burst.ids) else f" ({m.burst.arrived} arrived)"
    return [
        ("Project B write -> row in Project A, median (ms)", f"{_ms(arrived, 50):.1f}", f"< {TARGET_MEDIAN_MS:g}"),
        ("Project B write -> row in Project A, p95 (ms)", f"{_ms(arrived, 95):.1f}", "-"),
        ("Project B write -> row in Project A, max (ms)", f"{1000 * max(arrived, default=0.0):.1f}", "-"),
        ("Median by write: " + " / ".join(_KIND_LABELS[kind] for kind in KINDS) + " (ms)", by_kind, "-"),
        (
            f"Writes measured / not in Project A within {m.deadline_seconds:g} s",
            f"{len(p.samples)} / {p.missing}",
            "0 not arrived",
        ),
        (
            f"{len(m.burst.ids)} clients inserted in one Project B transaction: all in Project A after (ms)",
            f"{1000 * m.burst.seconds:.0f}{burst_arrived}",
            "-",
        ),
        ("Relay deliveries / not answered 200", f"{deliveries} / {not_ok}", "0 not 200"),
    ]


def _booking_rows(b: Bookings) -> list[tuple[str, str, str]]:
    rows = []
    for pct in (50, 95):
        base, ours = b.on_demand.percentile_ms(pct), b.proactive.percentile_ms(pct)
        rows.append((f"Booking p{pct} (ms), client only in Project B (on-demand sync)", f"{base:.1f}", "baseline"))
        ratio = f"{ours / base:.2f}x the baseline" if base else "-"
        rows.append((f"Booking p{pct} (ms), client the webhook already synced", f"{ours:.1f}", ratio))
    measured = b.on_demand.requests + b.proactive.requests
    failed = b.on_demand.errors + b.proactive.errors
    rows.append(("Bookings measured / failed (both cases)", f"{measured} / {failed}", "0 failed"))
    return rows


def webhook_table(m: WebhookMeasurement) -> str:
    rows = [
        *_event_rows("UPDATE (profile changed)", m.updates, m.senders),
        *_event_rows("INSERT (new client)", m.inserts, m.senders),
        *_propagation_rows(m),
        *_booking_rows(m.bookings),
    ]
    return markdown_table(["Metric", "Value", "Target / baseline"], "lrl", rows)


def webhook_verdict(m: WebhookMeasurement) -> str:
    """The target, and a caution for anything that makes it doubtful."""
    arrived = m.propagation.arrived()
    median = _ms(arrived, 50)
    line = (
        f"Target: median from a Project B write to the row in Project A under {TARGET_MEDIAN_MS:g} ms on loopback: "
        f"{median:.1f} ms -> {met(bool(arrived) and median < TARGET_MEDIAN_MS and not m.propagation.missing)}."
    )
    cautions = []
    if m.propagation.missing:
        cautions.append(f"{m.propagation.missing} writes never reached Project A")
    if m.propagation.stopped_early:
        cautions.append("the propagation run stopped early (time budget)")
    if not m.relay_alive:
        cautions.append("the relay thread died")
    if sum(m.relay_deliveries.values()) - m.relay_deliveries.get("200", 0):
        cautions.append("the relay saw answers other than 200")
    if m.burst.arrived != len(m.burst.ids):
        cautions.append("the burst did not fully arrive")
    for label, load in (("UPDATE", m.updates), ("INSERT", m.inserts)):
        if failures(load) or without_write(load):
            cautions.append(f"{label} events failed or wrote nothing")
        if load.exhausted:
            cautions.append(f"too few prepared {label} events (the run ended early)")
    if m.bookings.on_demand.errors or m.bookings.proactive.errors:
        cautions.append("bookings failed")
    if m.bookings.unexpected_sync:
        cautions.append(f"{m.bookings.unexpected_sync} bookings copied (or did not copy) the client unexpectedly")
    if cautions:
        line += " Caution: " + "; ".join(cautions) + "."
    return line
