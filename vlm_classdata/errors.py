"""Errors a user can cause, and the CLI wrapper that prints them as one line."""

from __future__ import annotations

import errno
import gc
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vlm_classdata.secrets import redact


class UserError(Exception):
    """A problem with the user's input or options: printed as one line, exit status 2."""


def read_user_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file the user named; a missing or malformed file is one :class:`UserError` line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{what} {str(path)!r} not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} {path}: not valid JSON ({exc})") from None


def user_jsonl_objects(text: str, what: str) -> Iterator[tuple[str, dict]]:
    """``(where, row)`` for every non-blank line of a JSONL text the user gave (``where`` = ``"WHAT:LINE"`` for
    their messages); a line that is not a JSON object is one :class:`UserError` naming it."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{what}:{n}"
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            raise UserError(f"{where}: not a JSON object")
        yield where, row


TRACEBACK_ENV = "VLMCD_TRACEBACK"  # set to 1 to see the traceback behind an unexpected error


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (at most ``limit`` characters), else its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line: its whole message with whitespace collapsed (at most ``limit``
    characters), else its type's name."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


def describe_os_error(exc: OSError) -> str:
    """One line for a failed file operation: the path(s), the cause, and what to do for the usual ones."""
    paths = " → ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    cause = exc.strerror or str(exc) or type(exc).__name__
    hint = {errno.ENOSPC: " (the disk is full: free space, then run the same command to resume)",
            errno.EDQUOT: " (disk quota exceeded: free space, then run the same command to resume)",
            errno.EACCES: " (no permission: choose a folder you can write, or fix its permissions)",
            errno.EROFS: " (read-only file system: choose another output folder)"}.get(exc.errno or -1, "")
    return f"{paths}: {cause}{hint}" if paths else f"{cause}{hint}"


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; every failure ends in one line on stderr and a non-zero exit, never a traceback.

    :class:`UserError` (a mistake in input or options): exit 2. A failed file operation (disk full, permission
    denied, a path that is a file): the path and the cause, exit 1. Ctrl-C: 130. Anything else is reported as
    an unexpected error in one line (exit 1); ``VLMCD_TRACEBACK=1`` shows the traceback too.

    What was imported before is moved out of the garbage collector's sight (``gc.freeze``): modules and classes
    live until exit, and collections that walked them took ~10% of a short count."""
    gc.freeze()
    try:
        return int(main(argv) or 0)
    except UserError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if os.environ.get(TRACEBACK_ENV):
            traceback.print_exc()
        print(f"error: {redact(describe_os_error(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        if os.environ.get(TRACEBACK_ENV):
            traceback.print_exc()
        text = redact(" ".join(str(exc).split()))[:300] or "no message"
        print(f"error: unexpected {type(exc).__name__}: {text} (set {TRACEBACK_ENV}=1 for the traceback)",
              file=sys.stderr)
        return 1
