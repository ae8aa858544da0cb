"""The ``mine`` step: under-exposed classes from a counts folder → an img2dataset-ready URL list.

``select_classes`` picks classes from a ``corpora_stats count`` folder by a rule; ``mine`` streams LAION-style
parquet files (``URL`` and ``TEXT`` columns) through the counting :class:`~corpora_stats.matcher.Matcher` and
keeps, per selected class, the ``per_class`` captions that name that class and no other selected class.

Same lexicon, same matching as ``count``: the forms are read back from the counts folder
(``forms_<corpus>.parquet``, else ``forms.csv``), so they are exactly the forms (and flags) the counts were
made with, and every form of every class stays in the matcher so that leftmost-longest resolves as it did
when counting ("tiger shark" never yields a tiger). Matches are then restricted to the selected classes and,
unless ``forms="all"``, to unflagged forms (the ``separate`` / ``exclude-flagged`` policies of ``count``).

Rules (``rule``): ``least:N`` the N usable classes with the lowest value (ties: class order); ``below:T``
the usable classes with value < T; ``classes:ID,ID`` or ``classes:@file`` (ids, or exact display names;
one or more per line, ``#`` comments). The value is the counts table's ``column`` (default ``doc_freq``).
A class is usable when it has a form allowed by the forms policy; unusable classes the rule would otherwise
have picked are reported as excluded (reason ``no_usable_form``) and not mined.

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
import glob
import hashlib
import heapq
import io
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from corpora_stats.count import FORMS_POLICIES
from corpora_stats.matcher import Matcher
from vlm_classdata import progress
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Form, Lexicon
from vlm_classdata.vocabulary import BUNDLED, ClassVocabulary

RULE_KINDS = ("least", "below", "classes")
SKIP_REASONS = ("missing_url", "bad_url", "empty_caption")
DEFAULT_BATCH_SIZE = 65_536
#: the columns of ``MINED/urls.parquet`` (the contract ``builders.targeted`` reads), in order
URL_COLUMNS = ("url", "caption", "class_id", "class_name", "matched_form", "corpus", "row")
_URL_OK = r"(?i)^https?://[^\s/?#]+(?:[/?#]\S*)?$"
_GLOB_MAGIC = re.compile(r"[*?\[]")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


# ----- rules -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A parsed selection rule (see the module docstring)."""

    kind: str
    spec: str
    n: int | None = None
    threshold: float | None = None
    ids: tuple[str, ...] = ()
    file: str | None = None

    def to_json(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind, "spec": self.spec}
        if self.kind == "least":
            out["n"] = self.n
        elif self.kind == "below":
            out["threshold"] = self.threshold
        else:
            out["class_ids"] = list(self.ids)
            if self.file is not None:
                out["file"] = self.file
        return out


def parse_rule(spec: str, vocab: ClassVocabulary) -> Rule:
    """``least:N`` | ``below:T`` | ``classes:ID,ID`` | ``classes:@file`` → :class:`Rule` (UserError if bad)."""
    kind, sep, arg = str(spec).partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if not sep or kind not in RULE_KINDS or not arg:
        raise UserError(f"bad selection rule {spec!r}: expected least:N, below:T, classes:ID,ID or classes:@FILE")
    if kind == "least":
        try:
            n = int(arg)
        except ValueError:
            n = 0
        if n < 1:
            raise UserError(f"bad selection rule {spec!r}: N must be a positive integer")
        return Rule("least", spec, n=n)
    if kind == "below":
        try:
            threshold = float(arg)
        except ValueError:
            raise UserError(f"bad selection rule {spec!r}: T must be a number") from None
        return Rule("below", spec, threshold=int(threshold) if threshold.is_integer() else threshold)
    where, file = f"selection rule {spec!r}", None
    if arg.startswith("@"):
        file = arg[1:]
        path = Path(file).expanduser()
        if not path.is_file():
            raise UserError(f"class file {file!r} of {where} not found")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"class file {file!r}: unreadable ({exc})") from None
        items = [x.strip() for line in text.splitlines() for x in line.split("#", 1)[0].split(",")]
        where = f"class file {file!r}"
    else:
        items = [x.strip() for x in arg.split(",")]
    ids: list[str] = []
    unknown: list[str] = []
    for item in (x for x in items if x):
        if item in vocab:
            cid = item
        else:
            entry = vocab.by_name(item)
            if entry is None:
                unknown.append(item)
                continue
            cid = entry.class_id
        if cid not in ids:
            ids.append(cid)
    if unknown:
        raise UserError(f"{where}: unknown class(es) {', '.join(unknown[:5])}"
                        + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""))
    if not ids:
        raise UserError(f"{where} names no class")
    return Rule("classes", spec, ids=tuple(sorted(ids, key=lambda c: vocab[c].index)), file=file)


# ----- the counts folder -----------------------------------------------------------------------------
@dataclass
class CountsFolder:
    """One corpus of a ``count`` folder: its table, metadata, vocabulary and lexicon (the forms counted)."""

    root: Path
    corpus: str
    table: pl.DataFrame
    meta: dict
    vocab: ClassVocabulary
    lexicon: Lexicon


def _vocabulary(table: pl.DataFrame, classes: str | None, where: Path) -> ClassVocabulary:
    ids, names = table["class_id"].to_list(), table["class_name"].to_list()
    if classes is not None:
        vocab = ClassVocabulary.load(classes)
        if vocab.ids != ids or vocab.names != names:
            raise UserError(f"class list {classes!r} is not the one the counts in {where} were made with")
        return vocab
    recorded = where / "classes.json"  # written by `corpora_stats count`: the exact list, synonyms included
    if recorded.is_file():
        vocab = ClassVocabulary.load(str(recorded))
        if vocab.ids == ids and vocab.names == names:
            return vocab
    for name in BUNDLED:  # older counts folders: the whole bundled list, with its synonyms and wnids
        vocab = ClassVocabulary.bundled(name)
        if len(vocab) == len(ids) and vocab.ids == ids and vocab.names == names:
            return vocab
    return ClassVocabulary.from_names(names, ids, "custom")


def counts_lexicon(root: Path, corpus: str, vocab: ClassVocabulary, method: str, strict: bool = True) -> Lexicon:
    """The forms a counts folder counted for ``corpus`` (``forms_<corpus>.parquet``, else ``forms.csv``) as a
    :class:`Lexicon`; a missing or unreadable table is a :class:`UserError`, and so is a form of a class
    outside ``vocab`` unless ``strict`` is False (such forms are then left out)."""
    per_corpus, shared = root / f"forms_{corpus}.parquet", root / "forms.csv"
    try:
        if per_corpus.is_file():
            df = pl.read_parquet(per_corpus, columns=["class_id", "form", "kind", "flags"])
        elif shared.is_file():
            df = pl.read_csv(shared, schema_overrides={c: pl.Utf8 for c in ("class_id", "form", "kind", "flags")},
                             missing_utf8_is_empty_string=True).select("class_id", "form", "kind", "flags")
        else:
            raise UserError(f"{root} has no forms_{corpus}.parquet or forms.csv (re-run 'corpora_stats count')")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UserError(f"{root}: unreadable forms table ({str(exc).splitlines()[0][:160]})") from None
    forms = []
    for cid, text, kind, flags in df.select(pl.all().cast(pl.Utf8).fill_null("")).iter_rows():
        if cid not in vocab:
            if not strict:
                continue
            raise UserError(f"{root}: the forms table names class {cid!r}, which the counts table lacks")
        forms.append(Form(text, cid, kind, tuple(sorted(f for f in flags.split(",") if f))))
    return Lexicon(vocab, forms, method)


def load_counts_folder(counts_dir: str | os.PathLike, corpus: str | None = None,
                       classes: str | None = None) -> CountsFolder:
    """Read one corpus of a ``corpora_stats count`` folder (``corpus`` required when it holds several)."""
    from corpora_stats.report import load_counts

    tables, meta = load_counts(counts_dir)
    root = Path(counts_dir).expanduser()
    if corpus is None:
        if len(tables) > 1:
            raise UserError(f"{root} holds counts of several corpora ({', '.join(tables)}); choose one with "
                            "--counts-corpus")
        corpus = next(iter(tables))
    elif corpus not in tables:
        raise UserError(f"{root} has no counts for corpus {corpus!r}; it has {', '.join(tables)}")
    table = tables[corpus]
    vocab = _vocabulary(table, classes, root)
    method = str(meta.get("method", "wordnet"))
    return CountsFolder(root, corpus, table, meta, vocab, counts_lexicon(root, corpus, vocab, method))


def _usable(lexicon: Lexicon, forms: str) -> set[str]:
    return {f.class_id for f in lexicon.forms if f.text and (forms == "all" or not f.flags)}


def _check_forms(forms: str) -> None:
    if forms not in FORMS_POLICIES:
        raise UserError(f"--forms must be one of {', '.join(FORMS_POLICIES)}, not {forms!r}")


def _select(counts: CountsFolder, rule: Rule, column: str, forms: str) -> list[dict]:
    table = counts.table
    if column not in table.columns or not table[column].dtype.is_numeric():
        numeric = [c for c in table.columns if table[c].dtype.is_numeric()]
        raise UserError(f"counts table has no numeric column {column!r}; it has {', '.join(numeric)}")
    usable = _usable(counts.lexicon, forms)
    rows = [{"class_id": cid, "class_name": name, "index": i, "doc_freq": int(df), "value": value}
            for i, (cid, name, df, value) in enumerate(zip(table["class_id"], table["class_name"],
                                                           table["doc_freq"], table[column], strict=True))]
    for r in rows:
        r["value"] = 0 if r["value"] is None else r["value"]
    if rule.kind == "least":
        ranked = sorted(rows, key=lambda r: (r["value"], r["index"]))
        picked, kept = [], 0
        for r in ranked:
            if kept == rule.n:
                break
            picked.append(r)
            kept += r["class_id"] in usable
    elif rule.kind == "below":
        picked = [r for r in rows if r["value"] < rule.threshold]
    else:
        wanted = set(rule.ids)
        picked = [r for r in rows if r["class_id"] in wanted]
    out = []
    for r in sorted(picked, key=lambda r: r["index"]):
        value = r["value"]
        out.append({**r, "value": int(value) if float(value).is_integer() else float(value),
                    "excluded": None if r["class_id"] in usable else "no_usable_form"})
    return out


def select_classes(counts_dir: str | os.PathLike, rule: str, corpus: str | None = None, column: str = "doc_freq",
                   forms: str = "separate", classes: str | None = None) -> list[dict]:
    """Classes a rule picks from a counts folder, in vocabulary order.

    Each: ``{"class_id", "class_name", "index", "doc_freq", "value"`` (of ``column``) ``, "excluded"}`` where
    ``excluded`` is None for a class to mine, or the reason it is not mined (``no_usable_form``).
    """
    _check_forms(forms)
    counts = load_counts_folder(counts_dir, corpus, classes)
    return _select(counts, parse_rule(rule, counts.vocab), column, forms)


# ----- corpus files ----------------------------------------------------------------------------------
def _spec_files(spec: str) -> list[Path]:
    p = Path(spec).expanduser()
    if p.is_file():
        return [p]
    if p.is_dir():
        found = [f for f in p.rglob("*.parquet")
                 if f.is_file() and not any(x.startswith(".") for x in f.relative_to(p).parts)]
        if not found:
            raise UserError(f"corpus folder {spec!r} holds no .parquet files")
        return sorted(found, key=lambda f: f.relative_to(p).as_posix())
    if _GLOB_MAGIC.search(spec):
        found = [Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file()]
        if not found:
            raise UserError(f"corpus pattern {spec!r} matches no file")
        return sorted(found)
    raise UserError(f"corpus path {spec!r} does not exist")


def _corpus_specs(corpus_paths: Any) -> list[tuple[str | None, str]]:
    if isinstance(corpus_paths, (str, os.PathLike)):
        return [(None, os.fspath(corpus_paths))]
    if isinstance(corpus_paths, Mapping):
        return [(str(k), os.fspath(v)) for k, v in corpus_paths.items()]
    if isinstance(corpus_paths, Sequence):
        return [(None, os.fspath(v)) for v in corpus_paths]
    raise UserError(f"corpus paths must be a path, a list of paths or NAME→path, not {type(corpus_paths).__name__}")


def parse_corpus_arg(value: str) -> tuple[str | None, str]:
    """``NAME=PATH`` → (NAME, PATH); a plain path (or one that exists though it holds ``=``) → (None, PATH)."""
    name, sep, path = value.partition("=")
    if sep and name and path and _NAME_RE.match(name) and not Path(value).expanduser().exists():
        return name, path
    return None, value


@dataclass
class CorpusFile:
    """One parquet file to mine: ``label`` is what the ``corpus`` column says."""

    label: str
    path: Path
    name: str | None
    total: int = 0              # rows in the file's metadata
    rows: int = 0               # rows read


def resolve_corpus_files(corpus_paths: Any, url_col: str = "URL", text_col: str = "TEXT") -> list[CorpusFile]:
    """The parquet files of the corpus specs (files, folders, globs), checked for the two columns, labelled by
    file name (by path below their common folder when names collide), in label order."""
    return _resolve_specs(_corpus_specs(corpus_paths), url_col, text_col)


def _resolve_specs(specs: list[tuple[str | None, str]], url_col: str, text_col: str) -> list[CorpusFile]:
    import pyarrow.parquet as pq

    if not specs:
        raise UserError("no corpus given (use --corpus PATH)")
    files: dict[Path, str | None] = {}
    for name, spec in specs:
        for f in _spec_files(spec):
            files.setdefault(f.resolve(), name)
    totals = []
    for f in files:
        try:
            pf = pq.ParquetFile(f)
            columns, total = pf.schema_arrow.names, pf.metadata.num_rows
        except Exception as exc:
            raise UserError(f"{f}: not a readable parquet file ({' '.join(str(exc).split())[:160]})") from None
        missing = [c for c in (url_col, text_col) if c not in columns]
        if missing:
            raise UserError(f"{f}: no column {', '.join(map(repr, missing))}; columns: {', '.join(columns)} "
                            "(set --url-col / --text-col)")
        totals.append(total)
    names = [f.name for f in files]
    if len(set(names)) == len(names):
        labels = names
    else:
        base = Path(os.path.commonpath([str(f.parent) for f in files]))
        labels = [f.relative_to(base).as_posix() for f in files]
    out = [CorpusFile(label, f, name, total)
           for label, (f, name), total in zip(labels, files.items(), totals, strict=True)]
    return sorted(out, key=lambda c: c.label)


# ----- mining ----------------------------------------------------------------------------------------
def url_key(seed: int, url: str) -> int:
    """The seeded selection key of a URL: ``sha256(f"{seed}\\x1f{url}")`` as an integer (smaller = first)."""
    return int.from_bytes(hashlib.sha256(f"{seed}\x1f{url}".encode()).digest(), "big")


@dataclass
class _Kept:
    key: int
    first: tuple[str, int]      # (corpus label, row) of the representative row
    caption: str
    form: str
    rows: int = 1               # candidate rows with this URL seen while it was kept


@dataclass
class _ClassPick:
    """The ``k`` distinct URLs with the smallest keys among one class's candidates."""

    k: int
    heap: list = field(default_factory=list)      # (-key, url): the largest kept key on top
    kept: dict[str, _Kept] = field(default_factory=dict)
    matched: int = 0

    def offer(self, key: int, url: str, first: tuple[str, int], caption: str, form: str) -> None:
        self.matched += 1
        have = self.kept.get(url)
        if have is not None:
            have.rows += 1
            if first < have.first:
                have.first, have.caption, have.form = first, caption, form
            return
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, (-key, url))
        elif key < -self.heap[0][0]:
            _, dropped = heapq.heapreplace(self.heap, (-key, url))
            del self.kept[dropped]
        else:
            return
        self.kept[url] = _Kept(key, first, caption, form)


_NON_UTF8 = "\0non_utf8"


def _strings(arr: Any) -> pl.Series:
    """An Arrow column as a polars string series; undecodable binary values become a marker (``non_utf8``)."""
    import pyarrow as pa

    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        values = []
        for raw in arr.to_pylist():
            try:
                values.append(None if raw is None else raw.decode("utf-8"))
            except UnicodeDecodeError:
                values.append(_NON_UTF8)
        return pl.Series(values, dtype=pl.Utf8)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        try:
            arr = arr.cast(pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # lists, structs...: never a URL or a caption
            return pl.Series([None if v is None else str(v) for v in arr.to_pylist()], dtype=pl.Utf8)
    return pl.Series(pl.from_arrow(arr)).cast(pl.Utf8)


def _mine_batch(batch: Any, first_row: int, cf: CorpusFile, matcher: Matcher, pairs: pl.DataFrame,
                picks: dict[int, _ClassPick], url_col: str, text_col: str, seed: int, stats: dict) -> None:
    skipped = stats["skipped"]
    df = pl.DataFrame({"url": _strings(batch.column(url_col)).str.strip_chars(),
                       "caption": _strings(batch.column(text_col))}).with_row_index("row", offset=first_row)
    url, cap = pl.col("url"), pl.col("caption")
    reason = (pl.when((url == _NON_UTF8) | (cap == _NON_UTF8)).then(pl.lit("non_utf8"))
              .when(url.is_null() | (url == "")).then(pl.lit("missing_url"))
              .when(~url.str.contains(_URL_OK)).then(pl.lit("bad_url"))
              .when(cap.is_null() | (cap.str.strip_chars() == "")).then(pl.lit("empty_caption")))
    df = df.with_columns(reason.alias("reason"))
    for r, k in df.group_by("reason").len().filter(pl.col("reason").is_not_null()).iter_rows():
        skipped[r] = skipped.get(r, 0) + k
    ok = df.filter(pl.col("reason").is_null())
    if ok.height == 0 or pairs.height == 0:
        return
    # the counting matcher over every form (leftmost-longest as in count), then the selected classes' forms
    hits = (matcher.matches(ok["caption"].to_list()).join(pairs, on="pat", how="inner")
            .group_by("doc", "cls").agg(pl.col("pat").min()))
    if hits.height == 0:
        return
    per_doc = hits.group_by("doc").agg(pl.len().alias("k"), pl.col("cls").first(), pl.col("pat").first())
    stats["multi_class_rows"] += per_doc.filter(pl.col("k") > 1).height
    single = per_doc.filter(pl.col("k") == 1).sort("doc")
    docs = single["doc"]
    rows, urls, caps = ok["row"].gather(docs), ok["url"].gather(docs), ok["caption"].gather(docs)
    for cls, pat, row, u, c in zip(single["cls"], single["pat"], rows, urls, caps, strict=True):
        picks[cls].offer(url_key(seed, u), u, (cf.label, int(row)), c, matcher.texts[pat])


def _mine_file(cf: CorpusFile, matcher: Matcher, pairs: pl.DataFrame, picks: dict[int, _ClassPick],
               url_col: str, text_col: str, seed: int, batch_size: int, stats: dict, bar: Any) -> None:
    """Stream one file in Arrow batches of its two columns, row group by row group. A damaged file counts one
    ``read_error`` and is named in ``stats["damaged_files"]`` with the reason; its readable row groups are mined."""
    import pyarrow.parquet as pq

    def damaged(reason: str) -> None:
        stats["skipped"]["read_error"] = stats["skipped"].get("read_error", 0) + 1
        stats["damaged_files"].append({"file": str(cf.path), "reason": reason})

    try:
        pf = pq.ParquetFile(cf.path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowIOError / ArrowInvalid
        damaged(f"not a readable parquet file ({_one_line(exc)})")
        return
    bad, first = [], 0
    for group in range(pf.num_row_groups):
        try:
            row = first
            for batch in pf.iter_batches(batch_size=batch_size, row_groups=[group], columns=[url_col, text_col]):
                _mine_batch(batch, row, cf, matcher, pairs, picks, url_col, text_col, seed, stats)
                row += batch.num_rows
                cf.rows += batch.num_rows
                stats["rows_scanned"] += batch.num_rows
                bar.update(batch.num_rows)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ValueError) and not type(exc).__module__.startswith("pyarrow"):
                raise
            bad.append(f"row group {group} ({_one_line(exc)})")
        first += pf.metadata.row_group(group).num_rows  # row numbers stay those of the file
    if bad:
        damaged(f"damaged parquet: {'; '.join(bad)}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _command(counts_dir: Any, corpus: str | None, rule: str, specs: list[tuple[str | None, str]], out_dir: Any,
             per_class: int, seed: int, forms: str, url_col: str, text_col: str, column: str,
             classes: str | None) -> str:
    args = ["python", "-m", "corpora_stats", "mine", "--counts", os.fspath(counts_dir)]
    if corpus is not None:
        args += ["--counts-corpus", corpus]
    args += ["--select", rule]
    for name, spec in specs:
        args += ["--corpus", f"{name}={spec}" if name else spec]
    args += ["--out", os.fspath(out_dir), "--per-class", str(per_class), "--seed", str(seed), "--forms", forms,
             "--url-col", url_col, "--text-col", text_col]
    if column != "doc_freq":
        args += ["--column", column]
    if classes is not None:
        args += ["--classes", classes]
    return shlex.join(args)


def _urls_parquet(rows: list[tuple]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.string()) for c in URL_COLUMNS[:-1]] + [("row", pa.int64())])
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in URL_COLUMNS]
    table = pa.Table.from_arrays([pa.array(list(col), type=f.type) for col, f in zip(columns, schema, strict=True)],
                                 schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def mine(counts_dir: str | os.PathLike, corpus_paths: Any, out_dir: str | os.PathLike, rule: str,
         per_class: int = 1000, seed: int = 0, forms: str = "separate", url_col: str = "URL",
         text_col: str = "TEXT", corpus: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
         column: str = "doc_freq", classes: str | None = None, show_progress: bool = True) -> dict:
    """Mine the URL list of the classes ``rule`` selects; write the MINED folder; return its report.

    ``corpus_paths``: a parquet file, folder or glob, a list of them, or ``{name: path}``. ``corpus``: which
    corpus of the counts folder (required when it has several). ``classes``: the class list given to
    ``count`` (optional; by default rebuilt from the counts table).
    """
    from vlm_classdata.atomic import write_bytes_atomic

    _check_forms(forms)
    if per_class < 1:
        raise UserError("--per-class must be at least 1")
    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    counts = load_counts_folder(counts_dir, corpus, classes)
    parsed = parse_rule(rule, counts.vocab)
    chosen = _select(counts, parsed, column, forms)
    selected = [c for c in chosen if c["excluded"] is None]
    if not selected:
        raise UserError(f"rule {rule!r} selects no class to mine"
                        + (f" ({len(chosen)} excluded: no usable form; try --forms all)" if chosen else ""))
    specs = _corpus_specs(corpus_paths)
    files = _resolve_specs(specs, url_col, text_col)
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out_dir)!r} exists and is not a folder")

    vocab, lexicon = counts.vocab, counts.lexicon
    matcher = Matcher(lexicon.forms, vocab.ids, lexicon.method, snippets=0, seed=seed)
    sel_index = [c["index"] for c in selected]
    pairs = matcher.pairs.filter(pl.col("cls").is_in(sel_index))
    if forms != "all":
        pairs = pairs.filter(~pl.col("flagged"))
    picks = {i: _ClassPick(per_class) for i in sel_index}
    stats: dict[str, Any] = {"rows_scanned": 0, "multi_class_rows": 0, "skipped": dict.fromkeys(SKIP_REASONS, 0),
                             "damaged_files": []}
    bar = progress.make_bar(sum(cf.total for cf in files), "mine", unit="row", disable=not show_progress)
    try:
        for cf in files:
            _mine_file(cf, matcher, pairs, picks, url_col, text_col, seed, batch_size, stats, bar)
    finally:
        bar.close()

    # a URL kept by several classes stays with its first row's class
    owner: dict[str, int] = {}
    for i in sel_index:
        for url, kept in picks[i].kept.items():
            j = owner.get(url)
            if j is None or kept.first < picks[j].kept[url].first:
                owner[url] = i
    rows: list[tuple] = []
    duplicates = 0
    per_class_info = []
    for c in selected:
        i = c["index"]
        entry = vocab.by_index(i)
        mined = 0
        for url in sorted(picks[i].kept):
            kept = picks[i].kept[url]
            if owner[url] != i:
                duplicates += kept.rows
                continue
            duplicates += kept.rows - 1
            mined += 1
            rows.append((url, kept.caption, entry.class_id, entry.name, kept.form, kept.first[0], kept.first[1]))
        info = {"class_id": entry.class_id, "class_name": entry.name, "doc_freq": c["doc_freq"],
                "matched_rows": picks[i].matched, "mined": mined}
        if column != "doc_freq":
            info[column] = c["value"]
        per_class_info.append(info)

    report = {
        "rule": {**parsed.to_json(), "column": column},
        "counts": {"dir": str(counts.root), "corpus": counts.corpus, "column": column},
        "seed": seed,
        "per_class": per_class,
        "forms": "all" if forms == "all" else "unflagged",
        "forms_policy": forms,
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
        "command": _command(counts_dir, corpus, rule, specs, out_dir, per_class, seed, forms, url_col, text_col,
                            column, classes),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "urls.parquet", _urls_parquet(rows))
    write_bytes_atomic(out / "classes.json", (json.dumps(vocab.to_json(), indent=1, ensure_ascii=False) + "\n").encode())
    write_bytes_atomic(out / "mine_report.json",
                       (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode())
    return report


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


def run_mine_cli(args: Any) -> int:
    """``python -m corpora_stats mine`` with parsed arguments: mine, then print the summary."""
    report = mine(args.counts, corpus_paths_from_args(args.corpus), args.out, args.select, per_class=args.per_class, seed=args.seed,
                  forms=args.forms, url_col=args.url_col, text_col=args.text_col, corpus=args.counts_corpus,
                  batch_size=args.batch_size, column=args.column, classes=args.classes,
                  show_progress=not args.quiet)
    print(format_summary(report, args.out))
    return 0
