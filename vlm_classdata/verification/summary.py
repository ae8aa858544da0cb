"""What a finished pass reports: the summary ``OUT/<pass>.<alias>.json``, its one-line form, the ``runs.jsonl`` log
row, and the table of the ``summary`` command."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl

from vlm_classdata.answers.verdicts import VERDICT_KINDS
from vlm_classdata.errors import UserError
from vlm_classdata.provenance import package_versions
from vlm_classdata.verification.jobs import PassJob
from vlm_classdata.verification.per_class import PER_CLASS_PASSES, class_accuracy

TIMINGS = ("answered_now", "cached", "seconds", "items_per_s")
"""Summary fields that vary run to run: returned and logged in ``runs.jsonl``, never written to the JSON."""


CREDIT_SCHEME: dict[str, Any] = {
    "description": "credit per label_check item by verdict: exact 1, more_specific 1, more_generic 0.5 when "
                   "verdict_steps <= 2 else 0, every other verdict 0; accuracy_credit is the mean over ok items",
    "exact": 1.0, "more_specific": 1.0, "more_generic": 0.5, "more_generic_max_steps": 2,
}
"""How ``accuracy_credit`` scores hierarchical verdicts (written into the summary as ``credit_scheme``)."""


def verdict_credit(kind: str | None, steps: int | None) -> float:
    """The credit of one verdict under :data:`CREDIT_SCHEME`."""
    if kind == "more_generic":
        ok = steps is not None and steps <= CREDIT_SCHEME["more_generic_max_steps"]
        return CREDIT_SCHEME["more_generic"] if ok else 0.0
    return float(CREDIT_SCHEME.get(kind, 0.0)) if kind in VERDICT_KINDS else 0.0


def verdict_summary(ok: pl.DataFrame) -> dict[str, Any]:
    """Over the ok rows of a sidecar with a ``verdict`` column: ``verdicts`` (rate per kind, every kind in
    :data:`~vlm_classdata.answers.VERDICT_KINDS` order), ``verdicts_by_class`` (class id → {kind: count}),
    ``accuracy_credit`` and ``credit_scheme``."""
    n = ok.height
    kinds = ok["verdict"].to_list()
    counts = Counter(kinds)
    by_class: dict[str, Counter] = {}
    for cid, kind in zip(ok["class_id"].to_list(), kinds, strict=True):
        by_class.setdefault(cid, Counter())[kind] += 1
    credit = [verdict_credit(k, s) for k, s in zip(kinds, ok["verdict_steps"].to_list(), strict=True)]
    return {
        "verdicts": {k: round(counts[k] / n, 6) if n else None for k in VERDICT_KINDS},
        "verdicts_by_class": {c: {k: by_class[c][k] for k in VERDICT_KINDS if by_class[c][k]}
                              for c in sorted(by_class)},
        "accuracy_credit": round(sum(credit) / n, 6) if n else None,
        "credit_scheme": CREDIT_SCHEME,
    }


def stable_summary(summary: dict) -> dict:
    """The summary without timings (those vary run to run and go to runs.jsonl)."""
    return {k: v for k, v in summary.items() if k not in TIMINGS}


def summarize(frame: pl.DataFrame, job: PassJob, classes: dict[str, str | None] | None = None) -> dict:
    """Counts and headline metrics of a sidecar: ok/errors by reason, accuracy, pass-specific extras, and
    per-class accuracy (``classes``: sample id → class id, for sidecars without a ``class_id`` column)."""
    ok = frame.filter(pl.col("status") == "ok")
    errors = Counter(frame.filter(pl.col("status") == "error")["error"].to_list())
    n_ok = ok.height
    summary: dict[str, Any] = {
        "pass": job.pass_name, "model": job.alias, "model_path": job.model, "complete": True,
        "items": frame.height, "ok": n_ok, "errors": dict(sorted(errors.items())),
        "correct": int(ok["correct"].sum()) if n_ok else 0,
        "accuracy": round(float(ok["correct"].mean()), 6) if n_ok else None,
        "settings": asdict(job.settings),
        "tool": package_versions(("torch", "transformers", "polars", "rapidfuzz", "nltk")),
    }
    if "parse_how" in frame.columns:
        summary["parse_how"] = dict(sorted(Counter(ok["parse_how"].to_list()).items()))
    if "match_how" in frame.columns:
        summary["match_how"] = dict(sorted(Counter(ok["match_how"].to_list()).items()))
    if "verdict" in frame.columns:
        summary.update(verdict_summary(ok))
    if "rank" in frame.columns and n_ok:
        summary["top5_accuracy"] = round(float(ok["in_top5"].mean()), 6)
        summary["mean_rank"] = round(float(ok["rank"].mean()), 3)
        summary["median_rank"] = float(ok["rank"].median())
        summary["top1_by_mean_accuracy"] = round(float((ok["rank_mean"] == 1).mean()), 6)
    summary.update(multi_label_summary(frame))
    if job.pass_name in PER_CLASS_PASSES:
        summary["per_class"] = class_accuracy(frame, classes).as_dict()
    return summary


def multi_label_summary(frame: pl.DataFrame) -> dict[str, Any]:
    """``accuracy_any`` (right for any accepted class) over the answered items with a non-empty accepted set,
    ``correct_any`` and their count ``multi_label_items``; empty without multi-label truth."""
    if "accepted_class_ids" not in frame.columns or frame["accepted_class_ids"].null_count() == frame.height:
        return {}
    scored = frame.filter((pl.col("status") == "ok") & pl.col("correct_any").is_not_null())
    return {"multi_label_items": scored.height, "correct_any": int(scored["correct_any"].sum()),
            "accuracy_any": round(float(scored["correct_any"].mean()), 6) if scored.height else None}


def summary_line(s: dict, out: Path) -> str:
    """The line ``verify run`` prints for one finished (or shard-finished) pass × model."""
    head = f"{s['pass']}[{s['model']}]"
    if not s.get("complete"):
        return f"{head}: shard done ({s['answered_now']} answered now, {s['remaining']} left for other shards)"
    acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
    if s.get("accuracy_credit") is not None:
        acc += f" (credit {s['accuracy_credit']:.3f})"
    errors = ", ".join(f"{k}={v}" for k, v in s["errors"].items()) or "none"
    extra = f", top-5 {s['top5_accuracy']:.3f}, mean rank {s['mean_rank']}" if "top5_accuracy" in s else ""
    if "accuracy_any" in s:
        any_acc = "n/a" if s["accuracy_any"] is None else f"{s['accuracy_any']:.3f}"
        extra += f", any-label accuracy {any_acc} over {s['multi_label_items']} items"
    return (f"{head}: {s['items']} items, {s['ok']} ok, accuracy {acc}{extra}; errors: {errors}; "
            f"answered now {s['answered_now']}, from cache {s['cached']} → {out / s['sidecar']}")


def log_run(out: Path, summary: dict, seconds: float) -> None:
    """Append one row to ``OUT/runs.jsonl``: when, how long, the command line and the summary's counts."""
    entry = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 3),
             "argv": sys.argv, **{k: summary.get(k) for k in ("pass", "model", "answered_now", "cached",
                                                              "items_per_s", "complete")}}
    with open(out / "runs.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")


def read_summaries(folder: Path | None) -> list[dict]:
    """The pass summaries (``<pass>.<alias>.json``) of a sidecar folder, by file name; an unreadable one is
    skipped with a line on stderr, none at all is a :class:`UserError`."""
    if folder is None:
        raise UserError("give --build or --verify-dir")
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            s = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            print(f"skipped {path}: not valid JSON ({exc})", file=sys.stderr)
            continue
        if isinstance(s, dict) and "pass" in s:
            rows.append(s)
    if not rows:
        raise UserError(f"no readable pass results in {folder}")
    return rows


def summary_table(rows: list[dict]) -> list[str]:
    """The ``summary`` command's table: a header and one line per pass × model (strict ``accuracy``, and
    ``credit``: the hierarchical-verdict accuracy of label_check under :data:`CREDIT_SCHEME`, "-" elsewhere)."""
    lines = [f"{'pass':<12} {'model':<24} {'items':>7} {'ok':>7} {'accuracy':>9} {'credit':>7}  errors"]
    for s in rows:
        acc = "n/a" if s.get("accuracy") is None else f"{s['accuracy']:.3f}"
        credit = "-" if s.get("accuracy_credit") is None else f"{s['accuracy_credit']:.3f}"
        errors = ", ".join(f"{k}={v}" for k, v in s.get("errors", {}).items()) or "-"
        lines.append(f"{s['pass']:<12} {s['model']:<24} {s['items']:>7} {s['ok']:>7} {acc:>9} {credit:>7}  {errors}")
    return lines
