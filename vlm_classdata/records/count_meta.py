"""``count_meta.json``: what ``python -m corpora_stats count`` writes beside its counts tables."""

from __future__ import annotations

from typing import ClassVar

from vlm_classdata.records.base import Record, Section


class LexiconInfo(Section):
    """``lexicon``: name forms counted, forms flagged and left out of the main counts (by flag)."""

    clean_forms: int | None = None
    flagged_forms: int | None = None
    by_flag: dict[str, int] = {}


class CorpusInfo(Section):
    """One of ``corpora``: where it was read from and how many documents it holds."""

    documents: int | None = None


class CountMeta(Record):
    """A counts folder's ``count_meta.json`` (the tables it lists are the folder's tables)."""

    WHAT: ClassVar[str] = "count metadata"

    method: str | None = None
    lexicon: LexiconInfo = LexiconInfo()
    corpora: dict[str, CorpusInfo] = {}
    tables: dict[str, dict[str, object]] | None = None
