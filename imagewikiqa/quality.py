"""The quality report of an ImageWikiQA-style question set: size, coverage, letter balance, blind baselines,
text-only LLM baseline, leaks, duplicates, rejections and pass/fail targets.

:func:`quality_report` builds a JSON-able dict (:mod:`imagewikiqa.report` renders and writes it);
:func:`with_key_check` adds the build's WordNet key check. :func:`questions_from_benchmark` reads any
benchmark JSONL the evaluator reads (the released ImageWikiQA rows and ours) back into questions, one per
distinct question, so the same report runs on the released file.

Definitions:

* distinct question: class (``class_id``), the question stem and the correct option's text, normalised with
  :func:`vlm_classdata.lexicon.normalize`.
* letters: counts of the correct letter over all questions; ``letters_balanced`` is the largest
  ``max − min`` of those counts over the letters of each option count ``k`` (target ≤ 1).
* blind baselines (:func:`blind_baselines`): ``random`` is the mean of ``1/k``; ``longest``/``shortest``
  the expected accuracy of picking the longest/shortest option, ties broken at random
  (:mod:`imagewikiqa.debias`); ``letter_prior`` the accuracy of always answering the most frequent correct
  letter (ties: the earliest letter).
* learned blind baselines (:func:`learned_baselines`, :mod:`vlm_classdata.blind`): logistic regression and gradient
  boosting trained on question and option features only, accuracy on held-out classes (5-fold
  cross-validation grouped by class) with a 95% bootstrap-over-classes interval; target: every solver at
  most chance + 5 points (30% with 4 options). Not computed for fewer than :data:`MIN_LEARNED` questions.
* leaks (:func:`leak_check`): a question whose stem or an option contains its class's name (or, with a
  lexicon, any form of it) or the name's head word (the last word of a multiword name: "truck" of "tow
  truck"), whole words after :func:`vlm_classdata.lexicon.normalize`; stop words and words under 3 letters are not
  head words.
* cross-class duplicates (:func:`cross_class_duplicates`): a question whose normalised stem and set of
  normalised options are word for word those of a question of another class (each repeat counted once).
* text-only LLM baseline: ``verification["text_only_accuracy_without_name"]`` (from
  ``verify_text.verification_summary``), when given.
"""

from __future__ import annotations

import contextlib
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from builders.formats.mcq import letters
from imagewikiqa.audit import key_check
from imagewikiqa.debias import DEFAULT_MAX_LONGEST, blind_longest_accuracy, blind_shortest_accuracy
from imagewikiqa.evaluate import load_benchmark, question_stem
from imagewikiqa.records import Question
from vlm_classdata.blind import DEFAULT_MARGIN, MIN_GROUPS, blind_accuracy
from vlm_classdata.lexicon import Lexicon, normalize, stopwords

VERIFICATION_KEY = "text_only_accuracy_without_name"
NONE = "(none)"
MIN_LEARNED = 50
"""Fewest questions (of at least two classes) the learned blind solvers are trained and reported on."""
EXAMPLES = 5
KEY_EXAMPLES = 5
"""Key-check problems recorded with their evidence in the report and the manifest (the count is complete)."""

def round6(x: float) -> float:
    return round(float(x), 6)


def distinct_key(q: Question) -> tuple[str, str, str]:
    """The identity of a distinct question: ``(class_id, normalised stem, normalised correct answer)``; the
    answer tells template questions apart ("Which of these is a part of this object?" with two answers)."""
    return q.class_id, normalize(question_stem(q.question)), normalize(q.answer) if q.options else ""


# ----- baselines -------------------------------------------------------------------------------------------
def _letter_counts(questions: Sequence[Question]) -> Counter:
    return Counter(q.letter for q in questions if q.options)


def blind_baselines(questions: Sequence[Question]) -> dict[str, Any]:
    """Accuracies (fractions) of strategies that never read the question: ``random`` (mean ``1/k``),
    ``longest`` and ``shortest`` option (ties at random), and ``letter_prior`` (always the most frequent
    correct letter: ``{"letter", "accuracy"}``)."""
    n = len(questions)
    counts = _letter_counts(questions)
    top = min(counts, key=lambda x: (-counts[x], x)) if counts else None
    return {
        "n": n,
        "random": round6(sum(1 / len(q.options) for q in questions if q.options) / n) if n else 0.0,
        "longest": round6(blind_longest_accuracy(questions)),
        "shortest": round6(blind_shortest_accuracy(questions)),
        "letter_prior": {"letter": top, "accuracy": round6(counts[top] / n) if top else 0.0},
    }


def learned_baselines(questions: Sequence[Question], seed: int = 0, answer_prior: bool = True) -> dict[str, Any]:
    """Held-out accuracy of the learned blind solvers (:func:`vlm_classdata.blind.blind_accuracy`, 5 folds grouped
    by class) on the questions with options, with 95% intervals and chance; ``{"skipped": reason}`` when
    there are fewer than :data:`MIN_LEARNED` such questions or fewer than two classes."""
    usable = [q for q in questions if len(q.options) >= 2]
    classes = len({q.class_id for q in usable})
    if len(usable) < MIN_LEARNED or classes < MIN_GROUPS:
        return {"skipped": f"too few questions to train on ({len(usable)} in {classes} classes; "
                           f"needs {MIN_LEARNED} in {MIN_GROUPS})"}
    return blind_accuracy(usable, seed=seed, answer_prior=answer_prior)


def _padded(text: str) -> str:
    return f" {normalize(text)} "


def _head_word(name: str, stop: frozenset[str]) -> str | None:
    words = name.split()
    if len(words) < 2 or words[-1] in stop or len(words[-1]) < 3:
        return None
    return words[-1]


def leak_check(questions: Sequence[Question], lexicon: Lexicon | None = None) -> dict[str, Any]:
    """Questions naming their class (see the module docstring): ``{"questions": leaking questions,
    "class_name": with a whole name, "head_word": with a head word, "in_answer": with either in the correct
    option, "examples": the first few}``. ``lexicon``: also check every form of the class
    (:meth:`vlm_classdata.lexicon.Lexicon.forms_of`; class ids it does not know use the class name only)."""
    stop = stopwords()
    names_of: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    counts = Counter()
    examples = []
    for q in questions:
        key = (q.class_id, q.class_name)
        if key not in names_of:
            names = {normalize(q.class_name)}
            if lexicon is not None:
                with contextlib.suppress(KeyError):  # a class the lexicon does not know: its name only
                    names |= {f.text for f in lexicon.forms_of(q.class_id)}
            names = {n for n in names if n and n not in stop}
            heads = {h for n in names if (h := _head_word(n, stop))} - names
            names_of[key] = (names, heads)
        names, heads = names_of[key]
        texts = [_padded(q.question), *(_padded(o) for o in q.options)]
        found_names = sorted(n for n in names if any(f" {n} " in t for t in texts))
        found_heads = sorted(h for h in heads if any(f" {h} " in t for t in texts))
        if not found_names and not found_heads:
            continue
        counts["questions"] += 1
        counts["class_name"] += bool(found_names)
        counts["head_word"] += bool(found_heads)
        answer = texts[1 + q.answer_index] if q.options else ""
        counts["in_answer"] += any(f" {w} " in answer for w in found_names + found_heads)
        if len(examples) < EXAMPLES:
            examples.append({"qid": q.qid, "class_name": q.class_name, "found": found_names + found_heads})
    return {k: counts[k] for k in ("questions", "class_name", "head_word", "in_answer")} | {"examples": examples}


def cross_class_duplicates(questions: Sequence[Question]) -> dict[str, Any]:
    """Questions repeating word for word (normalised stem and set of normalised options) a question of
    another class: ``{"questions": repeats, "same_answer": repeats whose correct option is the same too,
    "examples": the first few [qid, repeated qid]}``. Repeats within one class are left to the build's
    near-duplicate rule."""
    first: dict[tuple[str, frozenset[str]], list[Question]] = defaultdict(list)
    repeats = same = 0
    examples = []
    for q in questions:
        key = (normalize(question_stem(q.question)), frozenset(normalize(o) for o in q.options))
        seen = first[key]
        other = next((p for p in seen if p.class_id != q.class_id), None)
        if other is not None:
            repeats += 1
            same += normalize(other.answer) == normalize(q.answer) if q.options else 0
            if len(examples) < EXAMPLES:
                examples.append([q.qid, other.qid])
        seen.append(q)
    return {"questions": repeats, "same_answer": same, "examples": examples}


# ----- the report ------------------------------------------------------------------------------------------
def _letters_block(questions: Sequence[Question]) -> tuple[dict[str, int], int, dict[str, dict[str, int]]]:
    """Overall letter counts, the balance spread (max over option counts of max − min) and counts per k."""
    by_k: dict[int, Counter] = defaultdict(Counter)
    for q in questions:
        if q.options:
            by_k[len(q.options)][q.letter] += 1
    per_k = {str(k): {x: by_k[k].get(x, 0) for x in letters(k)} for k in sorted(by_k)}
    spread = max((max(c.values()) - min(c.values()) for c in per_k.values()), default=0)
    overall = _letter_counts(questions)
    width = max(by_k, default=0)
    return {x: overall.get(x, 0) for x in letters(width)}, spread, per_k


def sorted_counts(values: Sequence[str]) -> dict[str, int]:
    c = Counter(v or NONE for v in values)
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def target_check(value: Any, target: Any, passed: bool) -> dict[str, Any]:
    return {"value": value, "target": target, "pass": bool(passed)}


def quality_report(questions: Sequence[Question], *, rejections: Counter | None = None,
                   verification: dict | None = None, leaks: int | None = None,
                   duplicates: int | None = None, targets: dict | None = None,
                   meta: dict | None = None, lexicon: Lexicon | None = None, learned: bool = True,
                   seed: int = 0) -> dict[str, Any]:
    """The quality report of a final question set (see the module docstring for definitions).

    ``rejections``: reason → count over the whole build; ``verification``: the text-only verification
    summary; ``leaks``/``duplicates``: counts the caller found on the final set with its own checks
    (reported as they are); ``targets``: overrides of ``{"max_longest": 0.30, "max_letter_spread": 1,
    "max_learned": chance + 0.05}``; ``meta``: copied as is (generator settings, sources, seed...);
    ``lexicon``: check every class form for leaks, not only the class name; ``learned=False`` skips the
    learned blind solvers (``seed``: their fold splits).

    The ``targets`` block holds ``letters_balanced``, ``longest``, ``learned_blind`` (the best learned
    solver's held-out accuracy; absent when not computed), ``no_leaks`` (this report's leaking questions
    plus the caller's ``leaks``) and ``no_duplicates`` (cross-class repeats plus the caller's
    ``duplicates``), each ``{value, target, pass}``, and ``passes`` (all of them)."""
    goals = {"max_longest": DEFAULT_MAX_LONGEST, "max_letter_spread": 1, **(targets or {})}
    n = len(questions)
    per_class = Counter(q.class_id for q in questions)
    sizes = sorted(per_class.values())
    overall, spread, per_k = _letters_block(questions)
    baselines = blind_baselines(questions)
    rej = Counter(rejections or {})
    text_only = None
    if verification is not None:
        text_only = {"accuracy_without_name": verification.get(VERIFICATION_KEY),
                     "summary": {k: v for k, v in sorted(verification.items())
                                 if isinstance(v, (int, float, str, bool)) or v is None}}
    checks = {
        "letters_balanced": target_check(spread, goals["max_letter_spread"], spread <= goals["max_letter_spread"]),
        "longest": target_check(baselines["longest"], goals["max_longest"],
                           baselines["longest"] <= goals["max_longest"] + 1e-9),
    }
    learned_block = (learned_baselines(questions, seed=seed) if learned
                     else {"skipped": "not requested (learned=False)"})
    if "solvers" in learned_block:
        best = max(v["accuracy"] for v in learned_block["solvers"].values())
        limit = goals.get("max_learned", round(learned_block["chance"] + DEFAULT_MARGIN, 6))
        checks["learned_blind"] = target_check(best, limit, best <= limit + 1e-9)
    leak_block = leak_check(questions, lexicon)
    dup_block = cross_class_duplicates(questions)
    n_leaks = leak_block["questions"] + (leaks or 0)
    n_dups = dup_block["questions"] + (duplicates or 0)
    checks["no_leaks"] = target_check(n_leaks, 0, n_leaks == 0)
    checks["no_duplicates"] = target_check(n_dups, 0, n_dups == 0)
    return {
        "n_questions": n,
        "distinct_questions": len({distinct_key(q) for q in questions}),
        "classes": len(per_class),
        "questions_per_class": {
            "min": sizes[0] if sizes else 0,
            "median": statistics.median(sizes) if sizes else 0,
            "max": sizes[-1] if sizes else 0,
        },
        "options_per_question": {k: sum(per_k[k].values()) for k in per_k},
        "letters": overall,
        "letters_by_options": per_k,
        "blind_baselines": baselines,
        "learned_baselines": learned_block,
        "text_only_llm": text_only,
        "leaks": leaks,
        "duplicates": duplicates,
        "leak_check": leak_block,
        "cross_class_duplicates": dup_block,
        "rejections": {"total": sum(rej.values()),
                       "by_reason": dict(sorted(rej.items(), key=lambda kv: (-kv[1], kv[0])))},
        "by_generator": sorted_counts([q.generator for q in questions]),
        "by_kind": sorted_counts([q.kind for q in questions]),
        "targets": {**checks, "passes": all(c["pass"] for c in checks.values())},
        "meta": dict(meta or {}),
    }


def questions_from_benchmark(path: str | Path) -> list[Question]:
    """One :class:`Question` per distinct question of a benchmark JSONL the evaluator reads
    (:func:`imagewikiqa.evaluate.load_benchmark`: the released rows ``image, text, label, wiki, classname``
    and our rows alike), from the first row of each group, in file order. Rows without options or answer
    are left out. ``qid``: the row's ``qid``, else ``question_key``, else its sample id; ``reference``: its
    ``reference``, else ``wiki``; ``source``/``generator``/``kind`` from the row when present (``source``
    defaults to ``benchmark:<file name>``)."""
    p = Path(path)
    items, _ = load_benchmark(p)
    seen: set[str] = set()
    out = []
    for b in items:
        it = b.item
        if b.question_group in seen or not it.options or it.answer_index is None:
            continue
        seen.add(b.question_group)
        row = b.row
        qid = next((str(row[k]) for k in ("qid", "question_key") if row.get(k) not in (None, "")), it.sample_id)
        out.append(Question(
            qid=qid, class_id=str(it.class_id or b.class_name), class_name=b.class_name,
            question=question_stem(it.question), options=list(it.options), answer_index=it.answer_index,
            reference=str(row.get("reference") or row.get("wiki") or ""),
            source=str(row.get("source") or f"benchmark:{p.name}"),
            generator=str(row.get("generator") or ""), kind=str(row.get("kind") or "")))
    return out



def key_check_block(questions: Sequence[Question]) -> dict[str, Any]:
    """The WordNet key check of ``questions`` (:func:`imagewikiqa.audit.key_check`): the number of problems and
    the first :data:`KEY_EXAMPLES` with their evidence."""
    problems = key_check(questions)
    return {"problems": len(problems), "examples": [asdict(p) for p in problems[:KEY_EXAMPLES]]}


def with_key_check(report: dict[str, Any], key_block: dict[str, Any]) -> dict[str, Any]:
    """The report with the key check (``key_check``: problems and the first few with evidence) and its target
    (``targets.key_check``: 0 problems) added; ``targets.passes`` recomputed over every target."""
    targets = {k: v for k, v in report["targets"].items() if k != "passes"}
    n = key_block["problems"]
    targets["key_check"] = {"value": n, "target": 0, "pass": n == 0}
    return {**report, "key_check": key_block,
            "targets": {**targets, "passes": all(t["pass"] for t in targets.values())}}
