"""AFLite-style adversarial filtering (Le Bras et al., 2020) on the learned blind solvers: drop the items they
answer best until every solver is near chance on held-out classes."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlm_classdata.blind.features import build_features
from vlm_classdata.blind.items import MCQ, chance, mcq_items
from vlm_classdata.blind.solvers import MIN_GROUPS, SOLVERS, accuracy_summary, blind_accuracy, held_out_scores

DEFAULT_MARGIN = 0.05
"""Adversarial filtering target: every solver at most ``chance + DEFAULT_MARGIN`` on held-out classes."""


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
        final = accuracy_summary(f, sc, idx, seed)
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
