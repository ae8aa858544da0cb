"""What model verification (``python -m builders.verify run``/``filter``) writes for others to read: a pass's
summary ``verify/<pass>.<alias>.json`` and a filtered copy's ``filter_report.json``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from vlm_classdata.records.base import Layout, Num, Record
from vlm_classdata.records.build_manifest import FilterRuleCount


class VerificationSummary(Record):
    """One pass of one model over a build: items, answers, correct ones, errors by kind."""

    WHAT: ClassVar[str] = "verification summary"
    LAYOUT: ClassVar[Layout] = "sorted_ascii"

    pass_: str = Field(alias="pass")
    model: str
    items: int = 0
    ok: int = 0
    correct: int = 0
    accuracy: Num | None = None
    errors: dict[str, int] = {}


class FilterReport(Record):
    """``filter_report.json`` of a filtered copy: the rules as given, rows per file before/after, drops."""

    WHAT: ClassVar[str] = "filter report"
    LAYOUT: ClassVar[Layout] = "sorted"

    input: int = 0
    kept: int = 0
    rules: list[FilterRuleCount] = []
    rules_text: list[str] = []
    files: dict[str, dict[str, Any]] = {}
    dropped: Any = None
