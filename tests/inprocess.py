"""Run a command's ``main(argv)`` in the test process, the way ``python -m`` runs it: same exit code (through
:func:`vlm_classdata.errors.run_cli`), stdout, stderr and ``sys.argv`` (the run log records it).

A fresh interpreter spends seconds importing nltk, datasets and polars before the first byte of a small build;
in-process calls pay that once per test process. Tests start a real process only where the process is the
point: SIGKILL, SIGSTOP, a file size limit, the ``python -m`` entry point itself."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Callable, Sequence

from vlm_classdata.errors import run_cli


def run_main(main: Callable[[Sequence[str] | None], int | None], *args: str) -> subprocess.CompletedProcess[str]:
    """``main(args)`` as a command run: the result reads like :func:`subprocess.run`'s (returncode, stdout,
    stderr)."""
    prog = sys.modules[main.__module__].__file__ or main.__module__
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = [prog, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_cli(main, list(args))
    finally:
        sys.argv = saved
    return subprocess.CompletedProcess([prog, *args], code, out.getvalue(), err.getvalue())
