"""Batches that shrink on out-of-memory: :func:`run_with_halving` and :func:`is_out_of_memory`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from vlm_classdata.extras import require

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``torch.cuda.OutOfMemoryError`` and a ``RuntimeError`` whose message says out of memory."""
    require("vlm")
    import torch  # heavy: only model work needs it

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def run_with_halving(items: Sequence[T], batch_size: int, fn: Callable[[list[T]], list[Any]]) -> list[Any]:
    """Apply ``fn`` to consecutive chunks of ``items``; results in input order.

    On out-of-memory the failed chunk is retried with half the batch size (kept for the remaining chunks),
    down to 1; an out-of-memory at batch size 1 is raised.
    """
    require("vlm")
    import torch  # heavy: only model work needs it

    out: list[Any] = []
    bs, start = max(1, int(batch_size)), 0
    while start < len(items):
        chunk = list(items[start:start + bs])
        try:
            res = fn(chunk)
        except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is a RuntimeError
            if not is_out_of_memory(exc) or bs == 1:
                raise
            del exc
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            bs = max(1, bs // 2)
            log.warning("out of memory; retrying with batch size %d", bs)
            continue
        if len(res) != len(chunk):
            raise RuntimeError(f"batch function returned {len(res)} results for {len(chunk)} items")
        out.extend(res)
        start += len(chunk)
    return out
