"""The build's adversarial filter: drop the questions learned blind solvers answer from the text alone
(:func:`imagewikiqa.debias.filter_predictable`), summarised for the manifest, the report and the log."""

from __future__ import annotations

from collections import Counter
from typing import Any

from imagewikiqa.debias import filter_predictable
from imagewikiqa.quality import MIN_LEARNED
from imagewikiqa.records import Question
from vlm_classdata.blind import MIN_GROUPS
from vlm_classdata.provenance import package_versions


def adversarial_fingerprint(adversarial: bool) -> list[Any]:
    """What decides the adversarial filter's output: on/off and, when on, the versions of the libraries it runs on."""
    if not adversarial:
        return ["no-adversarial"]
    return ["adversarial", package_versions(("scikit-learn", "numpy", "rapidfuzz"))]


def adversarial_stage(questions: list[Question], seed: int) -> tuple[list[Question], Counter, dict[str, Any]]:
    """:func:`imagewikiqa.debias.filter_predictable` on ``questions`` and a JSON summary of it: solver
    accuracies on held-out classes before (first round) and after (kept set, with 95% intervals), target,
    whether it was met, why it stopped, questions dropped and rounds. Below
    :data:`imagewikiqa.quality.MIN_LEARNED` questions (or two classes) the solvers cannot be measured: the
    questions are kept and the summary says ``skipped`` and why."""
    classes = len({q.class_id for q in questions})
    if len(questions) < MIN_LEARNED or classes < MIN_GROUPS:
        return list(questions), Counter(), {
            "enabled": True, "skipped": f"too few questions to train the solvers on ({len(questions)} in {classes} "
                                        f"classes; needs {MIN_LEARNED} in {MIN_GROUPS})"}
    kept, reasons, result = filter_predictable(questions, seed=seed)
    after = result.final.get("solvers") or {}
    return kept, reasons, {
        "enabled": True, "questions_before": len(questions), "questions_after": len(kept),
        "dropped": len(result.dropped), "rounds": len(result.rounds), "chance": result.final.get("chance"),
        "target": result.target, "target_met": result.target_met, "stop": result.stop,
        "before": dict(result.rounds[0]["accuracy"]) if result.rounds else {},
        "after": {name: v["accuracy"] for name, v in after.items()},
        "after_ci95": {name: v["ci95"] for name, v in after.items()}, "seconds": result.seconds}


def adversarial_line(summary: dict[str, Any]) -> str:
    """The adversarial filter's outcome in one line (the solvers before → after)."""
    if not summary.get("enabled"):
        return "adversarial filter off (--no-adversarial)"
    if "skipped" in summary:
        return f"adversarial filter skipped: {summary['skipped']}"

    def accs(d: dict[str, float]) -> str:
        return ", ".join(f"{name} {acc:.1%}" for name, acc in sorted(d.items())) or "n/a"

    return (f"learned blind solvers on held-out classes: {accs(summary['before'])} → {accs(summary['after'])} "
            f"(target ≤ {summary['target']:.1%}, {'met' if summary['target_met'] else 'NOT met: ' + summary['stop']}; "
            f"{summary['dropped']} of {summary['questions_before']} dropped in {summary['rounds']} round(s))")
