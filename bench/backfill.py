"""Benchmark the backfill and reconcile (issue 8): `python -m bench.backfill`.

On one fresh stack (Postgres, fresh bench_bulk_ databases, 100,000 Project B clients seeded set-based), each case
starting from an empty Project A:

1. the physical reference: a raw COPY of the rows (profile and email) out of Project B's database, streamed into a
   logged table with a primary key in Project A's; the second reference: the same profiles as clients' columns,
   COPYed into a table shaped exactly like clients with its primary key and synced email index; and the ceiling
   of a backfill stream: that COPY straight into public.clients (its indexes, none of the sync's rules);
2. The backfill as sync_client's jobs and the CLI run it (backfill_pages: pages of 1,000, and of 5,000,
   the next page read while one is written), alternating with the COPY, each run a few times, the median
   reported, with the time spent in Project B's query and in Project A's statement; beside it, the same pages
   one after the other (nothing read ahead), the floor of any set-based write: the same pages written by a
   bare INSERT ... SELECT, none of the contract's rules, and issue 17's design (bench/bulk_copy_staged.py):
   pages streamed by COPY into a staging table, then the sync's statement applied to them;
3. the design document's way (check, then insert, one client at a time) on 2,000 profiles, for scale;
4. the sharded backfill: shard_ranges jobs on a queue consumed by 1, 2 and 4 processes side by side;
5. reconcile among the 100,000 synced clients: its first run, a run with nothing changed, and a run after 1,000
   changes in Project B, with the rows each table gave up and the plan of client_changes.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from datetime import UTC, datetime

import psycopg

from bench.bulk_cases import (
    JOB_BUDGET_SECONDS,
    Run,
    backfill,
    copy_as_clients,
    copy_reference,
    design_doc,
    quiet_sync_logs,
    sync_settings,
)
from bench.bulk_copy_staged import copy_staged_backfill
from bench.bulk_explain import explain_function
from bench.bulk_reconcile import measure_reconcile
from bench.bulk_shards import ConsumerConfig, sharded_backfill
from bench.report import Header, Report, load_average, run_bench
from bench.report.backfill import BulkMeasurement, backfill_body, backfill_plans
from bench.stack import (
    BULK_PREFIX,
    count_rows,
    empty_project_a,
    fresh_projects,
    measured_urls,
    postgres_version,
    progress,
    seed_project_b,
    settle_project_a,
)
from shared.stores.pools import close_pools

SHARD_TIMEOUT_SECONDS = 600.0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.backfill", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100_000, help="Project B clients (default 100000)")
    parser.add_argument(
        "--page-sizes", type=int, nargs="+", default=[1000, 5000], help="backfill page sizes (default 1000 5000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each backfill, COPY and reconcile case (3)")
    parser.add_argument("--design-doc-clients", type=int, default=2000, help="clients of the design doc's way (2000)")
    parser.add_argument("--shards", type=int, default=16, help="jobs of the sharded backfill (default 16)")
    parser.add_argument(
        "--consumers", type=int, nargs="+", default=[1, 2, 4], help="consumer counts of the sharded backfill (1 2 4)"
    )
    parser.add_argument("--shard-rounds", type=int, default=2, help="runs of each consumer count (default 2)")
    parser.add_argument("--changes", type=int, default=1000, help="Project B changes for reconcile (default 1000)")
    parser.add_argument(
        "--db-rtt-ms",
        type=float,
        default=0.0,
        help="route the measured connections through proxies adding this round trip time (default 0: direct)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write the results into bench/README.md")
    args = parser.parse_args(argv)
    if not 1_000 <= args.clients <= 1_000_000 or not 1 <= args.rounds <= 7 or not 1 <= args.shard_rounds <= 5:
        parser.error("1000 <= clients <= 1000000, 1 <= rounds <= 7, 1 <= shard-rounds <= 5")
    if any(not 1 <= size <= 5000 for size in args.page_sizes) or not 1 <= args.shards <= 256:
        parser.error("1 <= page size <= 5000 (client_page's cap), 1 <= shards <= 256")
    if any(not 1 <= n <= 32 for n in args.consumers) or not 1 <= args.design_doc_clients <= args.clients:
        parser.error("1 <= consumers <= 32, 1 <= design-doc-clients <= clients")
    if not 10 <= args.changes <= args.clients // 2 or not 0 <= args.db_rtt_ms <= 100:
        parser.error("10 <= changes <= clients / 2, 0 <= db-rtt-ms <= 100")
    return args


def _measure(args: argparse.Namespace) -> tuple[BulkMeasurement, Header]:
    m = BulkMeasurement(clients=args.clients, shards=args.shards, design_doc_clients=args.design_doc_clients)
    with ExitStack() as stack:
        quiet_sync_logs()
        progress(f"starting Postgres and seeding {args.clients:,} Project B clients")
        projects = fresh_projects(stack, prefix=BULK_PREFIX)
        stack.callback(close_pools)  # before the databases are dropped
        seed_project_b(projects, args.clients)
        urls = measured_urls(projects, stack, args.db_rtt_ms)
        settings = sync_settings(urls.functions_a, urls.functions_b)
        # The design document's way reads and writes the tables, as the service role; the bare INSERT writes
        # Project A's table the same way and reads Project B's pages as the backfill does.
        design_doc_settings = sync_settings(urls.service_a, urls.service_b)
        floor_settings = sync_settings(urls.service_a, urls.functions_b)
        started = datetime.now(UTC)
        load_before = load_average()

        for index in range(args.rounds):
            progress(f"design document's way, {args.design_doc_clients:,} clients, round {index + 1}")
            empty_project_a(projects)
            m.design_doc.append(design_doc(design_doc_settings, args.design_doc_clients))

        staged = [f"staged {size}" for size in args.page_sizes]
        cases: list[int | str] = [
            "COPY",
            "COPY shaped",
            "COPY clients",
            *args.page_sizes,
            *staged,
            "page after page",
            "bare INSERT",
        ]
        for index in range(args.rounds):
            shift = index % len(cases)
            for case in cases[shift:] + cases[:shift]:
                empty_project_a(projects)
                progress(f"round {index + 1}: " + (case if isinstance(case, str) else f"backfill, pages of {case:,}"))
                if case == "COPY":
                    m.copy.append(copy_reference(urls, projects))
                elif case == "COPY shaped":
                    m.copy_shaped.append(copy_as_clients(urls, projects, into_clients=False))
                elif case == "COPY clients":
                    m.copy_clients.append(copy_as_clients(urls, projects, into_clients=True))
                elif isinstance(case, str) and case.startswith("staged "):
                    size = int(case.split()[1])
                    m.staged.setdefault(size, []).append(
                        _checked(copy_staged_backfill(urls, size), projects.project_a_url)
                    )
                elif case == "page after page":
                    one_by_one = backfill(settings, m.baseline_page, one_by_one=True)
                    m.one_by_one.append(_checked(one_by_one, projects.project_a_url))
                elif case == "bare INSERT":
                    floor = backfill(floor_settings, m.baseline_page, bare_insert=True)
                    m.bare_insert.append(_checked(floor, projects.project_a_url))
                else:
                    run = backfill(settings, int(case))
                    m.pages.setdefault(int(case), []).append(_checked(run, projects.project_a_url))

        m.page_plan_position = args.clients // 2
        m.page_plan = explain_function(
            projects.project_b_url,
            "public.client_page",
            [_id_at(projects.project_b_url, m.page_plan_position), 1000, None],
        )

        config = ConsumerConfig(urls.functions_a, urls.functions_b)
        for index in range(args.shard_rounds):
            order = args.consumers if index % 2 == 0 else args.consumers[::-1]
            for consumers in order:
                empty_project_a(projects)
                progress(f"sharded backfill, {args.shards} jobs, {consumers} consumers, round {index + 1}")
                result = sharded_backfill(
                    config, consumers=consumers, shards=args.shards, timeout=SHARD_TIMEOUT_SECONDS
                )
                m.sharded.setdefault(consumers, []).append(result)

        if count_rows(projects.project_a_url, "public.clients") != args.clients:
            progress("backfill before reconcile")
            empty_project_a(projects)
            backfill(settings, settings.sync_page_size)
        settle_project_a(projects)
        m.reconcile = measure_reconcile(
            projects,
            settings,
            rounds=args.rounds,
            changes=args.changes,
            deleted=max(1, args.changes // 50),
            emails=max(1, args.changes // 50),
        )
        header = Header(
            postgres=postgres_version(projects.server_url),
            settings=_settings(args),
            machine_note=f"; load average (1, 5, 15 min) before / after: {load_before}; {load_average()}",
            server_note=", pgserver's settings: shared_buffers 128 MB, fsync and synchronous_commit on",
            started=started,
        )
    return m, header


def _checked(run: Run, project_a_url: str) -> Run:
    held = count_rows(project_a_url, "public.clients")
    if held != run.rows:
        raise RuntimeError(f"The backfill reported {run.rows:,} clients inserted, Project A holds {held:,}")
    return run


def _id_at(project_b_url: str, position: int) -> object:
    with psycopg.connect(project_b_url) as conn:
        row = conn.execute("select id from public.profiles order by id offset %s limit 1", (position,)).fetchone()
    return row[0] if row else None


def _settings(args: argparse.Namespace) -> str:
    network = f"{args.db_rtt_ms:g} ms added per database round trip (proxy)" if args.db_rtt_ms else "direct connections"
    return (
        f"{args.clients:,} Project B clients; every backfill run into an empty Project A (clients, conflicts and "
        f"watermark truncated, then a checkpoint); {args.rounds} runs per case, COPY and the page sizes alternating "
        f"in rotated order, median reported; sharded: {args.shard_rounds} runs per consumer count, alternating; "
        f"sync_client's settings (statement timeout 3 s, job budget {JOB_BUDGET_SECONDS:g}"
        f" s, page size 1,000 for the sharded jobs and reconcile); Project A vacuumed and analyzed before the "
        f"reconcile runs; {network}"
    )


def measure(args: argparse.Namespace) -> Report:
    m, header = _measure(args)
    return Report(header, backfill_body(m), backfill_plans(m), details_title="Plans", print_header=True)


def main(argv: list[str] | None = None) -> int:
    return run_bench("backfill", _arguments, measure, argv)


if __name__ == "__main__":
    sys.exit(main())
