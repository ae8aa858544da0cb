"""The ``count`` step: corpus files → matcher → per-class and per-form tables, snippets and metadata.

Each corpus file is one job on an executor (local processes or Ray); partial counts merge in file order,
so the result is the same whatever the executor or worker count.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from core import progress
from core.errors import UserError
from core.executors import Executor, LocalExecutor
from core.lexicon import Lexicon
from core.provenance import package_versions
from core.vocabulary import ClassVocabulary
from corpora_stats.matcher import CountState, Matcher

FORMS_POLICIES = ("separate", "all", "exclude-flagged")


@dataclass
class CountConfig:
    """Options that determine the counts."""

    method: str = "wordnet"  # or "paper"
    forms: str = "separate"
    plurals: bool = True
    aliases: str | None = None
    snippets: int = 5
    seed: int = 0
    text_field: str | None = None
    turns: str = "all"
    batch_size: int = 100_000
    max_doc_bytes: int = 1_000_000

    def validate(self) -> None:
        if self.method not in ("wordnet", "paper"):
            raise UserError("--method must be wordnet or paper")
        if self.forms not in FORMS_POLICIES:
            raise UserError(f"--forms must be one of {', '.join(FORMS_POLICIES)}")
        if self.turns not in ("all", "human", "gpt"):
            raise UserError("--turns must be all, human or gpt")
        if self.snippets < 0 or self.batch_size < 1:
            raise UserError("--snippets must be >= 0 and --batch-size >= 1")


@dataclass
class FileJob:
    """Count one file of one corpus."""

    corpus: str
    shard: int
    path: str
    fmt: str
    forms: list
    class_ids: list[str]
    config: CountConfig


@dataclass
class FileResult:
    corpus: str
    shard: int
    state: CountState
    stats: dict
    num_items: int = 0


def count_file(job: FileJob) -> FileResult:
    """Run the matcher over one corpus file."""
    from corpora_stats.readers import open_corpus

    cfg = job.config
    matcher = Matcher(job.forms, job.class_ids, cfg.method, cfg.snippets, cfg.seed)
    state = matcher.new_state()
    corpus = open_corpus(job.path, job.fmt, text_field=cfg.text_field, turns=cfg.turns,
                         max_doc_bytes=cfg.max_doc_bytes, batch_size=cfg.batch_size)
    for first, texts in corpus.batches():
        matcher.count_batch(state, texts, first, job.shard)
        progress.tick(len(texts))
    stats = corpus.describe()
    return FileResult(job.corpus, job.shard, state, stats, state.documents)


def _merge_stats(parts: list[dict]) -> dict:
    skipped: dict[str, int] = {}
    for p in parts:
        for k, v in p.get("skipped", {}).items():
            skipped[k] = skipped.get(k, 0) + v
    return {"documents": sum(p.get("documents", 0) for p in parts), "bytes": sum(p.get("bytes", 0) for p in parts),
            "skipped": dict(sorted(skipped.items()))}


def _write_atomic(path: Path, writer: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    writer(tmp)
    os.replace(tmp, path)


def count_corpora(corpora: dict[str, str], vocab: ClassVocabulary, out_dir: str | os.PathLike,
                  config: CountConfig | None = None, executor: Executor | None = None,
                  formats: dict[str, str] | None = None, show_progress: bool = True) -> dict:
    """Count every corpus (name → path); write the counts folder (see docs/CORPORA_STATS_DESIGN.md)."""
    from corpora_stats.readers import open_corpus

    config = config or CountConfig()
    config.validate()
    if not corpora:
        raise UserError("no corpus given (use --corpus NAME=PATH)")
    executor = executor or LocalExecutor(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lexicon = Lexicon.build(vocab, method=config.method, plurals=config.plurals, aliases=config.aliases)
    _write_atomic(out / "classes.json",
                  lambda tmp: tmp.write_text(json.dumps(vocab.to_json(), indent=1), encoding="utf-8"))
    forms = lexicon.forms
    meta: dict[str, Any] = {"method": config.method, "forms_policy": config.forms,
                            "flags_excluded": [] if config.forms == "all" else ["shared", "ambiguous", "short"],
                            "config": asdict(config), "lexicon": lexicon.describe(), "corpora": {},
                            "tool": package_versions()}
    if config.method == "paper":
        meta["flags_excluded"] = []
    for name, path in corpora.items():
        corpus = open_corpus(path, (formats or {}).get(name), text_field=config.text_field, turns=config.turns,
                             max_doc_bytes=config.max_doc_bytes, batch_size=config.batch_size)
        files = corpus.files()
        jobs = [FileJob(name, i, f, corpus.format, forms, vocab.ids, config) for i, f in enumerate(files)]
        bar = progress.make_bar(None, f"count {name}", unit="doc", disable=not show_progress)
        try:
            results = sorted(executor.map(count_file, jobs, bar=bar), key=lambda r: r.shard)
        finally:
            bar.close()
        matcher = Matcher(forms, vocab.ids, config.method, config.snippets, config.seed)
        total = matcher.new_state()
        offsets, running = {}, 0
        for r in results:
            offsets[r.shard] = running
            running += r.state.documents
            total.merge(r.state, config.snippets)
        stats = _merge_stats([r.stats for r in results])
        meta["corpora"][name] = {"path": str(path), "format": corpus.format, "files": len(files), **stats}
        _write_tables(out, name, vocab, lexicon, matcher, total, config, offsets)
    _write_atomic(out / "count_meta.json",
                  lambda p: p.write_text(json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n"))
    _write_atomic(out / "forms.csv", lambda p: lexicon.to_frame().write_csv(p))
    return meta


def _write_tables(out: Path, name: str, vocab: ClassVocabulary, lexicon: Lexicon, matcher: Matcher,
                  state: CountState, config: CountConfig, offsets: dict[int, int]) -> None:
    flags_by_class: dict[str, set[str]] = {}
    for f in lexicon.forms:
        flags_by_class.setdefault(f.class_id, set()).update(f.flags)
    use_all = config.forms == "all"
    table = pl.DataFrame({
        "class_id": vocab.ids, "class_name": vocab.names,
        "doc_freq": state.class_docs_all if use_all else state.class_docs_clean,
        "mentions": state.class_mentions_all if use_all else state.class_mentions_clean,
        "doc_freq_all": state.class_docs_all, "mentions_all": state.class_mentions_all,
        "doc_freq_clean": state.class_docs_clean, "mentions_clean": state.class_mentions_clean,
        "flags": [",".join(sorted(flags_by_class.get(c, ()))) for c in vocab.ids],
    })
    _write_atomic(out / f"counts_{name}.parquet", lambda p: table.write_parquet(p))
    _write_atomic(out / f"counts_{name}.csv", lambda p: table.write_csv(p))
    pid = {t: i for i, t in enumerate(matcher.texts)}
    forms = pl.DataFrame({
        "class_id": [f.class_id for f in lexicon.forms], "form": [f.text for f in lexicon.forms],
        "kind": [f.kind for f in lexicon.forms], "flags": [",".join(f.flags) for f in lexicon.forms],
        "doc_freq": [int(state.pattern_docs[pid[f.text]]) for f in lexicon.forms],
        "mentions": [int(state.pattern_mentions[pid[f.text]]) for f in lexicon.forms],
    })
    _write_atomic(out / f"forms_{name}.parquet", lambda p: forms.write_parquet(p))
    lines = []
    for cls in sorted(state.snippets):
        for _prio, (shard, doc), pat, text in sorted(state.snippets[cls], reverse=True):
            lines.append(json.dumps({"class_id": vocab.ids[cls], "form": matcher.texts[pat],
                                     "doc_index": offsets.get(shard, 0) + doc, "snippet": text},
                                    ensure_ascii=False))
    _write_atomic(out / f"snippets_{name}.jsonl", lambda p: p.write_text("".join(x + "\n" for x in lines)))
