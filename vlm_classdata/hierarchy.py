"""Class similarity from the WordNet noun hierarchy, with a string-similarity fallback.

:func:`class_neighbors` ranks, for every class of a vocabulary, all other classes nearest first:

1. classes that share a WordNet ancestor with it, by the depth (``max_depth``, i.e. longest hypernym
   path to the root) of their deepest common hypernym, deeper first; ties by shorter path distance
   through a common hypernym, then by class index. Hypernym closures include instance hypernyms.
2. then every class without a comparable synset, by rapidfuzz ``token_set_ratio`` of display names
   (higher first), ties by class index. A class without a synset ranks all others this way.

A class's synset comes from its ``wnid``, else the first noun synset of its display name or a synonym
(``wordnet().synsets(name.replace(" ", "_"), pos="n")[0]``). :func:`class_closures` (synsets and hypernym
closures) and :func:`neighbor_order` (the ranking as indices) serve :mod:`vlm_classdata.distractors`, which filters
this ranking down to valid distractors.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
from rapidfuzz import fuzz, process, utils

from vlm_classdata.vocabulary import ClassEntry, ClassVocabulary
from vlm_classdata.wordnet import WordNetMissingError, synset_from_wnid, wordnet

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

_Key = tuple[tuple[str, str, tuple[str, ...], str | None], ...]


def entry_synset(entry: ClassEntry) -> Synset | None:
    """The WordNet synset of a class: from its wnid, else the first noun synset of one of its names."""
    if entry.wnid:
        try:
            return synset_from_wnid(entry.wnid)
        except WordNetMissingError:
            raise
        except Exception:  # malformed or unknown offset: fall back to the names
            pass
    wn = wordnet()
    for name in entry.all_names:
        found = wn.synsets(name.strip().replace(" ", "_"), pos="n")
        if found:
            return found[0]
    return None


def _parents(s: Synset) -> list[Synset]:
    return s.hypernyms() + s.instance_hypernyms()


def ancestor_distances(s: Synset) -> dict[str, int]:
    """``{synset name: fewest hypernym steps from s}`` over the closure, ``s`` itself at 0."""
    dist = {s.name(): 0}
    queue = deque([s])
    while queue:
        cur = queue.popleft()
        d = dist[cur.name()] + 1
        for p in _parents(cur):
            if p.name() not in dist:
                dist[p.name()] = d
                queue.append(p)
    return dist


def _max_depths(synsets: list[Synset]) -> dict[str, int]:
    """Longest hypernym path length to a root, for every synset in the closures of ``synsets``."""
    memo: dict[str, int] = {}

    def depth(s: Synset) -> int:
        name = s.name()
        if name not in memo:
            parents = _parents(s)
            memo[name] = 1 + max(depth(p) for p in parents) if parents else 0
        return memo[name]

    for s in synsets:
        depth(s)
    return memo


def vocabulary_key(vocab: ClassVocabulary) -> _Key:
    """A hashable key of a vocabulary's content (ids, names, synonyms, wnids): the cache key of its rankings."""
    return tuple((e.class_id, e.name, tuple(e.synonyms), e.wnid) for e in vocab.entries)


def _fuzzy_matrix(names: list[str]) -> np.ndarray:
    return process.cdist(names, names, scorer=fuzz.token_set_ratio, processor=utils.default_process,
                         dtype=np.float32, workers=1)


def _entries(key: _Key) -> list[ClassEntry]:
    return [ClassEntry(i, cid, name, syn, wnid) for i, (cid, name, syn, wnid) in enumerate(key)]


@functools.lru_cache(maxsize=8)
def _closures_cached(key: _Key) -> tuple[tuple[Synset | None, ...], tuple[dict[str, int], ...]]:
    entries = _entries(key)
    try:
        synsets = [entry_synset(e) for e in entries]
    except WordNetMissingError:
        if any(e.wnid for e in entries):
            raise
        synsets = [None] * len(entries)  # no WordNet and no wnids: string similarity only
    return tuple(synsets), tuple(ancestor_distances(s) if s is not None else {} for s in synsets)


def class_closures(vocab: ClassVocabulary) -> tuple[list[str | None], list[dict[str, int]]]:
    """Per class (vocabulary order): its synset name (None without one) and its hypernym closure
    ``{synset name: fewest steps}`` (itself at 0, instance hypernyms included; empty without a synset).

    Cached per vocabulary content, shared with :func:`class_neighbors`; callers must not mutate the dicts.
    """
    synsets, ancestors = _closures_cached(vocabulary_key(vocab))
    return [s.name() if s is not None else None for s in synsets], list(ancestors)


@functools.lru_cache(maxsize=8)
def _neighbors_cached(key: _Key) -> tuple[tuple[int, ...], ...]:
    entries = _entries(key)
    n = len(entries)
    synsets, ancestors = _closures_cached(key)
    depth = _max_depths([s for s in synsets if s is not None])
    # inverted index: ancestor -> (classes under it, their distance to it)
    under_lists: dict[str, tuple[list[int], list[int]]] = {}
    for i, anc in enumerate(ancestors):
        for name, d in anc.items():
            ids, ds = under_lists.setdefault(name, ([], []))
            ids.append(i)
            ds.append(d)
    under = {k: (np.asarray(v[0], dtype=np.int64), np.asarray(v[1], dtype=np.int64))
             for k, v in under_lists.items()}

    index = np.arange(n)
    fuzzy: np.ndarray | None = None
    big = np.iinfo(np.int64).max // 4
    out: list[tuple[int, ...]] = []
    for a in range(n):
        lcs = np.full(n, -1, dtype=np.int64)
        path = np.full(n, big, dtype=np.int64)
        for name, da in ancestors[a].items():
            idx, dist = under[name]
            lcs[idx] = np.maximum(lcs[idx], depth[name])
            path[idx] = np.minimum(path[idx], dist + da)
        others = index != a
        near = index[others & (lcs >= 0)]
        far = index[others & (lcs < 0)]
        order = near[np.lexsort((near, path[near], -lcs[near]))]
        if far.size:
            if fuzzy is None:
                fuzzy = _fuzzy_matrix([e.name for e in entries])
            order = np.concatenate([order, far[np.lexsort((far, -fuzzy[a, far]))]])
        out.append(tuple(order.tolist()))
    return tuple(out)


def class_neighbors(vocab: ClassVocabulary) -> dict[str, list[str]]:
    """For every class id, all other class ids ranked nearest first (see the module docstring).

    Cached per vocabulary content (ids, names, synonyms, wnids); 1000 ImageNet classes take a few
    seconds including WordNet's first load.
    """
    order = _neighbors_cached(vocabulary_key(vocab))
    ids = vocab.ids
    return {ids[a]: [ids[b] for b in row] for a, row in enumerate(order)}


def neighbor_order(vocab: ClassVocabulary) -> tuple[tuple[int, ...], ...]:
    """:func:`class_neighbors` as vocabulary indices: row ``a`` ranks every other class index nearest first."""
    return _neighbors_cached(vocabulary_key(vocab))

