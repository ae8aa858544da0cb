"""Multiple-choice helpers: the MCQ Example, balanced answer positions, option letters and option blocks."""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field

from builders.formats.base import Example
from builders.records import sample_rng

MAX_LETTERS = 26


@dataclass
class MCQExample(Example):
    """A multiple-choice Example that records how its distractors were chosen (see vlm_classdata.distractors)."""

    option_class_ids: list[str] = field(default_factory=list)  # class id of every option, in display order
    distractor_mode: str = ""  # "random" or "hard"
    distractor_pool_size: int = 0  # how many classes the distractors were drawn from for this item
    distractor_relations: list[str] = field(default_factory=list)  # per option; "answer" at the answer

    def distractor_fields(self) -> dict:
        """The row fields that record the distractors: the four fields above, in this order."""
        return {"option_class_ids": list(self.option_class_ids), "distractor_mode": self.distractor_mode,
                "distractor_pool_size": self.distractor_pool_size,
                "distractor_relations": list(self.distractor_relations)}


def letters(k: int) -> list[str]:
    """The first ``k`` option letters, ``A``..``Z`` (``k`` ≤ 26)."""
    if not 0 <= k <= MAX_LETTERS:
        raise ValueError(f"cannot letter {k} options (at most {MAX_LETTERS})")
    return list(string.ascii_uppercase[:k])


def balanced_positions(n: int, k: int, seed: int, split: str) -> list[int]:
    """``n`` correct-answer positions in ``range(k)``, exactly balanced, in a seeded random order.

    Every position occurs ``n // k`` or ``n // k + 1`` times; which ``n % k`` positions get the extra one
    is itself drawn at random, so no letter is favoured. Depends only on ``(n, k, seed, split)``.
    """
    if k < 1 or n < 0:
        raise ValueError(f"balanced_positions needs n >= 0 and k >= 1 (got n={n}, k={k})")
    rng = sample_rng(seed, "positions", split, str(n), str(k))
    counts = [n // k] * k
    for p in rng.sample(range(k), n % k):
        counts[p] += 1
    out = [p for p in range(k) for _ in range(counts[p])]
    rng.shuffle(out)
    return out


def format_options(options: Sequence[str], lettered: bool) -> str:
    """``"A. tench\\nB. goldfish"`` when lettered, else one ``"- name"`` line per option."""
    if lettered:
        return "\n".join(f"{ch}. {opt}" for ch, opt in zip(letters(len(options)), options, strict=True))
    return "\n".join(f"- {opt}" for opt in options)
