"""Whole-word, leftmost-longest class-name matching and counting, on the compiled engine.

The semantics (implemented once, in :mod:`corpora_stats._engine`, over raw UTF-8 bytes):

* a text is cut into tokens — maximal runs of Unicode letters and numbers — lower-cased as ``str.lower`` does; a
  form is the token sequence of its normalised text (:func:`vlm_classdata.lexicon.normalize`), so "hen" never
  matches inside "then" and "Tiger-Shark" matches "tiger shark";
* ``method="wordnet"``: scanning left to right, the longest form starting at a token wins ("tiger shark" counts
  for tiger shark, not for tiger) and the scan goes on after it; ``method="paper"``: every occurrence of every
  form counts independently, overlapping ones too, like the paper's per-class loop;
* per form: documents and mentions; per class: documents and mentions over all its forms and over its
  unflagged ones (a form shared by several classes counts for each).

Snippets: per class, the ``snippets`` matched documents with the highest seeded priority — a hash of the
document's text, so the choice does not depend on the file format, the batching or how a file is split — each
shown around the first match of the class's first form (longest, then alphabetical) with ±60 characters.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import add

import polars as pl

from corpora_stats._engine import FormIndex, Scanner
from vlm_classdata.lexicon import Form

SNIPPET_CONTEXT = 60
COUNTERS = ("pattern_docs", "pattern_mentions", "class_docs_all", "class_mentions_all", "class_docs_clean",
            "class_mentions_clean")
PICK_FIELDS = ("cls", "prio", "shard", "key", "pat", "unit", "ordinal")


def seed_mix(seed: int) -> int:
    """The 64-bit seed of the engine's snippet priorities for a user seed (any int)."""
    return (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64


_TOKEN = re.compile(r"[^\W_]+")  # a run of letters and numbers, as the engine cuts text


def form_span(text: str, form: str) -> tuple[int, int] | None:
    """Where the form (a normalised text) first occurs in ``text`` as whole tokens: (start, end), or None.

    Each occurrence of the form's first word that is a whole token is tried in order, the next tokens compared
    with the form's; a text whose lower case changes length ("İ") has its tokens listed instead."""
    low = text.lower()
    want = form.split()
    if len(low) != len(text):
        tokens = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text)]
        n = len(want)
        for i in range(len(tokens) - n + 1):
            if all(tokens[i + j][2] == want[j] for j in range(n)):
                return tokens[i][0], tokens[i + n - 1][1]
        return None
    first = want[0]
    at = low.find(first)
    while at >= 0:
        end = at + len(first)
        if (at == 0 or not low[at - 1].isalnum()) and (end == len(low) or not low[end].isalnum()):
            for word in want[1:]:
                hit = _TOKEN.search(low, end)
                if hit is None or hit.group() != word:
                    break
                end = hit.end()
            else:
                return at, end
        at = low.find(first, at + 1)
    return None


@dataclass
class CountState:
    """Partial counts over some documents; merge the states of several units of work with :meth:`merge`.

    Counters are ``array.array("q")``. ``picks``: snippet candidates, one tuple per (class, document) in
    :data:`PICK_FIELDS` order — the document's
    priority, shard (file), key within the file, first form, unit of work and ordinal within the unit;
    ``texts``: the snippets of candidates already known (``{(shard, key, pattern): snippet}``, filled by
    :meth:`Matcher.count_batch`).
    """

    num_patterns: int
    num_classes: int
    documents: int = 0
    pattern_docs: array = field(default=None)  # type: ignore[assignment]
    pattern_mentions: array = field(default=None)  # type: ignore[assignment]
    class_docs_all: array = field(default=None)  # type: ignore[assignment]
    class_mentions_all: array = field(default=None)  # type: ignore[assignment]
    class_docs_clean: array = field(default=None)  # type: ignore[assignment]
    class_mentions_clean: array = field(default=None)  # type: ignore[assignment]
    picks: list[tuple] = field(default_factory=list)
    texts: dict[tuple[int, int, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in COUNTERS:
            if getattr(self, name) is None:
                n = self.num_patterns if name.startswith("pattern") else self.num_classes
                setattr(self, name, array("q", [0]) * n)

    def add_scanner(self, scanner: Scanner, shard: int, unit: int = 0) -> None:
        """Add what ``scanner`` counted over one unit of work of file ``shard``."""
        self._add_counters(scanner)
        self.picks += [(cls, prio, shard, key, pat, unit, ordinal) for cls, prio, key, ordinal, pat in scanner.picks()]

    def merge(self, other: CountState, k: int) -> None:
        """Add ``other``'s counts and snippet candidates; keep the ``k`` best candidates per class."""
        self._add_counters(other)
        self.picks = best_picks(self.picks + other.picks, k)
        self.texts.update(other.texts)

    def _add_counters(self, other: CountState | Scanner) -> None:
        """Add ``other``'s documents and every counter of :data:`COUNTERS`, element by element."""
        self.documents += other.documents
        for name in COUNTERS:
            setattr(self, name, array("q", map(add, getattr(self, name), getattr(other, name))))

    @property
    def snippets(self) -> dict[int, list[tuple]]:
        """Per class, its chosen snippets as ``(priority, (shard, key), pattern id, text)``, best first (the text
        where it is known)."""
        out: dict[int, list[tuple]] = {}
        for cls, prio, shard, key, pat, _unit, _ordinal in self.picks:
            out.setdefault(cls, []).append((prio, (shard, key), pat, self.texts.get((shard, key, pat), "")))
        return {c: sorted(v, reverse=True) for c, v in out.items()}


def best_picks(picks: list[tuple], k: int) -> list[tuple]:
    """Per class, the ``k`` candidates with the highest (priority, shard, key), in that order (best first)."""
    ranked = sorted(picks, key=lambda r: (r[0], -r[1], -r[2], -r[3]))
    return [row for _cls, rows in groupby(ranked, key=lambda r: r[0]) for row in list(rows)[:k]]


class Matcher:
    """The forms of a vocabulary compiled for the engine, and what counts and snippets need around it."""

    def __init__(self, forms: Sequence[Form], class_ids: Sequence[str], method: str = "wordnet",
                 snippets: int = 5, seed: int = 0) -> None:
        self.method = method
        self.overlapping = method == "paper"
        self.class_ids = list(class_ids)
        class_index = {c: i for i, c in enumerate(self.class_ids)}
        texts = sorted({f.text for f in forms if f.text}, key=lambda t: (-len(t), t))
        self.texts = texts
        pid = {t: i for i, t in enumerate(texts)}
        rows = list(dict.fromkeys((pid[f.text], class_index[f.class_id], bool(f.flags)) for f in forms if f.text))
        self.pairs = pl.DataFrame(rows, schema={"pat": pl.UInt32, "cls": pl.UInt32, "flagged": pl.Boolean},
                                  orient="row")
        self.index = FormIndex(texts, rows, len(self.class_ids))
        self.snippet_k = snippets
        self.seed = seed
        self._matching: Scanner | None = None

    def new_state(self) -> CountState:
        return CountState(len(self.texts), len(self.class_ids))

    def scanner(self) -> Scanner:
        """A fresh engine scanner (counters at zero) for one unit of work."""
        return Scanner(self.index, self.overlapping, self.snippet_k, seed_mix(self.seed))

    def matches(self, texts: list[str]) -> pl.DataFrame:
        """One row per match: ``doc`` (position in ``texts``) and ``pat`` (pattern id)."""
        if self._matching is None:
            self._matching = Scanner(self.index, self.overlapping, 0, 0)
        doc, pat = self._matching.matches(texts)
        return pl.DataFrame({"doc": doc, "pat": pat}, schema={"doc": pl.UInt32, "pat": pl.UInt32})

    def count_batch(self, state: CountState, texts: list[str], first_doc: int, shard: int = 0) -> None:
        """Add one batch of documents (``first_doc`` = key of ``texts[0]``: documents are keyed by position)."""
        scanner = self.scanner()
        scanner.count_texts(texts, range(first_doc, first_doc + len(texts)))
        part = self.new_state()
        part.add_scanner(scanner, shard)
        for _cls, _prio, _shard, key, pat, _unit, _ordinal in part.picks:
            part.texts[(shard, key, pat)] = self.snippet(texts[key - first_doc], pat)
        state.merge(part, self.snippet_k)

    def snippet(self, text: str, pat: int) -> str:
        """±60 characters of ``text`` around the first occurrence of pattern ``pat``, the match in «…»."""
        span = form_span(text, self.texts[pat])
        if span is None:
            return text[: 2 * SNIPPET_CONTEXT]
        lo, hi = span
        left = text[max(0, lo - SNIPPET_CONTEXT):lo]
        right = text[hi:hi + SNIPPET_CONTEXT]
        return (("…" if lo > SNIPPET_CONTEXT else "") + left + "«" + text[lo:hi] + "»" + right
                + ("…" if hi + SNIPPET_CONTEXT < len(text) else "")).replace("\n", " ")
