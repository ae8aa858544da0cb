"""Run one pass with one model over a list of items: cached, resumable, local or on Ray, one sidecar out.

Items are cut into fixed chunks (``chunk_size``, in input order). Each finished chunk is written as one
parquet part under ``OUT/.cache/<pass>.<alias>/`` by atomic rename; every row carries its cache key
(model alias, prompt hash, sample id). A part is validated when read; a damaged one is set aside as
``<part>.damaged`` (one warning line naming it) and its chunk asked again. A later run with the same model reads the parts, skips every
(prompt hash, sample id) already answered and runs only what is left, so a killed pass resumes without
redoing or duplicating work. Because chunks are whole and fixed, a resumed run batches the remaining items
exactly as an uninterrupted run would. The sidecar ``OUT/<pass>.<alias>.parquet`` is then assembled from the
parts in input order, and ``OUT/<pass>.<alias>.json`` summarises it.

Executors: ``local`` (one model in this process), ``ray`` (Ray Data ``map_batches`` over chunks with an
actor pool, one model per actor, ``gpus_per_worker`` GPUs each). ``shard=(i, n)`` runs every n-th chunk
only, for one process per GPU without Ray; the processes share the cache and any of them assembles.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from builders.verify.items import Item
from builders.verify.passes import Pass, PassSettings, make_pass
from vlm_classdata import progress
from vlm_classdata.atomic import write_json_atomic, write_with
from vlm_classdata.errors import UserError, first_line
from vlm_classdata.provenance import package_versions
from vlm_classdata.records.verification import VerificationSummary
from vlm_classdata.vocabulary import ClassVocabulary

log = logging.getLogger(__name__)
_ALIAS_BAD = re.compile(r"[^A-Za-z0-9_\-]+")


def model_alias(model: str) -> str:
    """A file-name-safe short name for a model: a folder's name, or ``org__name`` for a hub id."""
    text = model.rstrip("/")
    path = Path(text).expanduser()
    if path.exists() or text.startswith(("/", ".", "~")):
        text = path.name
    return _ALIAS_BAD.sub("_", text.replace("/", "__")).strip("_") or "model"


@dataclass
class PassJob:
    """Everything one pass × model run needs (picklable: it travels to Ray actors)."""

    pass_name: str
    model: str  # local folder or hub id
    alias: str
    vocab: dict | None = None  # ClassVocabulary.to_json()
    settings: PassSettings = field(default_factory=PassSettings)
    device: str | None = None
    dtype: str | None = None

    def make_pass(self) -> Pass:
        """The pass object (needs no model)."""
        vocab = ClassVocabulary.from_json(self.vocab) if self.vocab is not None else None
        return make_pass(self.pass_name, self.settings, vocab)


class ChunkWorker:
    """Loads the model once, then answers chunks of items (the unit of caching and of Ray work)."""

    def __init__(self, job: PassJob) -> None:
        from vlm_classdata.vlm import VLM

        self.job = job
        self.pass_ = job.make_pass()
        self.vlm = VLM.load(job.model, device=job.device, dtype=job.dtype)

    def run(self, items: list[Item]) -> list[dict]:
        """One sidecar row per item."""
        return self.pass_.run(self.vlm, items, self.job.alias)


class _RayChunkActor:
    """Ray Data ``map_batches`` callable: a batch is one chunk, items as JSON, rows back as JSON."""

    def __init__(self, job: PassJob) -> None:
        self.worker = ChunkWorker(job)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        chunks, payloads = [], []
        for chunk, text in zip(batch["chunk"], batch["items"], strict=True):
            items = [Item(**{**d, "options": tuple(d["options"])}) for d in json.loads(text)]
            chunks.append(int(chunk))
            payloads.append(json.dumps(self.worker.run(items)))
        return {"chunk": chunks, "rows": payloads}


@dataclass
class RunOptions:
    """How to run: chunking, executor, sharding, progress."""

    chunk_size: int = 64
    executor: str = "local"
    num_workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    ray_address: str | None = None
    shard: tuple[int, int] | None = None
    progress: bool = True


_DAMAGED_PART = (OSError, pl.exceptions.PolarsError, pl.exceptions.PanicException)


class PassCache:
    """The parts folder of one pass × model: what is answered already, and writing new parts.

    A part is the whole answer to one chunk, published by atomic rename, so it is complete or absent. Each part
    is validated when it is read (a readable Parquet file with every column of the pass): a damaged one is set
    aside as ``<part>.damaged`` with a one-line warning naming it, and its chunk counts as not answered, so the
    run recomputes it instead of failing."""

    def __init__(self, out_dir: Path, job: PassJob, schema: dict[str, pl.DataType] | None = None) -> None:
        self.dir = out_dir / ".cache" / f"{job.pass_name}.{job.alias}"
        self.job = job
        self.schema = schema
        self.set_aside: list[Path] = []

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
                _warn(f"{meta_path} is damaged ({first_line(exc, 200)}); its cache was set aside as {aside} "
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

    def parts(self) -> list[Path]:
        """Finished parts in name order."""
        return sorted(self.dir.glob("part-*.parquet"))

    def read(self, part: Path, columns: list[str] | None = None) -> pl.DataFrame | None:
        """The rows of one part, or None after setting a damaged part aside (with a warning naming it)."""
        try:
            frame = pl.read_parquet(part)
            missing = [c for c in (self.schema or ("sample_id", "prompt_sha")) if c not in frame.columns]
            if missing:
                raise ValueError(f"no column {missing[0]!r}")
        except (*_DAMAGED_PART, ValueError) as exc:
            aside = _free_name(part.with_name(part.name + ".damaged"))
            try:
                part.rename(aside)
                where = f"set aside as {aside.name}"
            except FileNotFoundError:
                return None  # another shard process set it aside first
            self.set_aside.append(part)
            _warn(f"cache part {part} is damaged ({first_line(exc, 200)}); {where}, its chunk is asked again")
            return None
        return frame.select(columns) if columns else frame

    def done(self) -> set[tuple[str, str]]:
        """(sample id, prompt hash) of every row of every readable part."""
        keys: set[tuple[str, str]] = set()
        for part in self.parts():
            frame = self.read(part, ["sample_id", "prompt_sha"])
            if frame is not None:
                keys.update(zip(frame["sample_id"].to_list(), frame["prompt_sha"].to_list(), strict=True))
        return keys

    def write(self, chunk: int, rows: list[dict], schema: dict[str, pl.DataType]) -> Path:
        """Publish one chunk's rows as a new part (atomic; never overwrites an existing part)."""
        n = 0
        while (path := self.dir / f"part-{chunk:06d}-{n}.parquet").exists():
            n += 1
        write_parquet_atomic(pl.DataFrame(rows, schema=schema), path)
        return path

    def frame(self, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """All cached rows (of the parts that read)."""
        frames = [f for f in (self.read(p) for p in self.parts()) if f is not None]
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


def _warn(message: str) -> None:
    """One warning line on stderr (the run goes on)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def plan_chunks(items: list[Item], keys: list[str], done: set[tuple[str, str]], chunk_size: int,
                shard: tuple[int, int] | None) -> list[tuple[int, list[Item]]]:
    """Chunks (index, unanswered items) still to run; chunk ``j`` is ``items[j*size:(j+1)*size]``."""
    todo = []
    for j, start in enumerate(range(0, len(items), chunk_size)):
        if shard is not None and j % shard[1] != shard[0]:
            continue
        left = [it for it, key in zip(items[start:start + chunk_size], keys[start:start + chunk_size], strict=True)
                if (it.sample_id, key) not in done]
        if left:
            todo.append((j, left))
    return todo


def _run_local(job: PassJob, chunks: list[tuple[int, list[Item]]]) -> Iterator[tuple[int, list[dict]]]:
    worker = ChunkWorker(job)
    for j, items in chunks:
        yield j, worker.run(items)


def _run_ray(job: PassJob, chunks: list[tuple[int, list[Item]]],
             options: RunOptions) -> Iterator[tuple[int, list[dict]]]:
    from vlm_classdata.executors import ensure_ray

    ensure_ray(options.ray_address, options.num_workers)
    import ray

    rows = [{"chunk": j, "items": json.dumps([asdict(it) for it in items])} for j, items in chunks]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    ds = ds.map_batches(_RayChunkActor, fn_constructor_kwargs={"job": job}, batch_size=1,
                        concurrency=max(1, options.num_workers), num_gpus=options.gpus_per_worker or None,
                        num_cpus=options.cpus_per_worker, batch_format="numpy")
    for row in ds.iter_rows():
        yield int(row["chunk"]), json.loads(row["rows"])


def run_pass(items: list[Item], job: PassJob, out_dir: str | Path, options: RunOptions | None = None) -> dict:
    """Answer every item (skipping cached answers), then write the sidecar and its summary.

    Returns the summary (also written as ``OUT/<pass>.<alias>.json``). With ``options.shard`` the sidecar
    is assembled only when every chunk is answered."""
    options = options or RunOptions()
    if options.chunk_size < 1:
        raise UserError("--chunk-size must be at least 1")
    out = Path(out_dir)
    pass_ = job.make_pass()
    schema = pass_.schema()
    cache = PassCache(out, job, schema)
    chunk_size = cache.open(options.chunk_size)
    keys = [pass_.prompt_sha(it) for it in items]
    done = cache.done()
    chunks = plan_chunks(items, keys, done, chunk_size, options.shard)
    n_todo = sum(len(c) for _, c in chunks)
    started = time.perf_counter()
    bar = progress.make_bar(n_todo, f"{job.pass_name}[{job.alias}]", unit="item", disable=not options.progress)
    if chunks:
        if options.executor == "local":
            results = _run_local(job, chunks)
        elif options.executor == "ray":
            results = _run_ray(job, chunks, options)
        else:
            raise UserError(f"unknown executor {options.executor!r} (choose local or ray)")
        for j, rows in results:
            cache.write(j, rows, schema)
            bar.update(len(rows))
    bar.close()
    seconds = time.perf_counter() - started
    cached = sum(1 for it, key in zip(items, keys, strict=True) if (it.sample_id, key) in done)
    remaining = plan_chunks(items, keys, cache.done(), chunk_size, None)
    if remaining:  # another shard is still working
        return {"pass": job.pass_name, "model": job.alias, "complete": False, "answered_now": n_todo,
                "cached": cached, "remaining": sum(len(c) for _, c in remaining)}
    return _assemble(items, keys, job, cache, out, schema, answered_now=n_todo, cached=cached, seconds=seconds)


def _assemble(items: list[Item], keys: list[str], job: PassJob, cache: PassCache, out: Path,
              schema: dict[str, pl.DataType], answered_now: int, cached: int, seconds: float) -> dict:
    """Write the sidecar (input order, one row per item) and the summary."""
    order = pl.DataFrame({"sample_id": [it.sample_id for it in items], "prompt_sha": keys,
                          "_pos": list(range(len(items)))})
    frame = (cache.frame(schema).unique(subset=["sample_id", "prompt_sha"], keep="first", maintain_order=True)
             .join(order, on=["sample_id", "prompt_sha"], how="inner").sort("_pos").drop("_pos")
             .select(list(schema)))
    if frame.height != len(items):  # a part was damaged after it was counted: it is set aside by now
        raise UserError(f"{len(items) - frame.height} answer(s) of {job.pass_name}[{job.alias}] were lost from "
                        f"damaged cache parts (set aside); run the same command again to ask them again")
    stem = f"{job.pass_name}.{job.alias}"
    sidecar = out / f"{stem}.parquet"
    write_parquet_atomic(frame, sidecar)
    summary = summarize(frame, job)
    summary.update(sidecar=sidecar.name, answered_now=answered_now, cached=cached,
                   seconds=round(seconds, 3),
                   items_per_s=round(answered_now / seconds, 2) if seconds > 0 and answered_now else None)
    VerificationSummary.model_validate(_stable(summary)).write(out / f"{stem}.json")
    return summary


def _stable(summary: dict) -> dict:
    """The summary without timings (those vary run to run and go to runs.jsonl)."""
    return {k: v for k, v in summary.items() if k not in ("answered_now", "cached", "seconds", "items_per_s")}


def summarize(frame: pl.DataFrame, job: PassJob) -> dict:
    """Counts and headline metrics of a sidecar: ok/errors by reason, accuracy, pass-specific extras."""
    ok = frame.filter(pl.col("status") == "ok")
    errors = Counter(frame.filter(pl.col("status") == "error")["error"].to_list())
    n_ok = ok.height
    summary: dict[str, Any] = {
        "pass": job.pass_name, "model": job.alias, "model_path": job.model, "complete": True,
        "items": frame.height, "ok": n_ok, "errors": dict(sorted(errors.items())),
        "correct": int(ok["correct"].sum()) if n_ok else 0,
        "accuracy": round(float(ok["correct"].mean()), 6) if n_ok else None,
        "settings": asdict(job.settings),
        "tool": package_versions(("torch", "transformers", "polars", "rapidfuzz", "nltk")),
    }
    if "parse_how" in frame.columns:
        summary["parse_how"] = dict(sorted(Counter(ok["parse_how"].to_list()).items()))
    if "match_how" in frame.columns:
        summary["match_how"] = dict(sorted(Counter(ok["match_how"].to_list()).items()))
    if "rank" in frame.columns and n_ok:
        summary["top5_accuracy"] = round(float(ok["in_top5"].mean()), 6)
        summary["mean_rank"] = round(float(ok["rank"].mean()), 3)
        summary["median_rank"] = float(ok["rank"].median())
        summary["top1_by_mean_accuracy"] = round(float((ok["rank_mean"] == 1).mean()), 6)
    return summary

