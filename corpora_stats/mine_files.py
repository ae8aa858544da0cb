"""The parquet files ``mine`` reads: corpus specs (files, folders, globs; optionally ``NAME=PATH``) resolved
to labelled files that hold the URL and caption columns."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlm_classdata.errors import UserError

_GLOB_MAGIC = re.compile(r"[*?\[]")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


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


def corpus_specs(corpus_paths: Any) -> list[tuple[str | None, str]]:
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


def resolve_specs(specs: list[tuple[str | None, str]], url_col: str, text_col: str) -> list[CorpusFile]:
    import pyarrow.parquet as pq  # heavy (+ numpy, ~0.15 CPU-s): only mining needs it, never a txt count

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
