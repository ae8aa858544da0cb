"""The items a blind solver sees: :class:`MCQ` views of any multiple-choice items, and chance accuracy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlm_classdata.errors import UserError


@dataclass(frozen=True)
class MCQ:
    """One multiple-choice item as a blind solver sees it, plus its class (the cross-validation group)."""

    question: str
    options: tuple[str, ...]
    answer_index: int
    group: str


def mcq_items(items: Iterable[Any]) -> list[MCQ]:
    """:class:`MCQ` views of objects with ``question``, ``options``, ``answer_index`` and ``class_id``
    (or ``group``) attributes. An item with fewer than two options or an answer index outside them raises
    :class:`~vlm_classdata.errors.UserError` naming its position (filter such items out before)."""
    out = []
    for i, it in enumerate(items):
        options = tuple(str(o) for o in (getattr(it, "options", None) or ()))
        index = getattr(it, "answer_index", None)
        if len(options) < 2 or not isinstance(index, int) or not 0 <= index < len(options):
            raise UserError(f"item {i}: a blind solver needs at least 2 options and an answer among them")
        group = getattr(it, "class_id", None)
        if group is None:
            group = getattr(it, "group", "")
        out.append(MCQ(str(getattr(it, "question", "")), options, index, str(group)))
    return out


def chance(items: Sequence[MCQ]) -> float:
    """Accuracy of guessing uniformly: the mean of ``1/k`` (0.0 for no items)."""
    return float(np.mean([1.0 / len(it.options) for it in items])) if items else 0.0
