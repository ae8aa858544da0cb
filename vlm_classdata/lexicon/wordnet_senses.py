"""WordNet lookups the lexicon makes, cached: noun senses and their SemCor counts, morphology, the noun
exception list, and the synset of a class."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from vlm_classdata.lexicon.text import normalize
from vlm_classdata.vocabulary import ClassEntry
from vlm_classdata.wordnet import WordNetMissingError, synset_from_wnid, wordnet

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset


@functools.lru_cache(maxsize=1)
def noun_exceptions() -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """WordNet's noun exception list, inverted: ``{normalized singular: (normalized plurals)}``, and
    the set of normalized plurals it lists."""
    inverse: dict[str, list[str]] = {}
    plurals: set[str] = set()
    for plural, singulars in wordnet()._exception_map["n"].items():
        p = normalize(plural)
        if not p:
            continue
        plurals.add(p)
        for s in singulars:
            s = normalize(s)
            if s and s != p and p not in inverse.setdefault(s, []):
                inverse[s].append(p)
    return {k: tuple(sorted(v)) for k, v in inverse.items()}, frozenset(plurals)


@functools.lru_cache(maxsize=65536)
def noun_senses(key: str) -> tuple[tuple[str, ...], tuple[Synset, ...]]:
    """``(the word and its morphological bases, noun synsets)`` of a WordNet lookup key (``_`` for spaces)."""
    wn = wordnet()
    word = key.lower()
    bases = tuple(dict.fromkeys([word, *wn._morphy(word, "n")]))
    return bases, tuple(wn.synsets(word, pos="n"))


@functools.lru_cache(maxsize=65536)
def sense_count(synset: Synset, bases: tuple[str, ...]) -> int:
    """SemCor count of the lemma of ``synset`` named like one of ``bases`` (0 if none)."""
    return max((lemma.count() for lemma in synset.lemmas() if lemma.name().lower() in bases), default=0)


@functools.lru_cache(maxsize=65536)
def is_noun(word: str) -> bool:
    return bool(wordnet().synsets(word, pos="n"))


@functools.lru_cache(maxsize=65536)
def in_wordnet(word: str) -> bool:
    return bool(wordnet().synsets(word))


@functools.lru_cache(maxsize=65536)
def noun_bases(word: str) -> tuple[str, ...]:
    return tuple(wordnet()._morphy(word, "n"))


def more_frequent_sense(own: Synset, raw: str) -> tuple[Synset, int, int] | None:
    """``(other sense, its count, own count)`` when ``raw`` names ``own`` and a more frequent other sense."""
    keys = dict.fromkeys([raw.strip().replace(" ", "_"), normalize(raw).replace(" ", "_")])
    for key in keys:
        if not key:
            continue
        bases, senses = noun_senses(key)
        if own not in senses:
            continue
        own_count = sense_count(own, bases)
        best: tuple[Synset, int, int] | None = None
        for s in senses:
            if s != own:
                c = sense_count(s, bases)
                if c > own_count and (best is None or c > best[1]):
                    best = (s, c, own_count)
        return best
    return None


def class_synset(entry: ClassEntry) -> tuple[Synset | None, bool]:
    """``(synset, from_wnid)``: the wnid's synset, else the first noun sense of the display name."""
    if entry.wnid:
        try:
            return synset_from_wnid(entry.wnid), True
        except WordNetMissingError:
            raise
        except Exception:  # not a WordNet offset: fall back to the name
            pass
    for key in dict.fromkeys([entry.name.strip().replace(" ", "_"), normalize(entry.name).replace(" ", "_")]):
        if key:
            senses = noun_senses(key)[1]
            if senses:
                return senses[0], False
    return None, False
