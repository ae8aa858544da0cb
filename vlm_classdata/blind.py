"""Learned blind solvers for multiple-choice items, and AFLite-style adversarial filtering.

A *blind* solver sees the question text and the options, never the image. If one can be trained to answer
questions of classes it has never seen, the set carries an answer shortcut (the correct option is longer,
rarer, closer to the question, the odd one out, a string that is "usually the answer"...), and the
accuracy of a vision-language model on it says little about seeing. This module measures that and removes
the questions that carry it. It works on any list of multiple-choice items (ImageWikiQA questions, the
builders' MCQ rows): :func:`mcq_items` reads any objects with ``question``, ``options``, ``answer_index``
and ``class_id`` (or ``group``).

Solvers (scikit-learn; :data:`SOLVERS`) score every (question, option) pair as "correct or not" and answer
with the option of highest probability (ties share the credit: ``1/t`` when the correct option is among
``t`` tied best). Pair features (:func:`build_features`), from the question text and the options only:

* option length: characters and words, their rank, z-score and longest/shortest flags among the options;
* option position (one-hot and relative), casing, digits, punctuation;
* WordNet (:func:`vlm_classdata.wordnet.wordnet`): whether the option (or its last word) is a noun lemma, its
  depth, number of senses and SemCor lemma count (an offline word-frequency proxy);
* similarity to the question: content-token overlap, rapidfuzz ``token_set_ratio``/``partial_ratio``;
* similarity among options (the odd one out): mean/max rapidfuzz ratio and token overlap with the others;
* answer prior: how often the same option text is the answer vs a distractor in OTHER classes' training
  questions (computed on the training fold only, and for training rows without their own class, so the
  statistic never sees the question it scores);
* every dense feature also centred on its question's mean (so features compare options of one question);
* ``logistic`` also gets hashed character n-grams and words of the option and hashed (question word,
  option word) pairs (:class:`sklearn.feature_extraction.text.HashingVectorizer`).

Held-out accuracy is measured by cross-validation grouped by class
(:class:`sklearn.model_selection.GroupKFold`, shuffled with a seed), so a solver never sees a question of
a test class; the 95% confidence interval is a percentile bootstrap over classes (questions of one class
are not independent). :func:`adversarial_filter` is AFLite (Le Bras et al., 2020) on these solvers.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.process import cdist
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import normalize, stopwords
from vlm_classdata.wordnet import WordNetMissingError, wordnet

__all__ = [
    "DEFAULT_MARGIN", "MIN_GROUPS", "SOLVERS", "FilterResult", "MCQ", "SolverScores", "adversarial_filter",
    "blind_accuracy", "build_features", "chance", "held_out_scores", "mcq_items",
]

SOLVERS = ("logistic", "boosting")
"""The learned blind solvers: logistic regression (dense + hashed n-gram features) and gradient boosting
(:class:`~sklearn.ensemble.HistGradientBoostingClassifier`, dense features)."""
DEFAULT_MARGIN = 0.05
"""Adversarial filtering target: every solver at most ``chance + DEFAULT_MARGIN`` on held-out classes."""
MIN_GROUPS = 2
"""Grouped cross-validation needs at least two classes."""
WORD_HASH = 2 ** 15  # hashed option words/bigrams and (question word, option word) pairs
CHAR_HASH = 2 ** 14  # hashed character 3-grams of the option
_WORD = re.compile(r"\w+")


# ----- items -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MCQ:
    """One multiple-choice item as a blind solver sees it, plus its class (the cross-validation group)."""

    question: str
    options: tuple[str, ...]
    answer_index: int
    group: str


def mcq_items(items: Iterable[Any]) -> list[MCQ]:
    """:class:`MCQ` views of objects with ``question``, ``options``, ``answer_index`` and ``class_id``
    (or ``group``) attributes. An item with fewer than two options or an answer index outside them raises
    :class:`~vlm_classdata.errors.UserError` naming its position (filter such items out before)."""
    out = []
    for i, it in enumerate(items):
        options = tuple(str(o) for o in (getattr(it, "options", None) or ()))
        index = getattr(it, "answer_index", None)
        if len(options) < 2 or not isinstance(index, int) or not 0 <= index < len(options):
            raise UserError(f"item {i}: a blind solver needs at least 2 options and an answer among them")
        group = getattr(it, "class_id", None)
        if group is None:
            group = getattr(it, "group", "")
        out.append(MCQ(str(getattr(it, "question", "")), options, index, str(group)))
    return out


def chance(items: Sequence[MCQ]) -> float:
    """Accuracy of guessing uniformly: the mean of ``1/k`` (0.0 for no items)."""
    return float(np.mean([1.0 / len(it.options) for it in items])) if items else 0.0


# ----- features --------------------------------------------------------------------------------------------
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


def _answer_prior(f: Features, train_rows: np.ndarray, rows: np.ndarray, is_train: bool) -> np.ndarray:
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


def _make(solver: str, seed: int) -> Any:
    """A fresh, unfitted model of ``solver``."""
    if solver == "logistic":
        return LogisticRegression(C=1.0, tol=1e-3, max_iter=300)
    if solver == "boosting":
        return HistGradientBoostingClassifier(max_iter=40, learning_rate=0.15, max_leaf_nodes=15,
                                              early_stopping=False, random_state=seed)
    raise UserError(f"unknown blind solver {solver!r}; expected one of {', '.join(SOLVERS)}")


def _design(solver: str, f: Features, rows: np.ndarray, prior: np.ndarray, mean: np.ndarray,
            scale: np.ndarray) -> Any:
    dense = np.column_stack([f.dense[rows], prior])
    if solver == "logistic":
        return sparse.hstack([sparse.csr_matrix((dense - mean) / scale), f.text[rows]]).tocsr()
    return dense


def _item_scores(f: Features, rows: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(item indices, expected score of "answer the most probable option" with ties sharing credit)."""
    items = f.row_item[rows]
    uniq, inv = np.unique(items, return_inverse=True)
    best = np.full(len(uniq), -np.inf)
    np.maximum.at(best, inv, proba)
    top = np.isclose(proba, best[inv], rtol=0, atol=1e-12)
    n_top = np.bincount(inv, weights=top)
    hit = np.bincount(inv, weights=top & (f.row_label[rows] == 1))
    return uniq, hit / n_top


@dataclass
class SolverScores:
    """Held-out scores of each solver: ``scores[solver]`` has one row per repeat and one column per
    considered item (NaN for items not considered)."""

    scores: dict[str, np.ndarray]
    n_splits: int

    def accuracy(self, solver: str, items: np.ndarray) -> float:
        """Mean held-out score of ``solver`` over ``items`` (mean over repeats)."""
        return float(np.nanmean(self.scores[solver][:, items]))


def _fold_scores(f: Features, solver: str, train_rows: np.ndarray, test_rows: np.ndarray,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``solver`` on ``train_rows`` and score the items of ``test_rows``: (item indices, scores)."""
    p_train = _answer_prior(f, train_rows, train_rows, True)
    p_test = _answer_prior(f, train_rows, test_rows, False)
    dense_train = np.column_stack([f.dense[train_rows], p_train])
    mean, scale = dense_train.mean(axis=0), dense_train.std(axis=0) + 1e-9
    model = _make(solver, seed)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(_design(solver, f, train_rows, p_train, mean, scale), f.row_label[train_rows])
        proba = model.predict_proba(_design(solver, f, test_rows, p_test, mean, scale))[:, 1]
    return _item_scores(f, test_rows, proba)


def held_out_scores(f: Features, alive: np.ndarray | None = None, solvers: Sequence[str] = SOLVERS,
                    n_splits: int = 5, repeats: int = 1, seed: int = 0) -> SolverScores:
    """Held-out expected score of every solver on every item in ``alive`` (default: all), from
    ``repeats`` seeded shuffles of :class:`~sklearn.model_selection.GroupKFold` over the items' classes
    (``n_splits`` folds, fewer when there are fewer classes). Each fit is single-threaded (parallel fits
    gained nothing on 2 cores: the GIL, or process start-up). Raises
    :class:`~vlm_classdata.errors.UserError` when the items span fewer than :data:`MIN_GROUPS` classes or a solver
    is unknown."""
    for s in solvers:
        _make(s, seed)
    idx = np.arange(len(f.items)) if alive is None else np.flatnonzero(alive)
    n_groups = len(np.unique(f.groups[idx]))
    if n_groups < MIN_GROUPS:
        raise UserError(f"blind solvers need items of at least {MIN_GROUPS} classes (got {n_groups})")
    k = min(n_splits, n_groups)
    tasks = []
    for r in range(repeats):
        cv = GroupKFold(n_splits=k, shuffle=True, random_state=seed + 1000 * r)
        for train_items, test_items in cv.split(idx, groups=f.groups[idx]):
            train_rows = np.concatenate([f.item_rows[i] for i in idx[train_items]])
            test_rows = np.concatenate([f.item_rows[i] for i in idx[test_items]])
            tasks += [(r, s, train_rows, test_rows) for s in solvers]
    scores = {s: np.full((repeats, len(f.items)), np.nan) for s in solvers}
    for r, s, train_rows, test_rows in tasks:
        which, score = _fold_scores(f, s, train_rows, test_rows, seed + r)
        scores[s][r, which] = score
    return SolverScores(scores, k)


def _bootstrap_ci(per_item: np.ndarray, groups: np.ndarray, seed: int, level: float = 0.95,
                  resamples: int = 1000) -> tuple[float, float]:
    """Percentile bootstrap over classes of the mean item score."""
    _, g = np.unique(groups, return_inverse=True)
    sums = np.bincount(g, weights=per_item)
    counts = np.bincount(g).astype(float)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _summary(f: Features, sc: SolverScores, idx: np.ndarray, seed: int) -> dict[str, dict[str, float]]:
    out = {}
    for s, m in sc.scores.items():
        per_item = np.nanmean(m[:, idx], axis=0)
        lo, hi = _bootstrap_ci(per_item, f.groups[idx], seed)
        out[s] = {"accuracy": round(float(per_item.mean()), 6), "ci95": [round(lo, 6), round(hi, 6)]}
    return out


def blind_accuracy(items: Sequence[Any], solvers: Sequence[str] = SOLVERS, n_splits: int = 5,
                   repeats: int = 1, seed: int = 0, answer_prior: bool = True) -> dict[str, Any]:
    """Held-out accuracy of each learned blind solver on ``items`` (grouped by class, see
    :func:`held_out_scores`), each with a 95% bootstrap-over-classes interval, and chance:
    ``{"n", "classes", "folds", "repeats", "chance", "solvers": {name: {"accuracy", "ci95"}}}``.
    ``answer_prior``: see :func:`build_features`."""
    mcqs = items if all(isinstance(x, MCQ) for x in items) else mcq_items(items)
    f = build_features(mcqs, answer_prior=answer_prior)
    sc = held_out_scores(f, None, solvers, n_splits, repeats, seed)
    idx = np.arange(len(mcqs))
    return {"n": len(mcqs), "classes": int(len(np.unique(f.groups))), "folds": sc.n_splits,
            "repeats": repeats, "chance": round(chance(mcqs), 6), "solvers": _summary(f, sc, idx, seed)}


# ----- adversarial filtering -------------------------------------------------------------------------------
@dataclass
class FilterResult:
    """What :func:`adversarial_filter` kept and dropped, and why it stopped.

    ``kept``/``dropped``: item indices in input order; ``predictability[i]``: the held-out predictability
    of item ``i`` in the last round it was scored (mean score over solvers × repeats); ``dropped_round``:
    round of each dropped item; ``rounds``: per round ``{"n", "accuracy": {solver: acc}, "dropped"}``;
    ``final``: the held-out accuracies (with CIs) on the kept set, from the last round; ``target_met`` and
    ``stop`` (``"target_met"``, ``"max_rounds"``, ``"min_keep"``, ``"no_candidates"``, ``"too_few_classes"``).
    """

    kept: list[int]
    dropped: list[int]
    predictability: dict[int, float]
    dropped_round: dict[int, int]
    rounds: list[dict[str, Any]]
    final: dict[str, Any]
    target: float
    target_met: bool
    stop: str
    seconds: float = 0.0


def _batch(cand: list[int], per_solver: np.ndarray, left: np.ndarray, groups: np.ndarray, target: float,
           max_batch: float) -> list[int]:
    """The items of one round's drop, in ``cand`` order: the fewest whose removal brings every solver's
    accuracy estimate to ``target`` (at least 1%, at most ``max_batch`` of the items). Items that are the
    last of their class are skipped; only when no other candidate exists are they taken."""
    n = per_solver.shape[1]
    totals = per_solver.sum(axis=1)
    low, high = math.ceil(0.01 * n), max(1, math.floor(max_batch * n))

    def take(pool: list[int], protect: bool) -> list[int]:
        chosen: list[int] = []
        removed = np.zeros(len(totals))
        for j in pool:
            if len(chosen) >= high or (len(chosen) >= low and np.all(
                    (totals - removed) / (n - len(chosen)) <= target + 1e-9)):
                break
            if protect and left[groups[j]] <= 1:
                continue
            chosen.append(j)
            removed += per_solver[:, j]
            left[groups[j]] -= 1
        return chosen

    return take(cand, True) or take(cand, False)


def adversarial_filter(items: Sequence[Any], solvers: Sequence[str] = SOLVERS, *, margin: float = DEFAULT_MARGIN,
                       n_splits: int = 5, repeats: int = 2, max_rounds: int = 12, min_keep: float = 0.2,
                       max_batch: float = 0.3, seed: int = 0) -> FilterResult:
    """AFLite: drop the questions blind solvers predict until every solver is at most ``chance + margin``
    on held-out classes.

    Each round fits every solver on ``repeats`` seeded grouped ``n_splits``-fold splits of the items still
    kept and scores each item's *predictability* (its mean held-out score over solvers × repeats). If every
    solver's held-out accuracy is at most the target the filter stops (``target_met``). Otherwise it drops a
    batch: the items whose predictability exceeds chance, most predictable first, then those of the class
    with the most items left (a class's last item is dropped only when no other candidate is left), then a
    seeded random order; the batch is the fewest of them (at least 1%, at most ``max_batch`` of the items
    left) whose removal would bring every solver's accuracy to the target if the solvers kept answering
    the rest as they did this round (they are refitted next round, so a few rounds are needed). It also stops, reporting the target failed, after
    ``max_rounds`` rounds, when the next batch would leave fewer than ``min_keep`` of the input items, or
    when no item is more predictable than chance. The target counts as met only when
    :func:`blind_accuracy` of the kept items with the same ``seed`` (what a quality report measures) agrees;
    if it does not, the round drops a minimal batch and goes on. Deterministic for a seed.
    """
    t0 = time.perf_counter()
    mcqs = list(items) if all(isinstance(x, MCQ) for x in items) else mcq_items(items)
    n_all = len(mcqs)
    target = chance(mcqs) + margin
    f = build_features(mcqs)
    alive = np.ones(n_all, dtype=bool)
    rng = np.random.default_rng(seed)
    order = rng.random(n_all)
    predictability: dict[int, float] = {}
    dropped_round: dict[int, int] = {}
    rounds: list[dict[str, Any]] = []
    stop, final = "max_rounds", {}
    for rnd in range(max_rounds + 1):
        idx = np.flatnonzero(alive)
        if len(np.unique(f.groups[idx])) < MIN_GROUPS:
            stop = "too_few_classes"
            break
        sc = held_out_scores(f, alive, solvers, n_splits, repeats, seed + 7919 * rnd)
        acc = {s: sc.accuracy(s, idx) for s in solvers}
        per_solver = np.array([np.nanmean(sc.scores[s][:, idx], axis=0) for s in solvers])
        pred = per_solver.mean(axis=0)
        for i, p in zip(idx, pred, strict=True):
            predictability[int(i)] = round(float(p), 6)
        final = _summary(f, sc, idx, seed)
        info = {"n": int(len(idx)), "accuracy": {s: round(a, 6) for s, a in acc.items()}, "dropped": 0}
        rounds.append(info)
        worst = max(acc.values())
        if worst <= target + 1e-9:
            # confirm with the measurement a report makes of the kept set (blind_accuracy, same seed)
            check = blind_accuracy([mcqs[i] for i in idx], solvers, n_splits, 1, seed)
            info["report_check"] = {s: v["accuracy"] for s, v in check["solvers"].items()}
            if max(info["report_check"].values()) <= target + 1e-9:
                final, stop = check["solvers"], "target_met"
                break
        if rnd == max_rounds:
            break
        chance_i = np.array([1.0 / len(mcqs[i].options) for i in idx])
        cand = [j for j in range(len(idx)) if pred[j] > chance_i[j] + 1e-9]
        if not cand:
            stop = "no_candidates"
            break
        left = np.bincount(f.groups[idx], minlength=int(f.groups.max()) + 1).astype(int)
        cand.sort(key=lambda j: (-pred[j], -left[f.groups[idx[j]]], order[idx[j]]))
        chosen = _batch(cand, per_solver, left, f.groups[idx], target, max_batch)
        if len(idx) - len(chosen) < min_keep * n_all:
            stop = "min_keep"
            break
        for j in chosen:
            alive[idx[j]] = False
            dropped_round[int(idx[j])] = rnd
        info["dropped"] = len(chosen)
    kept = [int(i) for i in np.flatnonzero(alive)]
    dropped = [int(i) for i in np.flatnonzero(~alive)]
    return FilterResult(kept, dropped, predictability, dropped_round, rounds,
                        {"chance": round(chance([mcqs[i] for i in kept]), 6), "solvers": final},
                        round(target, 6), stop == "target_met", stop, round(time.perf_counter() - t0, 2))
