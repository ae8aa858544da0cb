"""LLM-free ImageWikiQA questions from WordNet 3.0: offline, reproducible for a seed.

Each class is mapped to its synset (:func:`vlm_classdata.hierarchy.entry_synset`: wnid, else the first noun sense of
a name). Every question has 4 options, one correct; its text is one of several phrasings per kind
(:data:`TEMPLATES`), chosen per question by seed. Kinds (:data:`KINDS`) and where their answers come from:

* ``hypernym``      an ancestor 1-3 steps up, never a generic one (:data:`GENERIC`, or depth < 4);
* ``member_of``     a member holonym of the synset (taxonomic groups also of an ancestor up to 2 steps:
  membership of a genus is inherited by every kind of its member);
* ``gloss_cloze``   the synset's definition; distractors are definitions of the nearest other classes;
* ``part``          a part meronym WordNet states for the synset itself;
* ``inherited_part`` for animals only, a body part stated for an ancestor 1-4 steps up: held to the same
  distractor rules and FLAGGED by its kind and its reference ("inherited from ...");
* ``part_of``, ``substance``, ``domain``: part holonyms, substance meronyms, topic/region/usage domains of
  the synset itself; ``substance`` also from the gloss ("made of felt");
* ``use``, ``origin``, ``feature``: parsed from the gloss with strict patterns ("used to/for/as ...",
  "for <-ing> ...", "native to/found in/developed in/of <place>", "having/with ..."), rejected when unsure
  (pronouns, too long or short, a place WordNet does not know as a location).

Rules every question satisfies:

* no option and no question contains a word of any form of the class (all words of every name, lemma,
  synonym and plural, stopwords and words under 3 letters aside; "tow truck" never gets "truck"), nor a
  word extending a 5+ letter such word ("Scorpionida");
* distractors come from the answers the SAME kind gives for other classes (WordNet siblings and uncles of
  the classes join the pool for vocabularies under :data:`SMALL_VOCAB` classes), so every option is a
  plausible answer string of that kind;
* no distractor is true of the class per :func:`imagewikiqa.audit.why_true` (an ancestor, descendant,
  anything in the part closure of the class, its ancestors and descendants, a whole, group, substance or
  domain of it, or mostly words of its glosses); part, use and feature distractors never come from a close
  relative (a class sharing an ancestor at most :data:`CLOSE` steps above the class: no "accelerator" of
  a car for a forklift); origins never contain or lie within the class's places;
* the options are pairwise not ancestor/descendant of each other (any noun sense), share no content word (no synonyms), and
  are distinct after :func:`vlm_classdata.lexicon.normalize`;
* candidates are ranked by closeness to the answer with ties broken by a seeded hash and 3 drawn from the
  best :data:`POOL` (never "first by name"); options are shuffled by seed;
* one answer string is the key of at most :data:`ANSWER_SHARE` of the expected questions (at least
  :data:`MIN_ANSWER_CAP`); classes claim answers in a seeded order;
* no two questions share kind and option set: a repeat is redrawn with another salt, else dropped;
* per class at most ``per_class`` questions, kinds in turn (other kinds before taxonomy and definition),
  and taxonomy + definition questions (:data:`TAXONOMY`) at most ``max(1, other questions of the class)``,
  so they are about half of the set while every class with a synset keeps at least one question.

NLTK relation lists are sorted by name first (NLTK keeps them in sets), and all randomness is
:func:`builders.records.sample_rng` (SHA-256 of seed and parts), so the output is identical across
processes and ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.records import sample_rng
from imagewikiqa.audit import MASK as AUDIT_MASK
from imagewikiqa.audit import ClassFacts, ancestors_of, cached_stopwords, content_words, senses, why_true
from imagewikiqa.records import N_OPTIONS, Question
from vlm_classdata.errors import UserError
from vlm_classdata.hierarchy import entry_synset
from vlm_classdata.lexicon import Lexicon, normalize, pluralize
from vlm_classdata.vocabulary import ClassVocabulary
from vlm_classdata.wordnet import wnid_of, wordnet

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

GENERATOR = "wordnet"
KINDS = ("hypernym", "part", "gloss_cloze", "member_of", "part_of", "substance", "inherited_part", "use",
         "origin", "feature", "domain")
# the kinds asked by default: inherited body parts are left out, a blind solver answers 95% of them
# (the same few parts, "milt", "feather", are keys across many classes); ask for them with ``kinds``
DEFAULT_KINDS = tuple(k for k in KINDS if k != "inherited_part")
TAXONOMY = frozenset({"hypernym", "member_of", "gloss_cloze"})
# the order kinds are taken in for a class: facts about the object before its taxonomy
PRIORITY = ("part", "use", "origin", "feature", "substance", "part_of", "domain", "inherited_part",
            "gloss_cloze", "member_of", "hypernym")
TEMPLATES: dict[str, tuple[str, ...]] = {
    "hypernym": ("This object is a kind of what?", "Which category does this object belong to?",
                 "What general type of thing is this object?", "This object is best described as a type of what?"),
    "member_of": ("This object is a member of which group?", "Which group includes this object as a member?",
                  "To which group does this object belong?"),
    "gloss_cloze": ("Which description fits this object?", "Which definition describes this object?",
                    "Which of these best defines this object?"),
    "part": ("Which of these is a part of this object?", "Which of these does this object have as a part?",
             "Which component belongs to this object?"),
    "inherited_part": ("Which of these is a part of this object?", "Which of these body parts does this object "
                       "have?", "Which of these does this object have as a part?"),
    "part_of": ("This object is a part of what?", "Of which larger thing is this object a part?",
                "This object is a component of what?"),
    "substance": ("What is this object made of?", "Which material is this object made of?",
                  "What substance makes up this object?"),
    "use": ("What is this object used for?", "What is the purpose of this object?",
            "What is this object typically used for?"),
    "origin": ("Where does this object come from?", "Which part of the world is this object associated with?",
               "Which region is this object from?"),
    "feature": ("Which feature does this object have?", "Which of these describes a feature of this object?",
                "Which of these does this object have?"),
    "domain": ("Which field is this object associated with?", "In which domain is this object used or discussed?",
               "This object belongs to which subject area?"),
}
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
MIN_TAXONOMY = 2          # taxonomy + definition questions a class may have even without other facts
MASK = AUDIT_MASK          # stands for the hidden name and genus words of a masked definition
MIN_MASKED_WORDS = 3      # content words a masked definition keeps
RELATIVE_DISTANCE = 4     # definitions of distractors come from below ancestors at most this many steps up
MAX_HYPERNYM_DISTANCE = 3
MAX_MEMBER_DISTANCE = 2
MAX_INHERITED_PART_DISTANCE = 4
CLOSE = 3                 # a class sharing an ancestor this many steps above the class is a close relative
FEATURE_EXTRA_STEPS = 2   # feature distractors come from classes further away still
# ImageNet classes whose images show another WordNet sense than their wnid's: questions use the sense shown
# (n04355933 "sunglass" is a burning lens in WordNet; its ImageNet images are sunglasses)
IMAGE_SENSES = {"n04355933": "sunglasses.n.01"}
POOL = 10                 # distractors are drawn from the best this many valid candidates
ANSWER_SHARE = 0.01       # one answer string keys at most this share of the expected questions ...
MIN_ANSWER_CAP = 3        # ... and at least this many
SMALL_VOCAB = 300         # below this many classes, WordNet relatives of the classes widen the pools
REDRAWS = 3               # salts tried when a question repeats another class's option set
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


def _parents(s: Synset) -> list[Synset]:
    return related(s, "hypernyms") + related(s, "instance_hypernyms")


@functools.cache
def _depth(s: Synset) -> int:
    """Longest hypernym path to a root."""
    parents = _parents(s)
    return 1 + max(_depth(p) for p in parents) if parents else 0


@functools.cache
def _depth_of(name: str) -> int:
    return _depth(wordnet().synset(name))


def _lcs_depth(a: Synset, b: Synset) -> int:
    """Depth of the deepest common hypernym of ``a`` and ``b`` (-1 when none)."""
    common = ancestors_of(a).keys() & ancestors_of(b).keys()
    return max((_depth_of(n) for n in common), default=-1)


def _close(a: Synset, b: Synset, steps: int = CLOSE) -> bool:
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


def _clean_gloss(s: Synset) -> str:
    d = s.definition().strip()
    return d[:1].upper() + d[1:] if d else d


def _name_words(forms: frozenset[str], s: Synset) -> frozenset[str]:
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


def _places(text: str) -> list[Synset]:
    """The location synsets named in an origin phrase."""
    out = []
    for name in re.findall(_NAME, text):
        out.extend(_is_place(name))
    return out


@functools.cache
def _place_closure(s: Synset) -> frozenset[str]:
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
class _Answer:
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
def answers_of(s: Synset) -> dict[str, tuple[_Answer, ...]]:
    """Every correct answer each kind gives for ``s``, nearest fact first (no name-leak filtering)."""
    wn = wordnet()
    label = synset_label(s)
    anc = ancestors_of(s)
    out: dict[str, list[_Answer]] = {k: [] for k in KINDS}
    for n, d in sorted(anc.items(), key=lambda t: (t[1], t[0])):
        a = wn.synset(n)
        if 1 <= d <= MAX_HYPERNYM_DISTANCE and n not in GENERIC and _depth(a) >= MIN_ANSWER_DEPTH:
            out["hypernym"].append(_Answer("hypernym", synset_label(a), a, s,
                                           f"{label} is a kind of {synset_label(a)} ({a.definition()})."))
        if d <= MAX_MEMBER_DISTANCE:
            for h in related(a, "member_holonyms"):
                if d == 0 or _rank(h):
                    who = label if d == 0 else f"{synset_label(a)} (and so {label})"
                    out["member_of"].append(_Answer("member_of", synset_label(h), h, a,
                                                    f"{who} is a member of {synset_label(h)} ({h.definition()})."))
        if d == 0:
            for p in related(a, "part_meronyms"):
                if p.name() not in GENERIC_PARTS:
                    out["part"].append(_Answer("part", synset_label(p), p, s,
                                               f"{label} has part {synset_label(p)} ({p.definition()})."))
        elif (s.lexname() == "noun.animal" and d <= MAX_INHERITED_PART_DISTANCE and n not in GENERIC):
            for p in related(a, "part_meronyms"):
                if p.name() not in GENERIC_PARTS:
                    out["inherited_part"].append(_Answer(
                        "inherited_part", synset_label(p), p, a,
                        f"inherited from {synset_label(a)}: {synset_label(a)} has part {synset_label(p)} "
                        f"({p.definition()}); WordNet does not state it for {label} itself."))
    for h in related(s, "part_holonyms"):
        out["part_of"].append(_Answer("part_of", synset_label(h), h, s,
                                      f"{label} is a part of {synset_label(h)} ({h.definition()})."))
    # an animal's WordNet substances are what it yields ("lard" of a hog), not what it is made of
    for m in (related(s, "substance_meronyms") if s.lexname() != "noun.animal" else []):
        out["substance"].append(_Answer("substance", synset_label(m), m, s,
                                        f"{label} has substance {synset_label(m)} ({m.definition()})."))
    for rel in ("topic_domains", "usage_domains", "region_domains"):
        for dom in related(s, rel):
            out["domain"].append(_Answer("domain", synset_label(dom), dom, s,
                                         f"{label} belongs to the domain {synset_label(dom)} ({dom.definition()})."))
    gloss = _clean_gloss(s)
    if gloss:
        out["gloss_cloze"].append(_Answer("gloss_cloze", gloss, None, s, f"{label}: {s.definition()}"))
    for kind, phrases in _gloss_phrases(s).items():
        for p in phrases:
            out[kind].append(_Answer(kind, p, None, s, f"{label}: {s.definition()}"))
    seen: dict[str, set[str]] = {}
    return {k: tuple(a for a in v if normalize(a.text) not in seen.setdefault(k, set())
                     and not seen[k].add(normalize(a.text))) for k, v in out.items()}


# ----- pools of distractors ---------------------------------------------------------------------------------
@dataclass
class _Option:
    """A distractor candidate of one kind: its text, synset (None for phrases) and the synsets it is a
    correct answer for (classes, relatives, or the wholes that state a part)."""

    text: str
    synset: Synset | None
    sources: list[Synset]


def _pool_synsets(synsets: list[Synset]) -> list[Synset]:
    """The classes, plus WordNet siblings and uncles of each (hyponyms of ancestors up to 2 steps) when the
    vocabulary is small (hyponyms of ancestors 1-2 steps up), sorted by name."""
    out = {s.name(): s for s in synsets}
    if len(synsets) < SMALL_VOCAB:
        wn = wordnet()
        for s in synsets:
            for n, d in ancestors_of(s).items():
                if 1 <= d <= 2 and n not in GENERIC:
                    for h in related(wn.synset(n), "hyponyms"):
                        out.setdefault(h.name(), h)
    return [out[k] for k in sorted(out)]


def _build_pools(synsets: list[Synset]) -> dict[str, list[_Option]]:
    """``{kind: options}``: every answer the kind gives for a pool synset, one entry per normalised text."""
    pools: dict[str, dict[str, _Option]] = {k: {} for k in KINDS}
    for s in _pool_synsets(synsets):
        for kind, answers in answers_of(s).items():
            for a in answers:
                key = normalize(a.text)
                opt = pools[kind].setdefault(key, _Option(a.text, a.synset, []))
                opt.sources.append(a.source if kind in ("part", "inherited_part") else s)
    return {k: [v[t] for t in sorted(v)] for k, v in pools.items()}


# ----- distractors -------------------------------------------------------------------------------------
def _pairwise_ok(a: _Option | _Answer, b: _Option | _Answer) -> bool:
    """Two options may stand together: different text, no shared content word, no noun sense of one an
    ancestor or descendant of a noun sense of the other ("cart"/"truck": a hand truck is a handcart)."""
    if normalize(a.text) == normalize(b.text) or content_words(a.text) & content_words(b.text):
        return False
    sa = [a.synset] if a.synset is not None else list(senses(a.text))
    sb = [b.synset] if b.synset is not None else list(senses(b.text))
    sa += [x for x in senses(a.text) if x not in sa]
    sb += [x for x in senses(b.text) if x not in sb]
    return not any(x.name() in ancestors_of(y) or y.name() in ancestors_of(x) for x in sa for y in sb)


def _valid_for(opt: _Option, answer: _Answer, s: Synset, facts: ClassFacts, name_words: frozenset[str],
               answer_places: frozenset[str]) -> bool:
    """Whether ``opt`` is a false, fair distractor for the class ``s`` asked about with ``answer``."""
    kind = answer.kind
    if leaks_name(opt.text, name_words) or not _pairwise_ok(opt, answer):
        return False
    if any(src.name() in facts.ancestors or src.name() in facts.descendants for src in opt.sources):
        return False
    if kind == "gloss_cloze":
        return True
    if why_true(facts, opt.text) is not None:
        return False
    # features are shared widely within a group ("quick-acting venom" of one snake fits a rattlesnake too)
    steps = CLOSE + FEATURE_EXTRA_STEPS if kind == "feature" else CLOSE
    if kind in ("part", "inherited_part", "use", "feature", "substance") and any(
            _close(s, src, steps) for src in opt.sources):
        return False
    return not (kind == "origin" and any(not _place_closure(p).isdisjoint(answer_places)
                                         for p in _places(opt.text)))


def _closeness(answer: _Answer, opt: _Option, s: Synset) -> int:
    if answer.synset is not None and opt.synset is not None:
        return _lcs_depth(answer.synset, opt.synset)
    return max((_lcs_depth(s, src) for src in opt.sources[:8]), default=-1)


def _distractors(answer: _Answer, s: Synset, facts: ClassFacts, name_words: frozenset[str],
                 pool: list[_Option], seed: int, salt: str) -> list[str] | None:
    """3 distractor texts for ``answer``: valid (:func:`_valid_for`), ranked by closeness with ties broken
    by a seeded hash, drawn from the best :data:`POOL`, pairwise compatible. None when fewer exist."""
    places: set[str] = set()
    if answer.kind == "origin":
        for p in _places(" ".join(a.text for a in answers_of(s)["origin"])):
            places.update(_place_closure(p))
    frozen = frozenset(places)
    ranked = sorted(pool, key=lambda o: (-_closeness(answer, o, s), sample_rng(seed, salt, normalize(o.text)).random()))
    valid: list[_Option] = []
    for opt in ranked:  # validated lazily, best first: the best POOL valid ones, then the rest on demand
        if _valid_for(opt, answer, s, facts, name_words, frozen):
            valid.append(opt)
            if len(valid) == POOL:
                break
    rng = sample_rng(seed, salt, "draw")
    chosen: list[_Option] = []
    for opt in rng.sample(valid, len(valid)):
        if all(_pairwise_ok(opt, c) for c in chosen):
            chosen.append(opt)
    if len(chosen) < N_OPTIONS - 1:  # the best did not fit together: go on down the ranking
        for opt in ranked[ranked.index(valid[-1]) + 1 if valid else 0:]:
            if (all(_pairwise_ok(opt, c) for c in chosen)
                    and _valid_for(opt, answer, s, facts, name_words, frozen)):
                chosen.append(opt)
                if len(chosen) == N_OPTIONS - 1:
                    break
    return [c.text for c in chosen[:N_OPTIONS - 1]] if len(chosen) >= N_OPTIONS - 1 else None


def _mask_words(s: Synset) -> frozenset[str]:
    """The words a masked definition of ``s`` hides: its own lemma words and those of its direct
    hypernyms (the genus word a definition usually opens with), with plurals."""
    words = set(_name_words(frozenset(), s))
    for h in _parents(s):
        words.update(_name_words(frozenset(), h))
    return frozenset(words)


def mask_gloss(text: str, words: frozenset[str]) -> str:
    """``text`` with every word in ``words`` (or extending a 5+ letter one) replaced by :data:`MASK`,
    runs of masks merged into one."""
    def hide(m: re.Match) -> str:
        return MASK if leaks_name(m.group(0), words) else m.group(0)

    out = re.sub(r"[\w][\w'-]*", hide, text)
    out = re.sub(rf"{MASK}(?:\s+{MASK})+", MASK, out)
    return out[:1].upper() + out[1:] if out[:1] != MASK else out


def _masked_ok(text: str) -> bool:
    """A masked definition worth asking: at least one mask and :data:`MIN_MASKED_WORDS` content words left."""
    return MASK in text and len(content_words(text.replace(MASK, " "))) >= MIN_MASKED_WORDS


def _masked_gloss_answer(s: Synset, name_words: frozenset[str]) -> _Answer | None:
    """The definition of ``s`` with the class's name words and its genus words masked ("… used to keep …
    free of dust"): the definition question of a class whose definition names it. None when too little
    is left."""
    text = mask_gloss(_clean_gloss(s), name_words | _mask_words(s))
    if not _masked_ok(text) or leaks_name(text, name_words):
        return None
    return _Answer("gloss_cloze", text, None, s, f"{synset_label(s)}: {s.definition()}", masked=True)


@functools.cache
def _relatives(s: Synset, classes: frozenset[str]) -> tuple[tuple[int, Synset], ...]:
    """WordNet relatives of ``s`` whose definitions serve as distractors: siblings and their hyponyms,
    and grandchildren of the ancestors 2 to :data:`RELATIVE_DISTANCE` steps up (not generic; their
    children, the class's uncles, are categories that may overlap it), with that distance; never a
    class of the vocabulary (``classes``: their synset names; a class's definition is its own key), an
    ancestor or a descendant of ``s``, or a synset without a definition."""
    wn = wordnet()
    facts = ClassFacts.of(s)
    found: dict[str, tuple[int, Synset]] = {}
    for n, d in sorted(ancestors_of(s).items(), key=lambda t: (t[1], t[0])):
        if not 1 <= d <= RELATIVE_DISTANCE or n in GENERIC:
            continue
        level = related(wn.synset(n), "hyponyms")
        for step in range(2):
            if step or d == 1:  # an uncle is an overlapping category ("bird dog" of a setter): skipped
                for h in level:
                    found.setdefault(h.name(), (d, h))
            level = [x for h in level for x in related(h, "hyponyms")]
    return tuple(v for k, v in sorted(found.items()) if k not in classes and k not in facts.ancestors
                 and k not in facts.descendants and v[1].definition().strip())


def _definition_distractors(answer: _Answer, s: Synset, name_words: frozenset[str], classes: frozenset[str],
                            used: set[str], seed: int, salt: str) -> list[str] | None:
    """3 definitions of WordNet relatives of the class that are not classes themselves
    (:func:`_relatives`), masked like the key when it is masked; each definition is a distractor of one
    question only (``used``), so no option text is ever seen as a key or seen before by a blind solver.
    Nearest relatives first (ties by seeded hash); a definition naming the class, or sharing half its
    content words with the key (a paraphrase) or two of them (it may hold of the class too), is skipped; of the :data:`POOL` nearest the 5 closest in
    length to the key, 3 drawn by seed. None when fewer than 3 exist."""
    ranked = sorted(_relatives(s, classes), key=lambda t: (t[0], sample_rng(seed, salt, t[1].name()).random()))
    key_words = content_words(answer.text.replace(MASK, " "))
    seen = {normalize(answer.text)}
    near: list[str] = []
    for _, h in ranked:
        text = _clean_gloss(h)
        if answer.masked:
            text = mask_gloss(text, _mask_words(h))
            if not _masked_ok(text):
                continue
        key = normalize(text)
        words = content_words(text.replace(MASK, " "))
        shared = len(words & key_words)
        # a definition sharing two content words with the key may be true of the class too (a turnstone also
        # "breeds in the Arctic and winters in the southern hemisphere"; a cauldron is a "pot for boiling")
        if key in seen or key in used or leaks_name(text, name_words) or shared >= 2 or (
                words and 2 * shared >= len(words)):
            continue
        seen.add(key)
        near.append(text)
        if len(near) == POOL:
            break
    if len(near) < N_OPTIONS - 1:
        return None
    near.sort(key=lambda o: (abs(len(o) - len(answer.text)), sample_rng(seed, salt, o).random()))
    return sample_rng(seed, salt, "draw").sample(near[:5], N_OPTIONS - 1)


# ----- public API -------------------------------------------------------------------------------------
def generate_wordnet_questions(vocab: ClassVocabulary, per_class: int = 5, seed: int = 0,
                               kinds: tuple[str, ...] | None = None,
                               lexicon: Lexicon | None = None) -> tuple[list[Question], Counter]:
    """Up to ``per_class`` WordNet questions per class of ``vocab`` (rules in the module docstring), in
    vocabulary order, and a Counter of skip/rejection reasons ("no_synset", "no_<kind>", "leak",
    "too_few_distractors", "answer_cap", "duplicate_across_classes", "taxonomy_cap",
    "class_below_per_class", ...). Deterministic for a seed. ``lexicon``: ``Lexicon.build(vocab)`` when
    the caller already has it (built here otherwise)."""
    kinds = DEFAULT_KINDS if kinds is None else tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise UserError(f"unknown WordNet question kind(s) {', '.join(bad)}; known: {', '.join(KINDS)}")
    if per_class < 1:
        raise UserError(f"per_class must be at least 1, got {per_class}")
    reasons: Counter = Counter()
    lexicon = lexicon if lexicon is not None else Lexicon.build(vocab)
    synsets: dict[str, Synset | None] = {
        e.class_id: wordnet().synset(IMAGE_SENSES[e.wnid]) if e.wnid in IMAGE_SENSES else entry_synset(e)
        for e in vocab}
    present = [s for s in synsets.values() if s is not None]
    pools = _build_pools(present)
    classes = frozenset(x.name() for x in present)
    used: set[str] = set()
    cap = max(MIN_ANSWER_CAP, math.floor(ANSWER_SHARE * per_class * len(present)))
    answer_count: Counter = Counter()
    signatures: set[tuple[str, frozenset[str]]] = set()
    kept_by_class: dict[str, list[Question]] = {}
    # classes claim capped answers and option sets in a seeded order (not vocabulary order)
    order = sorted((e for e in vocab), key=lambda e: sample_rng(seed, "class-order", e.class_id).random())
    for entry in order:
        s = synsets[entry.class_id]
        if s is None:
            reasons["no_synset"] += 1
            continue
        kept_by_class[entry.class_id] = _class_questions(entry.class_id, entry.name, s, lexicon, kinds, pools,
                                                         classes, used, per_class, seed, cap, answer_count,
                                                         signatures, reasons)
    questions = [q for e in vocab for q in kept_by_class.get(e.class_id, [])]
    return questions, reasons


def _candidates(kind: str, s: Synset, name_words: frozenset[str], seed: int, cid: str,
                reasons: Counter) -> list[_Answer]:
    """The answers of ``kind`` for the class that do not leak its name, nearest first, ties by seeded hash."""
    found = answers_of(s)[kind]
    if not found:
        reasons[f"no_{kind}"] += 1
        return []
    ok = [a for a in found if not leaks_name(a.text, name_words)]
    reasons["leak"] += len(found) - len(ok)
    if kind == "gloss_cloze" and not ok:  # the definition names the class: ask it with the names masked
        masked = _masked_gloss_answer(found[0].source, name_words)
        ok = [masked] if masked is not None else []
        reasons["masked_gloss"] += len(ok)
    if kind == "hypernym":
        anc = ancestors_of(s)
        ok.sort(key=lambda a: (anc[a.synset.name()], sample_rng(seed, cid, kind, a.text).random()))
    else:
        first = ok[:1] if kind in ("gloss_cloze", "member_of") else []
        rest = sorted(ok[len(first):], key=lambda a: sample_rng(seed, cid, kind, a.text).random())
        ok = first + rest
    return ok


def _class_questions(cid: str, class_name: str, s: Synset, lexicon: Lexicon, kinds: tuple[str, ...],
                     pools: dict[str, list[_Option]], classes: frozenset[str], used: set[str], per_class: int, seed: int, cap: int,
                     answer_count: Counter, signatures: set[tuple[str, frozenset[str]]],
                     reasons: Counter) -> list[Question]:
    """The questions of one class: kinds in :data:`PRIORITY` order, in turns, under the caps."""
    forms = frozenset(f.text for f in lexicon.forms_of(cid))
    name_words = _name_words(forms, s)
    facts = ClassFacts.of(s)
    queues = {k: _candidates(k, s, name_words, seed, cid, reasons) for k in PRIORITY if k in kinds}
    kept: list[Question] = []
    count: Counter = Counter()
    answered: set[str] = set()
    while len(kept) < per_class and any(queues.values()):
        progressed = False
        for kind in PRIORITY:
            if len(kept) >= per_class:
                break
            queue = queues.get(kind)
            while queue:
                a = queue.pop(0)
                if kind in TAXONOMY:
                    n_tax = sum(1 for q in kept if q.kind in TAXONOMY)
                    n_other_possible = len(kept) - n_tax + sum(len(v) for k, v in queues.items() if k not in TAXONOMY)
                    if n_tax >= max(MIN_TAXONOMY, n_other_possible):
                        reasons["taxonomy_cap"] += 1 + len(queue)
                        queue.clear()
                        break
                q = _question(a, s, cid, class_name, facts, name_words, pools, classes, used, seed, cap,
                              answer_count, signatures, answered, count, reasons)
                if q is not None:
                    kept.append(q)
                    progressed = True
                    break
        if not progressed and not any(queues.values()):
            break
    while True:  # taxonomy + definition at most max(1, other questions kept): drop the last-added extra
        tax = [q for q in kept if q.kind in TAXONOMY]
        if len(tax) <= max(MIN_TAXONOMY, len(kept) - len(tax)):
            break
        kept.remove(tax[-1])
        reasons["taxonomy_cap"] += 1
    if not kept and "hypernym" in kinds:  # every class keeps a question: a farther ancestor that does not leak
        for a in _far_hypernyms(s):
            if leaks_name(a.text, name_words):
                continue
            q = _question(a, s, cid, class_name, facts, name_words, pools, classes, used, seed, cap,
                          answer_count, signatures, answered, count, reasons)
            if q is not None:
                kept.append(q)
                reasons["far_hypernym_fallback"] += 1
                break
    if len(kept) < per_class:
        reasons["class_below_per_class"] += 1
    return kept


def _far_hypernyms(s: Synset) -> list[_Answer]:
    """Ancestors 2+ steps up (not generic, depth ≥ 2), nearest first: the last-resort answers
    of a class whose near ancestors and gloss all name it ("laptop computer" → "machine")."""
    wn = wordnet()
    out = []
    for n, d in sorted(ancestors_of(s).items(), key=lambda t: (t[1], t[0])):
        a = wn.synset(n)
        if d > MAX_HYPERNYM_DISTANCE - 2 and n not in GENERIC and _depth(a) >= 2:
            out.append(_Answer("hypernym", synset_label(a), a, s,
                               f"{synset_label(s)} is a kind of {synset_label(a)} ({a.definition()})."))
    return out


def _question(a: _Answer, s: Synset, cid: str, class_name: str, facts: ClassFacts, name_words: frozenset[str],
              pools: dict[str, list[_Option]], classes: frozenset[str], used: set[str], seed: int, cap: int,
              answer_count: Counter, signatures: set[tuple[str, frozenset[str]]],
              answered: set[str], count: Counter, reasons: Counter) -> Question | None:
    """The question of one answer, or None (reason counted)."""
    key = normalize(a.text)
    if key in answered:
        reasons["duplicate"] += 1
        return None
    if a.kind != "gloss_cloze" and answer_count[key] >= cap:
        reasons["answer_cap"] += 1
        return None
    for attempt in range(REDRAWS):
        salt = f"{cid}\x1f{a.kind}\x1f{key}\x1f{attempt}"
        if a.kind == "gloss_cloze":
            texts = _definition_distractors(a, s, name_words, classes, used, seed, salt)
        else:
            texts = _distractors(a, s, facts, name_words, pools[a.kind], seed, salt)
        if texts is None:
            reasons["too_few_distractors"] += 1
            return None
        signature = (a.kind, frozenset(normalize(t) for t in [a.text, *texts]))
        if signature not in signatures:
            break
    else:
        reasons["duplicate_across_classes"] += 1
        return None
    signatures.add(signature)
    if a.kind == "gloss_cloze":
        used.update(normalize(x) for x in texts)
    answered.add(key)
    answer_count[key] += 1
    n = count[a.kind]
    count[a.kind] += 1
    qid = f"{cid}-{GENERATOR}-{a.kind}-{n}"
    rng = sample_rng(seed, qid, "shuffle")
    options = [a.text, *texts]
    rng.shuffle(options)
    question = rng.choice(TEMPLATES[a.kind])
    return Question(qid=qid, class_id=cid, class_name=class_name, question=question, options=options,
                    answer_index=options.index(a.text), reference=a.reference, source=f"wordnet:{wnid_of(s)}",
                    generator=GENERATOR, kind=a.kind)


def coverage(questions: list[Question], vocab: ClassVocabulary, per_class: int = 5) -> dict:
    """Summary numbers: questions per kind, classes with at least ``per_class`` questions, classes with
    none, the taxonomy+definition share, the most repeated answers, and the fraction of questions whose
    correct option is (strictly or jointly) the longest."""
    per_kind = Counter(q.kind for q in questions)
    per_cls = Counter(q.class_id for q in questions)
    longest = sum(1 for q in questions if len(q.answer) >= max(len(o) for o in q.options))
    strict = sum(1 for q in questions
                 if all(len(q.answer) > len(o) for i, o in enumerate(q.options) if i != q.answer_index))
    n = len(questions)
    return {
        "questions": n,
        "per_kind": dict(sorted(per_kind.items())),
        "classes": len(vocab),
        "classes_with_per_class": sum(1 for e in vocab if per_cls[e.class_id] >= per_class),
        "classes_without_questions": sum(1 for e in vocab if per_cls[e.class_id] == 0),
        "taxonomy_share": round(sum(c for k, c in per_kind.items() if k in TAXONOMY) / n, 4) if n else 0.0,
        "top_answers": Counter(q.answer for q in questions).most_common(10),
        "correct_longest_fraction": round(longest / n, 4) if n else 0.0,
        "correct_strictly_longest_fraction": round(strict / n, 4) if n else 0.0,
        "correct_strictly_longest_by_kind": {
            k: round(sum(1 for q in questions if q.kind == k and all(
                len(q.answer) > len(o) for i, o in enumerate(q.options) if i != q.answer_index)) / c, 4)
            for k, c in sorted(per_kind.items())},
    }
