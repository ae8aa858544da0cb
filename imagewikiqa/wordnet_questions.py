"""LLM-free ImageWikiQA questions from WordNet 3.0: offline, reproducible for a seed.

Each class is mapped to its synset (:func:`core.hierarchy.entry_synset`: wnid, else the first noun sense of
a name). Question kinds (:data:`KINDS`), each with 4 options of which one is correct:

* ``hypernym``    "This object is a kind of what?": the direct hypernym (n=0), then up to two ancestors 2-4
  steps up at different distances, never a generic one (:data:`GENERIC`, or depth < 4). Distractors:
  proper ancestors of other classes of the vocabulary at a similar depth (within 1, then 2), neither
  ancestors nor descendants of the class and not mentioned in its gloss; WordNet siblings/cousins of the
  answer fill in for small vocabularies.
* ``part``        "Which of these is a part of this object?": part meronyms of the synset, then of its
  ancestors up to 4 steps (7 for animals, whose body parts inherit reliably); never the generic parts
  (:data:`GENERIC_PARTS`: every whole has a "part", every organism a "cell"), nor inherited parts of
  :data:`UNRELIABLE_PART_SOURCES` (a garment's "sleeve" is no part of swim trunks). Distractors: parts in
  the vocabulary's hierarchy that are no part of the class or any ancestor, not a kind or a hypernym of
  such a part, and not mentioned in the glosses of the class and its ancestors up to 2 steps.
* ``part_of``     "This object is a part of what?": part holonyms of the synset.
* ``member_of``   "This object is a member of which group?": member holonyms of the synset or of an ancestor
  up to 2 steps (taxonomic groups shown as "genus Tinca"/"family Cyprinidae"; packs, fleets, ...).
  Distractors are groups of the same rank (genus vs genus; non-taxonomic vs non-taxonomic) that do not
  contain the class.
* ``substance``   "What is this object made of?": substance meronyms of the synset or an ancestor (2 steps).
* ``gloss_cloze`` "Which description fits this object?": the synset's definition; distractors are the
  definitions of the nearest classes (:func:`core.hierarchy.class_neighbors`), the 5 closest in length
  of the 8 nearest (so the correct option is not systematically the longest).

Distractors are ranked by the depth of their deepest common hypernym with the correct answer (harder
first), and 3 are drawn from the best :data:`POOL` with :func:`builders.records.sample_rng`; the options
are shuffled the same way. A question is dropped ("leak") when its text or an option contains,
whole-word after :func:`core.lexicon.normalize`, a form of the class (display name, lemmas, synonyms,
plurals from :class:`core.lexicon.Lexicon`), or a word containing a one-word form of 5+ letters
("Scorpionida" for "scorpion"). Per class at most ``per_class`` questions are kept, taking kinds in turn
(first of each kind, then second, ...) and never repeating a correct answer. NLTK relation lists are
sorted by name first (NLTK keeps them in sets), so the output is identical across processes.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from builders.records import sample_rng
from core.errors import UserError
from core.hierarchy import ancestor_distances, class_neighbors, entry_synset
from core.lexicon import Lexicon, normalize, pluralize
from core.vocabulary import ClassEntry, ClassVocabulary
from core.wordnet import wnid_of, wordnet
from imagewikiqa.records import N_OPTIONS, Question

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

GENERATOR = "wordnet"
KINDS = ("hypernym", "part", "gloss_cloze", "member_of", "part_of", "substance")
TEMPLATES = {
    "hypernym": "This object is a kind of what?",
    "part": "Which of these is a part of this object?",
    "part_of": "This object is a part of what?",
    "member_of": "This object is a member of which group?",
    "substance": "What is this object made of?",
    "gloss_cloze": "Which description fits this object?",
}
# too abstract to be an answer (or a source of parts): "this object is a kind of whole"
GENERIC = frozenset({
    "entity.n.01", "physical_entity.n.01", "abstraction.n.06", "object.n.01", "whole.n.02", "artifact.n.01",
    "living_thing.n.01", "organism.n.01", "instrumentality.n.03", "matter.n.03", "causal_agent.n.01",
    "thing.n.12", "unit.n.03", "group.n.01", "part.n.01", "substance.n.01", "commodity.n.01",
    "physical_object.n.01", "relation.n.01", "attribute.n.02", "measure.n.02", "psychological_feature.n.01",
})
# parts every whole / organism / animal has: not informative
# and odd or misleading ones ("flag": a dog's tail; "bird": its flesh; "wardrobe" of clothing)
GENERIC_PARTS = frozenset({"part.n.02", "section.n.04", "cell.n.02", "body_part.n.01", "flag.n.07",
                           "pennon.n.02", "bird.n.02", "wardrobe.n.02", "jag.n.02", "jag.n.03", "food.n.02"})
# ancestors whose WordNet parts are typical, not universal (swim trunks have no sleeve, a motorcycle no
# windshield): their parts are never answers for a descendant (still never distractors either)
UNRELIABLE_PART_SOURCES = frozenset({"garment.n.01", "clothing.n.01", "structure.n.01", "motor_vehicle.n.01",
                                     "vehicle.n.01", "consumer_goods.n.01", "covering.n.02"})
MIN_ANSWER_DEPTH = 4
MAX_PART_DISTANCE = 4
MAX_ANIMAL_PART_DISTANCE = 7  # body parts are inherited reliably (every dog breed has the paws of a canine)
MAX_MEMBER_DISTANCE = 2
MAX_SUBSTANCE_DISTANCE = 2
POOL = 8                  # distractors are drawn from the best this many candidates
_RANKS = ("genus", "family", "subfamily", "order", "suborder", "class", "subclass", "superfamily", "tribe",
          "phylum", "subgenus", "division", "superorder", "infraorder")


# ----- WordNet helpers --------------------------------------------------------------------------------
def related(s: Synset, relation: str) -> list[Synset]:
    """``s.<relation>()`` sorted by name (NLTK keeps pointers in sets: its order changes between runs)."""
    return sorted(getattr(s, relation)(), key=lambda x: x.name())


def _parents(s: Synset) -> list[Synset]:
    return related(s, "hypernyms") + related(s, "instance_hypernyms")


@functools.cache
def _ancestors(s: Synset) -> dict[str, int]:
    return ancestor_distances(s)


@functools.cache
def _depth(s: Synset) -> int:
    """Longest hypernym path to a root."""
    parents = _parents(s)
    return 1 + max(_depth(p) for p in parents) if parents else 0


@functools.cache
def _descendants(s: Synset) -> frozenset[str]:
    return frozenset(h.name() for h in s.closure(lambda x: x.hyponyms() + x.instance_hyponyms()))


@functools.cache
def _depth_of(name: str) -> int:
    return _depth(wordnet().synset(name))


def _lcs_depth(a: Synset, b: Synset) -> int:
    """Depth of the deepest common hypernym of ``a`` and ``b`` (-1 when none)."""
    common = _ancestors(a).keys() & _ancestors(b).keys()
    return max((_depth_of(n) for n in common), default=-1)


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
    return "taxon" if "biological_group.n.01" in _ancestors(s) else ""


def _contains(text: str, forms: Iterable[str]) -> bool:
    """Whether a form occurs whole-word in ``text``, or a word of ``text`` extends a one-word form of at
    least 5 letters ("Scorpionida" for "scorpion", "upstage" for "stage")."""
    norm = normalize(text)
    padded = f" {norm} "
    words = norm.split()
    for f in forms:
        if not f:
            continue
        if f" {f} " in padded:
            return True
        if len(f) >= 5 and " " not in f and any(f in w for w in words):
            return True
    return False


def _clean_gloss(s: Synset) -> str:
    d = s.definition().strip()
    return d[:1].upper() + d[1:] if d else d


# ----- shared pools -----------------------------------------------------------------------------------
class _Pools:
    """Candidate answers/distractors gathered once over the hierarchy of the whole vocabulary."""

    def __init__(self, synsets: list[Synset]) -> None:
        wn = wordnet()
        closure: set[str] = set()
        for s in synsets:
            closure.update(_ancestors(s))
        self.closure = [wn.synset(n) for n in sorted(closure)]
        classes = {s.name() for s in synsets}
        # proper ancestors only: "this object is a kind of dalmatian" is a silly distractor
        self.hypernyms = [a for a in self.closure if a.name() not in GENERIC and a.name() not in classes
                          and _depth(a) >= MIN_ANSWER_DEPTH]
        self.hypernym_names = frozenset(a.name() for a in self.hypernyms)
        parts: dict[str, Synset] = {}
        holonyms: dict[str, Synset] = {}
        members: dict[str, Synset] = {}
        substances: dict[str, Synset] = {}
        for a in self.closure:
            for p in related(a, "part_meronyms"):
                if p.name() not in GENERIC_PARTS:
                    parts.setdefault(p.name(), p)
            if related(a, "part_meronyms"):
                holonyms.setdefault(a.name(), a)
            for h in related(a, "part_holonyms"):
                holonyms.setdefault(h.name(), h)
            for h in related(a, "member_holonyms"):
                members.setdefault(h.name(), h)
            for m in related(a, "substance_meronyms"):
                substances.setdefault(m.name(), m)
        for m in list(substances.values()):  # siblings of known substances widen the small pool
            for parent in related(m, "hypernyms"):
                for sib in related(parent, "hyponyms"):
                    substances.setdefault(sib.name(), sib)
        self.parts = [parts[k] for k in sorted(parts)]
        self.holonyms = [holonyms[k] for k in sorted(holonyms) if k not in GENERIC]
        self.members = [members[k] for k in sorted(members)]
        self.substances = [substances[k] for k in sorted(substances)]


# ----- per-class generation ---------------------------------------------------------------------------
class _Candidate:
    __slots__ = ("kind", "correct", "distractors", "reference")

    def __init__(self, kind: str, correct: str, distractors: list[str], reference: str) -> None:
        self.kind, self.correct, self.distractors, self.reference = kind, correct, distractors, reference


def _pick(correct: Synset, pool: Iterable[Synset], ok: Callable[[Synset], bool], seed: int, parts: tuple[str, ...],
          taken: set[str], forms: frozenset[str], label: Callable[[Synset], str] = synset_label) -> list[str] | None:
    """3 distractor texts from ``pool``: allowed by ``ok``, distinct (normalised) from ``taken``, not
    naming the class (``forms``), nearest to ``correct`` first; drawn from the best :data:`POOL`. None
    when fewer than 3 exist."""
    scored = []
    for c in pool:
        if c == correct or not ok(c):
            continue
        scored.append((-_lcs_depth(correct, c), c.name(), c))
    scored.sort(key=lambda t: (t[0], t[1]))
    chosen: list[str] = []
    seen = set(taken)
    for _, _, c in scored:
        text = label(c)
        key = normalize(text)
        if key and key not in seen and not _contains(text, forms):
            seen.add(key)
            chosen.append(text)
        if len(chosen) >= POOL:
            break
    if len(chosen) < N_OPTIONS - 1:
        return None
    return sample_rng(seed, *parts).sample(chosen, N_OPTIONS - 1)


def _hypernym_candidates(s: Synset, pools: _Pools, seed: int, cid: str, forms: frozenset[str],
                         reasons: Counter) -> Iterator[_Candidate]:
    wn = wordnet()
    anc = _ancestors(s)
    below = _descendants(s)
    direct = [p for p in _parents(s) if p.name() not in GENERIC and _depth(p) >= MIN_ANSWER_DEPTH
              and not _contains(synset_label(p), forms)]
    far = [wn.synset(n) for n, d in sorted(anc.items()) if 2 <= d <= 4 and n not in GENERIC
           and _depth(wn.synset(n)) >= MIN_ANSWER_DEPTH + 1 and not _contains(synset_label(wn.synset(n)), forms)]
    targets: list[Synset] = []
    if direct:
        targets.append(direct[0])
    rng = sample_rng(seed, cid, "hypernym-far")
    for _ in range(2):  # up to two more, at different distances
        far = [f for f in far if f not in targets and all(anc[f.name()] != anc[t.name()] for t in targets[1:])]
        if not far:
            break
        targets.append(rng.choice(far))
    if not targets:
        reasons["no_hypernym"] += 1
    gloss_words = _gloss_words(s)
    for n, t in enumerate(targets):
        dt = _depth(t)
        distractors = None
        # the vocabulary's own hierarchy at a similar depth first; then wider; then WordNet cousins of the
        # answer (small vocabularies). Nothing the class's gloss mentions ("stronghold" of a castle).
        for window, cousins in ((1, False), (2, False), (2, True), (4, True)):
            pool = pools.hypernyms
            if cousins:
                pool = pool + [c for c in _cousins(t) if c.name() not in pools.hypernym_names]

            def ok(c: Synset, dt: int = dt, window: int = window) -> bool:
                return (c.name() not in anc and c.name() not in below and abs(_depth(c) - dt) <= window
                        and not _mentioned(c, gloss_words))

            distractors = _pick(t, pool, ok, seed, (cid, "hypernym", str(n)), {normalize(synset_label(t))}, forms)
            if distractors is not None:
                break
        if distractors is None:
            reasons["too_few_distractors"] += 1
            continue
        ref = f"{synset_label(s)} is a kind of {synset_label(t)} ({t.definition()})."
        yield _Candidate("hypernym", synset_label(t), distractors, ref)


def _gloss_words(s: Synset) -> str:
    """The normalised definitions of ``s`` and its ancestors up to 2 steps, space-padded."""
    wn = wordnet()
    glosses = [s.definition()] + [wn.synset(n).definition() for n, d in sorted(_ancestors(s).items())
                                  if 1 <= d <= 2]
    return f" {normalize(' '.join(glosses))} "


@functools.cache
def _lemma_texts(c: Synset) -> tuple[str, ...]:
    """Space-padded normalised lemmas of ``c`` and their plurals."""
    out: dict[str, None] = {}
    for n in c.lemma_names():
        t = normalize(n.replace("_", " "))
        if t:
            for x in (t, *pluralize(t)):
                out[f" {x} "] = None
    return tuple(out)


def _mentioned(c: Synset, gloss_words: str) -> bool:
    """Whether a lemma of ``c`` (or its plural) occurs whole-word in ``gloss_words``."""
    return any(x in gloss_words for x in _lemma_texts(c))


def _cousins(t: Synset) -> list[Synset]:
    """Siblings and first cousins of ``t`` (hyponyms of its parents and grandparents' children), not generic."""
    out: dict[str, Synset] = {}
    for p in _parents(t):
        for c in related(p, "hyponyms"):
            out.setdefault(c.name(), c)
        for g in _parents(p):
            for u in related(g, "hyponyms"):
                for c in related(u, "hyponyms"):
                    out.setdefault(c.name(), c)
    return [out[k] for k in sorted(out) if k not in GENERIC and k != t.name()
            and _depth(out[k]) >= MIN_ANSWER_DEPTH]


@functools.cache
def _sub_parts(name: str) -> frozenset[str]:
    """Names of the parts of the parts ... of a synset (transitive part meronyms)."""
    return frozenset(x.name() for x in wordnet().synset(name).closure(lambda x: x.part_meronyms()))


def _class_parts(s: Synset) -> tuple[list[tuple[Synset, Synset]], set[str]]:
    """``([(part, whole)] usable answers nearest first, names of every part of the class or an ancestor)``."""
    wn = wordnet()
    usable: list[tuple[Synset, Synset]] = []
    every: set[str] = set()
    limit = MAX_ANIMAL_PART_DISTANCE if s.lexname() == "noun.animal" else MAX_PART_DISTANCE
    for name, d in sorted(_ancestors(s).items(), key=lambda t: (t[1], t[0])):
        a = wn.synset(name)
        for p in related(a, "part_meronyms"):
            every.add(p.name())
            if (d <= limit and name not in GENERIC and p.name() not in GENERIC_PARTS
                    and (d == 0 or name not in UNRELIABLE_PART_SOURCES)
                    and p.name() not in {u[0].name() for u in usable}):
                usable.append((p, a))
    return usable, every


def _part_candidates(s: Synset, pools: _Pools, seed: int, cid: str, forms: frozenset[str],
                     reasons: Counter, max_n: int = 3) -> Iterator[_Candidate]:
    usable, every = _class_parts(s)
    wn = wordnet()
    anc_labels = {normalize(synset_label(wn.synset(n))) for n in _ancestors(s)}
    usable = [(p, w) for p, w in usable if not _contains(synset_label(p), forms) and normalize(synset_label(p)) not in anc_labels]
    if not usable:
        reasons["no_part_meronyms"] += 1
        return
    for n in sorted(every):  # parts of parts are parts too (the claws of a paw)
        every.update(_sub_parts(n))
    own_parts = frozenset(n for n in every if n not in GENERIC_PARTS)
    related = set(every)
    for n in own_parts:
        related.update(_ancestors(wn.synset(n)))  # hypernyms of a real part ("appendage" of "fin")
    gloss_words = _gloss_words(s)

    def ok(c: Synset) -> bool:
        if c.name() in related:
            return False
        if not own_parts.isdisjoint(_ancestors(c)):  # a kind of a real part ("dorsal fin")
            return False
        return not _mentioned(c, gloss_words)

    # spread the chosen answers over different wholes where possible, nearest first
    order = sorted(range(len(usable)), key=lambda i: sample_rng(seed, cid, "part-order", usable[i][0].name()).random())
    order.sort(key=lambda i: _ancestors(s)[usable[i][1].name()])
    made = 0
    for i in order:
        if made >= max_n:
            break
        p, whole = usable[i]
        distractors = _pick(p, pools.parts, ok, seed, (cid, "part", p.name()), {normalize(synset_label(p))}, forms)
        if distractors is None:
            reasons["too_few_distractors"] += 1
            continue
        who = synset_label(s) if whole == s else f"{synset_label(whole)} (and so {synset_label(s)})"
        made += 1
        yield _Candidate("part", synset_label(p), distractors, f"{who} has part {synset_label(p)} ({p.definition()}).")


def _part_of_candidates(s: Synset, pools: _Pools, seed: int, cid: str, forms: frozenset[str],
                        reasons: Counter) -> Iterator[_Candidate]:
    holos = [h for h in related(s, "part_holonyms") if not _contains(synset_label(h), forms)]
    if not holos:
        reasons["no_part_holonyms"] += 1
        return
    wn = wordnet()
    anc = _ancestors(s)
    wholes: set[str] = set()
    for name in anc:
        for h in related(wn.synset(name), "part_holonyms"):
            wholes.add(h.name())
            wholes.update(_ancestors(h))
            wholes.update(_descendants(h))
    for h in holos[:2]:

        def ok(c: Synset) -> bool:
            return c.name() not in wholes and c.name() not in anc and c.name() not in _descendants(s)

        distractors = _pick(h, pools.holonyms, ok, seed, (cid, "part_of", h.name()), {normalize(synset_label(h))}, forms)
        if distractors is None:
            reasons["too_few_distractors"] += 1
            continue
        ref = f"{synset_label(s)} is a part of {synset_label(h)} ({h.definition()})."
        yield _Candidate("part_of", synset_label(h), distractors, ref)


def _member_candidates(s: Synset, pools: _Pools, seed: int, cid: str, forms: frozenset[str],
                       reasons: Counter) -> Iterator[_Candidate]:
    wn = wordnet()
    anc = _ancestors(s)
    groups: list[tuple[Synset, Synset]] = []
    for name, d in sorted(anc.items(), key=lambda t: (t[1], t[0])):
        if d > MAX_MEMBER_DISTANCE:
            continue
        a = wn.synset(name)
        for h in related(a, "member_holonyms"):
            if h not in [g for g, _ in groups] and not _contains(synset_label(h), forms):
                groups.append((h, a))
    if not groups:
        reasons["no_member_holonyms"] += 1
        return
    containing: set[str] = set()  # every group the class is (transitively) a member of
    for name in anc:
        for h in related(wn.synset(name), "member_holonyms"):
            containing.add(h.name())
            containing.update(x.name() for x in h.closure(lambda x: x.member_holonyms()))
    for h, member in groups[:2]:
        rank = _rank(h)

        def ok(c: Synset, rank: str = rank) -> bool:
            return c.name() not in containing and _rank(c) == rank

        distractors = _pick(h, pools.members, ok, seed, (cid, "member_of", h.name()), {normalize(synset_label(h))}, forms)
        if distractors is None:
            reasons["too_few_distractors"] += 1
            continue
        who = synset_label(s) if member == s else f"{synset_label(member)} (and so {synset_label(s)})"
        yield _Candidate("member_of", synset_label(h), distractors,
                         f"{who} is a member of {synset_label(h)} ({h.definition()}).")


def _substance_candidates(s: Synset, pools: _Pools, seed: int, cid: str, forms: frozenset[str],
                          reasons: Counter) -> Iterator[_Candidate]:
    wn = wordnet()
    anc = _ancestors(s)
    subs: list[tuple[Synset, Synset]] = []
    every: set[str] = set()
    for name, d in sorted(anc.items(), key=lambda t: (t[1], t[0])):
        for m in related(wn.synset(name), "substance_meronyms"):
            every.add(m.name())
            every.update(_ancestors(m))
            every.update(_descendants(m))
            if d <= MAX_SUBSTANCE_DISTANCE and not _contains(synset_label(m), forms) and m not in [x for x, _ in subs]:
                subs.append((m, wn.synset(name)))
    if not subs:
        reasons["no_substance_meronyms"] += 1
        return
    for m, whole in subs[:1]:
        distractors = _pick(m, pools.substances, lambda c: c.name() not in every, seed,
                            (cid, "substance", m.name()), {normalize(synset_label(m))}, forms)
        if distractors is None:
            reasons["too_few_distractors"] += 1
            continue
        who = synset_label(s) if whole == s else f"{synset_label(whole)} (and so {synset_label(s)})"
        yield _Candidate("substance", synset_label(m), distractors,
                         f"{who} has substance {synset_label(m)} ({m.definition()}).")


def _gloss_candidates(s: Synset, entry: ClassEntry, synsets: dict[str, Synset | None],
                      neighbors: dict[str, list[str]], seed: int, forms: frozenset[str],
                      reasons: Counter) -> Iterator[_Candidate]:
    correct = _clean_gloss(s)
    if not correct:
        reasons["no_gloss"] += 1
        return
    if _contains(correct, forms):
        reasons["leak"] += 1
        return
    anc = _ancestors(s)
    below = _descendants(s)
    cands: list[str] = []
    seen = {normalize(correct)}
    for other in neighbors.get(entry.class_id, []):
        o = synsets.get(other)
        if o is None or o == s or o.name() in anc or o.name() in below:
            continue
        text = _clean_gloss(o)
        key = normalize(text)
        if not key or key in seen or _contains(text, forms):
            continue
        seen.add(key)
        cands.append(text)
        if len(cands) >= 2 * POOL:
            break
    if len(cands) < N_OPTIONS - 1:
        reasons["too_few_distractors"] += 1
        return
    # the nearest neighbours, then those of a length closest to the correct gloss (no length give-away)
    near = [t for _, t in sorted(enumerate(cands[:POOL]), key=lambda it: (abs(len(it[1]) - len(correct)), it[0]))]
    distractors = sample_rng(seed, entry.class_id, "gloss_cloze").sample(near[:5], N_OPTIONS - 1)
    ref = f"{synset_label(s)}: {s.definition()}"
    yield _Candidate("gloss_cloze", correct, distractors, ref)


def _accept(c: _Candidate, seen: set[str], count: Counter, forms: frozenset[str], reasons: Counter,
            cid: str, class_name: str, s: Synset, seed: int) -> Question | None:
    """The question of a candidate, or None (reason counted) when its options repeat or leak the class,
    or its answer repeats one already kept for the class."""
    question = TEMPLATES[c.kind]
    options = [c.correct, *c.distractors]
    normed = [normalize(o) for o in options]
    if len(set(normed)) != N_OPTIONS or not all(normed):
        reasons["duplicate_options"] += 1
        return None
    if _contains(question, forms) or any(_contains(o, forms) for o in options):
        reasons["leak"] += 1
        return None
    key = normalize(c.correct)
    if key in seen:
        reasons["duplicate"] += 1
        return None
    seen.add(key)
    n = count[c.kind]
    count[c.kind] += 1
    qid = f"{cid}-{GENERATOR}-{c.kind}-{n}"
    sample_rng(seed, qid, "shuffle").shuffle(options)
    return Question(qid=qid, class_id=cid, class_name=class_name, question=question, options=options,
                    answer_index=options.index(c.correct), reference=c.reference,
                    source=f"wordnet:{wnid_of(s)}", generator=GENERATOR, kind=c.kind)


# ----- public API -------------------------------------------------------------------------------------
def generate_wordnet_questions(vocab: ClassVocabulary, per_class: int = 5, seed: int = 0,
                               kinds: tuple[str, ...] | None = None,
                               lexicon: Lexicon | None = None) -> tuple[list[Question], Counter]:
    """Up to ``per_class`` WordNet questions per class of ``vocab`` (see the module docstring), in
    vocabulary order, and a Counter of skip/rejection reasons ("no_synset", "no_part_meronyms", "leak",
    "too_few_distractors", "duplicate", "class_below_per_class", ...). Deterministic for a seed.
    ``lexicon``: ``Lexicon.build(vocab)`` when the caller already has it (built here otherwise)."""
    kinds = KINDS if kinds is None else tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise UserError(f"unknown WordNet question kind(s) {', '.join(bad)}; known: {', '.join(KINDS)}")
    if per_class < 1:
        raise UserError(f"per_class must be at least 1, got {per_class}")
    reasons: Counter = Counter()
    lexicon = lexicon if lexicon is not None else Lexicon.build(vocab)
    synsets: dict[str, Synset | None] = {e.class_id: entry_synset(e) for e in vocab}
    pools = _Pools([s for s in synsets.values() if s is not None])
    neighbors = class_neighbors(vocab) if "gloss_cloze" in kinds else {}

    questions: list[Question] = []
    for entry in vocab:
        s = synsets[entry.class_id]
        if s is None:
            reasons["no_synset"] += 1
            continue
        cid = entry.class_id
        forms = frozenset(f.text for f in lexicon.forms_of(cid))
        # generator objects: nothing is computed before the first next()
        all_streams: dict[str, Iterator[_Candidate]] = {
            "hypernym": _hypernym_candidates(s, pools, seed, cid, forms, reasons),
            "part": _part_candidates(s, pools, seed, cid, forms, reasons),
            "part_of": _part_of_candidates(s, pools, seed, cid, forms, reasons),
            "member_of": _member_candidates(s, pools, seed, cid, forms, reasons),
            "substance": _substance_candidates(s, pools, seed, cid, forms, reasons),
            "gloss_cloze": _gloss_candidates(s, entry, synsets, neighbors, seed, forms, reasons),
        }
        streams = {kind: all_streams[kind] for kind in kinds}
        kept: list[Question] = []
        seen: set[str] = set()
        count: Counter = Counter()
        # kinds in turn (the first of every kind, then the second, ...), built lazily: every kind is asked
        # once (so its skip reasons are counted), then only until the class has per_class questions
        first = True
        while streams and (first or len(kept) < per_class):
            for kind in list(streams):
                if not first and len(kept) >= per_class:
                    break
                c = next(streams[kind], None)
                if c is None:
                    del streams[kind]
                    continue
                q = _accept(c, seen, count, forms, reasons, cid, entry.name, s, seed)
                if q is not None and len(kept) < per_class:
                    kept.append(q)
            first = False
        if len(kept) < per_class:
            reasons["class_below_per_class"] += 1
        questions.extend(kept)
    return questions, reasons


def coverage(questions: list[Question], vocab: ClassVocabulary, per_class: int = 5) -> dict:
    """Summary numbers: questions per kind, classes with at least ``per_class`` questions, classes with
    none, and the fraction of questions whose correct option is (strictly or jointly) the longest."""
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
        "correct_longest_fraction": round(longest / n, 4) if n else 0.0,
        "correct_strictly_longest_fraction": round(strict / n, 4) if n else 0.0,
        "correct_strictly_longest_by_kind": {
            k: round(sum(1 for q in questions if q.kind == k and all(
                len(q.answer) > len(o) for i, o in enumerate(q.options) if i != q.answer_index)) / c, 4)
            for k, c in sorted(per_kind.items())},
    }
