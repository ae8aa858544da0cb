"""One form of a class (:class:`Form`) and how the forms of one class are drafted and flagged."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import regex

from vlm_classdata.lexicon.plurals import is_binomial, pluralize
from vlm_classdata.lexicon.text import normalize
from vlm_classdata.lexicon.wordnet_senses import more_frequent_sense
from vlm_classdata.vocabulary import ClassEntry

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

FLAGS = ("shared", "ambiguous", "short")
KINDS = ("name", "lemma", "alias", "plural")
METHODS = ("wordnet", "paper")
MIN_CHARS = 3

_PAREN = regex.compile(r"\s*\([^()]*\)")


@dataclass(frozen=True)
class Form:
    """One surface form of one class."""

    text: str                 # normalized surface form, e.g. "tiger shark", "geese"
    class_id: str
    kind: str                 # "name" | "lemma" | "plural" | "alias"
    flags: tuple[str, ...]    # sorted subset of FLAGS
    note: str = ""            # why flagged, e.g. "shared with n03126707"


@dataclass
class Draft:
    """A form of one class before flagging."""

    text: str
    kind: str
    raw: str                      # the original string (for WordNet lookups and the binomial test)
    source: Draft | None = None   # the singular of a plural


def draft_forms(entry: ClassEntry, synset: Synset | None, from_wnid: bool, aliases: Iterable[str],
                plurals: bool, use_wordnet: bool) -> list[Draft]:
    """The forms of one class before flagging, without repeats, in :data:`KINDS` order (the first kind wins)."""
    seen: dict[str, Draft] = {}

    def add(raw: str, kind: str, source: Draft | None = None, text: str | None = None) -> None:
        text = normalize(raw) if text is None else text
        if text and text not in seen:
            seen[text] = Draft(text, kind, raw, source)

    add(entry.name, "name")
    if from_wnid and synset is not None:
        for lemma in synset.lemma_names():
            add(lemma.replace("_", " "), "lemma")
    for syn in entry.synonyms:
        add(syn, "lemma")
    for alias in aliases:
        add(alias, "alias")
    if plurals:
        for d in [d for d in seen.values() if d.kind in ("name", "lemma")]:
            if is_binomial(d.raw, synset, use_wordnet):
                continue
            stripped = _PAREN.sub("", d.raw).strip() or d.raw  # "kite (bird of prey)" -> kites
            for p in pluralize(stripped, use_wordnet=use_wordnet):
                add(p, "plural", d, p)
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(seen.values(), key=lambda d: order[d.kind])  # stable: name, lemma, alias, plural


def word_flags_of(d: Draft, synset: Synset | None, stop: frozenset[str],
                  use_wordnet: bool) -> list[tuple[str, str]]:
    """``[(flag, note)]`` for the "ambiguous" and "short" flags of a name, lemma or alias form."""
    out: list[tuple[str, str]] = []
    if synset is not None and use_wordnet:
        hit = more_frequent_sense(synset, d.raw)
        if hit is not None:
            out.append(("ambiguous", f"other sense {hit[0].name()} more frequent ({hit[1]} > {hit[2]})"))
    if len(d.text) < MIN_CHARS:
        out.append(("short", f"short: fewer than {MIN_CHARS} characters"))
    elif d.text in stop:
        out.append(("short", "short: common English word (stoplist)"))
    return out
