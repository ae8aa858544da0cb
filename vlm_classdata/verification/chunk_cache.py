"""The answer cache of one pass × model: ``OUT/.cache/<pass>.<alias>/``, one Parquet part per finished chunk.

A part is the whole answer to one chunk, published by atomic rename; only then is the chunk marked done with a
:class:`vlm_classdata.stages.Stages` marker (``part-<chunk>-<n>.done.json``) whose fingerprint is a hash of the
model and the (sample id, prompt hash) key of every row of the part. A part without a matching marker (a run
killed between publishing and marking) does not count. Each counted part is validated when it is read (a
readable Parquet file with every column of the pass): a damaged one is set aside as ``<part>.damaged`` with a
one-line warning naming it, its marker is cleared, and its chunk counts as not answered, so the run recomputes it
instead of failing."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import polars as pl

from vlm_classdata.atomic import write_json_atomic, write_with
from vlm_classdata.errors import UserError, first_line
from vlm_classdata.stages import Stages, fingerprint
from vlm_classdata.verification.jobs import PassJob

log = logging.getLogger(__name__)
_DAMAGED_PART = (OSError, pl.exceptions.PolarsError, pl.exceptions.PanicException)
_KEY_COLUMNS = ["sample_id", "prompt_sha"]


class PassCache:
    """The parts folder of one pass × model: what is answered already, and writing new parts (see the module
    docstring)."""

    def __init__(self, out_dir: Path, job: PassJob, schema: dict[str, pl.DataType] | None = None) -> None:
        self.dir = out_dir / ".cache" / f"{job.pass_name}.{job.alias}"
        self.job = job
        self.schema = schema
        self.stages = Stages(self.dir)

    def open(self, chunk_size: int) -> int:
        """Create or check the folder's meta; returns the chunk size to use (the stored one on resume).

        A damaged ``meta.json`` means the parts cannot be tied to a model: the folder is set aside (warning)
        and the pass starts afresh."""
        self.dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.dir / "meta.json"
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                model, stored = meta["model"], int(meta["chunk_size"])
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                aside = _free_name(self.dir.with_name(self.dir.name + ".damaged"))
                self.dir.rename(aside)
                warn(f"{meta_path} is damaged ({first_line(exc, 200)}); its cache was set aside as {aside} "
                     "and the pass starts afresh")
                return self.open(chunk_size)
            if model != self.job.model:
                raise UserError(f"alias {self.job.alias!r} was used for model {model!r}; "
                                f"pass --alias to name {self.job.model!r} differently")
            if stored != chunk_size:
                log.info("resuming with the cache's chunk size %d (not %d)", stored, chunk_size)
            return stored
        write_json_atomic(meta_path, {"model": self.job.model, "chunk_size": chunk_size})
        return chunk_size

    def _fingerprint(self, keys: list[tuple[str, str]]) -> str:
        """What decides a part's rows: the model and the (sample id, prompt hash) of each row."""
        return fingerprint(self.job.model, [list(k) for k in keys])

    def _read(self, part: Path) -> pl.DataFrame | None:
        """The rows of one part, or None after setting a damaged part aside (with a warning naming it)."""
        try:
            frame = pl.read_parquet(part)
            missing = [c for c in (self.schema or _KEY_COLUMNS) if c not in frame.columns]
            if missing:
                raise ValueError(f"no column {missing[0]!r}")
        except (*_DAMAGED_PART, ValueError) as exc:
            aside = _free_name(part.with_name(part.name + ".damaged"))
            try:
                part.rename(aside)
            except FileNotFoundError:
                return None  # another shard process set it aside first
            self.stages.clear(part.name.removesuffix(".parquet"))
            warn(f"cache part {part} is damaged ({first_line(exc, 200)}); set aside as {aside.name}, its chunk "
                 "is asked again")
            return None
        return frame

    def finished(self) -> list[pl.DataFrame]:
        """The rows of every finished part (published and marked done with a matching fingerprint), by name."""
        frames = []
        for part in sorted(self.dir.glob("part-*.parquet")):
            unit = part.name.removesuffix(".parquet")
            if not self.stages.path(unit).is_file():
                continue  # published but never marked (the run was killed in between): its chunk is asked again
            frame = self._read(part)
            if frame is None:
                continue
            keys = list(zip(frame["sample_id"].to_list(), frame["prompt_sha"].to_list(), strict=True))
            if self.stages.done(unit, self._fingerprint(keys)) is not None:
                frames.append(frame)
        return frames

    def done(self) -> set[tuple[str, str]]:
        """(sample id, prompt hash) of every row of every finished part."""
        keys: set[tuple[str, str]] = set()
        for frame in self.finished():
            keys.update(zip(frame["sample_id"].to_list(), frame["prompt_sha"].to_list(), strict=True))
        return keys

    def write(self, chunk: int, rows: list[dict], schema: dict[str, pl.DataType]) -> Path:
        """Publish one chunk's rows as a new part (atomic; never overwrites an existing part), then mark it done."""
        n = 0
        while (path := self.dir / f"part-{chunk:06d}-{n}.parquet").exists():
            n += 1
        write_parquet_atomic(pl.DataFrame(rows, schema=schema), path)
        keys = [(r["sample_id"], r["prompt_sha"]) for r in rows]
        self.stages.mark(path.name.removesuffix(".parquet"), self._fingerprint(keys),
                         {"chunk": chunk, "rows": len(rows)})
        return path

    def frame(self, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """All rows of the finished parts."""
        frames = self.finished()
        if not frames:
            return pl.DataFrame(schema=schema)
        return pl.concat(frames, how="vertical_relaxed")


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Publish ``frame`` as ``path`` atomically; a failed write (disk full, no permission) is an
    :class:`OSError` naming ``path`` (see :func:`vlm_classdata.atomic.write_with`)."""
    write_with(path, frame.write_parquet)


def _free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2`` ... whichever does not exist yet."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def warn(message: str) -> None:
    """One warning line on stderr (the run goes on)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
