"""Who answers chunks of items: one model in this process (:func:`run_local`) or a Ray Data actor pool
(:func:`run_ray`, one model per actor). Both yield ``(chunk index, sidecar rows)`` as chunks finish."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from vlm_classdata.executors import ensure_ray
from vlm_classdata.extras import require
from vlm_classdata.verification.items import Item
from vlm_classdata.verification.jobs import PassJob, RunOptions
from vlm_classdata.vlm import VLM


class ModelCache:
    """The last model loaded in this process, kept for the next pass × model job that asks for the same one (so a
    run of several passes with one model loads it once). One model is held at a time: the previous one is let go
    before the next loads."""

    def __init__(self) -> None:
        self._key: tuple[str, str | None, str | None] | None = None
        self._vlm: VLM | None = None

    def get(self, job: PassJob) -> VLM:
        """The loaded model of ``job`` (loaded now unless it is the one held)."""
        key = (job.model, job.device, job.dtype)
        if key != self._key or self._vlm is None:
            self._key, self._vlm = None, None
            self._vlm = VLM.load(job.model, device=job.device, dtype=job.dtype)
            self._key = key
        return self._vlm


class ChunkWorker:
    """Holds the model, then answers chunks of items (the unit of caching and of Ray work)."""

    def __init__(self, job: PassJob, models: ModelCache | None = None) -> None:
        self.job = job
        self.pass_ = job.make_pass()
        self.vlm = (models or ModelCache()).get(job)

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
            items = [Item(**{**d, "options": tuple(d["options"]),
                           "option_class_ids": tuple(d.get("option_class_ids", ()))}) for d in json.loads(text)]
            chunks.append(int(chunk))
            payloads.append(json.dumps(self.worker.run(items)))
        return {"chunk": chunks, "rows": payloads}


def run_local(job: PassJob, chunks: list[tuple[int, list[Item]]],
              models: ModelCache | None = None) -> Iterator[tuple[int, list[dict]]]:
    """Answer the chunks in order with one model in this process (from ``models`` when it holds it)."""
    worker = ChunkWorker(job, models)
    for j, items in chunks:
        yield j, worker.run(items)


def run_ray(job: PassJob, chunks: list[tuple[int, list[Item]]],
            options: RunOptions) -> Iterator[tuple[int, list[dict]]]:
    """Answer the chunks on a Ray Data actor pool (``options.num_workers`` actors), in completion order."""
    require("ray")
    ensure_ray(options.ray_address, options.num_workers)
    import ray  # heavy: only the Ray executor needs it

    rows = [{"chunk": j, "items": json.dumps([asdict(it) for it in items])} for j, items in chunks]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    ds = ds.map_batches(_RayChunkActor, fn_constructor_kwargs={"job": job}, batch_size=1,
                        concurrency=max(1, options.num_workers), num_gpus=options.gpus_per_worker or None,
                        num_cpus=1.0, batch_format="numpy")
    for row in ds.iter_rows():
        yield int(row["chunk"]), json.loads(row["rows"])
