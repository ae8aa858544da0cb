"""Render and write quality reports: ``quality_report.json`` and ``quality_report.md``.

:func:`report_markdown` renders a question set's report (:func:`imagewikiqa.quality.quality_report`) or a
builders MCQ output's (:func:`imagewikiqa.mcq_report.mcq_quality_report`) as Markdown tables (for a README or
dataset card); :func:`key_check_markdown` renders a build's WordNet key check. :func:`write_report` is the one
writer of both files, for ``python -m imagewikiqa report`` and for the build. The wording lives in the Jinja2
templates ``imagewikiqa/templates/*.md.j2``; this module computes the cells they show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from imagewikiqa.mcq_report import MCQ_KIND
from imagewikiqa.prose import render
from vlm_classdata.atomic import write_bytes_atomic
from vlm_classdata.records.imagewikiqa import QualityReport

__all__ = ["JSON_NAME", "MARKDOWN_NAME", "key_check_markdown", "report_markdown", "write_report"]

JSON_NAME = "quality_report.json"
MARKDOWN_NAME = "quality_report.md"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table (``|`` in a cell escaped), its lines joined."""
    cells = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
                      *("| " + " | ".join(row) + " |" for row in cells)])


def _pairs(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


def _rows(records: Iterable[Mapping[str, Any]], *keys: str) -> list[list[Any]]:
    """The ``keys`` of each record as a table row (a list value shown comma-separated)."""
    return [[", ".join(r[k]) if isinstance(r[k], list) else r[k] for k in keys] for r in records]


def _letter_rows(counts: Mapping[str, int], n: int) -> list[tuple[str, int, str]]:
    return [(x, c, _pct(c / n if n else 0.0)) for x, c in counts.items()]


def _share_rows(counts: Mapping[str, int]) -> list[tuple[str, int, str]]:
    total = sum(counts.values())
    return [(k, v, _pct(v / total if total else 0.0)) for k, v in counts.items()]


def _shown(x: Any) -> Any:
    return _pct(x) if isinstance(x, float) else x


def _targets_table(targets: Mapping[str, Any], at_most: tuple[str, ...]) -> str:
    """The targets as ``target | value | goal | result`` (``≤`` for the ``at_most`` ones, else ``=``)."""
    rows = [(name, "not measured" if c["value"] is None else _shown(c["value"]),
             f"{'≤' if name in at_most else '='} {_shown(c['target'])}", "pass" if c["pass"] else "FAIL")
            for name, c in targets.items() if name != "passes"]
    return _table(["target", "value", "goal", "result"], rows)


def _solvers_table(solvers: Mapping[str, Any]) -> str:
    return _table(["solver", "accuracy", "95% CI (bootstrap over classes)"],
                  [(name, _pct(v["accuracy"]), f"{_pct(v['ci95'][0])} – {_pct(v['ci95'][1])}")
                   for name, v in solvers.items()])


def _meta_table(meta: Mapping[str, Any]) -> str:
    return _table(["", "value"], [(k, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
                                  for k, v in meta.items()])


_CELLS = {"table": _table, "pct": _pct, "pairs": _pairs, "rows": _rows, "letter_rows": _letter_rows,
          "share_rows": _share_rows, "targets_table": _targets_table, "solvers_table": _solvers_table,
          "meta_table": _meta_table}
"""The helpers the report templates format their cells with."""


def report_markdown(report: dict[str, Any]) -> str:
    """A readable Markdown rendering of a quality report's dict (overview, targets, letters, baselines,
    generators/kinds, rejections, meta); a builders MCQ report (``kind`` :data:`MCQ_KIND`) renders as one."""
    name = "mcq_report.md.j2" if report.get("kind") == MCQ_KIND else "quality_report.md.j2"
    return render(name, r=report, **_CELLS)


def key_check_markdown(key_block: dict[str, Any]) -> str:
    """The report's key-check section (Markdown)."""
    return render("key_check.md.j2", key_block=key_block, **_CELLS)


def write_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``quality_report.json`` (indented, trailing newline) and ``quality_report.md`` (with the key-check
    section when the report has one) into ``out_dir`` (created when missing), each atomically; return their
    paths."""
    out = Path(out_dir)
    json_path, md_path = out / JSON_NAME, out / MARKDOWN_NAME
    markdown = report_markdown(report)
    if "key_check" in report:
        markdown += key_check_markdown(report["key_check"])
    QualityReport.model_validate(report).write(json_path)
    write_bytes_atomic(md_path, markdown.encode("utf-8"))
    return json_path, md_path
