"""The sharded backfill: shard_ranges(N) jobs on one queue, consumed by 1, 2 or 4 processes side by side.

Each consumer is its own process (multiprocessing, spawn: nothing shared but the queue) with its own BackfillService and
pools over the same databases, and does what sync_client does with a queued job: BackfillService.run_range until the
job's budget is spent, then the remainder goes back on the queue. The clock runs from the first job queued until
the queue has no job left; the consumers have started and opened their connections before that.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier

from bench.bulk_cases import Run, quiet_sync_logs
from shared.backfill import shard_ranges
from shared.models import BackfillRange

START_SECONDS = 120.0


@dataclass(frozen=True)
class ConsumerConfig:
    project_a_url: str
    project_b_url: str


def consume(
    config: ConsumerConfig,
    jobs: multiprocessing.JoinableQueue[str | None],
    ready: Barrier,
    done: multiprocessing.Queue[tuple[int, int, int]],
) -> None:
    """A consumer process: jobs until a None; then (clients inserted, jobs run, remainders queued) on `done`."""
    from bench.bulk_cases import backfill_service, sync_settings, warm
    from shared.stores.pools import close_pools

    quiet_sync_logs()
    settings = sync_settings(config.project_a_url, config.project_b_url)
    bulk = backfill_service(settings)
    warm(bulk)
    ready.wait(timeout=START_SECONDS)
    inserted = runs = requeued = 0
    try:
        while (message := jobs.get()) is not None:
            try:
                job = BackfillRange.model_validate_json(message)
                applied, rest = bulk.run_range(job, time.monotonic() + settings.job_budget_seconds)
                inserted += applied.inserted
                runs += 1
                if rest is not None:
                    jobs.put(rest.model_dump_json())
                    requeued += 1
            finally:
                jobs.task_done()
        jobs.task_done()
    finally:
        done.put((inserted, runs, requeued))
        close_pools()


@dataclass(frozen=True)
class ShardedRun:
    run: Run
    consumers: int
    shards: int
    jobs_run: int
    requeued: int


def sharded_backfill(config: ConsumerConfig, *, consumers: int, shards: int, timeout: float) -> ShardedRun:
    context = multiprocessing.get_context("spawn")
    jobs: multiprocessing.JoinableQueue[str | None] = context.JoinableQueue()
    done: multiprocessing.Queue[tuple[int, int, int]] = context.Queue()
    ready = context.Barrier(consumers + 1)
    processes = [
        context.Process(target=consume, args=(config, jobs, ready, done), name=f"bench-consumer-{index}")
        for index in range(consumers)
    ]
    for process in processes:
        process.start()
    try:
        ready.wait(timeout=START_SECONDS)
        started = time.perf_counter()
        for job in shard_ranges(shards):
            jobs.put(job.model_dump_json())
        _join(jobs, processes, timeout)
        seconds = time.perf_counter() - started
        for _ in processes:
            jobs.put(None)
        totals = [done.get(timeout=timeout) for _ in processes]
        for process in processes:
            process.join(timeout=30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    return ShardedRun(
        run=Run(sum(t[0] for t in totals), seconds),
        consumers=consumers,
        shards=shards,
        jobs_run=sum(t[1] for t in totals),
        requeued=sum(t[2] for t in totals),
    )


def _join(jobs: multiprocessing.JoinableQueue[str | None], processes: Sequence[BaseProcess], timeout: float) -> None:
    """jobs.join(), but not forever: a consumer that died leaves its job unfinished."""
    deadline = time.monotonic() + timeout
    joined = threading.Event()

    def wait() -> None:
        jobs.join()
        joined.set()

    threading.Thread(target=wait, daemon=True).start()
    while not joined.wait(0.05):
        dead = [p for p in processes if not p.is_alive()]
        if dead:
            codes = ", ".join(f"{p.name}: {p.exitcode}" for p in dead)
            raise RuntimeError(f"A consumer exited before the jobs were done ({codes})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"The sharded backfill was not done after {timeout:.0f} s")
