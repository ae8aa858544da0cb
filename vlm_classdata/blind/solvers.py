"""The learned blind solvers and their held-out accuracy: grouped cross-validation over classes, bootstrap
confidence intervals over classes (see :mod:`vlm_classdata.blind`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from vlm_classdata.blind.features import Features, answer_prior_features, build_features
from vlm_classdata.blind.items import MCQ, chance, mcq_items
from vlm_classdata.errors import UserError

SOLVERS = ("logistic", "boosting")
"""The learned blind solvers: logistic regression (dense + hashed n-gram features) and gradient boosting
(:class:`~sklearn.ensemble.HistGradientBoostingClassifier`, dense features)."""
MIN_GROUPS = 2
"""Grouped cross-validation needs at least two classes."""


def _make(solver: str, seed: int) -> Any:
    """A fresh, unfitted model of ``solver``."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,  # heavy (~0.6 s): only fitting solvers needs it
    )
    from sklearn.linear_model import LogisticRegression  # heavy: as above

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
    p_train = answer_prior_features(f, train_rows, train_rows, True)
    p_test = answer_prior_features(f, train_rows, test_rows, False)
    dense_train = np.column_stack([f.dense[train_rows], p_train])
    mean, scale = dense_train.mean(axis=0), dense_train.std(axis=0) + 1e-9
    from sklearn.exceptions import ConvergenceWarning  # heavy: only fitting solvers needs scikit-learn

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
    from sklearn.model_selection import GroupKFold  # heavy: only cross-validating solvers needs scikit-learn

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


def accuracy_summary(f: Features, sc: SolverScores, idx: np.ndarray, seed: int) -> dict[str, dict[str, float]]:
    """Per solver: its held-out accuracy on the items ``idx`` and the 95% bootstrap-over-classes interval."""
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
            "repeats": repeats, "chance": round(chance(mcqs), 6), "solvers": accuracy_summary(f, sc, idx, seed)}
