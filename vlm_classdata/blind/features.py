"""Pair features of multiple-choice items for the blind solvers (see :mod:`vlm_classdata.blind`): per
(question, option) row, from the question text and the options only, plus the per-fold answer prior."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.process import cdist
from scipy import sparse

from vlm_classdata.blind.items import MCQ
from vlm_classdata.lexicon import normalize, stopwords
from vlm_classdata.wordnet import WordNetMissingError, wordnet

WORD_HASH = 2 ** 15  # hashed option words/bigrams and (question word, option word) pairs
CHAR_HASH = 2 ** 14  # hashed character 3-grams of the option
_WORD = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    return normalize(text).split()


@lru_cache(maxsize=200_000)
def _wordnet_stats(text: str) -> tuple[float, float, float, float]:
    """(is a noun lemma, min depth of its first sense, log senses, log1p SemCor count) of a normalised text."""
    wn = wordnet()
    if not text:
        return 0.0, 0.0, 0.0, 0.0
    synsets = wn.synsets(text.replace(" ", "_"), pos="n")
    if not synsets:
        return 0.0, 0.0, 0.0, 0.0
    key = text.replace(" ", "_")
    count = sum(lem.count() for s in synsets[:5] for lem in s.lemmas() if lem.name().lower() == key)
    return 1.0, float(synsets[0].min_depth()), math.log(len(synsets)), math.log1p(count)


def _wordnet_available() -> bool:
    try:
        wordnet()
    except WordNetMissingError:
        return False
    return True


def _option_features(q_tokens: set[str], question: str, options: tuple[str, ...], use_wordnet: bool,
                     stop: frozenset[str]) -> np.ndarray:
    """Raw per-option features of one item (rows: options)."""
    k = len(options)
    norm = [normalize(o) for o in options]
    toks = [set(n.split()) - stop for n in norm]
    chars = np.array([len(o.strip()) for o in options], dtype=float)
    words = np.array([len(_WORD.findall(o)) for o in options], dtype=float)
    sim = cdist(norm, norm, scorer=fuzz.ratio, dtype=np.float32) / 100.0
    np.fill_diagonal(sim, np.nan)
    qnorm = normalize(question)
    rows = []
    for i, o in enumerate(options):
        others = [toks[j] for j in range(k) if j != i]
        jac = [len(toks[i] & t) / len(toks[i] | t) if toks[i] | t else 0.0 for t in others]
        shared = len(toks[i] & set().union(*others)) / len(toks[i]) if toks[i] else 0.0
        qshared = len(toks[i] & q_tokens)
        wn = _wordnet_stats(norm[i]) if use_wordnet else (0.0,) * 4
        head = _wordnet_stats(norm[i].split()[-1]) if use_wordnet and norm[i] else (0.0,) * 4
        rows.append([
            chars[i], words[i], math.log1p(chars[i]),
            float(chars[i] == chars.max()), float(chars[i] == chars.min()),
            float(words[i] == words.max()), float(words[i] == words.min()),
            *(float(i == p) for p in range(4)), float(i == k - 1), i / (k - 1),
            *wn, head[0], head[1], head[3],
            qshared, qshared / len(toks[i] | q_tokens) if toks[i] | q_tokens else 0.0,
            fuzz.token_set_ratio(qnorm, norm[i]) / 100.0, fuzz.partial_ratio(qnorm, norm[i]) / 100.0,
            float(np.nanmean(sim[i])), float(np.nanmax(sim[i])), float(np.mean(jac)), float(max(jac)), shared,
            float(o[:1].isupper()), float(sum(w[:1].isupper() for w in o.split()[1:])),
            float(any(c.isdigit() for c in o)), float(sum(c in ",;:()-" for c in o)), float(len(toks[i])),
        ])
    raw = np.asarray(rows, dtype=float)
    # ranks and z-scores of the two lengths among the options
    ranks = [(np.argsort(np.argsort(v, kind="stable"), kind="stable") / (k - 1)) for v in (chars, words)]
    zs = [(v - v.mean()) / (v.std() + 1e-9) for v in (chars, words)]
    return np.column_stack([raw, *ranks, *zs])


@dataclass
class Features:
    """Pair features of a list of items, computed once (fold statistics are added per fold)."""

    items: list[MCQ]
    row_item: np.ndarray          # item index of every (item, option) row
    row_label: np.ndarray         # 1 for the correct option
    row_option: np.ndarray        # id of the option's normalised text (for the answer prior)
    dense: np.ndarray             # fold-independent dense features (raw + centred)
    text: sparse.csr_matrix       # hashed n-grams (logistic only)
    groups: np.ndarray            # group (class) id of every item
    item_rows: list[np.ndarray] = field(default_factory=list)
    answer_prior: bool = True     # add the answer-prior features per fold


def build_features(items: Sequence[MCQ], use_wordnet: bool | None = None, answer_prior: bool = True) -> Features:
    """The pair features of ``items`` (see the module docstring). ``use_wordnet``: None = when WordNet is
    installed. ``answer_prior=False`` leaves out the features that identify an option's text (the answer prior
    and the hashed n-grams): needed when every option names a class and each class is the answer of its own
    items only (classification MCQ), where the held-out class's name is by construction the one option never
    seen as an answer in training (a split artefact, not a shortcut: 74% blind on 4-way over 1000 classes
    with the prior; 1% with the n-grams alone, the artefact reversed)."""
    items = list(items)
    if use_wordnet is None:
        use_wordnet = _wordnet_available()
    stop = stopwords()
    blocks, row_item, row_label, option_text = [], [], [], []
    opt_docs, cross_docs = [], []
    for n, it in enumerate(items):
        q_tokens = set(_tokens(it.question)) - stop
        raw = _option_features(q_tokens, it.question, it.options, use_wordnet, stop)
        blocks.append(np.column_stack([raw, raw - raw.mean(axis=0)]))
        qwords = sorted(q_tokens)[:12]
        for i, o in enumerate(it.options):
            row_item.append(n)
            row_label.append(int(i == it.answer_index))
            norm = normalize(o)
            option_text.append(norm)
            opt_docs.append(norm)
            owords = (set(norm.split()) - stop) or set(norm.split()[-1:])
            cross_docs.append(" ".join(f"{a}__{b}" for a in qwords for b in sorted(owords)))
    dense = np.vstack(blocks) if blocks else np.zeros((0, 1))
    from sklearn.feature_extraction.text import HashingVectorizer  # heavy (~0.6 s): only featurising needs it

    words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=WORD_HASH, alternate_sign=False,
                              norm="l2", token_pattern=r"\S+")
    cross = HashingVectorizer(analyzer="word", n_features=WORD_HASH, alternate_sign=False, norm="l2",
                              token_pattern=r"\S+")
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 3), n_features=CHAR_HASH,
                              alternate_sign=False, norm="l2")
    text = (sparse.hstack([words.transform(opt_docs) + cross.transform(cross_docs), chars.transform(opt_docs)])
            .tocsr() if opt_docs and answer_prior else sparse.csr_matrix((len(opt_docs), 0)))
    _, row_option = np.unique(np.asarray(option_text, dtype=object), return_inverse=True) if option_text \
        else (None, np.zeros(0, dtype=int))
    _, groups = np.unique(np.asarray([it.group for it in items], dtype=object), return_inverse=True) \
        if items else (None, np.zeros(0, dtype=int))
    row_item = np.asarray(row_item, dtype=int)
    starts = np.searchsorted(row_item, np.arange(len(items) + 1))
    return Features(items, row_item, np.asarray(row_label, dtype=int), np.asarray(row_option, dtype=int),
                    dense, text, np.asarray(groups, dtype=int),
                    [np.arange(starts[n], starts[n + 1]) for n in range(len(items))], answer_prior)


def answer_prior_features(f: Features, train_rows: np.ndarray, rows: np.ndarray, is_train: bool) -> np.ndarray:
    """How often each row's option text is the answer / a distractor in the training rows of OTHER
    groups: ``[log1p(answers), log1p(distractors), (answers + 1) / (seen + 2)]``, plus the same centred
    on the item; no columns when ``f.answer_prior`` is off."""
    if not f.answer_prior:
        return np.zeros((len(rows), 0))
    n_opt = int(f.row_option.max()) + 1 if len(f.row_option) else 1
    n_grp = int(f.groups.max()) + 1 if len(f.groups) else 1
    opt, lab = f.row_option[train_rows], f.row_label[train_rows]
    ans = np.bincount(opt, weights=lab, minlength=n_opt)
    seen = np.bincount(opt, minlength=n_opt).astype(float)
    a, s = ans[f.row_option[rows]], seen[f.row_option[rows]]
    if is_train:  # leave the row's own class out
        key = opt.astype(np.int64) * n_grp + f.groups[f.row_item[train_rows]]
        uniq, inv = np.unique(key, return_inverse=True)
        g_ans = np.bincount(inv, weights=lab)
        g_seen = np.bincount(inv).astype(float)
        own = np.searchsorted(uniq, f.row_option[rows].astype(np.int64) * n_grp + f.groups[f.row_item[rows]])
        a, s = a - g_ans[own], s - g_seen[own]
    cols = np.column_stack([np.log1p(a), np.log1p(s - a), (a + 1) / (s + 2)])
    centred = cols.copy()
    items = f.row_item[rows]
    _, inv = np.unique(items, return_inverse=True)
    counts = np.bincount(inv).astype(float)
    for c in range(cols.shape[1]):
        centred[:, c] -= (np.bincount(inv, weights=cols[:, c]) / counts)[inv]
    return np.column_stack([cols, centred])
