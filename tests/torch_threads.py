"""A module-scoped fixture that runs the tiny test models on one torch thread.

Tiny models gain nothing from a second thread, and on a busy machine (xdist workers, other jobs) torch's extra
threads spin and wait: a rank pass measured 45x slower with 2 threads than with 1 under load. The setting is
restored after the module; subprocesses get ``OMP_NUM_THREADS=1`` (:data:`ONE_THREAD_ENV`)."""

from __future__ import annotations

import pytest
import torch

ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """torch on one thread for the whole test module (use: ``from torch_threads import one_torch_thread``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
