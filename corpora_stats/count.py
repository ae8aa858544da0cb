"""The ``count`` step: corpus files → matcher → per-class and per-form tables, snippets and metadata.

The unit of work is a file, or with several workers a part of a big one (line-aligned byte ranges of a plain
txt or JSONL file, runs of parquet row groups: :meth:`Corpus.units`); units run on an executor (local processes
or Ray) and their counts merge in reading order, so the result is the same whatever the executor, the worker
count or the split. Snippets are picked while counting (a seeded hash of each matched document's text) and their
texts read in a second pass over only the chosen documents.

A count is published as a whole: the tables are staged in ``OUT/.count.tmp<pid>/`` under the run lock of
:func:`vlm_classdata.stages.open_out`, then moved into ``OUT`` one by one with ``count_meta.json`` last; the meta lists
every table with its size and sha256 (:func:`verify_counts_folder`, checked by ``report`` and ``mine``), each
corpus file read (size, mtime, reader, documents, skips) and each file skipped or damaged, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from corpora_stats.matcher import CountState, Matcher, best_picks
from corpora_stats.readers import Corpus, open_corpus
from corpora_stats.readers.base import ArrowBlock, LineBlock, TextBlock
from vlm_classdata import progress
from vlm_classdata.atomic import (
    atomic_path,
    commit,
    discard,
    write_text_atomic,
    write_with,
)
from vlm_classdata.errors import UserError
from vlm_classdata.executors import Executor, LocalExecutor, keep_freed_memory
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.names import check_name, name_problem
from vlm_classdata.provenance import package_versions
from vlm_classdata.records.count_meta import CountMeta
from vlm_classdata.stages import open_out
from vlm_classdata.vocabulary import ClassVocabulary

META = "count_meta.json"
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


MIN_SPLIT_BYTES = 4 << 20  # with several workers, big files are split in parts of at least this size


@dataclass
class CountContext:
    """What every unit of one count shares (sent to each worker once): the forms and the settings."""

    key: str  # names this count's compiled forms in a worker's cache
    forms: list
    class_ids: list[str]
    config: CountConfig


@dataclass
class UnitJob:
    """Count one unit of one corpus: file ``shard`` whole or its ``span`` (``reader``: as :meth:`Corpus.part`
    opens it); ``unit``: the unit's place in reading order."""

    corpus: str
    shard: int
    unit: int
    reader: Any


@dataclass
class UnitResult:
    corpus: str
    shard: int
    unit: int
    state: CountState
    stats: dict


_MATCHERS: dict[str, Matcher] = {}  # per process: the compiled forms of the count running now


def _matcher(context: CountContext) -> Matcher:
    matcher = _MATCHERS.get(context.key)
    if matcher is None:
        _MATCHERS.clear()
        cfg = context.config
        matcher = _MATCHERS[context.key] = Matcher(context.forms, context.class_ids, cfg.method, cfg.snippets,
                                                   cfg.seed)
    return matcher


def count_unit(item: tuple[CountContext, UnitJob]) -> UnitResult:
    """Run the engine over one unit of work."""
    context, job = item
    matcher = _matcher(context)
    scanner = matcher.scanner()
    corpus = job.reader
    limit = context.config.max_doc_bytes
    checked_docs = checked_bytes = 0  # of blocks the engine checks itself (the reader counts the others)
    for block in corpus.blocks():
        docs, nbytes = scanner.documents, scanner.bytes
        if isinstance(block, LineBlock):
            scanner.count_lines(block.data, block.offset, limit)
        elif isinstance(block, ArrowBlock):
            scanner.count_arrow(block.array, block.first_key, limit)
        else:
            scanner.count_texts(block.texts, block.keys)
        if not isinstance(block, TextBlock):
            checked_docs += scanner.documents - docs
            checked_bytes += scanner.bytes - nbytes
        progress.tick(scanner.documents - docs)
    corpus.add_counts(checked_docs, checked_bytes, {"too_long": scanner.too_long, "non_utf8": scanner.non_utf8,
                                                   "empty": scanner.empty, "no_text": scanner.no_text})
    state = matcher.new_state()
    state.add_scanner(scanner, job.shard, job.unit)
    return UnitResult(job.corpus, job.shard, job.unit, state, corpus.describe())


def run_units(executor: Executor, jobs: list[UnitJob], bar: Any, context: CountContext) -> Any:
    """Run the units on the executor; local txt and parquet units run on threads (the engine releases the GIL
    while it scans lines and Arrow columns, pyarrow while it decodes, and threads start at once, with the forms
    already compiled), the others in worker processes."""
    if isinstance(executor, LocalExecutor) and all(j.reader.format in ("txt", "parquet") for j in jobs):
        return executor.map_threads(count_unit, jobs, bar=bar, context=context)
    return executor.map(count_unit, jobs, bar=bar, context=context)


def split_size(corpus: Corpus, executor: Executor, split_bytes: int | None) -> int | None:
    """The byte size of the parts big files are split into: ``split_bytes`` when given; else none with one worker,
    and with ``n`` workers about a quarter of the largest file's share of each (at least :data:`MIN_SPLIT_BYTES`)."""
    if split_bytes is not None:
        return split_bytes
    workers = getattr(executor, "num_workers", None) or os.cpu_count() or 1
    if workers <= 1:
        return None
    sizes = [Path(f).stat().st_size for f in corpus.files() if Path(f).is_file()]
    return max(MIN_SPLIT_BYTES, max(sizes, default=0) // (4 * workers) + 1)


def snippet_texts(jobs: list[UnitJob], picks: Any) -> dict[tuple[int, int], str]:
    """``{(unit, key): text}`` of the chosen snippet documents, read in a second pass over only those documents
    (:meth:`Corpus.documents_at`)."""
    wanted: dict[int, set[int]] = defaultdict(set)
    for _cls, _prio, _shard, key, _pat, unit, _ordinal in picks:
        wanted[unit].add(key)
    return {(unit, key): text for unit, keys in sorted(wanted.items())
            for key, text in jobs[unit].reader.documents_at(keys).items()}


def _merge_stats(parts: list[dict]) -> dict:
    skipped: dict[str, int] = {}
    for p in parts:
        for k, v in p.get("skipped", {}).items():
            skipped[k] = skipped.get(k, 0) + v
    return {"documents": sum(p.get("documents", 0) for p in parts), "bytes": sum(p.get("bytes", 0) for p in parts),
            "skipped": dict(sorted(skipped.items()))}


def _file_record(path: str, fmt: str, stats: dict) -> dict:
    """One read file in ``count_meta.json``: its size and mtime (None for a folder or a virtual corpus),
    reader and what it gave."""
    p = Path(path)
    st = p.stat() if p.is_file() else None
    return {"file": path, "size": st.st_size if st else None, "mtime_ns": st.st_mtime_ns if st else None,
            "format": fmt, "documents": stats.get("documents", 0), "bytes": stats.get("bytes", 0),
            "skipped": stats.get("skipped", {})}


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _table_listing(folder: Path) -> dict[str, dict]:
    """``{file name: {"size", "sha256"}}`` of the tables of a staged count (what ``count_meta.json`` lists)."""
    return {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def verify_counts_folder(root: Path, meta: dict) -> None:
    """Refuse (one :class:`UserError` line) a counts folder whose tables are not the ones its
    ``count_meta.json`` lists: a re-count was killed while it replaced them, or a table was edited.
    Folders written before tables were listed are accepted as they are."""
    listing = meta.get("tables")
    if listing is None:
        return
    if not isinstance(listing, dict):
        raise UserError(f"{root / META}: 'tables' is not a listing of files")
    for name, info in sorted(listing.items()):
        problem = name_problem(name) or (None if isinstance(info, dict) else "no size and sha256")
        if problem:
            raise UserError(f"{root / META}: bad table entry {name!r} ({problem})")
        path = root / name
        if not path.is_file():
            why = "it is missing"
        elif path.stat().st_size != info.get("size") or _sha256(path) != info.get("sha256"):
            why = "its size or sha256 differs"
        else:
            continue
        raise UserError(f"{root}: {name} does not match {META} ({why}): a count into this folder was interrupted "
                        "or the folder was changed; run 'python -m corpora_stats count' again")


def _publish(stage: Path, out: Path, meta: dict) -> None:
    """Move the staged tables into ``out`` one by one, then ``count_meta.json`` (listing them) last; then
    remove the tables the previous count listed that this one does not write."""
    try:
        old = json.loads((out / META).read_text(encoding="utf-8")).get("tables") or {}
    except (OSError, ValueError, AttributeError):
        old = {}
    for name in meta["tables"]:
        commit(stage / name, out / name)
    CountMeta.model_validate(meta).write(out / META)
    for name in sorted(set(old) - set(meta["tables"]) - {META}):
        if name_problem(name) is None:
            (out / name).unlink(missing_ok=True)


def count_corpora(corpora: dict[str, str], vocab: ClassVocabulary, out_dir: str | os.PathLike,
                  config: CountConfig | None = None, executor: Executor | None = None,
                  formats: dict[str, str] | None = None, show_progress: bool = True,
                  split_bytes: int | None = None) -> dict:
    """Count every corpus (name → path); write the counts folder (see docs/CORPORA_STATS_DESIGN.md).

    Every corpus is opened (and every option checked) before anything is written. The tables are written
    into a temporary ``OUT/.count.tmp<pid>/`` and published together at the end, ``count_meta.json`` last,
    listing each table with its size and sha256 (checked by :func:`verify_counts_folder`); a failed or
    killed run leaves the previous counts in place, and the next run removes what it left.
    ``split_bytes``: the size of the parts big files are split into (default: see :func:`split_size`); the
    counts do not depend on it.
    """
    config = config or CountConfig()
    config.validate()
    if not corpora:
        raise UserError("no corpus given (use --corpus NAME=PATH)")
    if split_bytes is not None and split_bytes < 1:
        raise UserError("split_bytes must be positive")
    for name in corpora:
        check_name(name, "corpus name")
    keep_freed_memory()  # reading allocates MB-sized blocks: reuse freed memory rather than fault in fresh pages
    executor = executor or LocalExecutor(1)
    opened = {name: open_corpus(path, (formats or {}).get(name), text_field=config.text_field, turns=config.turns,
                                max_doc_bytes=config.max_doc_bytes, batch_size=config.batch_size)
              for name, path in corpora.items()}
    lexicon = Lexicon.build(vocab, method=config.method, plurals=config.plurals, aliases=config.aliases)
    out = Path(out_dir)
    inputs = [p for p in corpora.values() if not str(p).startswith("wordnet:")]
    lock = open_out(out, inputs=inputs, command="python -m corpora_stats count", legacy=(META,))
    stage = atomic_path(out / "count")
    try:
        stage.mkdir()
        meta = _count_into(stage, opened, vocab, lexicon, config, executor, show_progress, split_bytes)
        meta["tables"] = _table_listing(stage)
        _publish(stage, out, meta)
    finally:
        discard(stage)
        lock.release()
    return meta


def _count_into(stage: Path, opened: dict[str, Corpus], vocab: ClassVocabulary, lexicon: Lexicon,
                config: CountConfig, executor: Executor, show_progress: bool, split_bytes: int | None) -> dict:
    """Count each opened corpus and write its tables into ``stage``; → ``count_meta.json`` (without tables)."""
    vocab.save(stage / "classes.json")
    forms = lexicon.forms
    meta: dict[str, Any] = {"method": config.method, "forms_policy": config.forms,
                            "flags_excluded": [] if config.forms == "all" else ["shared", "ambiguous", "short"],
                            "config": asdict(config), "lexicon": lexicon.describe(), "corpora": {},
                            "tool": package_versions()}
    if config.method == "paper":
        meta["flags_excluded"] = []
    context = CountContext(uuid.uuid4().hex, forms, vocab.ids, config)
    matcher = _matcher(context)
    for name, corpus in opened.items():
        files, fmts = corpus.files(), corpus.file_formats()
        units = corpus.units(split_size(corpus, executor, split_bytes))
        jobs = [UnitJob(name, shard, i, corpus.part(shard, span)) for i, (shard, span) in enumerate(units)]
        bar = progress.make_bar(None, f"count {name}", unit="doc", disable=not show_progress)
        try:
            results = sorted(run_units(executor, jobs, bar, context), key=lambda r: r.unit)
        finally:
            bar.close()
        total = matcher.new_state()
        first_doc, running = {}, 0
        per_file: dict[int, list[dict]] = defaultdict(list)
        for r in results:
            first_doc[r.unit] = running
            running += r.state.documents
            total.merge(r.state, config.snippets)
            per_file[r.shard].append(r.stats)
        file_stats = [_merge_stats(per_file[i]) | {"skipped_files": [d for p in per_file[i]
                                                                      for d in p.get("skipped_files", [])]}
                      for i in range(len(files))]
        stats = _merge_stats(file_stats)
        skipped_files = corpus.unread_files() + [d for f in file_stats for d in f["skipped_files"]]
        meta["corpora"][name] = {"path": corpus.path, "format": corpus.format, "files": len(files), **stats,
                                 "file_list": [_file_record(f, fmts[i], file_stats[i]) for i, f in enumerate(files)],
                                 "skipped_files": skipped_files}
        picks = best_picks(total.picks, config.snippets)
        texts = snippet_texts(jobs, picks)
        class_ids = vocab.ids
        snippets = [(cls, {"class_id": class_ids[cls], "form": matcher.texts[pat],
                           "doc_index": first_doc[unit] + ordinal,
                           "snippet": matcher.snippet(texts.get((unit, key), ""), pat)})
                    for cls, _prio, _shard, key, pat, unit, ordinal in picks]
        _write_tables(stage, name, vocab, lexicon, matcher, total, config, snippets)
    write_with(stage / "forms.csv", lambda p: lexicon.to_frame().write_csv(p))
    return meta


def _write_tables(out: Path, name: str, vocab: ClassVocabulary, lexicon: Lexicon, matcher: Matcher,
                  state: CountState, config: CountConfig, snippets: list[tuple[int, dict]]) -> None:
    flags_by_class: dict[str, set[str]] = {}
    for f in lexicon.forms:
        flags_by_class.setdefault(f.class_id, set()).update(f.flags)
    use_all = config.forms == "all"
    table = pl.DataFrame({
        "class_id": vocab.ids, "class_name": vocab.names,
        "doc_freq": (state.class_docs_all if use_all else state.class_docs_clean).tolist(),
        "mentions": (state.class_mentions_all if use_all else state.class_mentions_clean).tolist(),
        "doc_freq_all": state.class_docs_all.tolist(), "mentions_all": state.class_mentions_all.tolist(),
        "doc_freq_clean": state.class_docs_clean.tolist(), "mentions_clean": state.class_mentions_clean.tolist(),
        "flags": [",".join(sorted(flags_by_class.get(c, ()))) for c in vocab.ids],
    })
    write_with(out / f"counts_{name}.parquet", lambda p: table.write_parquet(p))
    write_with(out / f"counts_{name}.csv", lambda p: table.write_csv(p))
    pid = {t: i for i, t in enumerate(matcher.texts)}
    forms = pl.DataFrame({
        "class_id": [f.class_id for f in lexicon.forms], "form": [f.text for f in lexicon.forms],
        "kind": [f.kind for f in lexicon.forms], "flags": [",".join(f.flags) for f in lexicon.forms],
        "doc_freq": [int(state.pattern_docs[pid[f.text]]) for f in lexicon.forms],
        "mentions": [int(state.pattern_mentions[pid[f.text]]) for f in lexicon.forms],
    })
    write_with(out / f"forms_{name}.parquet", lambda p: forms.write_parquet(p))
    lines = [json.dumps(row, ensure_ascii=False) for _cls, row in snippets]
    write_text_atomic(out / f"snippets_{name}.jsonl", "".join(x + "\n" for x in lines))
