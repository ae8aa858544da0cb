"""Writer names → classes, and the factory the pipeline and CLI use."""

from __future__ import annotations

from pathlib import Path

from builders.writers.base import Writer
from builders.writers.hf_parquet import HFParquetWriter
from builders.writers.images import ImageFilesWriter
from builders.writers.jsonfiles import JsonArrayWriter, JsonlWriter, TsvWriter
from builders.writers.webdataset import WebDatasetWriter
from vlm_classdata.errors import UserError

WRITERS: dict[str, type[Writer]] = {
    "json_array": JsonArrayWriter,
    "jsonl": JsonlWriter,
    "tsv": TsvWriter,
    "hf_parquet": HFParquetWriter,
    "webdataset": WebDatasetWriter,
    "image_files": ImageFilesWriter,
}


def make_writer(name: str, out_dir: str | Path, options: dict | None = None) -> Writer:
    """The writer called ``name`` for ``out_dir``; ``UserError`` for an unknown name or option."""
    cls = WRITERS.get(name)
    if cls is None:
        raise UserError(f"unknown writer {name!r}; choose one of: {', '.join(sorted(WRITERS))}")
    known = getattr(cls, "option_names", None)
    if known is not None:
        unknown = sorted(set(options or {}) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise UserError(f"writer {name!r} has no option {', '.join(map(repr, unknown))} (options: {allowed})")
    return cls(Path(out_dir), options)
