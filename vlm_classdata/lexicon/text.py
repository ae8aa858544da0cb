"""Text as the lexicon compares it: :func:`normalize`, and the shipped stoplist."""

from __future__ import annotations

from importlib import resources

import regex

_SEP = regex.compile(r"[^\p{L}\p{N}]+")


def normalize(text: str) -> str:
    """Lower-case; every run of characters that are not Unicode letters or numbers → one space; strip.

    ``"Tiger-Shark!"`` → ``"tiger shark"``; ``"colt's foot"`` → ``"colt s foot"``.
    """
    return _SEP.sub(" ", text.lower()).strip()


def stopwords() -> frozenset[str]:
    """The shipped stoplist (``vlm_classdata/data/stopwords.txt``), normalised."""
    text = resources.files("vlm_classdata.data").joinpath("stopwords.txt").read_text(encoding="utf-8")
    words = (normalize(line.split("#", 1)[0]) for line in text.splitlines())
    return frozenset(w for w in words if w)
