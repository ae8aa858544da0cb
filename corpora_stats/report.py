"""The ``report`` step: a counts folder (+ optional per-class accuracy) → Markdown and self-contained HTML.

This module assembles: it reads the counts (:mod:`corpora_stats.counts_folder`) and the accuracy
(:mod:`corpora_stats.accuracy`), computes (:mod:`corpora_stats.statistics`), draws (:mod:`corpora_stats.plots`)
and renders the text from the Jinja2 templates ``templates/report.md.j2`` and ``templates/report.html.j2``
(one shared body, ``_report_body.j2``). The same inputs give byte-identical PNG, Markdown and HTML files.
"""

from __future__ import annotations

import base64
import functools
import html
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from corpora_stats.accuracy import read_accuracy
from corpora_stats.counts_folder import load_counts, report_vocabulary
from corpora_stats.plots import plot_accuracy_scatter, plot_binned, plot_extremes, plot_histogram, plot_pair
from corpora_stats.statistics import bin_label, binned_accuracy, correlate, spearman, under_exposed
from vlm_classdata.errors import UserError
from vlm_classdata.templates import template_environment

if TYPE_CHECKING:
    import numpy as np
    from jinja2 import Environment

ALL_FLAGS = ("shared", "ambiguous", "short")
SUM_MEASURE = "all corpora (sum)"
TITLE = "Class-name frequency report"
PLOT_NAME_RE = re.compile(r"(freq_extremes_[A-Za-z0-9_-]+|freq_hist|pretrain_vs_instruct|accuracy_binned|"
                          r"accuracy_scatter)\.png")


# ----- cell formatting (also the templates' filters) ---------------------------------------------------------
def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _p(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.2g}"


def _ci(d: dict) -> str:
    return f"{_fmt(d['r'])} [{_fmt(d['ci95'][0])}, {_fmt(d['ci95'][1])}]"


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(d, dict):
        out = []
        for k, v in d.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(d, (list, tuple)):
        return [(prefix, ", ".join(str(x) for x in d) or "none")]
    return [(prefix, _fmt(d))]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)


@functools.cache
def _templates() -> Environment:
    """The report's Jinja2 environment (HTML autoescaped; text escaped the way ``html.escape`` does)."""
    from jinja2 import select_autoescape  # heavy (~20 ms): only writing a report needs Jinja2, not 'count'
    from markupsafe import Markup  # heavy: as above (Jinja2's own dependency)

    env = template_environment("corpora_stats", autoescape=select_autoescape(["html.j2"]))
    env.filters.update(fmt=_fmt, h=lambda v: Markup(html.escape(str(v))),
                       md_cell=lambda v: str(v).replace("|", "\\|"), suffix=lambda v, text: f"{v}{text}")
    return env


# ----- sections ----------------------------------------------------------------------------------------------
def _pick_pair(names: list[str], pretrain: str | None, instruct: str | None) -> tuple[str, str] | None:
    for flag, given in (("--pretrain", pretrain), ("--instruct", instruct)):
        if given is not None and given not in names:
            raise UserError(f"{flag} {given!r} is not a corpus of the counts folder (have: {', '.join(names)})")
    if len(names) < 2:
        return None

    def guess(word: str, other: str | None) -> str | None:
        hits = [n for n in names if word in n.lower() and n != other]
        return hits[0] if len(hits) == 1 else None

    pre = pretrain or guess("pretrain", instruct)
    ins = instruct or guess("instruct", pre)
    rest = [n for n in names if n not in (pre, ins)]
    pre = pre or rest.pop(0)
    ins = ins or rest.pop(0)
    if pre == ins:
        raise UserError("--pretrain and --instruct name the same corpus")
    return pre, ins


def _corpora_rows(tables: dict[str, pl.DataFrame], corpus_info: dict[str, dict]) -> list[list[Any]]:
    rows = []
    for n, t in tables.items():
        info = corpus_info[n]
        skipped = info.get("skipped") or {}
        mentioned = int((t["doc_freq"] > 0).sum())
        rows.append([n, info.get("format", "?"), info.get("documents"), info.get("bytes"),
                     ", ".join(f"{k} {v:,}" for k, v in sorted(skipped.items())) or "none",
                     f"{mentioned:,} / {t.height:,}", int(t["doc_freq"].sum()), int(t["doc_freq_all"].sum()),
                     info.get("path", "?")])
    return rows


def _extremes(tables: dict[str, pl.DataFrame], freq_cols: list[str], top_k: int,
              plots: dict[str, bytes]) -> list[dict]:
    """Per corpus: its bar-chart plot and the ``top_k`` most and least frequent classes."""
    out = []
    for n, t in tables.items():
        plot = f"freq_extremes_{_safe(n)}.png"
        plots[plot] = plot_extremes(n, t, top_k)
        tr = t.with_row_index("_row")
        parts = {"most": tr.sort(["doc_freq", "_row"], descending=[True, False]).head(top_k),
                 "least": tr.sort(["doc_freq", "_row"]).head(top_k)}
        out.append({"name": n, "plot": plot, **{
            label: [[r["class_name"], r["class_id"], *[r[c] for c in freq_cols], r["flags"] or "–"]
                    for r in part.iter_rows(named=True)] for label, part in parts.items()}})
    return out


def _accuracy_section(acc_frame: pl.DataFrame, acc_info: dict, wide: pl.DataFrame, measures: dict[str, np.ndarray],
                      extra: dict[str, np.ndarray], seed: int, n_boot: int,
                      plots: dict[str, bytes]) -> tuple[dict, dict]:
    """The accuracy part of the report (template context) and of the summary."""
    have = wide["accuracy"].is_not_null().to_numpy()
    acc = wide["accuracy"].to_numpy().astype(float)
    corr_rows, corrs, binned = [], {}, {}
    for label, f in {**measures, **extra}.items():
        c = correlate(f[have], acc[have], seed=seed, n_boot=n_boot)
        corrs[label] = c
        corr_rows.append([label, c["n_classes"], _ci(c["spearman"]), _p(c["spearman"]["p"]),
                          _ci(c["pearson_log1p"]), _p(c["pearson_log1p"]["p"])])
        if label in measures:
            binned[label] = binned_accuracy(f[have], acc[have], "log")
    plots["accuracy_binned.png"] = plot_binned(binned)
    plots["accuracy_scatter.png"] = plot_accuracy_scatter([(k, measures[k][have], acc[have], corrs[k])
                                                           for k in measures])
    bin_rows = []
    for lo, hi in sorted({(b["lo"], b["hi"]) for bins in binned.values() for b in bins}):
        row: list[Any] = [bin_label(lo, hi)]
        for bins in binned.values():
            b = next((b for b in bins if (b["lo"], b["hi"]) == (lo, hi)), None)
            row.append(f"{_fmt(b['mean_accuracy'])} ({b['n_classes']})" if b else "–")
        bin_rows.append(row)
    whole = acc_frame["n"].null_count() == 0 and acc_frame["correct"].null_count() == 0
    context = {**acc_info, "classes": int(have.sum()), "mean": float(acc[have].mean()), "n_boot": n_boot,
               "overall": int(acc_frame["correct"].sum()) / int(acc_frame["n"].sum()) if whole else None,
               "corr_rows": corr_rows, "bin_measures": list(binned), "bin_rows": bin_rows, "multi": None}
    if "accuracy_any" in acc_frame.columns:  # multi-label truth: right for any accepted class
        n_any = int(acc_frame["n_any"].sum())
        context["multi"] = {"mean": acc_frame["accuracy_any"].mean(),
                            "overall": int(acc_frame["correct_any"].sum()) / n_any if n_any else None}
    summary: dict[str, Any] = {}
    for label, c in corrs.items():
        summary[f"spearman[{label}]"] = c["spearman"]["r"]
        summary[f"spearman_ci95[{label}]"] = f"[{_fmt(c['spearman']['ci95'][0])}, {_fmt(c['spearman']['ci95'][1])}]"
        summary[f"pearson_log1p[{label}]"] = c["pearson_log1p"]["r"]
        summary[f"pearson_log1p_ci95[{label}]"] = (f"[{_fmt(c['pearson_log1p']['ci95'][0])}, "
                                                    f"{_fmt(c['pearson_log1p']['ci95'][1])}]")
    summary.update(accuracy_classes=context["classes"], mean_accuracy=context["mean"], correlations=corrs,
                   binned=binned)
    if context["multi"] is not None:
        summary.update(mean_accuracy_any=context["multi"]["mean"], overall_accuracy_any=context["multi"]["overall"])
    return context, summary


def _under_exposed(wide: pl.DataFrame, names: list[str], top_k: int, with_accuracy: bool) -> dict:
    ue = under_exposed(wide, k=top_k, column="doc_freq[sum]" if len(names) > 1 else f"doc_freq[{names[0]}]")
    cols = [f"doc_freq[{n}]" for n in names] + (["doc_freq[sum]"] if len(names) > 1 else [])
    acc_cols = ["n", "accuracy"] if with_accuracy else []
    rows = [[r["class_name"], r["class_id"], *[r[c] for c in cols], *[r[c] for c in acc_cols], r["flags"] or "–"]
            for r in ue.iter_rows(named=True)]
    return {"count": ue.height, "columns": cols, "acc_columns": acc_cols, "rows": rows,
            "ids": ue["class_id"].to_list()}


def _wide_table(tables: dict[str, pl.DataFrame], policy: str) -> tuple[pl.DataFrame, dict, dict]:
    """Per-class columns of every corpus (``report_classes.csv``), the frequency measures correlated with
    accuracy, and the extra ``(all forms)`` measures of the ``separate`` policy."""
    names = list(tables)
    wide = tables[names[0]].select("class_id", "class_name", "flags")
    for n, t in tables.items():
        wide = wide.with_columns(t["doc_freq"].alias(f"doc_freq[{n}]"), t["mentions"].alias(f"mentions[{n}]"))
        if policy == "separate":
            wide = wide.with_columns(t["doc_freq_all"].alias(f"doc_freq_all[{n}]"))
    measures: dict[str, np.ndarray] = {n: t["doc_freq"].to_numpy().astype(float) for n, t in tables.items()}
    if len(names) > 1:
        total = sum(t["doc_freq"] for t in tables.values())
        wide = wide.with_columns(total.alias("doc_freq[sum]"))
        measures[SUM_MEASURE] = total.to_numpy().astype(float)
    extra = {f"{n} (all forms)": t["doc_freq_all"].to_numpy().astype(float)
             for n, t in tables.items()} if policy == "separate" else {}
    return wide, measures, extra


def _write_files(out: Path, plots: dict[str, bytes], wide: pl.DataFrame, context: dict) -> None:
    for name, data in plots.items():
        (out / "plots" / name).write_bytes(data)
    for old in (out / "plots").glob("*.png"):  # plots of an earlier run that this run did not draw
        if old.name not in plots and PLOT_NAME_RE.fullmatch(old.name):
            old.unlink()
    wide.write_csv(out / "report_classes.csv")
    env = _templates()
    plot_data = {name: base64.b64encode(data).decode("ascii") for name, data in plots.items()}
    (out / "report.md").write_text(env.get_template("report.md.j2").render(context), encoding="utf-8")
    (out / "report.html").write_text(env.get_template("report.html.j2").render(context, plot_data=plot_data),
                                     encoding="utf-8")


def write_report(counts_folder: str | Path, out_folder: str | Path, accuracy: str | None = None,
                 pretrain: str | None = None, instruct: str | None = None, seed: int = 0,
                 top_k: int = 20, n_boot: int = 2000, build: str | None = None,
                 multi_labels: str | None = None) -> dict:
    """Write ``report.md``, ``report.html`` (plots embedded as data URIs), ``plots/*.png`` and
    ``report_classes.csv`` (per-class frequencies and accuracy) into ``out_folder``; return summary numbers.

    ``pretrain``/``instruct`` name the corpora of the scatter plot (default: corpora whose names contain
    "pretrain"/"instruct", else the first two in count_meta order). ``accuracy``: a predictions JSONL, a per-class
    CSV or a ``builders.verify`` sidecar (``build``: the build of an mcq sidecar; ``multi_labels``: multi-label truth to
    score against any accepted class as well; see :mod:`corpora_stats.accuracy`).
    """
    if top_k < 1:
        raise UserError("--top-k must be at least 1")
    root = Path(counts_folder).expanduser()
    tables, meta = load_counts(root)
    names = list(tables)
    vocab = report_vocabulary(tables[names[0]])
    out = Path(out_folder).expanduser()
    (out / "plots").mkdir(parents=True, exist_ok=True)
    method, policy = str(meta.get("method", "unknown")), str(meta.get("forms_policy", "unknown"))
    flags_excluded = meta.get("flags_excluded")
    if flags_excluded is None:
        flags_excluded = [] if policy in ("all", "unknown") or method == "paper" else list(ALL_FLAGS)
    pair = _pick_pair(names, pretrain, instruct)
    corpus_info = {n: v if isinstance(v := meta["corpora"].get(n), dict) else {} for n in names}
    wide, measures, extra = _wide_table(tables, policy)
    lex, tool = meta.get("lexicon"), meta.get("tool")
    freq_cols = ["doc_freq", "mentions"] + (["doc_freq_all"] if policy == "separate" else [])
    plots: dict[str, bytes] = {}
    context: dict[str, Any] = {
        "title": TITLE, "root": str(root), "n_classes": len(vocab), "names": names, "seed": seed, "top_k": top_k,
        "method": method, "policy": policy, "flags_excluded": flags_excluded,
        "lexicon_rows": [list(kv) for kv in _flatten(lex)] if isinstance(lex, dict) and lex else None,
        "corpora_rows": _corpora_rows(tables, corpus_info), "tool": tool if isinstance(tool, dict) else None,
        "freq_cols": freq_cols, "extremes": _extremes(tables, freq_cols, top_k, plots), "pair": None, "acc": None}
    plots["freq_hist.png"] = plot_histogram(tables)
    summary: dict[str, Any] = {"classes": len(vocab), "corpora": ", ".join(names), "method": method,
                               "forms_policy": policy}
    for n, t in tables.items():
        summary[f"documents[{n}]"] = corpus_info[n].get("documents")
        summary[f"classes_never_mentioned[{n}]"] = int((t["doc_freq"] == 0).sum())
    if pair:
        pre, ins = pair
        rho = spearman(measures[pre], measures[ins])
        context["pair"] = {"pre": pre, "ins": ins, "given": bool(pretrain and instruct), "n": len(measures[pre]),
                           "rho": rho}
        plots["pretrain_vs_instruct.png"] = plot_pair(pre, ins, measures[pre], measures[ins],
                                                      tables[names[0]]["class_name"].to_list(), rho)
        summary["pretrain"], summary["instruct"], summary["spearman_pretrain_instruct"] = pre, ins, rho
    if accuracy is not None:
        acc_frame, acc_info = read_accuracy(accuracy, vocab, build=build, multi_labels=multi_labels)
        wide = wide.join(acc_frame, on="class_id", how="left", maintain_order="left")
        context["acc"], acc_summary = _accuracy_section(acc_frame, acc_info, wide, measures, extra, seed, n_boot,
                                                        plots)
        summary.update(acc_summary)
    context["under"] = _under_exposed(wide, names, top_k, accuracy is not None)
    summary["under_exposed"] = context["under"]["ids"]
    _write_files(out, plots, wide, context)
    summary["plots"] = len(plots)
    summary["report_md"] = str(out / "report.md")
    summary["report_html"] = str(out / "report.html")
    return summary
