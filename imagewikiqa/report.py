"""The quality report of an ImageWikiQA-style question set: size, coverage, letter balance, blind baselines,
text-only LLM baseline, leaks, duplicates, rejections and pass/fail targets.

:func:`quality_report` builds a JSON-able dict, :func:`report_markdown` renders it as Markdown tables (for a
README or dataset card), :func:`write_report` writes both atomically. :func:`questions_from_benchmark`
reads any benchmark JSONL the evaluator reads (the released ImageWikiQA rows and ours) back into
questions, one per distinct question, so the same report runs on the released file.

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

Builders MCQ outputs (``python -m builders.imagenet_qa --outputs mcq`` → ``mcq/<split>.jsonl``, or an
``mcq_hf`` folder; :func:`is_builders_mcq`) get their own report, :func:`mcq_quality_report`: every row is one
item (one image; the same class recurs with other distractors), so there are no distinct questions, and leak and
duplicate checks do not apply (the answer IS the class name, and two classes' items may offer the same options).
It reports items, classes, distractor modes, answer letters, the blind baselines above, the learned solvers
(their question stem is a class-independent template, so they effectively see the options only; on a seeded
sample of :data:`MAX_LEARNED_ITEMS` items when larger; without :mod:`vlm_classdata.blind`'s answer prior, which on
class-name options measures the class-held-out split, not the data: with it, a 4-way random build of 1000
classes scored 74% blind, without it chance), and the distractor relation histogram and the items with
a second correct option, recomputed by :func:`vlm_classdata.distractors.distractor_report` against the build's class list
(:func:`mcq_class_list`). Targets: letters balanced within one, best learned solver ≤ chance + 5 points, no
second correct option, every option found in the class list.
"""

from __future__ import annotations

import contextlib
import json
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from builders.formats.mcq import MAX_LETTERS, letters
from imagewikiqa.debias import DEFAULT_MAX_LONGEST, blind_longest_accuracy, blind_shortest_accuracy
from imagewikiqa.evaluate import jsonl_rows, load_benchmark, question_stem
from imagewikiqa.records import Question
from vlm_classdata.answers import parse_options
from vlm_classdata.atomic import write_bytes_atomic
from vlm_classdata.blind import DEFAULT_MARGIN, MIN_GROUPS, blind_accuracy, chance, mcq_items
from vlm_classdata.distractors import distractor_policy, distractor_report
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Lexicon, normalize, stopwords
from vlm_classdata.records.imagewikiqa import QualityReport
from vlm_classdata.vocabulary import ClassVocabulary

__all__ = [
    "JSON_NAME", "MARKDOWN_NAME", "MCQ_KIND", "MIN_LEARNED", "blind_baselines", "cross_class_duplicates",
    "distinct_key", "is_builders_mcq", "leak_check", "learned_baselines", "mcq_class_list", "mcq_quality_report",
    "mcq_report_markdown", "questions_from_benchmark", "quality_report", "read_builders_mcq", "report_markdown",
    "write_report",
]

JSON_NAME = "quality_report.json"
MARKDOWN_NAME = "quality_report.md"
VERIFICATION_KEY = "text_only_accuracy_without_name"
NONE = "(none)"
MIN_LEARNED = 50
"""Fewest questions (of at least two classes) the learned blind solvers are trained and reported on."""
EXAMPLES = 5


def _r(x: float) -> float:
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
        "random": _r(sum(1 / len(q.options) for q in questions if q.options) / n) if n else 0.0,
        "longest": _r(blind_longest_accuracy(questions)),
        "shortest": _r(blind_shortest_accuracy(questions)),
        "letter_prior": {"letter": top, "accuracy": _r(counts[top] / n) if top else 0.0},
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


def _counts(values: Sequence[str]) -> dict[str, int]:
    c = Counter(v or NONE for v in values)
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def _target(value: Any, target: Any, passed: bool) -> dict[str, Any]:
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
        "letters_balanced": _target(spread, goals["max_letter_spread"], spread <= goals["max_letter_spread"]),
        "longest": _target(baselines["longest"], goals["max_longest"],
                           baselines["longest"] <= goals["max_longest"] + 1e-9),
    }
    learned_block = (learned_baselines(questions, seed=seed) if learned
                     else {"skipped": "not requested (learned=False)"})
    if "solvers" in learned_block:
        best = max(v["accuracy"] for v in learned_block["solvers"].values())
        limit = goals.get("max_learned", round(learned_block["chance"] + DEFAULT_MARGIN, 6))
        checks["learned_blind"] = _target(best, limit, best <= limit + 1e-9)
    leak_block = leak_check(questions, lexicon)
    dup_block = cross_class_duplicates(questions)
    n_leaks = leak_block["questions"] + (leaks or 0)
    n_dups = dup_block["questions"] + (duplicates or 0)
    checks["no_leaks"] = _target(n_leaks, 0, n_leaks == 0)
    checks["no_duplicates"] = _target(n_dups, 0, n_dups == 0)
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
        "by_generator": _counts([q.generator for q in questions]),
        "by_kind": _counts([q.kind for q in questions]),
        "targets": {**checks, "passes": all(c["pass"] for c in checks.values())},
        "meta": dict(meta or {}),
    }


# ----- rendering -------------------------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(row) + " |" for row in cells)]


def report_markdown(report: dict[str, Any]) -> str:
    """A readable Markdown rendering of :func:`quality_report`'s dict (overview, targets, letters,
    baselines, generators/kinds, rejections, meta); a builders MCQ report renders with
    :func:`mcq_report_markdown`."""
    if report.get("kind") == MCQ_KIND:
        return mcq_report_markdown(report)
    r = report
    qpc = r["questions_per_class"]
    b = r["blind_baselines"]
    t = r["targets"]
    lines = ["# Quality report", "", "## Overview", ""]
    overview = [("questions", r["n_questions"]), ("distinct questions", r["distinct_questions"]),
                ("classes", r["classes"]),
                ("questions per class (min / median / max)", f"{qpc['min']} / {qpc['median']} / {qpc['max']}"),
                ("options per question", ", ".join(f"{k}: {v}" for k, v in r["options_per_question"].items())
                 or "n/a"),
                ("leaks found by the build", "not checked" if r["leaks"] is None else r["leaks"]),
                ("duplicates found by the build", "not checked" if r["duplicates"] is None else r["duplicates"])]
    if r.get("leak_check") is not None:
        lc, dc = r["leak_check"], r["cross_class_duplicates"]
        overview += [("questions naming their class (name / head word / in the answer)",
                      f"{lc['questions']} ({lc['class_name']} / {lc['head_word']} / {lc['in_answer']})"),
                     ("questions repeating another class's question word for word (same answer)",
                      f"{dc['questions']} ({dc['same_answer']})")]
    lines += _table(["", "value"], overview)
    lines += ["", f"## Targets: {'PASS' if t['passes'] else 'FAIL'}", ""]
    rows = []
    for name, c in t.items():
        if name == "passes":
            continue
        value = _pct(c["value"]) if isinstance(c["value"], float) else c["value"]
        target = _pct(c["target"]) if isinstance(c["target"], float) else c["target"]
        op = "≤" if name in ("letters_balanced", "longest", "learned_blind") else "="
        rows.append((name, value, f"{op} {target}", "pass" if c["pass"] else "FAIL"))
    lines += _table(["target", "value", "goal", "result"], rows)
    lines += ["", "## Correct letters", ""]
    lines += _table(["letter", "questions", "share"],
                    [(x, c, _pct(c / r["n_questions"] if r["n_questions"] else 0.0))
                     for x, c in r["letters"].items()])
    lines += ["", "## Blind baselines (never reading the question)", ""]
    prior = b["letter_prior"]
    base = [("random guess (mean 1/k)", _pct(b["random"])), ("longest option", _pct(b["longest"])),
            ("shortest option", _pct(b["shortest"])),
            (f"always the most frequent letter ({prior['letter'] or 'n/a'})", _pct(prior["accuracy"]))]
    if r.get("text_only_llm") is not None:
        base.append(("text-only LLM, class name withheld", _pct(r["text_only_llm"]["accuracy_without_name"])))
    lines += _table(["strategy", "accuracy"], base)
    lb = r.get("learned_baselines")
    if lb is not None:
        lines += ["", "## Learned blind solvers (question and options only, held-out classes)", ""]
        if "solvers" in lb:
            lines += [f"Trained on {lb['folds'] - 1} of {lb['folds']} class-grouped folds of {lb['n']} questions "
                      f"({lb['classes']} classes), tested on the held-out fold; chance {_pct(lb['chance'])}.", ""]
            lines += _table(["solver", "accuracy", "95% CI (bootstrap over classes)"],
                            [(name, _pct(v["accuracy"]), f"{_pct(v['ci95'][0])} – {_pct(v['ci95'][1])}")
                             for name, v in lb["solvers"].items()])
        else:
            lines.append(f"not computed: {lb['skipped']}")
    lc = r.get("leak_check")
    if lc and lc["examples"]:
        lines += ["", "## Leak examples", ""]
        lines += _table(["question", "class", "found"],
                        [(e["qid"], e["class_name"], ", ".join(e["found"])) for e in lc["examples"]])
    for title, key in (("By generator", "by_generator"), ("By kind", "by_kind")):
        lines += ["", f"## {title}", ""]
        lines += _table([key.split("_", 1)[1], "questions"], list(r[key].items()))
    rej = r["rejections"]
    lines += ["", f"## Rejections ({rej['total']} in all)", ""]
    lines += (_table(["reason", "count"], list(rej["by_reason"].items())) if rej["by_reason"]
              else ["none recorded"])
    if r.get("meta"):
        lines += ["", "## Build", ""]
        lines += _table(["", "value"], [(k, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
                                        for k, v in r["meta"].items()])
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``quality_report.json`` (indented, trailing newline) and ``quality_report.md`` into ``out_dir``
    (created when missing), each atomically; return their paths."""
    out = Path(out_dir)
    json_path, md_path = out / JSON_NAME, out / MARKDOWN_NAME
    QualityReport.model_validate(report).write(json_path)
    write_bytes_atomic(md_path, report_markdown(report).encode("utf-8"))
    return json_path, md_path


# ----- reading benchmarks back -----------------------------------------------------------------------------
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


# ----- builders MCQ outputs --------------------------------------------------------------------------------
MCQ_KIND = "builders_mcq"
"""``report["kind"]`` of a report on a builders MCQ output (reports on question sets have no ``kind``)."""
MCQ_MARKERS = ("option_class_ids", "distractor_mode")
"""Fields only builders MCQ rows carry (:meth:`builders.formats.mcq.MCQExample.distractor_fields`)."""
MCQ_HF_COLUMNS = ("id", "messages", "class_id", "option_class_ids")
"""The mcq_hf parquet columns the report reads (``image`` is never read)."""
OPTIONS_ONLY = ("every stem is a template shared by several classes, so the learned solvers effectively "
                "see the options only")
NO_ANSWER_PRIOR = ("off, with the hashed n-grams (option identity): every option is a class name and the "
                   "answer of its own class's items only, so under class-held-out folds the correct option "
                   "would be the one never seen as an answer")
MAX_LEARNED_ITEMS = 5000
"""Largest number of items the learned solvers are trained on; larger outputs use a seeded sample."""


def is_builders_mcq(path: str | Path) -> bool:
    """Whether ``path`` is a builders MCQ output: an ``mcq_hf`` folder (``data/*.parquet``), or a JSONL whose
    first row carries one of :data:`MCQ_MARKERS`, or a ``category`` ending in ``_mcq`` without ImageWikiQA's
    ``wiki``/``question_key``. Anything else (the released ImageWikiQA rows, ours) is a question set."""
    p = Path(path)
    if p.is_dir():
        return any((p / "data").glob("*.parquet"))
    for _, row in jsonl_rows(p, "benchmark"):
        if not isinstance(row, dict):
            return False
        if any(k in row for k in MCQ_MARKERS):
            return True
        return (str(row.get("category", "")).endswith("_mcq") and "wiki" not in row and "question_key" not in row)
    return False


def _check_mcq_row(row: Any) -> str | None:
    """Why a builders MCQ row cannot be reported on (a skip reason), or None."""
    if not isinstance(row, dict):
        return "not_an_object"
    options = row.get("options")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
        return "fewer_than_2_options"
    index = row.get("answer_index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(options):
        return "answer_index_not_an_option"
    if not str(row.get("class_id") or ""):
        return "no_class_id"
    ids = row.get("option_class_ids")
    if ids is not None and (not isinstance(ids, list) or len(ids) != len(options)):
        return "option_class_ids_not_one_per_option"
    label = row.get("label")
    if len(options) <= MAX_LETTERS and isinstance(label, str) and len(label) == 1 and label != letters(
            len(options))[index]:
        return "label_disagrees_with_answer_index"
    return None


def _hf_row(row: dict) -> dict:
    """An mcq_hf parquet row as the JSONL row the builders write (options parsed from the user text)."""
    turns = {m.get("role"): m.get("content") or [] for m in row.get("messages") or []}
    text = next((c.get("text") for c in turns.get("user", []) if c.get("type") == "text"), None) or ""
    answer = next((c.get("text") for c in turns.get("assistant", []) if c.get("type") == "text"), None) or ""
    stem, options = parse_options(text)
    if not options:  # more than 26 options: "- name" lines, the answer is the name
        options = [ln[2:].strip() for ln in text.split("\n") if ln.startswith("- ")]
    if len(options) <= MAX_LETTERS and answer in letters(len(options)):
        index: int | None = letters(len(options)).index(answer)
    else:
        index = options.index(answer) if answer in options else None
    return {"question_id": row.get("id"), "text": text, "label": answer, "class_id": row.get("class_id"),
            "class_name": row.get("class_name"), "options": options, "answer_index": index,
            **{k: row[k] for k in ("option_class_ids", "distractor_mode", "distractor_pool_size") if k in row}}


def _hf_split_files(folder: Path, split: str | None) -> tuple[str, list[Path]]:
    files = sorted((folder / "data").glob("*.parquet"))
    splits = sorted({f.name.split("-", 1)[0] for f in files})
    if split is None:
        if len(splits) > 1 and "val" not in splits:
            raise UserError(f"{folder}: splits {', '.join(splits)}; choose one with --split")
        split = "val" if "val" in splits else splits[0]
    chosen = [f for f in files if f.name.split("-", 1)[0] == split]
    if not chosen:
        raise UserError(f"{folder}: no split {split!r} (it has {', '.join(splits)})")
    return split, chosen


def read_builders_mcq(path: str | Path, split: str | None = None) -> tuple[list[dict], Counter]:
    """The usable rows of a builders MCQ output and ``reason → count`` of the rows skipped
    (:func:`_check_mcq_row` reasons). ``path``: ``mcq/<split>.jsonl``, or an ``mcq_hf`` folder (``split``:
    which of its splits; default ``val`` when present, else its only one). Malformed JSON or an unreadable
    parquet file is one :class:`UserError` line naming the file."""
    p = Path(path)
    skipped: Counter = Counter()
    rows: list[dict] = []
    if p.is_dir():
        import pyarrow as pa  # heavy; only an mcq_hf folder needs it
        import pyarrow.parquet as pq

        _, files = _hf_split_files(p, split)
        raw = []
        for f in files:
            try:
                names = pq.read_schema(f).names
                missing = [c for c in MCQ_HF_COLUMNS if c not in names]
                if missing:
                    raise UserError(f"{f}: not an mcq_hf file (no column {', '.join(missing)})")
                table = pq.read_table(f, columns=[c for c in names if c != "image"])
            except (pa.ArrowException, OSError) as exc:
                raise UserError(f"{f}: cannot read parquet ({exc})") from None
            raw += [_hf_row(r) for r in table.to_pylist()]
    else:
        raw = [row for _, row in jsonl_rows(p, "benchmark")]
    for row in raw:
        reason = _check_mcq_row(row)
        if reason:
            skipped[reason] += 1
        else:
            rows.append(row)
    return rows, skipped


def mcq_class_list(path: str | Path, classes: str | None = None) -> tuple[ClassVocabulary, str]:
    """The class list the distractors are checked against, and where it came from: ``classes`` when given
    (a bundled name or a file), else ``classes.json`` of the build (beside ``mcq/`` or ``mcq_hf/``), else
    the bundled ``imagenet1k``."""
    if classes:
        return ClassVocabulary.load(classes), f"--classes {classes}"
    p = Path(path)
    beside = (p.parent if p.is_dir() else p.parent.parent) / "classes.json"
    if beside.is_file():
        return ClassVocabulary.load(beside), str(beside)
    return ClassVocabulary.bundled("imagenet1k"), "imagenet1k (bundled; no classes.json beside the build)"


def _position(k: int, i: int) -> str:
    """The label of answer position ``i`` of ``k``: its letter, or its 1-based number beyond 26 options."""
    return letters(k)[i] if k <= MAX_LETTERS else str(i + 1)


def _mcq_positions(items: Sequence[Question]) -> tuple[dict[str, int], int, dict[str, dict[str, int]]]:
    by_k: dict[int, Counter] = defaultdict(Counter)
    for q in items:
        by_k[len(q.options)][_position(len(q.options), q.answer_index)] += 1
    per_k = {str(k): {_position(k, i): by_k[k].get(_position(k, i), 0) for i in range(k)} for k in sorted(by_k)}
    spread = max((max(c.values()) - min(c.values()) for c in per_k.values()), default=0)
    overall: Counter = Counter()
    for c in by_k.values():
        overall.update(c)
    width = max(by_k, default=0)
    return {_position(width, i): overall.get(_position(width, i), 0) for i in range(width)}, spread, per_k


def _mcq_blind(items: Sequence[Question], letter_counts: dict[str, int]) -> dict[str, Any]:
    n = len(items)
    top = min(letter_counts, key=lambda x: (-letter_counts[x], list(letter_counts).index(x)), default=None)
    return {"n": n, "random": _r(sum(1 / len(q.options) for q in items) / n) if n else 0.0,
            "longest": _r(blind_longest_accuracy(items)), "shortest": _r(blind_shortest_accuracy(items)),
            "letter_prior": {"letter": top, "accuracy": _r(letter_counts[top] / n) if n and top else 0.0}}


def _sample(items: list[Question], cap: int, seed: int) -> list[Question]:
    if len(items) <= cap:
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), cap))
    return [items[i] for i in keep]


def mcq_quality_report(rows: Sequence[dict], vocab: ClassVocabulary, *, skipped: Counter | None = None,
                       class_list: str = "", meta: dict | None = None, targets: dict | None = None,
                       learned: bool = True, max_learned: int = MAX_LEARNED_ITEMS, seed: int = 0) -> dict[str, Any]:
    """The quality report of a builders MCQ output (one item per row; see the module docstring).

    Reports size, classes, distractor modes, stems, answer letters, blind baselines (random, longest,
    shortest, letter prior), the learned blind solvers (:func:`learned_baselines`; over a seeded sample of
    ``max_learned`` items when there are more) and :func:`vlm_classdata.distractors.distractor_report` recomputed
    against ``vocab`` (``class_list``: where it came from). Targets: ``letters_balanced`` (max − min ≤ 1 per
    option count), ``learned_blind`` (best solver ≤ chance + 5 points), ``no_second_correct`` (0 items with
    an option that is also correct) and ``all_options_checked`` (every option and answer in ``vocab``: else
    the second-correct count is incomplete); ``targets`` overrides ``max_letter_spread``/``max_learned``.
    ``learned_blind`` fails with value None when the solvers could not be trained (too few items or classes):
    a shortcut that was not measured is not ruled out."""
    goals = {"max_letter_spread": 1, **(targets or {})}
    items = [Question(qid=str(r.get("question_id") or i), class_id=str(r["class_id"]),
                      class_name=str(r.get("class_name") or r["class_id"]),
                      question=question_stem(str(r.get("text") or "")), options=list(r["options"]),
                      answer_index=r["answer_index"], kind=str(r.get("distractor_mode") or ""))
             for i, r in enumerate(rows)]
    per_class = Counter(q.class_id for q in items)
    sizes = sorted(per_class.values())
    overall, spread, per_k = _mcq_positions(items)
    stem_classes: dict[str, set[str]] = defaultdict(set)
    for q in items:
        stem_classes[normalize(q.question)].add(q.class_id)
    options_only = len(per_class) > 1 and all(len(c) > 1 for c in stem_classes.values())
    checks = {"letters_balanced": _target(spread, goals["max_letter_spread"], spread <= goals["max_letter_spread"])}
    sample = _sample(items, max_learned, seed)
    learned_block = (learned_baselines(sample, seed=seed, answer_prior=False) if learned
                     else {"skipped": "not requested (learned=False)"})
    limit = goals.get("max_learned", round(chance(mcq_items(sample)) + DEFAULT_MARGIN, 6))
    checks["learned_blind"] = _target(None, limit, False)  # not measured is not passed
    if "solvers" in learned_block:
        learned_block["sample"] = f"{len(sample)} of {len(items)} items" if len(sample) < len(items) else "all"
        learned_block["sees"] = OPTIONS_ONLY if options_only else "question stem and options"
        learned_block["answer_prior"] = NO_ANSWER_PRIOR
        best = max(v["accuracy"] for v in learned_block["solvers"].values())
        checks["learned_blind"] = _target(best, limit, best <= limit + 1e-9)
    dist = distractor_report(rows, distractor_policy(vocab))
    dist["class_list"] = class_list
    checks["no_second_correct"] = _target(dist["items_with_second_correct"], 0, dist["items_with_second_correct"] == 0)
    unchecked = dist["unknown_options"] + dist["answer_missing"]
    checks["all_options_checked"] = _target(unchecked, 0, unchecked == 0)
    skip = Counter(skipped or {})
    return {
        "kind": MCQ_KIND,
        "n_items": len(items),
        "skipped": {"total": sum(skip.values()), "by_reason": dict(sorted(skip.items(), key=lambda kv: (-kv[1], kv[0])))},
        "classes": len(per_class),
        "items_per_class": {"min": sizes[0] if sizes else 0, "median": statistics.median(sizes) if sizes else 0,
                            "max": sizes[-1] if sizes else 0},
        "options_per_item": {k: sum(per_k[k].values()) for k in per_k},
        "distractor_modes": _counts([q.kind for q in items]),
        "stems": {"distinct": len(stem_classes), "options_only": options_only},
        "letters": overall,
        "letters_by_options": per_k,
        "blind_baselines": _mcq_blind(items, overall),
        "learned_baselines": learned_block,
        "distractors": dist,
        "targets": {**checks, "passes": all(c["pass"] for c in checks.values())},
        "meta": dict(meta or {}),
    }


def _targets_table(t: dict[str, Any], at_most: tuple[str, ...]) -> list[str]:
    rows = []
    for name, c in t.items():
        if name == "passes":
            continue
        value = _pct(c["value"]) if isinstance(c["value"], float) else c["value"]
        value = "not measured" if value is None else value
        target = _pct(c["target"]) if isinstance(c["target"], float) else c["target"]
        op = "≤" if name in at_most else "="
        rows.append((name, value, f"{op} {target}", "pass" if c["pass"] else "FAIL"))
    return _table(["target", "value", "goal", "result"], rows)


def mcq_report_markdown(report: dict[str, Any]) -> str:
    """A readable Markdown rendering of :func:`mcq_quality_report`'s dict."""
    r = report
    ipc, b, t, d, lb = (r["items_per_class"], r["blind_baselines"], r["targets"], r["distractors"],
                        r["learned_baselines"])
    lines = ["# Quality report: builders MCQ", "", "## Overview", ""]
    skip = r["skipped"]
    lines += _table(["", "value"], [
        ("items", r["n_items"]),
        ("rows skipped", f"{skip['total']}" + (" (" + ", ".join(f"{k}: {v}" for k, v in skip["by_reason"].items())
                                                + ")" if skip["total"] else "")),
        ("classes", r["classes"]),
        ("items per class (min / median / max)", f"{ipc['min']} / {ipc['median']} / {ipc['max']}"),
        ("options per item", ", ".join(f"{k}: {v}" for k, v in r["options_per_item"].items()) or "n/a"),
        ("distractor modes", ", ".join(f"{k}: {v}" for k, v in r["distractor_modes"].items()) or "n/a"),
        ("distinct question stems", f"{r['stems']['distinct']}" + (" (shared by classes: blind solvers see the "
                                                                    "options only)" if r["stems"]["options_only"]
                                                                    else "")),
        ("class list checked against", d["class_list"] or "n/a")])
    lines += ["", f"## Targets: {'PASS' if t['passes'] else 'FAIL'}", ""]
    lines += _targets_table(t, ("letters_balanced", "learned_blind"))
    lines += ["", "## Distractors (relation to the answer, recomputed from the class list)", ""]
    total = sum(d["relations"].values())
    lines += _table(["relation", "options", "share"],
                    [(k, v, _pct(v / total if total else 0.0)) for k, v in d["relations"].items()])
    lines += ["", f"Items with a second correct option: {d['items_with_second_correct']}; options not in the "
                  f"class list: {d['unknown_options']}; items whose options lack the answer: {d['answer_missing']}."]
    if d["examples"]:
        lines += [""] + _table(["class", "option", "why it is also correct"],
                               [(e["class_id"], e["option"], e["reason"]) for e in d["examples"]])
    lines += ["", "## Correct letters", ""]
    lines += _table(["letter", "items", "share"],
                    [(x, c, _pct(c / r["n_items"] if r["n_items"] else 0.0)) for x, c in r["letters"].items()])
    lines += ["", "## Blind baselines (never seeing the image)", ""]
    prior = b["letter_prior"]
    lines += _table(["strategy", "accuracy"], [
        ("random guess (mean 1/k)", _pct(b["random"])), ("longest option", _pct(b["longest"])),
        ("shortest option", _pct(b["shortest"])),
        (f"always the most frequent letter ({prior['letter'] or 'n/a'})", _pct(prior["accuracy"]))])
    lines += ["", "## Learned blind solvers (question text and options only, held-out classes)", ""]
    if "solvers" in lb:
        lines += [f"Trained on {lb['folds'] - 1} of {lb['folds']} class-grouped folds of {lb['n']} items "
                  f"({lb['classes']} classes; sample: {lb['sample']}), tested on the held-out fold; chance "
                  f"{_pct(lb['chance'])}. They see: {lb['sees']}. Answer-prior feature: {lb['answer_prior']}.",
                  ""]
        lines += _table(["solver", "accuracy", "95% CI (bootstrap over classes)"],
                        [(name, _pct(v["accuracy"]), f"{_pct(v['ci95'][0])} – {_pct(v['ci95'][1])}")
                         for name, v in lb["solvers"].items()])
    else:
        lines.append(f"not computed: {lb['skipped']}")
    if r.get("meta"):
        lines += ["", "## Input", ""]
        lines += _table(["", "value"], [(k, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
                                        for k, v in r["meta"].items()])
    return "\n".join(lines) + "\n"
