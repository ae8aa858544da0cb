"""Run independent jobs locally (in-process or a process pool) or on Ray, with the same results.

A job is a picklable argument for a picklable top-level function. Executors yield results as jobs
finish (unordered); callers must not depend on completion order. A ``context`` shared by all jobs (large or
slow to unpickle) is sent to each worker once rather than with every job.

Local pools use the ``forkserver`` start method where the platform has it (else ``spawn``): one server
process imports the modules named by :meth:`Executor.warm_up` (``preload``) once, possibly while the parent
is still scanning, and every worker is forked from it with those imports done. Workers never inherit the
parent's threads or state (unlike ``fork``).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from multiprocessing import forkserver
from typing import Any
from urllib.parse import urlsplit

from vlm_classdata import progress
from vlm_classdata.errors import UserError
from vlm_classdata.extras import require

DEFAULT_RAY_TIMEOUT = 20.0  # seconds a Ray address has to answer before the run gives up
_NO_CONTEXT = object()
_worker_context: Any = _NO_CONTEXT  # set in pool workers by _init_worker


class Executor(ABC):
    """Maps a function over jobs."""

    name: str = "executor"

    @abstractmethod
    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any], bar: Any | None = None,
            context: Any = _NO_CONTEXT) -> Iterator[Any]:
        """Yield ``fn(job)`` for every job, in completion order; ``bar`` receives per-item ticks.

        With ``context``, each call is ``fn((context, job))`` and the context travels to each worker once."""

    def warm_up(self, preload: Sequence[str] = ()) -> None:  # noqa: B027 - optional hook
        """Get workers ready ahead of :meth:`map` (may return before they are); ``preload``: modules they need."""


def keep_freed_memory(limit: int = 256 << 20) -> bool:
    """Ask glibc's malloc to keep up to ``limit`` bytes of freed memory for reuse rather than hand it back to the
    operating system at once, and to serve blocks up to 32 MiB from the heap rather than from fresh mappings.

    Workers allocate and free ~100 KB image buffers by the thousand (and MB-sized row groups); by default glibc
    returns the heap top as soon as 128 KB of it are free, so the next images land on fresh zeroed pages: ~28
    page faults and ~40 µs per 110 KB image, more than reading it. Returns False where malloc is not glibc's."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return all([mallopt(m_mmap_threshold, 32 << 20), mallopt(m_trim_threshold, limit), mallopt(m_top_pad, 16 << 20)])


def _init_worker(queue: Any, has_context: bool, context: Any) -> None:
    """Pool initializer: attach the progress queue, keep the shared context (if any), tune malloc."""
    global _worker_context
    progress.set_worker_queue(queue)
    _worker_context = context if has_context else _NO_CONTEXT
    keep_freed_memory()


def _call(item: tuple[Callable[[Any], Any], Any]) -> Any:
    """Run one job in a pool worker, with the context the worker was started with (if any)."""
    fn, job = item
    return fn(job) if _worker_context is _NO_CONTEXT else fn((_worker_context, job))


def default_start_method() -> str:
    """``forkserver`` where available (Linux, macOS), else ``spawn``."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


class LocalExecutor(Executor):
    """In-process when ``num_workers <= 1``, else a process pool (``start_method``: ``forkserver`` where
    available, else ``spawn``)."""

    name = "local"

    def __init__(self, num_workers: int = 1, start_method: str | None = None) -> None:
        self.num_workers = max(1, int(num_workers))
        self.start_method = start_method or default_start_method()
        if self.start_method not in mp.get_all_start_methods():
            raise UserError(f"start method {self.start_method!r} is not available here; choose from "
                            f"{', '.join(mp.get_all_start_methods())}")

    def warm_up(self, preload: Sequence[str] = ()) -> None:
        """Start the fork server now, importing ``preload`` there, so that it is ready (or nearly) when the
        pool starts. A server already running (started earlier in this process) is kept as it is."""
        if self.num_workers == 1 or self.start_method != "forkserver":
            return
        ctx = mp.get_context("forkserver")
        if preload:  # "__main__" is the default preload: the server imports a main script once for all workers
            ctx.set_forkserver_preload(["__main__", *sorted(set(preload) - {"__main__"})])
        forkserver.ensure_running()

    def map(self, fn, jobs, bar=None, context=_NO_CONTEXT):
        if self.num_workers == 1 or len(jobs) <= 1:
            if bar is not None:
                queue: Any = _BarQueue(bar)
                progress.set_worker_queue(queue)
            try:
                for job in jobs:
                    yield fn(job) if context is _NO_CONTEXT else fn((context, job))
            finally:
                progress.set_worker_queue(None)
            return
        ctx = mp.get_context(self.start_method)
        has_context = context is not _NO_CONTEXT
        queue = ctx.Queue()
        drain = progress.QueueDrain(queue, bar) if bar is not None else None
        try:
            with ctx.Pool(min(self.num_workers, len(jobs)), initializer=_init_worker,
                          initargs=(queue, has_context, context if has_context else None)) as pool:
                yield from pool.imap_unordered(_call, [(fn, job) for job in jobs])
        finally:
            if drain is not None:
                drain.close()


    def map_threads(self, fn: Callable[[Any], Any], jobs: Sequence[Any], bar: Any | None = None,
                    context: Any = _NO_CONTEXT) -> Iterator[Any]:
        """Like :meth:`map`, on ``num_workers`` threads of this process: for jobs whose work releases the GIL
        (the compiled counting engine), which then need no worker start-up, imports or pickling."""
        if self.num_workers == 1 or len(jobs) <= 1:
            yield from self.map(fn, jobs, bar, context)
            return
        if bar is not None:
            progress.set_worker_queue(_BarQueue(bar))
        try:
            with ThreadPoolExecutor(min(self.num_workers, len(jobs))) as pool:
                calls = [pool.submit(fn, job if context is _NO_CONTEXT else (context, job)) for job in jobs]
                for call in as_completed(calls):
                    yield call.result()
        finally:
            progress.set_worker_queue(None)


class _BarQueue:
    """Queue-like adapter that updates a bar directly (in-process runs)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def put(self, n: int) -> None:
        self.bar.update(n)


class RayExecutor(Executor):
    """One Ray task per job on a running cluster (``address``) or a local instance.

    A cluster address is checked when the executor is made (before any work): it must answer within
    ``timeout`` seconds (see :func:`check_ray_address`)."""

    name = "ray"

    def __init__(self, num_workers: int | None = None, address: str | None = None,
                 timeout: float = DEFAULT_RAY_TIMEOUT) -> None:
        require("ray", "--executor ray")
        self.num_workers = num_workers
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.timeout = timeout
        if self.address:
            check_ray_address(self.address, timeout)

    def map(self, fn, jobs, bar=None, context=_NO_CONTEXT):
        require("ray", "--executor ray")
        import ray  # heavy and optional (the ray extra): only the ray executor needs it

        ensure_ray(self.address, self.num_workers, self.timeout)
        if context is _NO_CONTEXT:
            remote = ray.remote(num_cpus=1)(fn)
            pending = [remote.remote(job) for job in jobs]
        else:  # one copy of the context in the object store, passed by reference to every task
            remote = ray.remote(num_cpus=1)(_call_with)
            shared = ray.put(context)
            pending = [remote.remote(fn, shared, job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                result = ray.get(ref)
                if bar is not None:
                    bar.update(getattr(result, "num_items", 0))
                yield result


_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS
_H2_SETTINGS = 4


def _ray_endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a Ray GCS (``host:port``) or Ray Client (``ray://host[:port]``) address; None for
    addresses Ray resolves itself (``auto``, ``local``) or that are not host/port ones."""
    if address in ("auto", "local"):
        return None
    scheme = address.split("://", 1)[0] if "://" in address else ""
    if scheme not in ("", "ray"):
        return None
    try:
        parts = urlsplit(address if scheme else f"gcs://{address}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise UserError(f"--ray-address {address!r} is not host:port or ray://host:port") from None
    if not host:
        raise UserError(f"--ray-address {address!r} names no host")
    return host, port or (10001 if scheme == "ray" else 6379)


def check_ray_address(address: str, timeout: float = DEFAULT_RAY_TIMEOUT) -> None:
    """Fail within ``timeout`` seconds, with one :class:`UserError` line, unless a Ray server answers at
    ``address``: the TCP connection must open and the server must answer an HTTP/2 (gRPC) connection preface
    with its SETTINGS frame, which Ray's GCS and Ray Client servers do at once. ``ray.init`` itself waits far
    longer (and does not yield to SIGTERM) on an address that is closed, filtered or silent."""
    endpoint = _ray_endpoint(address)
    if endpoint is None:
        return
    deadline = time.monotonic() + timeout
    why = "no answer"
    try:
        with socket.create_connection(endpoint, timeout=timeout) as conn:
            conn.sendall(_H2_PREFACE)
            head = b""
            while len(head) < 9:
                conn.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = conn.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
        if len(head) == 9 and head[3] == _H2_SETTINGS:
            return
        why = "the server there does not speak gRPC" if head else "the connection was closed without an answer"
    except TimeoutError:
        why = "no answer"
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
    raise UserError(f"cannot reach Ray at {address} within {timeout:g}s ({why}); check --ray-address / "
                    "RAY_ADDRESS and that the cluster is up")


def ensure_ray(address: str | None = None, num_cpus: int | None = None,
               timeout: float = DEFAULT_RAY_TIMEOUT) -> None:
    """Connect to the Ray cluster at ``address`` (or ``RAY_ADDRESS``; checked first, see
    :func:`check_ray_address`), else start a local instance with ``num_cpus`` CPUs bound to 127.0.0.1; a
    no-op when Ray is already initialised in this process."""
    require("ray")
    import ray  # heavy and optional (the ray extra): only the ray executor needs it
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        check_ray_address(address, timeout)
        ray.init(address=address, log_to_driver=False)
    else:  # a local instance stays on loopback
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")


def _call_with(fn: Callable[[Any], Any], context: Any, job: Any) -> Any:
    """A Ray task with a shared context (Ray resolves the context's object reference before the call)."""
    return fn((context, job))


def make_executor(name: str, num_workers: int = 1, address: str | None = None,
                  timeout: float = DEFAULT_RAY_TIMEOUT) -> Executor:
    """``local`` or ``ray`` (``address``: a Ray cluster, which must answer within ``timeout`` seconds)."""
    if name == "local":
        return LocalExecutor(num_workers)
    if name == "ray":
        return RayExecutor(num_workers if num_workers > 1 else None, address, timeout)
    raise UserError(f"unknown executor {name!r} (choose local or ray)")
