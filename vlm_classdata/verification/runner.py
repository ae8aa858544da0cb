"""Run one pass with one model over a list of items: cached, resumable, local or on Ray, one sidecar out.

Items are cut into fixed chunks (``chunk_size``, in input order). Each finished chunk is one part of the
pass's :class:`~vlm_classdata.verification.chunk_cache.PassCache` (published atomically, then marked done with a
:class:`vlm_classdata.stages.Stages` marker); every row carries its cache key (model alias, prompt hash, sample
id). A later run with the same model reads the finished parts, skips every (prompt hash, sample id) already
answered and runs only what is left, so a killed pass resumes without redoing or duplicating work. Because chunks
are whole and fixed, a resumed run batches the remaining items exactly as an uninterrupted run would. The sidecar
``OUT/<pass>.<alias>.parquet`` is then assembled from the parts in input order, and ``OUT/<pass>.<alias>.json``
summarises it.

Executors (:mod:`vlm_classdata.verification.workers`): ``local`` (one model in this process), ``ray`` (Ray Data
``map_batches`` over chunks with an actor pool, one model per actor, ``gpus_per_worker`` GPUs each).
``shard=(i, n)`` runs every n-th chunk only, for one process per GPU without Ray; the processes share the cache
and any of them assembles.

With multi-label truth (:mod:`vlm_classdata.verification.multilabels`) ``correct_any`` is worked out while
assembling, from the cached answers: the cache holds the answer columns only and does not depend on the
multi-label file.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from vlm_classdata import progress
from vlm_classdata.errors import UserError
from vlm_classdata.records.verification import VerificationSummary
from vlm_classdata.verification.chunk_cache import PassCache, write_parquet_atomic
from vlm_classdata.verification.items import Item
from vlm_classdata.verification.jobs import PassJob, RunOptions
from vlm_classdata.verification.multilabels import MultiLabels
from vlm_classdata.verification.passes import MULTI_LABEL_COLUMNS, Pass
from vlm_classdata.verification.summary import stable_summary, summarize
from vlm_classdata.verification.workers import ModelCache, run_local, run_ray


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


def run_pass(items: list[Item], job: PassJob, out_dir: str | Path, options: RunOptions | None = None,
             models: ModelCache | None = None, multi_labels: MultiLabels | None = None) -> dict:
    """Answer every item (skipping cached answers), then write the sidecar and its summary.

    Returns the summary (also written as ``OUT/<pass>.<alias>.json``). With ``options.shard`` the sidecar
    is assembled only when every chunk is answered. The local executor takes the model from ``models`` when it
    holds it (several passes, one load). ``multi_labels`` fills ``correct_any`` (null without it)."""
    options = options or RunOptions()
    if options.chunk_size < 1:
        raise UserError("--chunk-size must be at least 1")
    out = Path(out_dir)
    pass_ = job.make_pass()
    schema = pass_.schema()
    answers = {k: v for k, v in schema.items() if k not in MULTI_LABEL_COLUMNS}  # what the cache holds
    cache = PassCache(out, job, answers)
    chunk_size = cache.open(options.chunk_size)
    keys = [pass_.prompt_sha(it) for it in items]
    done = cache.done()
    chunks = plan_chunks(items, keys, done, chunk_size, options.shard)
    n_todo = sum(len(c) for _, c in chunks)
    started = time.perf_counter()
    bar = progress.make_bar(n_todo, f"{job.pass_name}[{job.alias}]", unit="item", disable=not options.progress)
    if chunks:
        if options.executor == "local":
            results = run_local(job, chunks, models)
        elif options.executor == "ray":
            results = run_ray(job, chunks, options)
        else:
            raise UserError(f"unknown executor {options.executor!r} (choose local or ray)")
        for j, rows in results:
            cache.write(j, rows, answers)
            bar.update(len(rows))
    bar.close()
    seconds = time.perf_counter() - started
    cached = sum(1 for it, key in zip(items, keys, strict=True) if (it.sample_id, key) in done)
    remaining = plan_chunks(items, keys, cache.done(), chunk_size, None)
    if remaining:  # another shard is still working
        return {"pass": job.pass_name, "model": job.alias, "complete": False, "answered_now": n_todo,
                "cached": cached, "remaining": sum(len(c) for _, c in remaining)}
    frame = _assemble(items, keys, job, cache, answers)
    frame = score_frame(frame, items, pass_, multi_labels).select(list(schema))
    classes = {it.sample_id: it.class_id for it in items}  # the class of each item, for per-class accuracy
    return _write(frame, job, out, classes, answered_now=n_todo, cached=cached, seconds=seconds)


def _assemble(items: list[Item], keys: list[str], job: PassJob, cache: PassCache,
              schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The sidecar's rows from the cache: input order, one row per item."""
    order = pl.DataFrame({"sample_id": [it.sample_id for it in items], "prompt_sha": keys,
                          "_pos": list(range(len(items)))})
    frame = (cache.frame(schema).unique(subset=["sample_id", "prompt_sha"], keep="first", maintain_order=True)
             .join(order, on=["sample_id", "prompt_sha"], how="inner").sort("_pos").drop("_pos")
             .select(list(schema)))
    if frame.height != len(items):  # a part was damaged after it was counted: it is set aside by now
        raise UserError(f"{len(items) - frame.height} answer(s) of {job.pass_name}[{job.alias}] were lost from "
                        f"damaged cache parts (set aside); run the same command again to ask them again")
    return frame


def _write(frame: pl.DataFrame, job: PassJob, out: Path, classes: dict[str, str | None], answered_now: int,
           cached: int, seconds: float) -> dict:
    """Write the sidecar and its summary; returns the summary."""
    stem = f"{job.pass_name}.{job.alias}"
    sidecar = out / f"{stem}.parquet"
    write_parquet_atomic(frame, sidecar)
    summary = summarize(frame, job, classes)
    summary.update(sidecar=sidecar.name, answered_now=answered_now, cached=cached,
                   seconds=round(seconds, 3),
                   items_per_s=round(answered_now / seconds, 2) if seconds > 0 and answered_now else None)
    VerificationSummary.model_validate(stable_summary(summary)).write(out / f"{stem}.json")
    return summary


def score_frame(frame: pl.DataFrame, items: list[Item], pass_: Pass, labels: MultiLabels | None) -> pl.DataFrame:
    """``frame`` (one row per item, in item order) with ``correct_any`` and ``accepted_class_ids`` (re)set.

    Without ``labels`` both are null. ``correct_any`` is the pass's :meth:`~Pass.correct_for_any` for answered
    rows whose item has a non-empty accepted set, null otherwise."""
    if not pass_.multi_label:
        return frame
    accepted: list[list[str] | None] = []
    correct: list[bool | None] = []
    for item, row in zip(items, frame.iter_rows(named=True), strict=True):
        found = labels.get(item.sample_id) if labels is not None else None
        accepted.append(None if found is None else list(found))
        answered = found and row["status"] == "ok"
        correct.append(pass_.correct_for_any(item, row, found) if answered else None)
    return frame.with_columns(pl.Series("correct_any", correct, dtype=MULTI_LABEL_COLUMNS["correct_any"]),
                              pl.Series("accepted_class_ids", accepted,
                                        dtype=MULTI_LABEL_COLUMNS["accepted_class_ids"]))
