"""The project's one label judge: :class:`LabelMatcher` decides whether an open-ended reply names a class.

It uses every form of the class in a :class:`~vlm_classdata.lexicon.Lexicon` (display name, WordNet lemmas,
plurals, aliases), whole-word leftmost-longest matching against the forms of *all* classes (so "a tiger shark"
does not count as "tiger"), and rapidfuzz ``fuzz.ratio`` ≥ :data:`FUZZY_THRESHOLD` (0-100) for typos.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from vlm_classdata.answers.words import ARTICLES, strip_articles
from vlm_classdata.lexicon import Lexicon, normalize
from vlm_classdata.wordnet import WordNetMissingError, wordnet

FUZZY_THRESHOLD = 90.0
"""Minimum rapidfuzz ``fuzz.ratio`` (0-100, Indel similarity) for a near match ("tenche" → tench: 90.9;
"chihuahwa" → chihuahua: 88.9, a one-letter substitution in a 9-letter word, is below it)."""


# ----- open answers against class labels -----------------------------------------------------------------
@dataclass(frozen=True)
class LabelMatch:
    """Whether an open-ended reply names a class.

    ``how``: ``"exact"`` (the reply, articles stripped, is a form of the class), ``"contains"`` (a form of
    the class occurs whole-word and no other class is named elsewhere), ``"fuzzy"`` (rapidfuzz
    ``fuzz.ratio`` ≥ the threshold), ``"other_class"`` (the reply names a different class at a place not
    covered by this class's own match, with or without naming this one), ``"none"``. ``matched_form``: the
    form found (this class's, or the other class's for ``other_class``). ``score``: 0-100 on the same scale
    as :data:`FUZZY_THRESHOLD`: 100 for exact/contains/other_class by words, else the best ``fuzz.ratio``.
    """

    correct: bool
    how: str
    matched_form: str | None
    score: float


@functools.lru_cache(maxsize=65536)
def _dictionary_word(word: str) -> bool | None:
    """Whether WordNet knows ``word`` (any part of speech, with morphology); None without WordNet."""
    try:
        return bool(wordnet().synsets(word))
    except WordNetMissingError:
        return None


class LabelMatcher:
    """Matches open-ended replies against the forms of a :class:`~vlm_classdata.lexicon.Lexicon`.

    ``include_flagged=False`` gives no credit for forms flagged shared/ambiguous/short ("crane", "mouse").
    A form of another class counts as naming that class unless it is flagged ``ambiguous`` or ``short``
    (words whose usual sense is something else: "light" of lighter, "chain" of chain mail, "ox"), so
    "a tench in the light" is still a tench; ``shared`` forms do count ("crane" for crane bird is
    ``other_class`` when ``include_flagged=False``: it also names the crane machine). The per-vocabulary
    index is built once here.
    """

    def __init__(self, lexicon: Lexicon, fuzzy_threshold: float = FUZZY_THRESHOLD,
                 include_flagged: bool = True) -> None:
        self.lexicon = lexicon
        self.fuzzy_threshold = float(fuzzy_threshold)
        self.include_flagged = include_flagged
        self._credited: dict[str, set[str]] = {}
        self._owners: dict[str, set[str]] = {}
        self._naming: dict[str, set[str]] = {}  # text -> classes it names when it occurs in a reply
        for f in lexicon.forms:
            self._owners.setdefault(f.text, set()).add(f.class_id)
            names = self._naming.setdefault(f.text, set())
            if "ambiguous" not in f.flags and "short" not in f.flags:
                names.add(f.class_id)
            if include_flagged or not f.flags:
                self._credited.setdefault(f.class_id, set()).add(f.text)
        self._texts = list(self._owners)
        self._phrases = {tuple(t.split()): i for i, t in enumerate(self._texts)}
        by_first: dict[str, list[tuple[str, ...]]] = {}
        for p in sorted(self._phrases, key=len, reverse=True):
            by_first.setdefault(p[0], []).append(p)
        self._by_first = by_first

    def _spans(self, tokens: list[str]) -> list[str]:
        """Leftmost-longest whole-word occurrences of any form (over all classes), as form texts."""
        out, i = [], 0
        while i < len(tokens):
            for p in self._by_first.get(tokens[i], ()):
                if tuple(tokens[i:i + len(p)]) == p:
                    out.append(self._texts[self._phrases[p]])
                    i += len(p)
                    break
            else:
                i += 1
        return out

    def names_any(self, class_ids: Iterable[str], reply: str) -> bool:
        """Whether the reply names any of ``class_ids`` (:meth:`match` correct for one of them): multi-label truth,
        judged as a single label is."""
        return any(self.match(cid, reply).correct for cid in class_ids)

    def match(self, class_id: str, reply: str) -> LabelMatch:
        """Whether ``reply`` names class ``class_id`` (KeyError for a class id not in the vocabulary).

        Tried in order: exact form, whole-word form with no other class named elsewhere (leftmost-longest
        over all classes' forms, so "a tiger shark" names tiger shark, not tiger; another class's forms
        flagged ambiguous/short name nothing), another class named (``other_class``), then ``fuzz.ratio`` ≥ the threshold between the best form of the class and the
        normalised reply, the reply without leading articles, or the words after its last article; a fuzzy
        candidate made only of dictionary words ("an eagle" vs beagle) is not a typo and is skipped, and a
        candidate closer to another class's form is ``other_class``.
        """
        if class_id not in self.lexicon.vocab:
            raise KeyError(f"class id {class_id!r} not in vocabulary {self.lexicon.vocab.dataset!r}")
        own = self._credited.get(class_id, set())
        tokens = normalize(reply).split() if isinstance(reply, str) else []
        if not tokens:
            return LabelMatch(False, "none", None, 0.0)
        stripped = strip_articles(tokens)
        form = _exact(own, tokens, stripped)
        if form is not None:
            return LabelMatch(True, "exact", form, 100.0)

        mine: list[str] = []
        others: list[str] = []
        for text in self._spans(tokens):
            if text in own:
                mine.append(text)
            elif self._naming[text] - {class_id}:
                others.append(text)
        if others:
            return LabelMatch(False, "other_class", others[0], 100.0)
        if mine:
            return LabelMatch(True, "contains", mine[0], 100.0)

        from rapidfuzz import fuzz, process  # heavy (~10 ms): only a reply that is no exact form needs it

        candidates = [" ".join(stripped), " ".join(tokens)]
        last_article = max((i for i, t in enumerate(tokens) if t in ARTICLES), default=None)
        if last_article is not None and last_article + 1 < len(tokens):
            candidates.append(" ".join(tokens[last_article + 1:]))
        best: tuple[float, str, str] = (0.0, "", "")
        own_list = sorted(own)
        for cand in dict.fromkeys(candidates):
            hit = process.extractOne(cand, own_list, scorer=fuzz.ratio) if own_list else None
            if hit is not None and hit[1] > best[0]:
                best = (float(hit[1]), hit[0], cand)
        score, form, cand = best
        if score < self.fuzzy_threshold or not self._may_be_typo(cand):
            return LabelMatch(False, "none", None, score)
        rival = process.extractOne(cand, self._texts, scorer=fuzz.ratio, score_cutoff=score)
        if rival is not None and rival[1] > score and class_id not in self._owners[rival[0]]:
            return LabelMatch(False, "other_class", rival[0], float(rival[1]))
        return LabelMatch(True, "fuzzy", form, score)

    @staticmethod
    def _may_be_typo(candidate: str) -> bool:
        """False when every word of ``candidate`` is a dictionary word (a real word, not a misspelling)."""
        return not all(_dictionary_word(w) is True for w in candidate.split())


def _exact(own: set[str], tokens: list[str], stripped: list[str]) -> str | None:
    """The reply (articles stripped, then as is) when it is one of the class's credited forms ``own``."""
    return next((cand for cand in (" ".join(stripped), " ".join(tokens)) if cand in own), None)
