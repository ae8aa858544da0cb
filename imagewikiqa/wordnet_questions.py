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

The answers per kind come from :mod:`imagewikiqa.wordnet_answers`, the distractors from
:mod:`imagewikiqa.wordnet_distractors`.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from builders.records import sample_rng
from imagewikiqa.audit import ClassFacts, ancestors_of
from imagewikiqa.records import Question
from imagewikiqa.wordnet_answers import (
    GENERIC,
    KINDS,
    MAX_HYPERNYM_DISTANCE,
    Answer,
    answers_of,
    class_name_words,
    leaks_name,
    synset_depth,
    synset_label,
)
from imagewikiqa.wordnet_distractors import (
    Option,
    build_pools,
    definition_distractors,
    masked_gloss_answer,
    pick_distractors,
)
from vlm_classdata.errors import UserError
from vlm_classdata.hierarchy import entry_synset
from vlm_classdata.lexicon import Lexicon, normalize
from vlm_classdata.vocabulary import ClassVocabulary
from vlm_classdata.wordnet import wnid_of, wordnet

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

GENERATOR = "wordnet"
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
MIN_TAXONOMY = 2          # taxonomy + definition questions a class may have even without other facts
# ImageNet classes whose images show another WordNet sense than their wnid's: questions use the sense shown
# (n04355933 "sunglass" is a burning lens in WordNet; its ImageNet images are sunglasses)
IMAGE_SENSES = {"n04355933": "sunglasses.n.01"}
ANSWER_SHARE = 0.01       # one answer string keys at most this share of the expected questions ...
MIN_ANSWER_CAP = 3        # ... and at least this many
REDRAWS = 3               # salts tried when a question repeats another class's option set


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
    pools = build_pools(present)
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
                reasons: Counter) -> list[Answer]:
    """The answers of ``kind`` for the class that do not leak its name, nearest first, ties by seeded hash."""
    found = answers_of(s)[kind]
    if not found:
        reasons[f"no_{kind}"] += 1
        return []
    ok = [a for a in found if not leaks_name(a.text, name_words)]
    reasons["leak"] += len(found) - len(ok)
    if kind == "gloss_cloze" and not ok:  # the definition names the class: ask it with the names masked
        masked = masked_gloss_answer(found[0].source, name_words)
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
                     pools: dict[str, list[Option]], classes: frozenset[str], used: set[str], per_class: int, seed: int, cap: int,
                     answer_count: Counter, signatures: set[tuple[str, frozenset[str]]],
                     reasons: Counter) -> list[Question]:
    """The questions of one class: kinds in :data:`PRIORITY` order, in turns, under the caps."""
    forms = frozenset(f.text for f in lexicon.forms_of(cid))
    name_words = class_name_words(forms, s)
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


def _far_hypernyms(s: Synset) -> list[Answer]:
    """Ancestors 2+ steps up (not generic, depth ≥ 2), nearest first: the last-resort answers
    of a class whose near ancestors and gloss all name it ("laptop computer" → "machine")."""
    wn = wordnet()
    out = []
    for n, d in sorted(ancestors_of(s).items(), key=lambda t: (t[1], t[0])):
        a = wn.synset(n)
        if d > MAX_HYPERNYM_DISTANCE - 2 and n not in GENERIC and synset_depth(a) >= 2:
            out.append(Answer("hypernym", synset_label(a), a, s,
                               f"{synset_label(s)} is a kind of {synset_label(a)} ({a.definition()})."))
    return out


def _question(a: Answer, s: Synset, cid: str, class_name: str, facts: ClassFacts, name_words: frozenset[str],
              pools: dict[str, list[Option]], classes: frozenset[str], used: set[str], seed: int, cap: int,
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
            texts = definition_distractors(a, s, name_words, classes, used, seed, salt)
        else:
            texts = pick_distractors(a, s, facts, name_words, pools[a.kind], seed, salt)
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
