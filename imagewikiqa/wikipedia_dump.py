"""The reader of a local Hugging Face Wikipedia dump (``datasets.save_to_disk`` folder, a single
``.parquet``/``.arrow`` file, a folder of parquet files or a glob) with ``title`` and ``text`` columns: rows
whose title is a wanted title of a class, filtered with pyarrow per row group / record batch."""

from __future__ import annotations

import glob
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagewikiqa.article_rows import ArticleCollector, Articles, norm_title
from vlm_classdata.errors import UserError
from vlm_classdata.local_datasets import SAVED_KINDS, detect_local_dataset, saved_data_files
from vlm_classdata.vocabulary import ClassVocabulary

GLOB_CHARS = re.compile(r"[*?\[]")


def _hf_files(path: str | Path) -> list[Path]:
    """The parquet/arrow files of a dump given as a file, a folder or a glob, in a stable order."""
    text = str(path)
    if GLOB_CHARS.search(text) and not Path(text).exists():
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
        files = [f for f in files if f.is_file() and f.suffix.lower() in (".parquet", ".arrow")]
        if not files:
            raise UserError(f"no .parquet or .arrow files match {text!r}")
        return files
    p = Path(text).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise UserError(f"Wikipedia dump {text!r} not found")
    if detect_local_dataset(p) in SAVED_KINDS:
        files = saved_data_files(p)
    else:
        files = sorted(p.rglob("*.parquet")) or sorted(p.rglob("*.arrow"))
    if not files:
        raise UserError(f"{p}: no save_to_disk dataset or .parquet/.arrow files found")
    return files


def _title_mask(titles: Any, wanted: Any) -> Any:
    """Boolean mask of rows whose normalised title is in ``wanted`` (pyarrow compute, no Python loop)."""
    norm = pc.utf8_lower(pc.utf8_trim_whitespace(pc.replace_substring(titles, "_", " ")))
    return pc.fill_null(pc.is_in(norm, value_set=wanted.cast(norm.type)), False)


def _check_columns(names: Sequence[str], f: Path) -> None:
    missing = [c for c in ("title", "text") if c not in names]
    if missing:
        raise UserError(f"{f}: no {'/'.join(missing)} column (columns: {', '.join(names)[:200]})")


def _arrow_batches(f: Path) -> tuple[Any, Iterator[Any]]:
    """Schema and record batches of an Arrow IPC file (``save_to_disk`` writes the stream format),
    memory-mapped: only the filtered rows are copied."""
    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(f)))
        return reader.schema, iter(reader)
    except pa.ArrowInvalid:
        pass
    try:
        fr = pa.ipc.open_file(pa.memory_map(str(f)))
    except (OSError, pa.ArrowInvalid) as exc:
        raise UserError(f"{f}: not a readable arrow file ({exc})"[:300]) from None
    return fr.schema, (fr.get_batch(i) for i in range(fr.num_record_batches))


def _parquet_hits(f: Path, wanted: Any) -> Iterator[Any]:
    """Matching rows of a parquet file per row group: titles first, texts only where a title matched."""
    try:
        pf = pq.ParquetFile(f)
    except (OSError, pa.ArrowInvalid) as exc:
        raise UserError(f"{f}: not a readable parquet file ({exc})"[:300]) from None
    _check_columns(pf.schema_arrow.names, f)
    for rg in range(pf.num_row_groups):
        mask = _title_mask(pf.read_row_group(rg, columns=["title"]).column("title"), wanted)
        if pc.any(mask).as_py():
            yield pf.read_row_group(rg, columns=["title", "text"]).filter(mask)


def _arrow_hits(f: Path, wanted: Any) -> Iterator[Any]:
    """Matching rows of an Arrow IPC file per record batch (memory-mapped: only matches are copied;
    ``save_to_disk`` writes the stream format)."""
    schema, batches = _arrow_batches(f)
    _check_columns(schema.names, f)
    for batch in batches:
        mask = _title_mask(batch.column("title"), wanted)
        if pc.any(mask).as_py():
            yield batch.filter(mask)


def _matched_rows(files: list[Path], wanted: Any) -> Iterator[tuple[Any, Any]]:
    """``(title, text)`` of the rows whose title is wanted, in file order."""
    for f in files:
        hits = _parquet_hits(f, wanted) if f.suffix.lower() == ".parquet" else _arrow_hits(f, wanted)
        for hit in hits:
            yield from zip(hit.column("title").to_pylist(), hit.column("text").to_pylist(), strict=True)


def load_hf_wikipedia(path: str | Path, vocab: ClassVocabulary,
                      titles: dict[str, list[str]] | None) -> tuple[Articles, Counter]:
    """Articles per class of the rows of the dump at ``path`` whose title is wanted: ``titles`` per class, else
    the class names (``title_not_found`` counted per class with wanted titles and no row)."""
    files = _hf_files(path)
    col = ArticleCollector(vocab)
    wanted_by_class = titles if titles is not None else {e.class_id: list(e.all_names) for e in vocab}
    owners: dict[str, list[str]] = {}
    for cid in vocab.ids:
        for t in wanted_by_class.get(cid, []):
            key = norm_title(t)
            if key and cid not in owners.setdefault(key, []):
                owners[key].append(cid)
    source = f"hf-wikipedia:{Path(str(path).rstrip('/')).name or path}"
    found: set[str] = set()
    if owners:
        wanted = pa.array(sorted(owners), type=pa.string())
        for title, text in _matched_rows(files, wanted):
            ids = owners.get(norm_title(title or ""), [])
            found.update(ids)
            col.add(ids, title, text, source)
    for cid in vocab.ids:
        if wanted_by_class.get(cid) and cid not in found:
            col.skipped["title_not_found"] += 1
    return col.result()
