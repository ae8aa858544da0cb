"""What the label-noise audit (``python -m builders.verify audit``) writes for others to read: its
``summary.json`` (items checked, flagged per rule, how flagged items were resolved)."""

from __future__ import annotations

from typing import ClassVar

from vlm_classdata.records.base import Layout, Record, Section


class AuditResolved(Section):
    """Human decisions on flagged items (``--decisions``): flagged items decided, by decision."""

    items: int = 0
    keep: int = 0
    relabel: int = 0
    drop: int = 0
    unflagged: int = 0  # decisions about items no rule flagged (counted, not in ``items``)


class AuditSummary(Record):
    """``summary.json`` of an audit folder."""

    WHAT: ClassVar[str] = "audit summary"
    LAYOUT: ClassVar[Layout] = "project"

    models: list[str] = []
    items_checked: int = 0
    flagged: int = 0
    flagged_by_rule: dict[str, int] = {}
    rules: list[str] = []
    resolved: AuditResolved | None = None
