"""Reading a counts folder written by ``count``: its tables, its class list and the forms it counted.

``load_counts`` gives every corpus's table (checked against ``count_meta.json``); ``load_counts_folder`` one
corpus with its vocabulary and :class:`~vlm_classdata.lexicon.Lexicon` (what ``mine`` needs);
``counts_lexicon`` rebuilds the lexicon from the forms table, so later steps match exactly the forms counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from corpora_stats.count import verify_counts_folder
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.lexicon import Form, Lexicon
from vlm_classdata.vocabulary import BUNDLED, ClassVocabulary

REQUIRED_COLUMNS = ("class_id", "class_name", "doc_freq", "mentions")
INT_COLUMNS = ("doc_freq", "mentions", "doc_freq_all", "mentions_all", "doc_freq_clean", "mentions_clean")


def load_counts(folder: str | Path) -> tuple[dict[str, pl.DataFrame], dict]:
    """Read a counts folder: ``{corpus name: counts table}`` (in count_meta order) and ``count_meta.json``.

    A folder whose tables are not the ones ``count_meta.json`` lists (an interrupted re-count) is refused."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"counts folder {str(folder)!r} not found")
    meta_path = root / "count_meta.json"
    if not meta_path.is_file():
        raise UserError(f"{root} has no count_meta.json; run 'python -m corpora_stats count' first")
    meta = read_user_json(meta_path, "count metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("corpora"), dict) or not meta["corpora"]:
        raise UserError(f"{meta_path}: lists no corpora")
    verify_counts_folder(root, meta)
    tables: dict[str, pl.DataFrame] = {}
    ids: list[str] | None = None
    for name in meta["corpora"]:
        path = _table_path(root, name)
        df = _tidy_counts(_read_table(path))
        if ids is None:
            ids = df["class_id"].to_list()
        elif df["class_id"].to_list() != ids:
            raise UserError(f"{path}: classes differ from the other corpora's (not the same class list?)")
        tables[name] = df
    return tables, meta


def _table_path(root: Path, name: str) -> Path:
    parquet, csv = root / f"counts_{name}.parquet", root / f"counts_{name}.csv"
    path = parquet if parquet.is_file() else csv
    if not path.is_file():
        raise UserError(f"{root}: corpus {name!r} has no counts_{name}.parquet or counts_{name}.csv")
    return path


def _read_table(path: Path) -> pl.DataFrame:
    try:
        if path.suffix == ".parquet":
            df = pl.read_parquet(path)
        else:
            df = pl.read_csv(path, schema_overrides={"class_id": pl.Utf8, "class_name": pl.Utf8, "flags": pl.Utf8})
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable counts table ({str(exc).splitlines()[0][:160]})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def _tidy_counts(df: pl.DataFrame) -> pl.DataFrame:
    exprs = [pl.col("class_id").cast(pl.Utf8), pl.col("class_name").cast(pl.Utf8)]
    for col in INT_COLUMNS:
        base = col.split("_")[0] + ("_freq" if col.startswith("doc") else "")
        source = pl.col(col) if col in df.columns else pl.col(base)
        exprs.append(source.fill_null(0).cast(pl.Int64).alias(col))
    exprs.append((pl.col("flags").cast(pl.Utf8) if "flags" in df.columns else pl.lit("")).fill_null("").alias("flags"))
    return df.select(exprs)


def report_vocabulary(table: pl.DataFrame) -> ClassVocabulary:
    """The counts' classes, with synonyms when they are a bundled list's classes under the same names."""
    ids, names = table["class_id"].to_list(), table["class_name"].to_list()
    for name in BUNDLED:
        try:
            full = ClassVocabulary.bundled(name)
        except (UserError, OSError, ValueError):
            continue
        if all(i in full for i in ids) and all(full[i].name == n for i, n in zip(ids, names, strict=True)):
            return full.subset(ids)
    return ClassVocabulary.from_names(names, ids, dataset="counts")


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


def corpus_lexicon(root: Path, vocab: ClassVocabulary, corpus: str, method: str) -> Lexicon | None:
    """The lexicon of ``corpus`` rebuilt from its own forms table (``forms_<corpus>.parquet``), or None."""
    if not (root / f"forms_{corpus}.parquet").is_file():  # not forms.csv: a shared table is not per corpus
        return None
    try:
        return counts_lexicon(root, corpus, vocab, method, strict=False)
    except UserError:
        return None


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


def load_counts_folder(counts_dir: str | os.PathLike, corpus: str | None = None,
                       classes: str | None = None) -> CountsFolder:
    """Read one corpus of a ``corpora_stats count`` folder (``corpus`` required when it holds several)."""
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
