"""Run independent jobs locally (in-process or a process pool) or on Ray, with the same results.

A job is a picklable argument for a picklable top-level function. Executors yield results as jobs
finish (unordered); callers must not depend on completion order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from core import progress
from core.errors import UserError


class Executor(ABC):
    """Maps a function over jobs."""

    name: str = "executor"

    @abstractmethod
    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any], bar: Any | None = None) -> Iterator[Any]:
        """Yield ``fn(job)`` for every job, in completion order; ``bar`` receives per-item ticks."""


class LocalExecutor(Executor):
    """In-process when ``num_workers <= 1``, else a spawn-context process pool."""

    name = "local"

    def __init__(self, num_workers: int = 1) -> None:
        self.num_workers = max(1, int(num_workers))

    def map(self, fn, jobs, bar=None):
        if self.num_workers == 1 or len(jobs) <= 1:
            if bar is not None:
                queue: Any = _BarQueue(bar)
                progress.set_worker_queue(queue)
            try:
                for job in jobs:
                    yield fn(job)
            finally:
                progress.set_worker_queue(None)
            return
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        drain = progress.QueueDrain(queue, bar) if bar is not None else None
        try:
            with ctx.Pool(min(self.num_workers, len(jobs)), initializer=progress.set_worker_queue,
                          initargs=(queue,)) as pool:
                yield from pool.imap_unordered(fn, jobs)
        finally:
            if drain is not None:
                drain.close()


class _BarQueue:
    """Queue-like adapter that updates a bar directly (in-process runs)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def put(self, n: int) -> None:
        self.bar.update(n)


class RayExecutor(Executor):
    """One Ray task per job on a running cluster (``address``) or a local instance."""

    name = "ray"

    def __init__(self, num_workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'ray[data]'") from None
        self.num_workers = num_workers
        self.address = address or os.environ.get("RAY_ADDRESS")

    def map(self, fn, jobs, bar=None):
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.num_workers or os.cpu_count(), include_dashboard=False,
                         log_to_driver=False)
        remote = ray.remote(num_cpus=1)(fn)
        pending = [remote.remote(job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                result = ray.get(ref)
                if bar is not None:
                    bar.update(getattr(result, "num_items", 0))
                yield result


def make_executor(name: str, num_workers: int = 1, address: str | None = None) -> Executor:
    """``local`` or ``ray``."""
    if name == "local":
        return LocalExecutor(num_workers)
    if name == "ray":
        return RayExecutor(num_workers if num_workers > 1 else None, address)
    raise UserError(f"unknown executor {name!r} (choose local or ray)")
