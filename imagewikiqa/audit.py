"""The key audit of ImageWikiQA questions: what WordNet says is true of a class (the review pages are
:mod:`imagewikiqa.audit_pages`).

:class:`ClassFacts` gathers, for one class synset, everything WordNet 3.0 states about it or lets it
inherit: its ancestors (hypernyms and instance hypernyms, any distance) and descendants, the *part
closure* (the part meronyms of the class, of every ancestor and every descendant, then parts of those
parts, then every hypernym and hyponym of such a part: "appendage" of a fin, "dorsal fin"), the wholes it
is a part of (part holonyms of the class and its ancestors, with their hypernyms and hyponyms), the
groups it is a member of (member holonyms, transitively: genus → family → order), its substances, its
topic/region/usage domains, and the content words of the glosses of the class, its ancestors and
descendants.

:func:`why_true` says why an option text is (or may be) true of the class — any noun sense of the text
being one of those synsets, or at least half of its content words occurring in those glosses — with the
evidence as one line; None when WordNet gives no reason to think so. :func:`key_check` runs it on every
wrong option of a question set: an item it lists has a second correct option or a disputable key.
:func:`key_evidence` explains the key (the relation path that makes it true).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagewikiqa.records import Question
from vlm_classdata.hierarchy import ancestor_distances
from vlm_classdata.lexicon import normalize, stopwords
from vlm_classdata.wordnet import synset_from_wnid, wordnet

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

# words that say nothing about the fact: rank words of taxonomic groups and common gloss fillers
FILLER = frozenset({"genus", "family", "order", "class", "subfamily", "suborder", "subclass", "superfamily",
                    "tribe", "phylum", "kind", "type", "sort", "used", "usually", "especially", "often",
                    "typically", "one", "something", "thing", "things", "various", "etc", "having", "made"})
MASK = "…"  # a hidden word run in a masked definition option (imagewikiqa.wordnet_questions.MASK)
MAX_DESCENDANTS = 400  # descendants whose glosses/parts count as facts of the class (dog has ~200 breeds)


def _rel(s: Synset, relation: str) -> list[Synset]:
    """``s.<relation>()`` sorted by name (NLTK keeps pointers in sets: order changes between runs)."""
    return sorted(getattr(s, relation)(), key=lambda x: x.name())


@functools.cache
def ancestors_of(s: Synset) -> dict[str, int]:
    """``{name: fewest hypernym steps}`` over hypernyms and instance hypernyms, ``s`` itself at 0."""
    return ancestor_distances(s)


@functools.cache
def descendants_of(s: Synset) -> tuple[str, ...]:
    """Names of the hyponyms and instance hyponyms of ``s``, any depth, sorted."""
    return tuple(sorted({h.name() for h in s.closure(lambda x: x.hyponyms() + x.instance_hyponyms())}))


@functools.cache
def _kin(name: str) -> frozenset[str]:
    """A synset with all its ancestors and descendants."""
    s = wordnet().synset(name)
    return frozenset(ancestors_of(s)) | frozenset(descendants_of(s))


@functools.cache
def _transitive(name: str, relation: str) -> frozenset[str]:
    s = wordnet().synset(name)
    return frozenset(x.name() for x in s.closure(lambda x: getattr(x, relation)()))


cached_stopwords = functools.cache(stopwords)  # the shipped stoplist, read once


@functools.cache
def content_words(text: str) -> frozenset[str]:
    """Normalised words of ``text`` that carry meaning: not stopwords, not fillers, at least 3 letters;
    a plural "-s" is dropped so "heads" matches "head"."""
    stop = cached_stopwords()
    out = set()
    for w in normalize(text).split():
        if len(w) < 3 or w in stop or w in FILLER:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return frozenset(out)


@functools.cache
def senses(text: str) -> tuple[Synset, ...]:
    """Every noun synset an option text may name (NLTK lemma lookup, morphy included)."""
    key = text.strip().replace(" ", "_")
    if not key:
        return ()
    try:
        return tuple(wordnet().synsets(key, pos="n"))
    except Exception:  # odd characters NLTK cannot look up
        return ()


@dataclass(frozen=True)
class ClassFacts:
    """What WordNet states about one class synset (see the module docstring); sets of synset names."""

    synset: Synset
    ancestors: dict[str, int]
    descendants: frozenset[str]
    parts: frozenset[str]
    wholes: frozenset[str]
    groups: frozenset[str]
    substances: frozenset[str]
    domains: frozenset[str]
    gloss_words: frozenset[str]

    @classmethod
    def of(cls, s: Synset) -> ClassFacts:
        """The facts of ``s`` (cached: building touches a few hundred synsets)."""
        return _facts(s)


@functools.cache
def _facts(s: Synset) -> ClassFacts:
    wn = wordnet()
    anc = ancestors_of(s)
    below = descendants_of(s)
    family = [wn.synset(n) for n in sorted(anc)] + [wn.synset(n) for n in below[:MAX_DESCENDANTS]]
    parts: set[str] = set()
    substances: set[str] = set()
    domains: set[str] = set()
    words: set[str] = set()
    for x in family:
        for p in _rel(x, "part_meronyms"):
            parts.add(p.name())
            parts.update(_transitive(p.name(), "part_meronyms"))
        for m in _rel(x, "substance_meronyms"):
            substances.update(_kin(m.name()))
        for rel in ("topic_domains", "region_domains", "usage_domains"):
            domains.update(d.name() for d in _rel(x, rel))
        words.update(content_words(x.definition()))
        for lemma in x.lemma_names():
            words.update(content_words(lemma.replace("_", " ")))
    part_closure: set[str] = set()
    for p in parts:
        part_closure.update(_kin(p))
    wholes: set[str] = set()
    groups: set[str] = set()
    for n in anc:
        a = wn.synset(n)
        for h in _rel(a, "part_holonyms"):
            for w in {h.name()} | _transitive(h.name(), "part_holonyms"):
                wholes.update(_kin(w))
        for h in _rel(a, "member_holonyms"):
            groups.add(h.name())
            groups.update(_transitive(h.name(), "member_holonyms"))
    return ClassFacts(s, anc, frozenset(below), frozenset(part_closure), frozenset(wholes), frozenset(groups),
                      frozenset(substances), frozenset(domains), frozenset(words))


def _path(s: Synset, target: str) -> str:
    """The hypernym path from ``s`` up to ``target`` as "a → b → c"."""
    best: list[Synset] | None = None
    for path in s.hypernym_paths():
        names = [p.name() for p in path]
        if target in names:
            seg = list(reversed(path[names.index(target):]))
            if best is None or len(seg) < len(best):
                best = seg
    return " → ".join(p.name() for p in best) if best else f"{s.name()} … {target}"


def why_true(facts: ClassFacts, text: str, gloss_match: bool = True) -> str | None:
    """Why option ``text`` is (or may be) true of the class of ``facts``, as one line of evidence; None when
    WordNet gives no reason (see the module docstring). ``gloss_match=False`` skips the gloss-word test
    (definitions as options share words with every gloss)."""
    s = facts.synset
    for c in senses(text):
        n = c.name()
        if n in facts.ancestors:
            return f"{n} is an ancestor of {s.name()} ({_path(s, n)})" if n != s.name() else f"{n} is the class"
        if n in facts.descendants:
            return f"{n} is a kind of {s.name()} (descendant)"
        if n in facts.parts:
            return f"{n} is in the part closure of {s.name()} (a part, part of a part, or a kind/hypernym of " \
                   f"one, of the class, an ancestor or a descendant)"
        if n in facts.wholes:
            return f"{s.name()} (or an ancestor) is a part of {n}"
        if n in facts.groups:
            return f"{s.name()} (or an ancestor) is a member of {n}"
        if n in facts.substances:
            return f"{n} is a substance of {s.name()} (or of an ancestor or descendant)"
        if n in facts.domains:
            return f"{n} is a domain of {s.name()} (or of an ancestor or descendant)"
    if gloss_match:
        words = content_words(text)
        shared = words & facts.gloss_words
        if words and 2 * len(shared) >= len(words):
            return f"its words {', '.join(sorted(shared))} occur in the glosses of {s.name()}, its ancestors " \
                   f"or descendants"
    return None


def key_evidence(facts: ClassFacts, kind: str, answer: str) -> str:
    """Why the key is true, from WordNet: the relation path for synset kinds, the gloss otherwise."""
    s = facts.synset
    for c in senses(answer):
        n = c.name()
        if kind == "hypernym" and n in facts.ancestors:
            return f"hypernym path: {_path(s, n)}"
        if kind in ("part", "inherited_part") and n in facts.parts:
            owners = [a for a in sorted(facts.ancestors, key=lambda a: facts.ancestors[a])
                      if n in {p.name() for p in _rel(wordnet().synset(a), "part_meronyms")}]
            if owners:
                return f"part meronym of {owners[0]} ({_path(s, owners[0])})"
        if kind == "part_of" and n in facts.wholes:
            return f"part holonym: {s.name()} is a part of {n}"
        if kind == "member_of" and n in facts.groups:
            return f"member holonym: {s.name()} (or an ancestor) is a member of {n}"
        if kind == "substance" and n in facts.substances:
            return f"substance meronym: {n}"
        if kind == "domain" and n in facts.domains:
            return f"domain of the synset: {n}"
    return f"gloss of {s.name()}: {s.definition()}"


def class_synset(q: Question) -> Synset | None:
    """The synset a question is about: ``source`` "wordnet:<wnid>", else a wnid class id, else None."""
    for cand in (q.source.split(":", 1)[1] if q.source.startswith("wordnet:") else "", q.class_id):
        cand = cand.split()[0] if cand else ""
        if re.fullmatch(r"n\d{8}", cand):
            try:
                return synset_from_wnid(cand)
            except Exception:
                continue
    return None


def _same_definition(definition: str, option: str) -> bool:
    """Whether ``option`` is ``definition``, or ``definition`` with words hidden by :data:`MASK` (each mask
    stands for one or more words)."""
    if MASK not in option:
        return normalize(definition) == normalize(option)
    pattern = r"\s*.+?\s*".join(re.escape(p.strip()) for p in option.split(MASK))
    return re.fullmatch(pattern, definition.strip(), flags=re.IGNORECASE) is not None


@dataclass(frozen=True)
class KeyProblem:
    """An item whose wrong option WordNet says is (or may be) true of the class."""

    qid: str
    class_name: str
    option: str
    evidence: str


def key_check(questions: Iterable[Question]) -> list[KeyProblem]:
    """Every wrong option that :func:`why_true` finds true of its question's class, with the evidence.
    Definitions (kind ``gloss_cloze``) are checked against the definitions of the class's ancestors and
    descendants instead of by gloss words. Questions whose class has no synset are skipped."""
    wn = wordnet()
    problems: list[KeyProblem] = []
    for q in questions:
        s = class_synset(q)
        if s is None:
            continue
        facts = ClassFacts.of(s)
        for i, opt in enumerate(q.options):
            if i == q.answer_index:
                continue
            if q.kind == "gloss_cloze":
                kin = sorted(facts.ancestors) + sorted(facts.descendants)
                hit = next((n for n in kin if _same_definition(wn.synset(n).definition(), opt)), None)
                why = f"the definition of {hit}, an ancestor or descendant" if hit else None
            else:
                why = why_true(facts, opt)
            if why:
                problems.append(KeyProblem(q.qid, q.class_name, opt, why))
    return problems
