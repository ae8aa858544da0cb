"""Errors a user can cause, and the CLI wrapper that prints them as one line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


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


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; turn :class:`UserError` and Ctrl-C into one line and a non-zero exit."""
    try:
        return int(main(argv) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
