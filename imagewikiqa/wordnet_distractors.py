"""Distractors of WordNet questions: pools of the answers each kind gives for other classes (:func:`build_pools`),
the picks valid for a class (:func:`pick_distractors`), masked definitions and the definitions of the nearest
other classes (:func:`definition_distractors`). Rules in :mod:`imagewikiqa.wordnet_questions`."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.records import sample_rng
from imagewikiqa.audit import MASK as AUDIT_MASK
from imagewikiqa.audit import ClassFacts, ancestors_of, content_words, senses, why_true
from imagewikiqa.records import N_OPTIONS
from imagewikiqa.wordnet_answers import (
    CLOSE,
    GENERIC,
    KINDS,
    Answer,
    answers_of,
    class_name_words,
    clean_gloss,
    close_relatives,
    lcs_depth,
    leaks_name,
    place_closure,
    places_in,
    related,
    synset_label,
    synset_parents,
)
from vlm_classdata.lexicon import normalize
from vlm_classdata.wordnet import wordnet

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

MASK = AUDIT_MASK          # stands for the hidden name and genus words of a masked definition
MIN_MASKED_WORDS = 3      # content words a masked definition keeps
RELATIVE_DISTANCE = 4     # definitions of distractors come from below ancestors at most this many steps up
FEATURE_EXTRA_STEPS = 2   # feature distractors come from classes further away still
POOL = 10                 # distractors are drawn from the best this many valid candidates
SMALL_VOCAB = 300         # below this many classes, WordNet relatives of the classes widen the pools


# ----- pools of distractors ---------------------------------------------------------------------------------
@dataclass
class Option:
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


def build_pools(synsets: list[Synset]) -> dict[str, list[Option]]:
    """``{kind: options}``: every answer the kind gives for a pool synset, one entry per normalised text."""
    pools: dict[str, dict[str, Option]] = {k: {} for k in KINDS}
    for s in _pool_synsets(synsets):
        for kind, answers in answers_of(s).items():
            for a in answers:
                key = normalize(a.text)
                opt = pools[kind].setdefault(key, Option(a.text, a.synset, []))
                opt.sources.append(a.source if kind in ("part", "inherited_part") else s)
    return {k: [v[t] for t in sorted(v)] for k, v in pools.items()}


# ----- distractors -------------------------------------------------------------------------------------
def _pairwise_ok(a: Option | Answer, b: Option | Answer) -> bool:
    """Two options may stand together: different text, no shared content word, no noun sense of one an
    ancestor or descendant of a noun sense of the other ("cart"/"truck": a hand truck is a handcart)."""
    if normalize(a.text) == normalize(b.text) or content_words(a.text) & content_words(b.text):
        return False
    sa = [a.synset] if a.synset is not None else list(senses(a.text))
    sb = [b.synset] if b.synset is not None else list(senses(b.text))
    sa += [x for x in senses(a.text) if x not in sa]
    sb += [x for x in senses(b.text) if x not in sb]
    return not any(x.name() in ancestors_of(y) or y.name() in ancestors_of(x) for x in sa for y in sb)


def _valid_for(opt: Option, answer: Answer, s: Synset, facts: ClassFacts, name_words: frozenset[str],
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
            close_relatives(s, src, steps) for src in opt.sources):
        return False
    return not (kind == "origin" and any(not place_closure(p).isdisjoint(answer_places)
                                         for p in places_in(opt.text)))


def _closeness(answer: Answer, opt: Option, s: Synset) -> int:
    if answer.synset is not None and opt.synset is not None:
        return lcs_depth(answer.synset, opt.synset)
    return max((lcs_depth(s, src) for src in opt.sources[:8]), default=-1)


def pick_distractors(answer: Answer, s: Synset, facts: ClassFacts, name_words: frozenset[str],
                 pool: list[Option], seed: int, salt: str) -> list[str] | None:
    """3 distractor texts for ``answer``: valid (:func:`_valid_for`), ranked by closeness with ties broken
    by a seeded hash, drawn from the best :data:`POOL`, pairwise compatible. None when fewer exist."""
    places: set[str] = set()
    if answer.kind == "origin":
        for p in places_in(" ".join(a.text for a in answers_of(s)["origin"])):
            places.update(place_closure(p))
    frozen = frozenset(places)
    ranked = sorted(pool, key=lambda o: (-_closeness(answer, o, s), sample_rng(seed, salt, normalize(o.text)).random()))
    valid: list[Option] = []
    for opt in ranked:  # validated lazily, best first: the best POOL valid ones, then the rest on demand
        if _valid_for(opt, answer, s, facts, name_words, frozen):
            valid.append(opt)
            if len(valid) == POOL:
                break
    rng = sample_rng(seed, salt, "draw")
    chosen: list[Option] = []
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
    words = set(class_name_words(frozenset(), s))
    for h in synset_parents(s):
        words.update(class_name_words(frozenset(), h))
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


def masked_gloss_answer(s: Synset, name_words: frozenset[str]) -> Answer | None:
    """The definition of ``s`` with the class's name words and its genus words masked ("… used to keep …
    free of dust"): the definition question of a class whose definition names it. None when too little
    is left."""
    text = mask_gloss(clean_gloss(s), name_words | _mask_words(s))
    if not _masked_ok(text) or leaks_name(text, name_words):
        return None
    return Answer("gloss_cloze", text, None, s, f"{synset_label(s)}: {s.definition()}", masked=True)


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


def definition_distractors(answer: Answer, s: Synset, name_words: frozenset[str], classes: frozenset[str],
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
        text = clean_gloss(h)
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
