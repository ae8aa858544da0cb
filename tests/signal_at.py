"""Run a command in a real process that signals itself at a chosen file publication: exact kill points.

Every file the tools publish goes through ``os.replace`` (``vlm_classdata.atomic``). :func:`start` runs
``main(args)`` (through ``run_cli``, as ``python -m`` does) in a new process that sends itself ``sig`` (SIGKILL,
SIGSTOP, ...) just before or just after the ``nth`` ``os.replace`` whose target path matches ``pattern``. So a
test kills or pauses a build at an exact point of its work (after the 3rd shard marker, before the manifest)
instead of polling the output folder and racing the build's speed.

The processes are forked from a ``forkserver`` that imported the heavy libraries once (nltk, datasets,
pandas, ...): each run costs what its work costs, not seconds of imports. They are real processes all the same:
a SIGKILL leaves exactly what a killed ``python -m`` run leaves.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path

from vlm_classdata.errors import run_cli

# imported once by the fork server (a missing name is skipped), so that each run starts warm
PRELOAD = ["signal_at", "builders.imagenet_qa", "builders.pipeline", "builders.writers.registry",
           "vlm_classdata.distractors", "nltk", "datasets", "pandas", "pyarrow.parquet", "webdataset", "PIL.Image"]


def install(sig: signal.Signals, when: str, nth: int, pattern: str) -> None:
    """Wrap ``os.replace`` so that the ``nth`` publication matching ``pattern`` sends ``sig`` to this process."""
    real = os.replace
    seen = 0

    def replace(src, dst, *args, **kwargs):  # noqa: ANN001, ANN202 - os.replace's own signature
        nonlocal seen
        hit = fnmatch.fnmatch(os.fspath(dst), pattern)
        if hit:
            seen += 1
        if hit and seen == nth and when == "before":
            os.kill(os.getpid(), sig)
        real(src, dst, *args, **kwargs)
        if hit and seen == nth and when == "after":
            os.kill(os.getpid(), sig)

    os.replace = replace


def _child(sig: str, when: str, nth: int, pattern: str, module: str, args: list[str], log: str) -> None:
    install(signal.Signals[f"SIG{sig}"], when, nth, pattern)
    main_module = importlib.import_module(module)
    sys.argv = [main_module.__file__ or module, *args]
    with open(log, "w", encoding="utf-8") as err, contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(err):
        code = run_cli(main_module.main, args)
    sys.exit(code)


class Run:
    """A started run: its process and the file that receives its stdout and stderr."""

    def __init__(self, process: mp.process.BaseProcess, log: Path) -> None:
        self.process, self.log = process, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.is_file() else ""

    def wait(self, timeout: float = 300) -> int:
        """Wait for the end; the exit code (``-9`` after a SIGKILL)."""
        self.process.join(timeout)
        assert self.process.exitcode is not None, f"run {self.pid} still going after {timeout}s"
        return self.process.exitcode

    def wait_stopped(self, timeout: float = 300) -> None:
        """Wait until the process has stopped itself (SIGSTOP); fail if it ended instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.is_alive():
                raise AssertionError(f"the run ended (exit {self.process.exitcode}) before it stopped: {self.output()}")
            with contextlib.suppress(FileNotFoundError):  # gone between the two checks: reported next round
                if Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T":
                    return
            time.sleep(0.01)
        raise AssertionError(f"run {self.pid} did not stop within {timeout}s")


def start(sig: str, when: str, nth: int, pattern: str, module: str, *args: str, log: Path) -> Run:
    """Start ``module.main(args)`` in a new process that sends itself ``SIG<sig>`` at the chosen publication;
    its stdout and stderr go to ``log``."""
    if when not in ("before", "after"):
        raise ValueError(f"when must be before or after, not {when!r}")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # no effect when this process's fork server already runs
    process = ctx.Process(target=_child, args=(sig, when, nth, pattern, module, list(args), str(log)))
    process.start()
    return Run(process, log)
