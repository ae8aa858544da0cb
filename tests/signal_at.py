"""Run ``python -m MODULE ARGS`` in a real process that signals itself at a chosen file publication.

    python tests/signal_at.py SIGNAL before|after N GLOB MODULE [ARGS...]

Every file the tools publish goes through ``os.replace`` (``vlm_classdata.atomic``); the process sends itself
SIGNAL (KILL, STOP, ...) just before or just after the N-th ``os.replace`` whose target path matches GLOB. So a
test kills or pauses a build at an exact point of its work (after the 3rd shard marker, before the manifest)
instead of polling the output folder and racing the build's speed.
"""

from __future__ import annotations

import fnmatch
import os
import runpy
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def install(sig: signal.Signals, when: str, nth: int, pattern: str) -> None:
    """Wrap ``os.replace`` so that the ``nth`` matching publication sends ``sig`` to this process."""
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


def command(sig: str, when: str, nth: int, pattern: str, module: str, *args: str) -> list[str]:
    """The argv of a process that runs ``python -m module args`` and sends itself ``sig`` as described above."""
    return [sys.executable, str(Path(__file__).resolve()), sig, when, str(nth), pattern, module, *args]


def main(argv: list[str]) -> None:
    name, when, nth, pattern, module, *args = argv
    if when not in ("before", "after"):
        raise SystemExit(f"when must be before or after, not {when!r}")
    install(signal.Signals[f"SIG{name.upper()}"], when, int(nth), pattern)
    sys.path.insert(0, str(REPO))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
