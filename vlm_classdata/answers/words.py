"""Words both answer readers skip: leading articles."""

from __future__ import annotations

ARTICLES = frozenset({"a", "an", "the"})


def strip_articles(tokens: list[str]) -> list[str]:
    """``tokens`` without its leading articles (the last token is always kept)."""
    i = 0
    while i < len(tokens) - 1 and tokens[i] in ARTICLES:
        i += 1
    return tokens[i:]
