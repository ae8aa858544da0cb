"""Which classes may be offered as wrong options for a class: the one distractor-validity rule.

A class ``b`` is an INVALID distractor for an answer class ``a`` (it would be a second correct option)
when, checked in this order (the first reason found is reported):

* ``same_synset``  both classes map to the same WordNet synset (:func:`vlm_classdata.hierarchy.entry_synset`);
* ``ancestor``     ``b``'s synset is a WordNet ancestor of ``a``'s (hypernym closure, instance hypernyms
  included): "dog" is no wrong answer for a beagle;
* ``descendant``   ``b``'s synset is a descendant of ``a``'s;
* ``shared_form``  the classes share a lexicon form (:class:`vlm_classdata.lexicon.Lexicon`: display name, WordNet
  lemmas and synonyms, aliases, plurals; normalised), e.g. "missile" is a lemma of projectile.n.01 and the
  display name of the missile class; a synonym lemma of one that is a lemma of the other is this case too.
  A form that is only a plural in both classes does not count (syrinx and syringe share "syringes"), a
  plural of one that is a name or lemma of the other does (sunglass → "sunglasses");
* ``curated``      a listed pair of classes whose names name the same things although WordNet does not
  link them (:data:`CURATED_EQUIVALENTS`: laptop / notebook computer, cassette / tape player, tusker /
  elephants and wild boar; a caller may pass its own list as ``equivalents``).

The relation of a VALID distractor to the answer (for histograms and per-item records):

* ``sibling``    the two synsets share a direct parent (hypernym or instance hypernym);
* ``cousin``     not siblings, but some common ancestor is at most :data:`COUSIN_STEPS` (3) hypernym steps
  above each of them (e.g. grandparent / great-grandparent level);
* ``unrelated``  both have synsets and neither rule holds;
* ``unknown``    one of them has no synset (vocabularies without WordNet ids whose names are not in WordNet).

:meth:`DistractorPolicy.relation` returns one of these for a valid pair, the invalid reason for an invalid
one and ``"answer"`` for the class itself, so one histogram over all options shows everything.
:func:`distractor_policy` builds one policy per vocabulary content (cached; a caller with its own lexicon,
e.g. with aliases, constructs ``DistractorPolicy(vocab, lexicon)``). For the 1000 ImageNet classes: ~3.6 s cold
on an idle 2-core machine, of which WordNet's first load is ~2.8 s (the policy itself 1-3 s, more when the
machine is busy); per-item sampling is O(k) once a class's pool is built.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from vlm_classdata.hierarchy import class_closures, neighbor_order, vocabulary_key
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.vocabulary import ClassVocabulary

INVALID_REASONS = ("same_synset", "ancestor", "descendant", "shared_form", "curated")
RELATIONS = ("sibling", "cousin", "unrelated", "unknown")
ANSWER = "answer"
COUSIN_STEPS = 3

#: Class pairs (WordNet ids) where one class's name correctly names the other's images but WordNet links
#: neither by hypernymy nor by a shared lemma. tusker.n.01 is "any mammal with prominent tusks (especially an
#: elephant or wild boar)"; a cassette player is a tape player; laptop and notebook computers are one product.
CURATED_EQUIVALENTS: tuple[tuple[str, str], ...] = (
    ("n03642806", "n03832673"),  # laptop computer / notebook computer
    ("n02979186", "n04392985"),  # cassette player / tape player
    ("n01871265", "n02504458"),  # tusker / African elephant
    ("n01871265", "n02504013"),  # tusker / Indian elephant
    ("n01871265", "n02396427"),  # tusker / wild boar
)


class DistractorPolicy:
    """Distractor validity and relations for one vocabulary (see the module docstring).

    Built once per vocabulary (use :func:`distractor_policy` for the cached default); picklable, and small
    when pickled (per-class pools are rebuilt lazily in each process).
    """

    def __init__(self, vocab: ClassVocabulary, lexicon: Lexicon | None = None,
                 equivalents: Iterable[tuple[str, str]] = CURATED_EQUIVALENTS) -> None:
        self.vocab = vocab
        self.ids: tuple[str, ...] = tuple(vocab.ids)
        self._index = {cid: i for i, cid in enumerate(self.ids)}
        synsets, closures = class_closures(vocab)
        self._has_synset = [s is not None for s in synsets]
        self._parents = [frozenset(n for n, d in c.items() if d == 1) for c in closures]
        self._near = [frozenset(n for n, d in c.items() if 1 <= d <= COUSIN_STEPS) for c in closures]
        self._invalid: list[dict[int, str]] = [{} for _ in self.ids]
        self._shared: dict[tuple[int, int], str] = {}  # (a, b), a < b -> the first shared form text

        def mark(a: int, b: int, reason: str, back: str) -> None:
            if a != b and b not in self._invalid[a]:
                self._invalid[a][b] = reason
                self._invalid[b][a] = back

        by_synset: dict[str, list[int]] = {}
        for i, s in enumerate(synsets):
            if s is not None:
                by_synset.setdefault(s, []).append(i)
        for group in by_synset.values():
            for a in group:
                for b in group:
                    mark(a, b, "same_synset", "same_synset")
        for a, closure in enumerate(closures):
            for name, d in closure.items():
                if d > 0:
                    for b in by_synset.get(name, ()):
                        mark(a, b, "ancestor", "descendant")  # b is above a
        lexicon = lexicon if lexicon is not None else Lexicon.build(vocab)
        owners: dict[str, dict[int, bool]] = {}  # text -> {class index: the text is only a plural of it}
        for form in lexicon.forms:
            if form.class_id in self._index:
                group = owners.setdefault(form.text, {})
                i = self._index[form.class_id]
                group[i] = group.get(i, True) and form.kind == "plural"
        for text, group in owners.items():
            for a, a_plural in group.items():
                for b, b_plural in group.items():
                    if a != b and not (a_plural and b_plural):  # two plurals that merely coincide: syringes
                        self._shared.setdefault((min(a, b), max(a, b)), text)
                        mark(a, b, "shared_form", "shared_form")
        for x, y in equivalents:
            if x in self._index and y in self._index:
                mark(self._index[x], self._index[y], "curated", "curated")
        self._pools: dict[int, tuple[str, ...]] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_pools"] = {}
        return state

    # ----- validity -----------------------------------------------------------------------------
    def _i(self, class_id: str) -> int:
        try:
            return self._index[class_id]
        except KeyError:
            raise KeyError(f"class id {class_id!r} not in vocabulary {self.vocab.dataset!r}") from None

    def invalid_reason(self, answer_id: str, other_id: str) -> str | None:
        """Why ``other_id`` may not be a wrong option for ``answer_id``: one of :data:`INVALID_REASONS`
        (``ancestor``: the other class is above the answer), ``answer`` for the class itself; None when valid."""
        a, b = self._i(answer_id), self._i(other_id)
        if a == b:
            return ANSWER
        return self._invalid[a].get(b)

    def explain(self, answer_id: str, other_id: str) -> str | None:
        """:meth:`invalid_reason` with its evidence, e.g. ``"shared_form 'missile'"``; None when valid."""
        reason = self.invalid_reason(answer_id, other_id)
        if reason == "shared_form":
            a, b = sorted((self._i(answer_id), self._i(other_id)))
            return f"shared_form {self._shared[(a, b)]!r}"
        return reason

    def valid_count(self, class_id: str) -> int:
        """How many classes are valid distractors for ``class_id``."""
        a = self._i(class_id)
        return len(self.ids) - 1 - len(self._invalid[a])

    def _pool(self, a: int) -> tuple[str, ...]:
        pool = self._pools.get(a)
        if pool is None:
            bad = self._invalid[a]
            pool = self._pools[a] = tuple(cid for b, cid in enumerate(self.ids) if b != a and b not in bad)
        return pool

    def sample_valid(self, class_id: str, k: int, rng) -> list[str]:
        """``rng.sample`` of ``k`` valid distractors (O(k) per call once the class's pool is built)."""
        return rng.sample(self._pool(self._i(class_id)), k)

    def hard_pool(self, class_id: str, size: int) -> list[str]:
        """The ``size`` valid classes nearest to ``class_id`` (:func:`vlm_classdata.hierarchy.class_neighbors`
        ranking with the invalid ones left out); fewer when fewer are valid."""
        a = self._i(class_id)
        bad = self._invalid[a]
        out: list[str] = []
        for b in neighbor_order(self.vocab)[a]:
            if len(out) >= size:
                break
            if b not in bad:
                out.append(self.ids[b])
        return out

    # ----- relations ----------------------------------------------------------------------------
    def relation(self, answer_id: str, distractor_id: str) -> str:
        """``sibling`` / ``cousin`` / ``unrelated`` / ``unknown`` for a valid distractor, the invalid reason
        for an invalid one, ``answer`` for the answer class itself."""
        a, b = self._i(answer_id), self._i(distractor_id)
        if a == b:
            return ANSWER
        reason = self._invalid[a].get(b)
        if reason is not None:
            return reason
        if not (self._has_synset[a] and self._has_synset[b]):
            return "unknown"
        if not self._parents[a].isdisjoint(self._parents[b]):
            return "sibling"
        if not self._near[a].isdisjoint(self._near[b]):
            return "cousin"
        return "unrelated"

    def describe(self) -> dict:
        """JSON-able summary: the rules and how many ordered (answer, other) pairs each reason excludes."""
        reasons = Counter(r for row in self._invalid for r in row.values())
        return {"invalid_if": list(INVALID_REASONS), "relations": list(RELATIONS), "cousin_steps": COUSIN_STEPS,
                "classes": len(self.ids), "classes_without_synset": self._has_synset.count(False),
                "excluded_pairs": {r: reasons.get(r, 0) for r in INVALID_REASONS}}


_CACHE: dict[tuple, DistractorPolicy] = {}
_CACHE_SIZE = 8


def distractor_policy(vocab: ClassVocabulary) -> DistractorPolicy:
    """The default policy of ``vocab`` (its WordNet lexicon, :data:`CURATED_EQUIVALENTS`), cached per
    vocabulary content (ids, names, synonyms, wnids)."""
    key = vocabulary_key(vocab)
    policy = _CACHE.get(key)
    if policy is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        policy = _CACHE[key] = DistractorPolicy(vocab)
    return policy


def _option_ids(row: Mapping, vocab: ClassVocabulary) -> list[str | None]:
    ids = row.get("option_class_ids")
    if ids is not None:
        return [c if c in vocab else None for c in ids]
    found = [vocab.by_name(o) if isinstance(o, str) else None for o in row.get("options", ())]
    return [e.class_id if e is not None else None for e in found]


def distractor_report(rows: Iterable[Mapping], policy: DistractorPolicy, examples: int = 10) -> dict:
    """Check built MCQ items: rows with ``class_id`` and ``option_class_ids`` (or ``options`` as display
    names of the policy's vocabulary). Relations are recomputed from the policy, not read from the rows.

    Returns ``items``, ``relations`` (histogram over distractors: :data:`RELATIONS` and any invalid reasons),
    ``items_with_second_correct`` (items with an invalid distractor or the answer offered twice; 0 for our
    builds), ``unknown_options`` (options not in the vocabulary), ``answer_missing`` (items whose options lack
    the answer) and up to ``examples`` offending ``{class_id, option, reason}``.
    """
    vocab = policy.vocab
    relations: Counter = Counter()
    second = unknown = missing = n = 0
    bad: list[dict] = []
    for row in rows:
        n += 1
        answer = row["class_id"]
        options = _option_ids(row, vocab)
        unknown += sum(o is None for o in options)
        if answer not in options:
            missing += 1
            continue
        invalid = options.count(answer) > 1
        for o in options:
            if o is None or o == answer:
                continue
            rel = policy.relation(answer, o)
            relations[rel] += 1
            if rel in INVALID_REASONS:
                invalid = True
                if len(bad) < examples:
                    bad.append({"class_id": answer, "option": o, "reason": policy.explain(answer, o)})
        second += invalid
    hist = {r: relations.get(r, 0) for r in RELATIONS}
    hist.update({r: c for r, c in relations.items() if r not in hist})
    return {"items": n, "relations": hist, "items_with_second_correct": second, "unknown_options": unknown,
            "answer_missing": missing, "examples": bad}

