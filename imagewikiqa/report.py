"""The quality report of an ImageWikiQA-style question set: size, coverage, letter balance, blind baselines,
text-only LLM baseline, leaks, duplicates, rejections and pass/fail targets.

:func:`quality_report` builds a JSON-able dict, :func:`report_markdown` renders it as Markdown tables (for a
README or dataset card), :func:`write_report` writes both atomically. :func:`questions_from_benchmark`
reads any benchmark JSONL the evaluator reads (the released ImageWikiQA rows and ours) back into
questions, one per distinct question, so the same report runs on the released file.

Definitions:

* distinct question: class (``class_id``), the question stem and the correct option's text, normalised with
  :func:`core.lexicon.normalize`.
* letters: counts of the correct letter over all questions; ``letters_balanced`` is the largest
  ``max − min`` of those counts over the letters of each option count ``k`` (target ≤ 1).
* blind baselines (:func:`blind_baselines`): ``random`` is the mean of ``1/k``; ``longest``/``shortest``
  the expected accuracy of picking the longest/shortest option, ties broken at random
  (:mod:`imagewikiqa.debias`); ``letter_prior`` the accuracy of always answering the most frequent correct
  letter (ties: the earliest letter).
* text-only LLM baseline: ``verification["text_only_accuracy_without_name"]`` (from
  ``verify_text.verification_summary``), when given.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from builders.formats.mcq import letters
from core.atomic import write_bytes_atomic
from core.lexicon import normalize
from imagewikiqa.debias import DEFAULT_MAX_LONGEST, blind_longest_accuracy, blind_shortest_accuracy
from imagewikiqa.evaluate import load_benchmark, question_stem
from imagewikiqa.records import Question

__all__ = [
    "JSON_NAME", "MARKDOWN_NAME", "blind_baselines", "distinct_key", "questions_from_benchmark",
    "quality_report", "report_markdown", "write_report",
]

JSON_NAME = "quality_report.json"
MARKDOWN_NAME = "quality_report.md"
VERIFICATION_KEY = "text_only_accuracy_without_name"
NONE = "(none)"


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
                   meta: dict | None = None) -> dict[str, Any]:
    """The quality report of a final question set (see the module docstring for definitions).

    ``rejections``: reason → count over the whole build; ``verification``: the text-only verification
    summary; ``leaks``/``duplicates``: counts found on the final set (reported, and targets of 0 when
    given); ``targets``: overrides of ``{"max_longest": 0.30, "max_letter_spread": 1}``; ``meta``: copied
    as is (generator settings, sources, seed...). The ``targets`` block holds ``letters_balanced``,
    ``longest`` (and ``no_leaks``/``no_duplicates`` when counted), each ``{value, target, pass}``, and
    ``passes`` (all of them)."""
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
    if leaks is not None:
        checks["no_leaks"] = _target(leaks, 0, leaks == 0)
    if duplicates is not None:
        checks["no_duplicates"] = _target(duplicates, 0, duplicates == 0)
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
        "text_only_llm": text_only,
        "leaks": leaks,
        "duplicates": duplicates,
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
    baselines, generators/kinds, rejections, meta)."""
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
                ("leaks in the final set", "not checked" if r["leaks"] is None else r["leaks"]),
                ("duplicates in the final set", "not checked" if r["duplicates"] is None else r["duplicates"])]
    lines += _table(["", "value"], overview)
    lines += ["", f"## Targets: {'PASS' if t['passes'] else 'FAIL'}", ""]
    rows = []
    for name, c in t.items():
        if name == "passes":
            continue
        value = _pct(c["value"]) if isinstance(c["value"], float) else c["value"]
        target = _pct(c["target"]) if isinstance(c["target"], float) else c["target"]
        op = "≤" if name in ("letters_balanced", "longest") else "="
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
    write_bytes_atomic(json_path, (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
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
