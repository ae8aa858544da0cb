"""Markdown pieces a card is made of: number formats, table cells and tables, code fences.

These are the filters and globals of the card templates (:mod:`cards.templating`)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from typing import Any


def cell(value: Any) -> str:
    """A table cell: ``none`` for None, strings as they are, anything else as JSON; ``|`` and newlines escaped."""
    text = "none" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (no final newline)."""
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
                      *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)])


def num(n: float) -> str:
    """``1,234`` for whole numbers, ``1,234.5`` otherwise."""
    return f"{n:,}" if isinstance(n, int) or float(n).is_integer() else f"{n:,.1f}"


def plural(n: int, word: str) -> str:
    """``1 class``, ``2 classes``, ``3 questions``."""
    return f"{num(n)} {word}" + ("" if n == 1 else "es" if word.endswith("s") else "s")


def pct(x: float | None) -> str:
    """``12.3%``, ``n/a`` for None."""
    return "n/a" if x is None else f"{x:.1%}"


def median(values: list[int]) -> str:
    """The median as :func:`num`, ``n/a`` for no values."""
    return num(statistics.median(values)) if values else "n/a"


def code(text: str, lang: str = "") -> str:
    """A fenced code block (a longer fence when ``text`` holds one)."""
    fence = "````" if "```" in text else "```"
    return "\n".join([fence + lang, text, fence])


def pairs(counts: dict[str, Any], nonzero: bool = False) -> str:
    """``key value, key value`` of a mapping (only its non-zero entries with ``nonzero``); empty for none."""
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v or not nonzero)
