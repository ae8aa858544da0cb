"""Debiasing of multiple-choice questions: option-length bias and correct-letter balance.

Pure functions over lists of :class:`~imagewikiqa.records.Question`; the inputs are never mutated (changed
questions are new objects made with :func:`dataclasses.replace`), and the output depends only on the
questions (their order and qids) and the seed (:func:`builders.records.sample_rng`).

* Blind baselines: :func:`blind_longest_accuracy` / :func:`blind_shortest_accuracy` are the *expected*
  accuracies of a model that never reads the question and picks the longest (shortest) option, breaking
  ties uniformly at random: a question scores ``1/t`` when its correct option is among the ``t`` options
  of extreme length, else 0. Length is ``len(option.strip())``.
* :func:`control_length_bias` brings the blind-longest accuracy down to ``max_longest`` (default 0.30):
  first a cosmetic *fix* of option surface (see :func:`tidy_options`), then dropping questions whose
  correct option is (strictly or tied) longest.
* :func:`balance_letters` moves each correct option to a balanced position
  (:func:`builders.formats.mcq.balanced_positions`), keeping the distractors' relative order.
* :func:`filter_predictable` drops the questions learned blind solvers answer without the image
  (AFLite-style adversarial filtering, :func:`vlm_classdata.blind.adversarial_filter`) until every solver is at
  most chance + 5 points on held-out classes.
* :func:`debias` does all three, length control first, then (``adversarial=True``) the learned filter,
  letters last: dropping questions after balancing would unbalance the letters again, while moving
  options within a question never changes which option is longest.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace

from builders.formats.mcq import balanced_positions
from builders.records import sample_rng
from imagewikiqa.records import Question
from vlm_classdata.blind import DEFAULT_MARGIN, FilterResult, adversarial_filter, blind_accuracy, mcq_items

__all__ = [
    "DEFAULT_MAX_LONGEST", "balance_letters", "blind_longest_accuracy", "blind_score",
    "blind_shortest_accuracy", "control_length_bias", "debias", "filter_predictable", "tidy_options",
]

DEFAULT_MAX_LONGEST = 0.30
"""Target for the blind "pick the longest option" accuracy (ImageWikiQA's released set is at ≈ 0.42)."""
DROP_REASON = "length_bias"
PREDICTABLE_REASON = "blind_predictable"
_EPS = 1e-12
_SPACES = re.compile(r"\s+")


# ----- blind baselines ---------------------------------------------------------------------------------------
def blind_score(question: Question, longest: bool = True) -> float:
    """Expected score of blind "pick the longest" (``longest=False``: shortest) option on one question:
    ``1/t`` when the correct option is among the ``t`` tied extreme-length options, else 0 (also 0 for a
    question without options)."""
    if not question.options:
        return 0.0
    lengths = [len(o.strip()) for o in question.options]
    target = max(lengths) if longest else min(lengths)
    tied = [i for i, n in enumerate(lengths) if n == target]
    return 1.0 / len(tied) if question.answer_index in tied else 0.0


def _mean_score(questions: Sequence[Question], longest: bool) -> float:
    return sum(blind_score(q, longest) for q in questions) / len(questions) if questions else 0.0


def blind_longest_accuracy(questions: Sequence[Question]) -> float:
    """Expected accuracy of blind "pick the longest option" (ties broken uniformly at random); 0.0 when
    there are no questions."""
    return _mean_score(questions, True)


def blind_shortest_accuracy(questions: Sequence[Question]) -> float:
    """Expected accuracy of blind "pick the shortest option" (ties broken uniformly at random); 0.0 when
    there are no questions."""
    return _mean_score(questions, False)


# ----- length control ----------------------------------------------------------------------------------------
def _copy(q: Question) -> Question:
    return replace(q, options=list(q.options))


def tidy_options(question: Question) -> Question:
    """The question with a uniform option surface: whitespace runs collapsed to one space and trimmed, and
    a trailing ``"."`` removed from every option when the options disagree on it (some end with one, some
    do not). Changes no content; returns a new question (equal to the input when nothing changed)."""
    options = [_SPACES.sub(" ", o).strip() for o in question.options]
    dotted = [o.endswith(".") for o in options]
    if any(dotted) and not all(dotted):
        options = [o[:-1].rstrip() if o.endswith(".") else o for o in options]
    return replace(question, options=options)


def control_length_bias(questions: Sequence[Question], max_longest: float = DEFAULT_MAX_LONGEST,
                        seed: int = 0) -> tuple[list[Question], Counter]:
    """Bring :func:`blind_longest_accuracy` to at most ``max_longest``: first fix, then drop.

    Nothing is changed when the set is already at or under the target (copies are returned). Otherwise:

    1. *Fix*: every question whose correct option is among the longest gets :func:`tidy_options` when that
       lowers its blind-longest score (a stray trailing period or double space is no knowledge).
    2. *Drop* (reason ``"length_bias"``) one question at a time, until the target is met: among the
       questions whose score exceeds the current accuracy (dropping any other would not lower it), the
       highest score first (strictly longest, 1.0, before ties, 1/t: fewer drops), then the class with the
       most questions left (so small classes keep their questions), then a seeded random order
       (``sample_rng(seed, "length_bias", qid)``). Stops early when no drop can lower the accuracy (every
       question scores the same; an empty benchmark is no answer).

    Trade-off: each drop loses a verified question and its knowledge, and drops remove questions whose
    answer is the longest option, so pushing far below the natural rate (≈ 1/k) would turn "never the
    longest" into a signal of its own; hence the target is a ceiling, not zero, and the shortest baseline
    should be watched as well (:func:`imagewikiqa.report.blind_baselines`). Fixing real bias (longer,
    more specific correct answers) belongs to the generator's distractor writing; this is the backstop.

    Returns the kept questions in input order and ``Counter({"length_bias": dropped})`` (empty when none).
    """
    out = [_copy(q) for q in questions]
    reasons: Counter = Counter()
    if blind_longest_accuracy(out) <= max_longest + _EPS:
        return out, reasons
    for i, q in enumerate(out):
        if blind_score(q) > 0:
            tidy = tidy_options(q)
            if blind_score(tidy) < blind_score(q):
                out[i] = tidy
    scores = [blind_score(q) for q in out]
    total = sum(scores)
    alive = [True] * len(out)
    n_alive = len(out)
    per_class: dict[str, int] = defaultdict(int)
    for q in out:
        per_class[q.class_id] += 1
    order = [sample_rng(seed, DROP_REASON, q.qid).random() for q in out]
    while n_alive and total / n_alive > max_longest + _EPS:
        acc = total / n_alive
        best = None
        for i, s in enumerate(scores):
            if not alive[i] or s <= acc + _EPS:
                continue
            key = (s, per_class[out[i].class_id], order[i], -i)
            if best is None or key > best[0]:
                best = (key, i)
        if best is None:
            break
        i = best[1]
        alive[i] = False
        n_alive -= 1
        total -= scores[i]
        per_class[out[i].class_id] -= 1
        reasons[DROP_REASON] += 1
    return [q for q, keep in zip(out, alive, strict=True) if keep], reasons


# ----- letter balance ----------------------------------------------------------------------------------------
def _balanced(positions: Sequence[int], k: int) -> bool:
    counts = Counter(positions)
    per = [counts.get(p, 0) for p in range(k)]
    return max(per) - min(per) <= 1


def _move_answer(q: Question, position: int) -> Question:
    distractors = [o for i, o in enumerate(q.options) if i != q.answer_index]
    options = distractors[:position] + [q.answer] + distractors[position:]
    return replace(q, options=options, answer_index=position)


def balance_letters(questions: Sequence[Question], seed: int = 0) -> list[Question]:
    """Reassign correct-answer positions so every letter is correct for ``n // k`` or ``n // k + 1`` of the
    ``n`` questions with ``k`` options (each option count handled on its own).

    A group that is already balanced is left as it is. Otherwise its positions are drawn with
    :func:`builders.formats.mcq.balanced_positions` (``split=f"imagewikiqa-k{k}"``) and assigned in input
    order; each question's correct option moves to its new position while the distractors keep their
    relative order, so which position holds the longest option carries no signal either. Returns new
    questions in input order."""
    out = [_copy(q) for q in questions]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, q in enumerate(out):
        if q.options:
            groups[len(q.options)].append(i)
    for k, members in sorted(groups.items()):
        if _balanced([out[i].answer_index for i in members], k):
            continue
        positions = balanced_positions(len(members), k, seed, f"imagewikiqa-k{k}")
        for i, p in zip(members, positions, strict=True):
            out[i] = _move_answer(out[i], p)
    return out


# ----- learned blind solvers ---------------------------------------------------------------------------------
def filter_predictable(questions: Sequence[Question], margin: float = DEFAULT_MARGIN, seed: int = 0,
                       passes: int = 3, **options: float) -> tuple[list[Question], Counter, FilterResult]:
    """Drop the questions learned blind solvers predict from question and options alone
    (:func:`vlm_classdata.blind.adversarial_filter`; ``options``: its other settings) until every solver is at most
    chance + ``margin`` on held-out classes *as the questions will be published*, i.e. with their letters
    balanced: the filter scores options in their current positions, and moving the correct options changes
    the position feature, so a set that met the target before :func:`balance_letters` can miss it after
    (measured: 28.6% → 30.6% on the 1000-class WordNet build). After each filter pass the kept questions
    are balanced and measured as a report measures them (:func:`vlm_classdata.blind.blind_accuracy`, same seed);
    when that misses the target the filter runs again on the balanced set, at most ``passes`` times.

    Returns the kept questions (letters balanced) in input order, ``Counter({"blind_predictable":
    dropped})`` (empty when none) and the last pass's result, whose ``kept``/``dropped`` are indices into
    ``questions`` and whose ``final`` holds the balanced set's measurement."""
    if not questions:
        return [], Counter(), FilterResult([], [], {}, {}, [], {}, 0.0, True, "empty")
    current, origin = list(questions), list(range(len(questions)))
    dropped: list[int] = []
    rounds: list[dict] = []
    seconds = 0.0
    for _ in range(max(1, passes)):
        result = adversarial_filter(mcq_items(current), margin=margin, seed=seed, **options)
        rounds += result.rounds
        seconds += result.seconds
        dropped += [origin[i] for i in result.dropped]
        kept = balance_letters([current[i] for i in result.kept], seed=seed)
        origin = [origin[i] for i in result.kept]
        if not result.target_met:
            break  # the filter could not do better
        check = blind_accuracy(mcq_items(kept), seed=seed)
        result.final = {"chance": check["chance"], "solvers": check["solvers"]}
        if max(v["accuracy"] for v in check["solvers"].values()) <= result.target + 1e-9:
            break
        result.target_met, result.stop = False, "letters_rebalanced"
        current = kept
    result.kept, result.dropped, result.rounds, result.seconds = origin, sorted(dropped), rounds, seconds
    reasons = Counter({PREDICTABLE_REASON: len(dropped)}) if dropped else Counter()
    return kept, reasons, result


def debias(questions: Sequence[Question], max_longest: float = DEFAULT_MAX_LONGEST,
           seed: int = 0, adversarial: bool = False) -> tuple[list[Question], Counter]:
    """:func:`control_length_bias`, then (``adversarial``) :func:`filter_predictable`, then
    :func:`balance_letters`. The order matters: dropping questions after balancing would unbalance the
    letters again, whereas moving the correct option within a question leaves the blind-longest accuracy
    unchanged, and balanced positions tell the learned solvers nothing. Returns the questions and the drop
    reasons."""
    kept, reasons = control_length_bias(questions, max_longest=max_longest, seed=seed)
    if adversarial:
        kept, more, _ = filter_predictable(kept, seed=seed)
        reasons += more
    return balance_letters(kept, seed=seed), reasons
