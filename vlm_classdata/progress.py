"""Progress bars with count, rate and ETA, fed from worker processes through a queue."""

from __future__ import annotations

import sys
import threading
from typing import Any

from tqdm import tqdm

_worker_queue: Any = None


def make_bar(total: int | None, desc: str, unit: str = "img", disable: bool = False) -> tqdm:
    """A tqdm bar on stderr showing count/total, rate and ETA."""
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5, file=sys.stderr,
                disable=disable, smoothing=0.1)


def set_worker_queue(queue: Any) -> None:
    """Called in worker processes (pool initializer) so :func:`tick` reports to the parent."""
    global _worker_queue
    _worker_queue = queue


def tick(n: int = 1) -> None:
    """Report ``n`` finished items from inside a job; a no-op when no queue is attached."""
    if _worker_queue is not None and n:
        _worker_queue.put(n)


class QueueDrain:
    """A thread in the parent that moves ticks from a queue into a bar."""

    def __init__(self, queue: Any, bar: tqdm) -> None:
        self.queue, self.bar = queue, bar
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            n = self.queue.get()
            if n is None:
                return
            self.bar.update(n)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=5)
