"""Whole-word, leftmost-longest class-name matching in compiled code (polars' Aho-Corasick), and counting.

Polars' ``str.extract_many`` matches substrings; whole words and leftmost-longest are added here:

* text and patterns are normalised alike: lower case, every run of non-letter/digit characters → a separator;
* in the text the separator is TWO spaces and the text is padded with one space at each end; a pattern is
  its tokens joined by two spaces with one space at each end. A pattern can then only start and end at
  token boundaries ("hen" never matches inside "then"), and two adjacent names both match (each keeps one
  of the two separator spaces);
* patterns are ordered longest first and matched with ``leftmost=True`` (leftmost-first), which makes the
  longest pattern win at the leftmost position: "tiger shark" counts for tiger shark, not for tiger.

``method="paper"`` matches every pattern independently (``overlapping=True``), like the paper's per-class loop.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from vlm_classdata.lexicon import Form

SEPARATORS = r"[^\p{L}\p{N}]+"
SNIPPET_CONTEXT = 60


def pattern_of(text: str) -> str:
    """The padded pattern for a normalised form: ``"tiger shark"`` → ``" tiger  shark "``."""
    return " " + "  ".join(text.split()) + " "


def normalize_expr(column: str | pl.Expr) -> pl.Expr:
    """Polars expression giving the padded, double-spaced normal form of a text column."""
    col = pl.col(column) if isinstance(column, str) else column
    body = col.str.to_lowercase().str.replace_all(SEPARATORS, "  ")
    out = pl.concat_str([pl.lit(" "), body, pl.lit(" ")])
    return out.alias(column) if isinstance(column, str) else out


def original_span_regex(text: str) -> re.Pattern:
    """Regex finding a normalised form in the original text (for snippets; ``re`` compiles fast)."""
    tokens = [re.escape(t) for t in text.split()]
    return re.compile(r"(?<![^\W_])" + r"[\W_]+".join(tokens) + r"(?![^\W_])", re.IGNORECASE)


@dataclass
class CountState:
    """Partial counts over some documents; merge states from several files with :meth:`merge`."""

    num_patterns: int
    num_classes: int
    documents: int = 0
    pattern_docs: np.ndarray = field(default=None)  # type: ignore[assignment]
    pattern_mentions: np.ndarray = field(default=None)  # type: ignore[assignment]
    class_docs_all: np.ndarray = field(default=None)  # type: ignore[assignment]
    class_mentions_all: np.ndarray = field(default=None)  # type: ignore[assignment]
    class_docs_clean: np.ndarray = field(default=None)  # type: ignore[assignment]
    class_mentions_clean: np.ndarray = field(default=None)  # type: ignore[assignment]
    # per class: min-heap of (priority, (shard, doc), pattern id, snippet) holding the k highest priorities
    snippets: dict[int, list] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, n in (("pattern_docs", self.num_patterns), ("pattern_mentions", self.num_patterns),
                        ("class_docs_all", self.num_classes), ("class_mentions_all", self.num_classes),
                        ("class_docs_clean", self.num_classes), ("class_mentions_clean", self.num_classes)):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(n, dtype=np.int64))

    def merge(self, other: CountState, k: int) -> None:
        """Add ``other``'s counts; keep the ``k`` lowest-priority snippets per class."""
        self.documents += other.documents
        for name in ("pattern_docs", "pattern_mentions", "class_docs_all", "class_mentions_all",
                     "class_docs_clean", "class_mentions_clean"):
            getattr(self, name).__iadd__(getattr(other, name))
        for cls, items in other.snippets.items():
            for item in items:
                _push(self.snippets.setdefault(cls, []), item, k)


def _push(heap: list, item: tuple, k: int) -> None:
    if len(heap) < k:
        heapq.heappush(heap, item)
    elif item > heap[0]:
        heapq.heapreplace(heap, item)


def priorities(seed: int, shard: int, docs: np.ndarray) -> np.ndarray:
    """Seeded pseudo-random priority per document (splitmix64), identical whatever the batching."""
    with np.errstate(over="ignore"):
        z = docs.astype(np.uint64) ^ np.uint64((seed * 0x9E3779B97F4A7C15 + shard * 0xBF58476D1CE4E5B9) % 2**64)
        z = (z + np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(1)).astype(np.int64)


class Matcher:
    """Counts class mentions in batches of texts for a fixed set of forms."""

    def __init__(self, forms: Sequence[Form], class_ids: Sequence[str], method: str = "wordnet",
                 snippets: int = 5, seed: int = 0) -> None:
        self.method = method
        self.overlapping = method == "paper"
        self.class_ids = list(class_ids)
        class_index = {c: i for i, c in enumerate(self.class_ids)}
        texts = sorted({f.text for f in forms if f.text}, key=lambda t: (-len(t), t))
        self.texts = texts
        self.patterns = [pattern_of(t) for t in texts]
        pid = {t: i for i, t in enumerate(texts)}
        rows = [(pid[f.text], class_index[f.class_id], bool(f.flags)) for f in forms if f.text]
        self.pairs = pl.DataFrame(rows, schema={"pat": pl.UInt32, "cls": pl.UInt32, "flagged": pl.Boolean},
                                  orient="row").unique(maintain_order=True)
        self.lookup = pl.DataFrame({"match": self.patterns, "pat": pl.Series(range(len(texts)), dtype=pl.UInt32)})
        self.snippet_k = snippets
        self.seed = seed
        self._span_cache: dict[int, re.Pattern] = {}

    def new_state(self) -> CountState:
        return CountState(len(self.patterns), len(self.class_ids))

    def matches(self, texts: list[str]) -> pl.DataFrame:
        """One row per match: ``doc`` (position in ``texts``) and ``pat`` (pattern id)."""
        df = pl.DataFrame({"text": texts}, schema={"text": pl.String})
        found = df.select(normalize_expr("text").str.extract_many(
            self.patterns, leftmost=not self.overlapping, overlapping=self.overlapping).alias("match"))
        return (found.with_row_index("doc").explode("match").drop_nulls("match")
                .join(self.lookup, on="match", how="inner").select("doc", "pat"))

    def count_batch(self, state: CountState, texts: list[str], first_doc: int, shard: int = 0) -> None:
        """Add one batch of documents (``first_doc`` = index of ``texts[0]`` within its shard)."""
        state.documents += len(texts)
        if not texts or not self.patterns:
            return
        m = self.matches(texts)
        if m.height == 0:
            return
        per_pat = m.group_by("pat").agg(pl.len().alias("n"), pl.col("doc").n_unique().alias("d"))
        np.add.at(state.pattern_mentions, per_pat["pat"].to_numpy(), per_pat["n"].to_numpy())
        np.add.at(state.pattern_docs, per_pat["pat"].to_numpy(), per_pat["d"].to_numpy())
        mc = m.join(self.pairs, on="pat", how="inner")
        for flagged_ok, docs_arr, ment_arr in ((True, state.class_docs_all, state.class_mentions_all),
                                               (False, state.class_docs_clean, state.class_mentions_clean)):
            sub = mc if flagged_ok else mc.filter(~pl.col("flagged"))
            if sub.height == 0:
                continue
            agg = sub.group_by("cls").agg(pl.len().alias("n"), pl.col("doc").n_unique().alias("d"))
            np.add.at(ment_arr, agg["cls"].to_numpy(), agg["n"].to_numpy())
            np.add.at(docs_arr, agg["cls"].to_numpy(), agg["d"].to_numpy())
        if self.snippet_k:
            self._sample_snippets(state, texts, mc, first_doc, shard)

    def _sample_snippets(self, state: CountState, texts: list[str], mc: pl.DataFrame, first_doc: int,
                         shard: int) -> None:
        """Keep, per class, the ``k`` matched documents with the highest seeded priority."""
        firsts = mc.group_by("cls", "doc").agg(pl.col("pat").min())
        docs = firsts["doc"].to_numpy().astype(np.uint64) + np.uint64(first_doc)
        prio = priorities(self.seed, shard, docs)
        best = (firsts.with_columns(pl.Series("prio", prio)).sort(["cls", "prio", "doc"], descending=[False, True, False])
                .group_by("cls", maintain_order=True).head(self.snippet_k))
        for cls, doc, pat, p in best.iter_rows():
            heap = state.snippets.setdefault(cls, [])
            item = (int(p), (shard, first_doc + doc), pat, "")
            if len(heap) < self.snippet_k or item > heap[0]:
                _push(heap, (int(p), (shard, first_doc + doc), pat, self.snippet(texts[doc], pat)), self.snippet_k)

    def snippet(self, text: str, pat: int) -> str:
        """±60 characters of ``text`` around the first occurrence of pattern ``pat``, the match in «…»."""
        rx = self._span_cache.get(pat)
        if rx is None:
            rx = self._span_cache[pat] = original_span_regex(self.texts[pat])
        hit = rx.search(text)
        if hit is None:
            return text[: 2 * SNIPPET_CONTEXT]
        lo, hi = hit.span()
        left = text[max(0, lo - SNIPPET_CONTEXT):lo]
        right = text[hi:hi + SNIPPET_CONTEXT]
        return (("…" if lo > SNIPPET_CONTEXT else "") + left + "«" + text[lo:hi] + "»" + right
                + ("…" if hi + SNIPPET_CONTEXT < len(text) else "")).replace("\n", " ")
