"""The options of the benches that time one caller at a time (the serverless case): how many requests are timed,
how many go first unmeasured and how many have their round trips counted, the round trip added, the cold imports'
runs, and where the results and the servers' logs go; each checked against the same bounds."""

from __future__ import annotations

import argparse
from pathlib import Path


def one_caller_arguments(
    name: str,
    description: str | None,
    argv: list[str] | None,
    *,
    requests: int,
    warmup: int,
    counted: int | None = None,
    import_runs: int | None = None,
    logs: bool = True,
    unit: str = "requests per case",
) -> argparse.Namespace:
    """`python -m bench.<name>`'s options; `counted`, `import_runs` and `logs` only for a bench that has them."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    parser.add_argument("--requests", type=int, default=requests, help=f"timed {unit} (default {requests})")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"{unit} not measured, first (default {warmup})")
    if counted is not None:
        parser.add_argument(
            "--counted",
            type=int,
            default=counted,
            help=f"{unit} whose round trips are counted, next (default {counted})",
        )
    parser.add_argument("--db-rtt-ms", type=float, default=2.0, help="added to every round trip (default 2)")
    if import_runs is not None:
        parser.add_argument(
            "--import-runs", type=int, default=import_runs, help=f"fresh interpreters per cold import ({import_runs})"
        )
    parser.add_argument("--no-write", action="store_true", help="do not write the results into bench/README.md")
    if logs:
        parser.add_argument("--keep-logs", type=Path, help="keep the servers' logs in this directory")
    args = parser.parse_args(argv)
    if not 10 <= args.requests <= 5000 or not 0 <= args.warmup <= 200:
        parser.error("10 <= requests <= 5000 and 0 <= warmup <= 200")
    if counted is not None and not 1 <= args.counted <= 200:
        parser.error("1 <= counted <= 200")
    if not 0 <= args.db_rtt_ms <= 100:
        parser.error("0 <= db-rtt-ms <= 100")
    if import_runs is not None and not 1 <= args.import_runs <= 50:
        parser.error("1 <= import-runs <= 50")
    return args
