"""CloudWatch metrics in the embedded metric format (EMF): each invocation writes one JSON line to stdout with what
it counted, and CloudWatch Logs turns it into metrics, with no call to CloudWatch and nothing to import (the
format Powertools' Metrics writes: docs.aws.amazon.com, "Specification: Embedded metric format"). Namespace
ClientSync, dimension Function (the function's own name, as in its log lines). Counts and seconds only.

- Inserted, Updated, Unchanged, Archived, Conflict: what the invocation's sync wrote (shared/sync.py, bulk pages).
- FailedRecords: the records of an SQS batch reported failed (shared/events/sqs.py).
- LagSeconds: after a scheduled reconcile, how long the oldest change of Project B it left waiting has waited (0
  when it applied them all): what the lag alarm watches (template.yaml).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

NAMESPACE = "ClientSync"
OUTCOME_METRICS = {
    "inserted": "Inserted",
    "updated": "Updated",
    "unchanged": "Unchanged",
    "archived": "Archived",
    "conflict": "Conflict",
    "conflicts": "Conflict",
}

_collected: ContextVar[dict[str, tuple[float, str]] | None] = ContextVar("metrics", default=None)


def add(name: str, value: float, unit: str = "Count") -> None:
    """Add `value` to the invocation's metric `name` (nothing outside an invocation: the CLI, benchmarks)."""
    collected = _collected.get()
    if collected is not None and value:
        total, _ = collected.get(name, (0.0, unit))
        collected[name] = (total + value, unit)


def put(name: str, value: float, unit: str) -> None:
    """Set the invocation's metric `name` to `value`."""
    collected = _collected.get()
    if collected is not None:
        collected[name] = (value, unit)


def add_outcomes(counts: dict[str, int]) -> None:
    """The sync's outcomes, by their names in OutcomeCounts.counts() or a ClientOutcome's outcome."""
    for outcome, value in counts.items():
        if outcome in OUTCOME_METRICS:
            add(OUTCOME_METRICS[outcome], value)


@contextmanager
def invocation(function: str) -> Iterator[None]:
    """Collect the metrics of one invocation of `function`, and write them as one EMF line when it ends."""
    token = _collected.set({})
    try:
        yield
    finally:
        collected = _collected.get() or {}
        _collected.reset(token)
        if collected:
            sys.stdout.write(json.dumps(emf_document(function, collected)) + "\n")
            sys.stdout.flush()


def emf_document(function: str, metrics: dict[str, tuple[float, str]]) -> dict[str, object]:
    definitions = [{"Name": name, "Unit": unit} for name, (_, unit) in sorted(metrics.items())]
    return {
        "level": "info",  # a log line like the others (shared/logs.py), which CloudWatch also reads as metrics
        "event": "metrics",
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Function"]], "Metrics": definitions}],
        },
        "Function": function,
        **{name: value for name, (value, _) in sorted(metrics.items())},
    }
