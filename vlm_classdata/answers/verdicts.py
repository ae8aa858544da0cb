"""Hierarchical verdicts on open answers: how a reply relates to the true class, beyond right/wrong.

:class:`VerdictJudge` builds on the project's one label judge, :class:`~vlm_classdata.answers.LabelMatcher`
(``exact`` is exactly ``LabelMatcher.match(...).correct``), and on the WordNet 3.0 noun hierarchy. Kinds, in
:data:`VERDICT_KINDS` order:

* ``exact``          the reply names the label (a synonym, plural, alias or typo of it: LabelMatcher correct);
* ``more_specific``  it names a WordNet descendant of the label's synset (``steps``: hops down);
* ``more_generic``   it names an ancestor ("dog" for golden retriever; ``steps``: hops up, here 4);
* ``sibling``        it names a synset that shares an ancestor within :data:`SIBLING_HOPS` hops of both
  ("notebook" for laptop: both under portable computer; ``steps``: hops label → shared ancestor → reply);
* ``other_class``    it names another class of the vocabulary, unrelated as above (``class_id``);
* ``out_of_vocabulary`` it names a noun that is no class ("spaceship": ``synset`` starship.n.01; a word
  WordNet does not know at all, such as "zyzzyva", counts as an unknown noun: ``synset`` None);
* ``refusal``        a refusal phrase of :data:`vlm_classdata.answers.REFUSALS` ("I can't tell");
* ``none``           nothing recognisable (empty, only function words or non-noun words).

How a reply is read: unless LabelMatcher credits it, its normalised words are scanned left to right for the
longest phrase (up to :data:`MAX_PHRASE_WORDS` words, not starting or ending with a stoplist word) that is a
WordNet noun (looked up with morphy, so plurals work) or a form of a class; a single word counts only when
WordNet knows it at least as often as a noun as as a verb/adjective/adverb (SemCor lemma counts: "shows" and
"sitting" are not nouns here, "dog" is) or not at all. Every noun sense of each phrase is related to the
label's synset, and the reply gets the best kind over all phrases and senses (order above, then fewer steps,
then the earlier phrase), so "a photo of a dog" is ``more_generic``; ``sibling`` counts only through a phrase's
first (most frequent) noun sense or a sense that is a class's synset, so "dog" (andiron) is no sibling of
tripod. WordNet's multiple inheritance makes "dog" a sibling of tabby cat (both within 2 hops of domestic
animal). A phrase that names the label itself is
skipped (the reply named the label *and* something else, which LabelMatcher did not credit). A refusal phrase
outranks ``out_of_vocabulary`` ("I'm sorry, I can't see the image" is a refusal), but a reply that refuses
and still names a class or a related synset gets that kind ("I can't tell the breed, but it is a dog" is
``more_generic``).

``class_id`` is set whenever the judged phrase names a vocabulary class (by a class form that LabelMatcher
would count, or by a sense that is a class's synset): always for ``other_class``, and for a ``sibling`` such
as "Labrador retriever" for golden retriever (siblings come before ``other_class``). ``synset`` is the
WordNet sense the kind was decided on (the first noun sense for ``out_of_vocabulary``).

The label's synset comes from the class's WordNet id only; a vocabulary without wnids gets ``exact``,
``other_class``, ``out_of_vocabulary``, ``refusal`` or ``none`` (no hierarchy). "cat" for golden retriever is
``out_of_vocabulary`` (cat.n.01, no ImageNet class): the nearest shared ancestor, carnivore, is 6 hops from
golden retriever, so it is no sibling.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vlm_classdata.answers.choices import REFUSALS
from vlm_classdata.answers.labels import LabelMatcher
from vlm_classdata.hierarchy import ancestor_distances
from vlm_classdata.lexicon import MIN_CHARS, Lexicon, normalize, stopwords
from vlm_classdata.vocabulary import ClassVocabulary
from vlm_classdata.wordnet import synset_from_wnid, wnid_of, wordnet

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

VERDICT_KINDS = ("exact", "more_specific", "more_generic", "sibling", "other_class", "out_of_vocabulary",
                 "refusal", "none")
"""Every verdict kind, best first (also the order of the summary's counts)."""
SIBLING_HOPS = 2
"""A sibling shares an ancestor at most this many hypernym steps above both the label and the reply."""
MAX_PHRASE_WORDS = 4
"""Longest reply phrase looked up in WordNet."""
CACHE_SIZE = 65536
"""Verdicts kept per judge, keyed by (class id, reply)."""
_RANK = {k: i for i, k in enumerate(VERDICT_KINDS)}
_HIERARCHY = ("more_specific", "more_generic", "sibling")


@dataclass(frozen=True)
class Verdict:
    """How a reply relates to the true class (see the module docstring).

    ``kind``: one of :data:`VERDICT_KINDS`; ``steps``: hypernym hops for the hierarchy kinds, else None;
    ``class_id``: the vocabulary class the judged phrase names, or None; ``synset``: the WordNet sense the kind
    rests on (``dog.n.01``), or None; ``phrase``: the reply's words judged (None for exact/refusal/none).
    """

    kind: str
    steps: int | None = None
    class_id: str | None = None
    synset: str | None = None
    phrase: str | None = None

    @property
    def correct(self) -> bool:
        """Strict correctness: the kind is ``exact``."""
        return self.kind == "exact"


@functools.lru_cache(maxsize=1)
def _refusal_phrases() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(normalize(r).split()) for r in REFUSALS)


@functools.lru_cache(maxsize=1)
def _stop() -> frozenset[str]:
    return stopwords()


@functools.lru_cache(maxsize=65536)
def _noun_synsets(phrase: str) -> tuple[Synset, ...]:
    """WordNet noun senses of a normalised phrase (morphy applied: "cats" → cat)."""
    return tuple(wordnet().synsets(phrase.replace(" ", "_"), pos="n"))


@functools.lru_cache(maxsize=65536)
def _mostly_not_noun(word: str) -> bool:
    """Whether WordNet knows ``word`` more often (SemCor counts) as a verb/adjective/adverb than as a noun,
    or only as one of those."""
    wn = wordnet()

    def count(pos: str) -> int | None:
        base = wn.morphy(word, pos)
        return None if base is None else sum(lemma.count() for lemma in wn.lemmas(base, pos))

    noun = count("n")
    other = [c for c in (count(p) for p in "vars") if c is not None]
    if noun is None:
        return bool(other)
    return bool(other) and max(other) > noun


@functools.lru_cache(maxsize=65536)
def _ancestors(synset: Synset) -> dict[str, int]:
    return ancestor_distances(synset)


class VerdictJudge:
    """Judges open replies against class labels with the kinds of :data:`VERDICT_KINDS` (deterministic;
    verdicts cached per (class id, reply)). ``matcher``: a LabelMatcher over ``lexicon`` to share (one is
    built otherwise)."""

    def __init__(self, vocab: ClassVocabulary, lexicon: Lexicon, matcher: LabelMatcher | None = None) -> None:
        self.vocab = vocab
        self.lexicon = lexicon
        self.matcher = matcher or LabelMatcher(lexicon)
        # class forms that name a class in a reply (LabelMatcher's rule: not flagged ambiguous/short)
        self._naming: dict[str, list[str]] = {}
        for f in lexicon.forms:
            if "ambiguous" not in f.flags and "short" not in f.flags:
                self._naming.setdefault(f.text, []).append(f.class_id)
        self._owned = {f.text for f in lexicon.forms}
        self._by_wnid = {e.wnid: e.class_id for e in vocab if e.wnid}
        self._cache: dict[tuple[str, str], Verdict] = {}

    def judge(self, class_id: str, reply: str) -> Verdict:
        """The verdict on ``reply`` for true class ``class_id`` (KeyError for a class id not in the vocabulary)."""
        key = (class_id, reply if isinstance(reply, str) else "")
        got = self._cache.get(key)
        if got is None:
            got = self._judge(*key)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = got
        return got

    def _judge(self, class_id: str, reply: str) -> Verdict:
        if self.matcher.match(class_id, reply).correct:
            return Verdict("exact")
        tokens = normalize(reply).split()
        label = self._label_synset(class_id)
        best: tuple[tuple[int, int, int], Verdict] | None = None
        for pos, phrase in enumerate(self._phrases(tokens)):
            verdict = self._relate(class_id, label, phrase)
            if verdict is None:
                continue
            rank = (_RANK[verdict.kind], verdict.steps if verdict.steps is not None else 0, pos)
            if best is None or rank < best[0]:
                best = (rank, verdict)
        refused = any(_contains(tokens, p) for p in _refusal_phrases())
        if best is not None and (not refused or best[1].kind != "out_of_vocabulary"):
            return best[1]
        return Verdict("refusal") if refused else Verdict("none")

    def _label_synset(self, class_id: str) -> Synset | None:
        entry = self.vocab[class_id]
        return synset_from_wnid(entry.wnid) if entry.wnid else None

    def _phrases(self, tokens: list[str]) -> list[str]:
        """Leftmost-longest noun phrases and class forms of the reply (see the module docstring)."""
        stop, out, i = _stop(), [], 0
        while i < len(tokens):
            step = 1
            for n in range(min(MAX_PHRASE_WORDS, len(tokens) - i), 0, -1):
                words = tokens[i:i + n]
                if words[0] in stop or words[-1] in stop:
                    continue
                text = " ".join(words)
                if text in self._owned or (n > 1 and _noun_synsets(text)):
                    out.append(text)
                    step = n
                    break
                if n == 1 and len(text) >= MIN_CHARS and not text.isdigit() and not _mostly_not_noun(text):
                    out.append(text)  # a noun, or a word WordNet does not know at all (an unknown noun)
            i += step
        return out

    def _relate(self, class_id: str, label: Synset | None, phrase: str) -> Verdict | None:
        """The verdict one phrase alone would give (None when it names the label itself)."""
        named = [c for c in self._naming.get(phrase, ()) if c != class_id]
        if class_id in self._naming.get(phrase, ()):
            return None
        senses = _noun_synsets(phrase)
        if label is not None and label in senses:
            return None
        sense_classes = [self._by_wnid.get(wnid_of(s)) for s in senses]
        best: Verdict | None = None
        if label is not None:
            up = _ancestors(label)
            for i, (s, cid) in enumerate(zip(senses, sense_classes, strict=True)):
                v = _hierarchy_verdict(label, up, s, cid or (named[0] if named else None), phrase)
                if v is not None and v.kind == "sibling" and i > 0 and cid is None:
                    continue  # a rare sense's cousin ("dog" as andiron for tripod) is no sibling
                if v is not None and (best is None or (_RANK[v.kind], v.steps) < (_RANK[best.kind], best.steps)):
                    best = v
        if best is not None:
            return best
        other = named[0] if named else next((c for c in sense_classes if c and c != class_id), None)
        if other is not None:
            sense = next((s.name() for s, c in zip(senses, sense_classes, strict=True) if c == other), None)
            return Verdict("other_class", class_id=other, synset=sense or (senses[0].name() if senses else None),
                           phrase=phrase)
        return Verdict("out_of_vocabulary", synset=senses[0].name() if senses else None, phrase=phrase)


def _hierarchy_verdict(label: Synset, up: dict[str, int], sense: Synset, class_id: str | None,
                       phrase: str) -> Verdict | None:
    """more_generic / more_specific / sibling of one sense against the label (``up``: its ancestor hops)."""
    name = sense.name()
    if name in up:
        return Verdict("more_generic", up[name], class_id, name, phrase)
    down = _ancestors(sense)
    if label.name() in down:
        return Verdict("more_specific", down[label.name()], class_id, name, phrase)
    shared = [up[c] + d for c, d in down.items() if d <= SIBLING_HOPS and up.get(c, SIBLING_HOPS + 1) <= SIBLING_HOPS]
    if shared:
        return Verdict("sibling", min(shared), class_id, name, phrase)
    return None


def _contains(tokens: list[str], phrase: tuple[str, ...]) -> bool:
    """Whether ``phrase`` occurs whole-word in ``tokens``."""
    n = len(phrase)
    return any(tuple(tokens[i:i + n]) == phrase for i in range(len(tokens) - n + 1))
