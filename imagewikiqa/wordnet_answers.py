"""What WordNet 3.0 gives as the answer of each question kind for a class synset (:func:`answers_of`), and the
WordNet helpers the generator shares: relations sorted by name, depths, labels, the words of a class's names
(:func:`class_name_words`, :func:`leaks_name`), places in a gloss. Rules in :mod:`imagewikiqa.wordnet_questions`."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagewikiqa.audit import ancestors_of, cached_stopwords, content_words, senses
from vlm_classdata.lexicon import normalize, pluralize
from vlm_classdata.wordnet import wordnet

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

KINDS = ("hypernym", "part", "gloss_cloze", "member_of", "part_of", "substance", "inherited_part", "use",
         "origin", "feature", "domain")
# too abstract to be an answer (or a source of parts): "this object is a kind of whole"
GENERIC = frozenset({
    "entity.n.01", "physical_entity.n.01", "abstraction.n.06", "object.n.01", "whole.n.02", "artifact.n.01",
    "living_thing.n.01", "organism.n.01", "instrumentality.n.03", "matter.n.03", "causal_agent.n.01",
    "thing.n.12", "unit.n.03", "group.n.01", "part.n.01", "substance.n.01", "commodity.n.01",
    "physical_object.n.01", "relation.n.01", "attribute.n.02", "measure.n.02", "psychological_feature.n.01",
})
# parts every whole / organism / animal has, and odd or misleading ones ("flag": a dog's tail)
GENERIC_PARTS = frozenset({"part.n.02", "section.n.04", "cell.n.02", "body_part.n.01", "flag.n.07",
                           "pennon.n.02", "bird.n.02", "wardrobe.n.02", "jag.n.02", "jag.n.03", "food.n.02"})
MIN_ANSWER_DEPTH = 4
MAX_HYPERNYM_DISTANCE = 3
MAX_MEMBER_DISTANCE = 2
MAX_INHERITED_PART_DISTANCE = 4
CLOSE = 3                 # a class sharing an ancestor this many steps above the class is a close relative
_RANKS = ("genus", "family", "subfamily", "order", "suborder", "class", "subclass", "superfamily", "tribe",
          "phylum", "subgenus", "division", "superorder", "infraorder")
_PRONOUNS = frozenset({"it", "its", "them", "they", "their", "this", "these", "that", "which", "who", "one"})
_PLACE_ADJ = ("northern|southern|eastern|western|central|tropical|subtropical|temperate|northeastern|"
              "northwestern|southeastern|southwestern|arctic|subarctic|coastal|equatorial|north|south|east|west")
_NAME = r"(?:[A-Z][\w'-]+)(?: [A-Z][\w'-]+)*"
_PLACE = rf"(?:(?:{_PLACE_ADJ}) )*{_NAME}"
_ORIGIN_RE = re.compile(rf"\b(?:native to|found in|found throughout|developed in|originating in|originated in|"
                        rf"bred in|of|from) (?:the )?({_PLACE}(?:(?:,| and| or| to) (?:the )?{_PLACE})*)")
_USE_RE = re.compile(r"\b(?:used|designed|intended|equipped|worn|built|adapted|employed) ((?:to|for|as) [^;:()]+)")
_FOR_RE = re.compile(r"(?<!noted )(?<!known )(?<!prized )(?<!valued )(?<!famous )\b(for [a-z]+ing\b[^;:()]*)")
_FEATURE_RE = re.compile(r"\b(?:having|with) ([^;:()]+)")
_FEATURE_CUT = re.compile(r",| that | which | developed | originating | found | used | native | bred | for | "
                          r"from | especially | usually | often | typically | in the | of [A-Z]")
_MADE_RE = re.compile(r"\bmade (?:of|from) ([^;:(),]+)")


# ----- WordNet helpers --------------------------------------------------------------------------------
def related(s: Synset, relation: str) -> list[Synset]:
    """``s.<relation>()`` sorted by name (NLTK keeps pointers in sets: its order changes between runs)."""
    return sorted(getattr(s, relation)(), key=lambda x: x.name())


def synset_parents(s: Synset) -> list[Synset]:
    return related(s, "hypernyms") + related(s, "instance_hypernyms")


@functools.cache
def synset_depth(s: Synset) -> int:
    """Longest hypernym path to a root."""
    parents = synset_parents(s)
    return 1 + max(synset_depth(p) for p in parents) if parents else 0


@functools.cache
def _depth_of(name: str) -> int:
    return synset_depth(wordnet().synset(name))


def lcs_depth(a: Synset, b: Synset) -> int:
    """Depth of the deepest common hypernym of ``a`` and ``b`` (-1 when none)."""
    common = ancestors_of(a).keys() & ancestors_of(b).keys()
    return max((_depth_of(n) for n in common), default=-1)


def close_relatives(a: Synset, b: Synset, steps: int = CLOSE) -> bool:
    """Whether ``b`` shares an ancestor with ``a`` at most ``steps`` steps above ``a`` (or is its kin)."""
    anc_a, anc_b = ancestors_of(a), ancestors_of(b)
    return any(d <= steps and n in anc_b for n, d in anc_a.items()) or a.name() in anc_b


def synset_label(s: Synset) -> str:
    """Display text of a synset: its first lemma (``_`` → space); taxonomic groups as "genus Tinca"."""
    names = s.lemma_names()
    for n in names:
        head = n.split("_", 1)[0].lower()
        if head in _RANKS and "_" in n:
            return head + " " + n.split("_", 1)[1].replace("_", " ")
    return names[0].replace("_", " ")


@functools.cache
def _rank(s: Synset) -> str:
    """"genus", "family", ... for a taxonomic group named with its rank, "taxon" for another taxonomic
    group ("Pisces"), "" for any other group ("pack", "fleet")."""
    for n in s.lemma_names():
        head = n.split("_", 1)[0].lower()
        if head in _RANKS and "_" in n:
            return head
    return "taxon" if "biological_group.n.01" in ancestors_of(s) else ""


def clean_gloss(s: Synset) -> str:
    d = s.definition().strip()
    return d[:1].upper() + d[1:] if d else d


def class_name_words(forms: frozenset[str], s: Synset) -> frozenset[str]:
    """Every word of every form of the class and of its synset's lemmas (with plurals), stopwords and
    words under 3 letters aside."""
    stop = cached_stopwords()
    words: set[str] = set()
    texts = set(forms) | {normalize(n.replace("_", " ")) for n in s.lemma_names()}
    for t in texts:
        for w in t.split():
            if len(w) >= 3 and w not in stop:
                words.add(w)
                words.update(pluralize(w))
    return frozenset(words)


def leaks_name(text: str, name_words: frozenset[str]) -> bool:
    """Whether ``text`` contains a name word whole-word, or a word extending a 5+ letter name word."""
    for w in normalize(text).split():
        if w in name_words or any(len(n) >= 5 and n in w for n in name_words):
            return True
    return False


@functools.cache
def _is_place(name: str) -> tuple[Synset, ...]:
    """The location synsets a capitalised name may denote (empty when WordNet knows none)."""
    return tuple(c for c in senses(name) if "location.n.01" in ancestors_of(c))


def places_in(text: str) -> list[Synset]:
    """The location synsets named in an origin phrase."""
    out = []
    for name in re.findall(_NAME, text):
        out.extend(_is_place(name))
    return out


@functools.cache
def place_closure(s: Synset) -> frozenset[str]:
    """A place with every place it lies in and every place within it (part holonyms/meronyms, transitive)."""
    up = {x.name() for x in s.closure(lambda x: x.part_holonyms())}
    down = {x.name() for x in s.closure(lambda x: x.part_meronyms())}
    return frozenset(up | down | {s.name()})


def _phrase_ok(text: str, min_words: int = 1, max_words: int = 10) -> bool:
    words = normalize(text).split()
    return min_words <= len(words) <= max_words and not _PRONOUNS & set(words) and bool(content_words(text))


def _noun_phrase(text: str) -> bool:
    """Whether a parsed phrase looks like a complete noun phrase: no verb-like joints ("and use", "to"),
    not starting with a joint, and ending in a word WordNet knows as a noun."""
    words = normalize(text).split()
    if not words or words[0] in ("or", "and", "to", "in", "on", "at", "of") or "to" in words or "use" in words:
        return False
    last = words[-1]
    return last not in ("and", "or") and bool(wordnet().synsets(last, pos="n")) and not last.endswith("ly")


# ----- answers a synset gives per kind ---------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """One correct answer of a kind for a synset: display text, the synset it names (None for gloss
    phrases), the synset that states it (the class or an ancestor) and the reference sentence."""

    kind: str
    text: str
    synset: Synset | None
    source: Synset
    reference: str
    masked: bool = False


def _gloss_phrases(s: Synset) -> dict[str, list[str]]:
    """Use / origin / feature / material phrases parsed from the gloss of ``s``."""
    d = s.definition()
    out: dict[str, list[str]] = {"use": [], "origin": [], "feature": [], "substance": []}
    for m in list(_USE_RE.finditer(d)) + list(_FOR_RE.finditer(d)):
        p = m.group(1).split(",")[0].strip()
        if _phrase_ok(p, 2, 10) and not p.lower().startswith(("for example", "for instance")):
            out["use"].append(p)
    for m in _ORIGIN_RE.finditer(d):
        p = m.group(1).strip()
        names = re.findall(_NAME, p)
        if names and all(_is_place(n) for n in names) and _phrase_ok(p, 1, 8):
            out["origin"].append(p)
    if s.lexname() in ("noun.animal", "noun.artifact", "noun.plant"):
        for m in _FEATURE_RE.finditer(d):
            p = _FEATURE_CUT.split(f" {m.group(1)} ")[0].strip()
            # "with the fingers" (a harp's strings are plucked with them) names something else's part
            if _phrase_ok(p, 2, 7) and _noun_phrase(p) and not p.lower().startswith("the "):
                out["feature"].append(p)
    for m in _MADE_RE.finditer(d):
        p = m.group(1).strip()
        if _phrase_ok(p, 1, 4):
            out["substance"].append(p)
    return out


@functools.cache
def answers_of(s: Synset) -> dict[str, tuple[Answer, ...]]:
    """Every correct answer each kind gives for ``s``, nearest fact first (no name-leak filtering)."""
    wn = wordnet()
    label = synset_label(s)
    anc = ancestors_of(s)
    out: dict[str, list[Answer]] = {k: [] for k in KINDS}
    for n, d in sorted(anc.items(), key=lambda t: (t[1], t[0])):
        a = wn.synset(n)
        if 1 <= d <= MAX_HYPERNYM_DISTANCE and n not in GENERIC and synset_depth(a) >= MIN_ANSWER_DEPTH:
            out["hypernym"].append(Answer("hypernym", synset_label(a), a, s,
                                           f"{label} is a kind of {synset_label(a)} ({a.definition()})."))
        if d <= MAX_MEMBER_DISTANCE:
            for h in related(a, "member_holonyms"):
                if d == 0 or _rank(h):
                    who = label if d == 0 else f"{synset_label(a)} (and so {label})"
                    out["member_of"].append(Answer("member_of", synset_label(h), h, a,
                                                    f"{who} is a member of {synset_label(h)} ({h.definition()})."))
        if d == 0:
            for p in related(a, "part_meronyms"):
                if p.name() not in GENERIC_PARTS:
                    out["part"].append(Answer("part", synset_label(p), p, s,
                                               f"{label} has part {synset_label(p)} ({p.definition()})."))
        elif (s.lexname() == "noun.animal" and d <= MAX_INHERITED_PART_DISTANCE and n not in GENERIC):
            for p in related(a, "part_meronyms"):
                if p.name() not in GENERIC_PARTS:
                    out["inherited_part"].append(Answer(
                        "inherited_part", synset_label(p), p, a,
                        f"inherited from {synset_label(a)}: {synset_label(a)} has part {synset_label(p)} "
                        f"({p.definition()}); WordNet does not state it for {label} itself."))
    for h in related(s, "part_holonyms"):
        out["part_of"].append(Answer("part_of", synset_label(h), h, s,
                                      f"{label} is a part of {synset_label(h)} ({h.definition()})."))
    # an animal's WordNet substances are what it yields ("lard" of a hog), not what it is made of
    for m in (related(s, "substance_meronyms") if s.lexname() != "noun.animal" else []):
        out["substance"].append(Answer("substance", synset_label(m), m, s,
                                        f"{label} has substance {synset_label(m)} ({m.definition()})."))
    for rel in ("topic_domains", "usage_domains", "region_domains"):
        for dom in related(s, rel):
            out["domain"].append(Answer("domain", synset_label(dom), dom, s,
                                         f"{label} belongs to the domain {synset_label(dom)} ({dom.definition()})."))
    gloss = clean_gloss(s)
    if gloss:
        out["gloss_cloze"].append(Answer("gloss_cloze", gloss, None, s, f"{label}: {s.definition()}"))
    for kind, phrases in _gloss_phrases(s).items():
        for p in phrases:
            out[kind].append(Answer(kind, p, None, s, f"{label}: {s.definition()}"))
    seen: dict[str, set[str]] = {}
    return {k: tuple(a for a in v if normalize(a.text) not in seen.setdefault(k, set())
                     and not seen[k].add(normalize(a.text))) for k, v in out.items()}
