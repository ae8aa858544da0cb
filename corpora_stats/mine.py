"""The ``mine`` step: under-exposed classes from a counts folder → an img2dataset-ready URL list.

A selection rule (:mod:`corpora_stats.selection`) picks classes from a ``corpora_stats count`` folder;
:func:`mine_urls` (options: :class:`MineOptions`) streams LAION-style parquet files (``URL`` and ``TEXT``
columns; :mod:`corpora_stats.mine_files`) through the counting :class:`~corpora_stats.matcher.Matcher`
(:mod:`corpora_stats.mine_scan`) and keeps, per selected class, the ``per_class`` captions that name that
class and no other selected class.

Same lexicon, same matching as ``count``: the forms are read back from the counts folder
(``forms_<corpus>.parquet``, else ``forms.csv``), so they are exactly the forms (and flags) the counts were
made with, and every form of every class stays in the matcher so that leftmost-longest resolves as it did
when counting ("tiger shark" never yields a tiger). Matches are then restricted to the selected classes and,
unless ``forms="all"``, to unflagged forms (the ``separate`` / ``exclude-flagged`` policies of ``count``).

Per row: ``missing_url`` (null/blank URL), ``bad_url`` (not an http(s) URL with a host, or with spaces),
``empty_caption`` (null/blank caption) and ``non_utf8`` (undecodable binary value) are skipped and counted;
a caption naming two or more selected classes is a ``multi_class_row`` (ambiguous label, not mined); a
caption naming exactly one selected class is a candidate for it (``matched_rows``).

Selection: per class, the candidates with the smallest ``sha256(f"{seed}\\x1f{url}")`` over distinct URLs,
at most ``per_class`` (a bounded heap per class: memory O(classes × per_class)); among rows sharing a URL
the first by (corpus file, row) represents it. A URL kept by several classes stays in the class of its
first row and is dropped from the others. ``duplicate_urls`` counts the candidate rows dropped because their
URL is mined through another row. The result depends only on the rows, the seed and the options — not on
file order, batch size or run.

Output (the MINED folder, every file written atomically, the report last):
``urls.parquet`` (url, caption, class_id, class_name, matched_form, corpus, row; by class then url),
``classes.json`` (the vocabulary) and ``mine_report.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpora_stats.count import FORMS_POLICIES
from corpora_stats.counts_folder import load_counts_folder
from corpora_stats.matcher import Matcher
from corpora_stats.mine_files import corpus_specs, parse_corpus_arg, resolve_specs
from corpora_stats.mine_scan import mined_rows, scan
from corpora_stats.selection import check_forms, parse_rule, select
from vlm_classdata.atomic import write_bytes_atomic
from vlm_classdata.errors import UserError

DEFAULT_BATCH_SIZE = 65_536
#: the columns of ``MINED/urls.parquet`` (the contract ``builders.targeted`` reads), in order
URL_COLUMNS = ("url", "caption", "class_id", "class_name", "matched_form", "corpus", "row")


def _command(o: MineOptions, specs: list[tuple[str | None, str]]) -> str:
    """The ``python -m corpora_stats mine`` command line that repeats this mining (for the report)."""
    args = ["python", "-m", "corpora_stats", "mine", "--counts", os.fspath(o.counts)]
    if o.counts_corpus is not None:
        args += ["--counts-corpus", o.counts_corpus]
    args += ["--select", o.rule]
    for name, spec in specs:
        args += ["--corpus", f"{name}={spec}" if name else spec]
    args += ["--out", os.fspath(o.out), "--per-class", str(o.per_class), "--seed", str(o.seed), "--forms", o.forms,
             "--url-col", o.url_col, "--text-col", o.text_col]
    if o.column != "doc_freq":
        args += ["--column", o.column]
    if o.classes is not None:
        args += ["--classes", o.classes]
    return shlex.join(args)


def _urls_parquet(rows: list[tuple]) -> bytes:
    """The ``urls.parquet`` file (zstd) of the mined rows, every column typed even when there are none."""
    import pyarrow as pa  # heavy (+ numpy, ~0.15 CPU-s): only mining needs it, never a txt count
    import pyarrow.parquet as pq  # heavy: as above

    schema = pa.schema([(c, pa.string()) for c in URL_COLUMNS[:-1]] + [("row", pa.int64())])
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in URL_COLUMNS]
    table = pa.Table.from_arrays([pa.array(list(col), type=f.type) for col, f in zip(columns, schema, strict=True)],
                                 schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


@dataclass(frozen=True)
class MineOptions:
    """What to mine (the options of ``python -m corpora_stats mine``).

    ``counts``: the counts folder; ``corpus_paths``: a parquet file, folder or glob, a list of them, or
    ``{name: path}``; ``out``: the MINED folder; ``rule``: the selection rule (:mod:`corpora_stats.selection`).
    ``counts_corpus``: which corpus of the counts folder (required when it has several); ``classes``: the
    class list given to ``count`` (optional; by default rebuilt from the counts table); ``column``: the counts
    column the rule reads; ``forms``: a ``count`` forms policy (``all`` also mines flagged forms).
    """

    counts: str | os.PathLike
    corpus_paths: Any
    out: str | os.PathLike
    rule: str
    per_class: int = 1000
    seed: int = 0
    forms: str = "separate"
    url_col: str = "URL"
    text_col: str = "TEXT"
    counts_corpus: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    column: str = "doc_freq"
    classes: str | None = None
    show_progress: bool = True

    def check(self) -> None:
        """Refuse (:class:`UserError`) an option out of range."""
        check_forms(self.forms)
        if self.per_class < 1:
            raise UserError("--per-class must be at least 1")
        if self.batch_size < 1:
            raise UserError("--batch-size must be at least 1")


def mine_urls(options: MineOptions) -> dict:
    """Mine the URL list of the classes ``options.rule`` selects; write the MINED folder (``urls.parquet``,
    ``classes.json``, then ``mine_report.json``); return the report (what ``mine_report.json`` holds)."""
    o = options
    o.check()
    counts = load_counts_folder(o.counts, o.counts_corpus, o.classes)
    parsed = parse_rule(o.rule, counts.vocab)
    chosen = select(counts, parsed, o.column, o.forms)
    selected = [c for c in chosen if c["excluded"] is None]
    if not selected:
        raise UserError(f"rule {o.rule!r} selects no class to mine"
                        + (f" ({len(chosen)} excluded: no usable form; try --forms all)" if chosen else ""))
    specs = corpus_specs(o.corpus_paths)
    files = resolve_specs(specs, o.url_col, o.text_col)
    out = Path(o.out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(o.out)!r} exists and is not a folder")
    vocab, lexicon = counts.vocab, counts.lexicon
    matcher = Matcher(lexicon.forms, vocab.ids, lexicon.method, snippets=0, seed=o.seed)
    picks, stats = scan(files, matcher, selected, per_class=o.per_class, forms=o.forms, url_col=o.url_col,
                        text_col=o.text_col, seed=o.seed, batch_size=o.batch_size, show_progress=o.show_progress)
    rows, duplicates, per_class_info = mined_rows(counts, selected, picks, o.column)
    report = {
        "rule": {**parsed.to_json(), "column": o.column},
        "counts": {"dir": str(counts.root), "corpus": counts.corpus, "column": o.column},
        "seed": o.seed,
        "per_class": o.per_class,
        "forms": "all" if o.forms == "all" else "unflagged",
        "forms_policy": o.forms,
        "method": lexicon.method,
        "corpus_files": [{"file": cf.label, "path": str(cf.path), "name": cf.name, "rows": cf.rows} for cf in files],
        "rows_scanned": stats["rows_scanned"],
        "skipped": dict(sorted(stats["skipped"].items())),
        "damaged_files": stats["damaged_files"],
        "duplicate_urls": duplicates,
        "multi_class_rows": stats["multi_class_rows"],
        "classes": per_class_info,
        "excluded_classes": [{"class_id": c["class_id"], "class_name": c["class_name"], "doc_freq": c["doc_freq"],
                              "reason": c["excluded"]} for c in chosen if c["excluded"] is not None],
        "mined_total": len(rows),
        "command": _command(o, specs),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "urls.parquet", _urls_parquet(rows))
    vocab.save(out / "classes.json")
    write_bytes_atomic(out / "mine_report.json",
                       (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode())
    return report


def mine(counts_dir: str | os.PathLike, corpus_paths: Any, out_dir: str | os.PathLike, rule: str,
         per_class: int = 1000, seed: int = 0, forms: str = "separate", url_col: str = "URL",
         text_col: str = "TEXT", corpus: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
         column: str = "doc_freq", classes: str | None = None, show_progress: bool = True) -> dict:
    """:func:`mine_urls` with the options as arguments (``corpus``: the counts folder's corpus)."""
    return mine_urls(MineOptions(counts_dir, corpus_paths, out_dir, rule, per_class, seed, forms, url_col, text_col,
                                 corpus, batch_size, column, classes, show_progress))


# ----- CLI -------------------------------------------------------------------------------------------
def format_summary(report: dict, out_dir: str | os.PathLike) -> str:
    """The short per-class table (class, doc_freq, matched, mined) and totals printed by the CLI."""
    width = max([len("class")] + [len(c["class_name"]) for c in report["classes"]])
    lines = [f"{'class':<{width}}  {'doc_freq':>9}  {'matched':>8}  {'mined':>7}"]
    for c in report["classes"]:
        lines.append(f"{c['class_name']:<{width}}  {c['doc_freq']:>9}  {c['matched_rows']:>8}  {c['mined']:>7}")
    skipped = ", ".join(f"{k} {v}" for k, v in report["skipped"].items() if v) or "none"
    lines.append(f"{len(report['classes'])} classes, {report['mined_total']} URLs mined from "
                 f"{report['rows_scanned']} rows ({len(report['corpus_files'])} files); skipped: {skipped}; "
                 f"multi-class rows {report['multi_class_rows']}; duplicate URLs {report['duplicate_urls']}")
    if report.get("excluded_classes"):
        lines.append("excluded (no usable form; --forms all includes flagged forms): "
                     + ", ".join(c["class_name"] for c in report["excluded_classes"]))
    lines.append(f"→ {Path(out_dir) / 'urls.parquet'}")
    return "\n".join(lines)


def add_mine_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, standalone: bool = True) -> None:
    """The options of ``python -m corpora_stats mine`` on ``parser`` (a parser or an argument group).

    ``standalone=False`` (mining inside another command, e.g. ``builders.targeted``): the class-choosing and
    corpus options only, none required; the caller owns ``--out``, ``--seed`` and ``--quiet``.
    """
    required = standalone
    parser.add_argument("--counts", required=required, help="folder written by 'count'")
    parser.add_argument("--counts-corpus", help="which corpus of the counts folder (required when it has several)")
    parser.add_argument("--select", required=required, metavar="RULE",
                        help="least:N (N lowest), below:T (value < T), classes:ID,ID or classes:@FILE")
    if standalone:
        parser.add_argument("--column", default="doc_freq", help="counts column the rule reads (default doc_freq)")
    parser.add_argument("--corpus", action="append", required=required, metavar="[NAME=]PATH",
                        help="LAION-style parquet file, folder or glob with URL and caption columns; repeat")
    if standalone:
        parser.add_argument("--out", required=True, help="output folder (the MINED folder)")
    parser.add_argument("--per-class", type=int, default=1000, help="URLs kept per class at most (default 1000)")
    if standalone:
        parser.add_argument("--seed", type=int, default=0, help="seed of the per-class choice (default 0)")
    parser.add_argument("--forms", choices=FORMS_POLICIES, default="separate",
                        help="all: flagged forms (shared/ambiguous/short) count too; otherwise only unflagged forms "
                             "(default separate, as in count)")
    parser.add_argument("--url-col", default="URL", help="URL column (default URL)")
    parser.add_argument("--text-col", default="TEXT", help="caption column (default TEXT)")
    if standalone:
        parser.add_argument("--classes", help="the class list given to count (default: rebuilt from the counts table)")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                            help=f"rows per Arrow batch (default {DEFAULT_BATCH_SIZE})")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")


def corpus_paths_from_args(values: Sequence[str]) -> list[str] | dict[str, str]:
    """The ``--corpus`` values (see :func:`parse_corpus_arg`) as ``mine``'s ``corpus_paths``: a list of paths,
    or ``{NAME: PATH}`` when they are named (all or none, distinct names)."""
    specs = [parse_corpus_arg(v) for v in values]
    if not any(name for name, _ in specs):
        return [path for _, path in specs]
    if not all(name for name, _ in specs):
        raise UserError("give every --corpus as NAME=PATH, or none")
    names = [name for name, _ in specs]
    if len(set(names)) != len(names):
        raise UserError("--corpus names must be distinct")
    return dict(specs)
