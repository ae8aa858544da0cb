"""Filtered copies of data files: keep only the rows whose sample id survived the rules, in their original order.

JSON arrays (LLaVA training files) are written as the json_array writer does, JSONL question files one compact row
per line, and Parquet shards with the source's schema, key-value metadata, compression and row-group size. A row's
sample id follows :func:`vlm_classdata.verification.items.row_id`, as for the items that were verified."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from vlm_classdata.atomic import dumps_compact, write_bytes_atomic, write_with
from vlm_classdata.errors import UserError
from vlm_classdata.verification.items import ID_FIELDS, jsonl_objects, row_id
from vlm_classdata.verification.rules import FilterResult


def file_kind(path: Path) -> str:
    """``json``, ``jsonl`` or ``parquet`` by the file's suffix; any other file is a :class:`UserError`."""
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl", ".parquet"):
        return suffix[1:]
    raise UserError(f"cannot filter {path}: only .json (array), .jsonl and .parquet files are supported")


def _json_rows(path: Path) -> list[tuple[str | None, dict | None]]:
    """``(sample id, row)`` per element of a JSON array file; non-object elements give ``(None, None)`` and
    do not advance the row position (as in :func:`vlm_classdata.verification.items.load_items`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON array of rows, got {type(data).__name__}")
    out: list[tuple[str | None, dict | None]] = []
    position = 0
    for row in data:
        if isinstance(row, dict):
            out.append((row_id(row, position), row))
            position += 1
        else:
            out.append((None, None))
    return out


def _jsonl_rows(path: Path) -> list[tuple[str | None, dict | None]]:
    """``(sample id, row)`` per non-blank line of a JSONL file, positions counted as in ``load_items``;
    malformed lines give ``(None, None)``."""
    out: list[tuple[str | None, dict | None]] = []
    position = 0
    for _, row in jsonl_objects(path):
        if row is None:
            out.append((None, None))
            continue
        out.append((row_id(row, position), row))
        position += 1
    return out


def _parquet_ids(path: Path) -> list[str]:
    """The sample id of each row of a Parquet file (the :func:`row_id` rule over its id columns)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
    present = [c for c in ID_FIELDS if c in schema.names]
    if not present:
        raise UserError(f"{path}: Parquet file has no id column ({', '.join(ID_FIELDS)})")
    table = pq.read_table(path, columns=present)
    columns = {c: table.column(c).to_pylist() for c in present}
    return [row_id({c: columns[c][i] for c in present}, i) for i in range(table.num_rows)]


def read_ids(path: Path) -> list[str]:
    """The sample ids of a data file in row order (malformed JSON/JSONL rows have none and are left out)."""
    kind = file_kind(path)
    if kind == "parquet":
        return _parquet_ids(path)
    rows = _json_rows(path) if kind == "json" else _jsonl_rows(path)
    return [sid for sid, _ in rows if sid is not None]


def _json_array_bytes(rows: list[dict]) -> bytes:
    """Rows as :class:`builders.writers.jsonfiles.JsonArrayWriter` writes them."""
    if not rows:
        return b"[]\n"
    return ("[\n" + ",\n".join(dumps_compact(r) for r in rows) + "\n]\n").encode("utf-8")


def _jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(dumps_compact(r) + "\n" for r in rows).encode("utf-8")


def _parquet_write_options(path: Path) -> dict:
    """Compression, dictionary, statistics and row-group size of a Parquet file, to write its copy alike."""
    meta = pq.ParquetFile(path).metadata
    if meta.num_row_groups == 0:
        return {}
    group = meta.row_group(0)
    compression: dict[str, str] = {}
    dictionary: list[str] = []
    statistics: list[str] = []
    for i in range(group.num_columns):
        col = group.column(i)
        compression[col.path_in_schema] = "NONE" if col.compression == "UNCOMPRESSED" else col.compression
        if any("DICTIONARY" in e for e in col.encodings):
            dictionary.append(col.path_in_schema)
        if col.is_stats_set:
            statistics.append(col.path_in_schema)
    return {"compression": compression, "use_dictionary": dictionary, "write_statistics": statistics,
            "row_group_size": max(group.num_rows, 1)}


def _filter_parquet(src: Path, dst: Path, ids: list[str], kept: set[str]) -> tuple[int, int]:
    table = pq.read_table(src)
    mask = pl.Series(ids, dtype=pl.String).is_in(pl.Series(sorted(kept), dtype=pl.String)).to_arrow()
    out = table.filter(mask)
    options = _parquet_write_options(src)

    def write(tmp: Path) -> None:
        try:
            pq.write_table(out, tmp, **options)
        except OSError:  # disk full, no permission: not a matter of options
            raise
        except (ValueError, pa.ArrowException):  # options that this pyarrow cannot reproduce: plain write
            pq.write_table(out, tmp)

    write_with(dst, write)
    return table.num_rows, out.num_rows


def relative_path(path: Path, base_dir: Path) -> Path:
    """``path`` relative to ``base_dir``; a path outside it is a :class:`UserError`."""
    try:
        return path.resolve().relative_to(base_dir.resolve())
    except ValueError:
        raise UserError(f"input {path} is not under the base folder {base_dir}") from None


def check_not_base(out_dir: Path, base_dir: Path) -> None:
    """Refuse an output folder that is the base folder (the copies would overwrite the inputs)."""
    if out_dir.resolve() == base_dir.resolve():
        raise UserError(f"output folder {out_dir} is the base folder: the copies would overwrite the inputs")


def filter_files(files: list[Path], out_dir: Path, base_dir: Path, result: FilterResult) -> dict[str, dict]:
    """Write a filtered copy of each file to ``out_dir/<path relative to base_dir>``: only rows whose sample
    id is in ``result.kept``, in their original order. JSON arrays are written as the json_array writer does,
    JSONL one compact row per line, Parquet with the source schema, metadata and write settings.

    Returns per relative path ``{"rows": rows in, "kept": rows out}`` (plus ``bad_rows`` when malformed
    JSON/JSONL rows were left out). Inputs are never modified; ``out_dir == base_dir`` is a
    :class:`UserError`."""
    out_dir, base_dir = Path(out_dir), Path(base_dir)
    check_not_base(out_dir, base_dir)
    kept = set(result.kept)
    plan: list[tuple[Path, Path, str]] = []
    seen: set[str] = set()
    for f in files:
        src = Path(f)
        if not src.is_file():
            raise UserError(f"input {str(f)!r} not found")
        kind = file_kind(src)
        rel = relative_path(src, base_dir)
        key = rel.as_posix()
        if key in seen:
            raise UserError(f"input {key} is named twice")
        seen.add(key)
        dst = out_dir / rel
        if dst.resolve() == src.resolve():
            raise UserError(f"filtered copy of {src} would overwrite it; choose another output folder")
        plan.append((src, dst, kind))
    counts: dict[str, dict] = {}
    for src, dst, kind in plan:
        key = relative_path(src, base_dir).as_posix()
        if kind == "parquet":
            n_in, n_out = _filter_parquet(src, dst, _parquet_ids(src), kept)
            counts[key] = {"rows": n_in, "kept": n_out}
            continue
        rows = _json_rows(src) if kind == "json" else _jsonl_rows(src)
        keep = [row for sid, row in rows if sid is not None and sid in kept]
        write_bytes_atomic(dst, _json_array_bytes(keep) if kind == "json" else _jsonl_bytes(keep))
        counts[key] = {"rows": len(rows), "kept": len(keep)}
        bad = sum(1 for sid, _ in rows if sid is None)
        if bad:
            counts[key]["bad_rows"] = bad
    return dict(sorted(counts.items()))
