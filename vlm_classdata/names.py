"""Names a user or an input gives that end up in a path (split, key, class, corpus, model alias).

Checked once where they enter, so no later ``out / name`` can leave the output folder.
"""

from __future__ import annotations

import re

from vlm_classdata.errors import UserError

_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")


def name_problem(value: object) -> str | None:
    """Why ``value`` cannot be one path component (None when it can)."""
    if not isinstance(value, str):
        return f"not a string ({type(value).__name__})"
    if value in ("", ".", ".."):
        return "empty or a relative path" if value else "empty"
    if _UNSAFE.search(value):
        return "contains a path separator or a control character"
    if value != value.strip():
        return "starts or ends with whitespace"
    if len(value.encode("utf-8")) > 200:
        return "longer than 200 bytes"
    return None


def check_name(value: object, what: str) -> str:
    """``value`` when it is a safe single path component, else one :class:`UserError` line."""
    problem = name_problem(value)
    if problem:
        raise UserError(f"{what} {value!r} cannot be used in a file name: {problem}")
    return value  # type: ignore[return-value]
