"""One shard of a build: the job, what it reports, and :func:`run_shard`, which a worker runs.

A shard reads its slice of the plan, inspects each image, makes each task's example once, lays it out per
output and hands the rows to the shard writers; finished, it leaves its completion marker
(:class:`vlm_classdata.stages.Stages` in ``OUT/.state/``) carrying the plan fingerprint.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builders.config import BuildConfig
from builders.formats.base import Task
from builders.records import Record, SampleRef
from builders.sources.base import Source
from vlm_classdata import progress
from vlm_classdata.images import inspect_image, to_rgb_jpeg
from vlm_classdata.stages import Stages

STATE_DIR = ".state"  # OUT's resume state: the plan, its listing and the shard markers


@dataclass
class ShardJob:
    """One unit of work: a contiguous slice of one split's plan."""

    stage: str  # "check" or "build"
    split: str
    shard: int
    num_shards: int
    refs: list[SampleRef]
    first_index: int  # global index of refs[0] within the split's plan
    positions: list[int] | None = None


@dataclass
class ShardResult:
    """What a finished shard reports (also stored as its completion marker)."""

    stage: str
    split: str
    shard: int
    num_items: int
    written: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    skipped: list[list[str]] = field(default_factory=list)  # [key, locator, reason, detail]
    converted: dict[str, int] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)


class BuildContext:
    """Everything a worker needs to run a shard; sent once to each worker of a stage."""

    def __init__(self, source: Source, out_dir: Path, config: BuildConfig, tasks: dict[str, Task],
                 outputs: dict[str, dict], writers: dict[str, Any], export_images: bool) -> None:
        self.source, self.out_dir, self.config = source, out_dir, config
        self.tasks, self.outputs, self.writers = tasks, outputs, writers
        self.export_images = export_images
        self.plan_fingerprint = ""  # set once the plan is known; every shard marker carries it

    def worker_modules(self) -> list[str]:
        """Modules a worker imports to run shards (for executors that can import them ahead of time): this
        one, those of the source, tasks, layouts and writers, and what writers list in ``worker_modules``."""
        mods = {__name__, type(self.source).__module__}
        mods.update(type(t).__module__ for t in self.tasks.values())
        mods.update(spec["layout_fn"].__module__ for spec in self.outputs.values())
        for writer in self.writers.values():
            mods.add(type(writer).__module__)
            mods.update(getattr(writer, "worker_modules", ()))
        return sorted(mods)


def no_row(example: Any, record: Record) -> dict:
    """Layout of the image-export writer: it needs only the record."""
    return {}


def shard_unit(stage: str, split: str, shard: int) -> str:
    """The :class:`~vlm_classdata.stages.Stages` unit of one shard of one stage."""
    return f"{stage}/{split}-{shard:05d}"


def _load_bytes(ctx: BuildContext, ref: SampleRef, data: bytes) -> tuple[bytes, str, Any, str | None]:
    """Inspect; return (bytes, ext, check, skip_reason)."""
    chk = inspect_image(data, ctx.config.verify, ctx.config.max_pixels)
    if chk.skip:
        return data, chk.ext, chk, chk.skip
    if chk.convert:
        if ctx.config.nonrgb == "skip":
            return data, chk.ext, chk, chk.convert
        return to_rgb_jpeg(data), "jpg", chk, None
    return data, chk.ext, chk, None


def _image_path(ctx: BuildContext, ref: SampleRef, ext: str) -> str | None:
    """The path rows reference the image by (exported copy or source file, with the configured prefix)."""
    image_path = ctx.source.image_path(ref)
    if ctx.export_images:
        image_path = f"images/{ref.split}/{ref.key}.{ext}"
    if image_path is not None and ctx.config.image_prefix:
        image_path = ctx.config.image_prefix.rstrip("/") + "/" + image_path
    return image_path


def prepare_writers(ctx: BuildContext, ref: SampleRef, position: int | None) -> None:
    """In the parent, before the build stage: give every writer with a ``prepare(record, row)`` hook the row
    of ``ref`` (a planned sample; its image is not read), so that work every shard would otherwise repeat in
    its worker (the HF writer's schema, which needs ``datasets``) is done once and travels with the writer."""
    vocab = ctx.source.vocabulary
    entry = vocab[ref.class_id]
    record = Record(key=ref.key, split=ref.split, class_id=entry.class_id, label=entry.index,
                    class_name=entry.name, image_bytes=b"", image_ext="jpg", image_path=_image_path(ctx, ref, "jpg"),
                    meta={"dataset": vocab.dataset, "index": 0})
    examples: dict[str, Any] = {}
    for name, writer in ctx.writers.items():
        prepare = getattr(writer, "prepare", None)
        if prepare is None:
            continue
        spec = ctx.outputs[name]
        if spec["task"] not in examples:
            examples[spec["task"]] = ctx.tasks[spec["task"]].make(record, position)
        prepare(record, spec["layout_fn"](examples[spec["task"]], record))


def run_shard(args: tuple[BuildContext, ShardJob]) -> ShardResult:
    """Run one shard of the check or build stage and leave its completion marker."""
    ctx, job = args
    res = ShardResult(job.stage, job.split, job.shard, num_items=len(job.refs))
    building = job.stage == "build"
    shard_writers: dict[str, Any] = {}
    if building:
        shard_writers = {name: w.shard_writer(job.split, job.shard, job.num_shards)
                         for name, w in ctx.writers.items()}
    vocab = ctx.source.vocabulary
    classes: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    pending_ticks = 0
    try:
        for i, (ref, data, err) in enumerate(ctx.source.read(job.refs)):
            pending_ticks += 1
            if pending_ticks >= 64:
                progress.tick(pending_ticks)
                pending_ticks = 0
            if err is not None or data is None:
                res.skipped.append([ref.key, ref.locator, err or "unreadable", ""])
                continue
            data, ext, chk, skip = _load_bytes(ctx, ref, data)
            if skip:
                res.skipped.append([ref.key, ref.locator, skip, chk.detail])
                continue
            if chk.convert:
                converted[chk.convert] += 1
            if not building:
                continue
            entry = vocab[ref.class_id]
            record = Record(key=ref.key, split=ref.split, class_id=entry.class_id, label=entry.index,
                            class_name=entry.name, image_bytes=data, image_ext=ext,
                            image_path=_image_path(ctx, ref, ext), width=chk.width, height=chk.height,
                            converted=chk.convert, meta={"dataset": vocab.dataset, "index": job.first_index + i})
            position = job.positions[i] if job.positions is not None else None
            examples: dict[str, Any] = {}
            for name, spec in ctx.outputs.items():
                task_name = spec["task"]
                if task_name not in examples:
                    examples[task_name] = ctx.tasks[task_name].make(record, position)
                row = spec["layout_fn"](examples[task_name], record)
                shard_writers[name].add(record, row)
            classes[entry.class_id] += 1
        progress.tick(pending_ticks)
        for name, sw in shard_writers.items():
            res.files[name] = sorted(os.path.relpath(p, ctx.out_dir) for p in sw.close())
    except BaseException:
        for sw in shard_writers.values():
            with contextlib.suppress(OSError):  # report the first error; what abort leaves, the next start removes
                sw.abort()
        raise
    res.written = sum(classes.values())
    res.class_counts = dict(sorted(classes.items()))
    res.converted = dict(sorted(converted.items()))
    Stages(ctx.out_dir / STATE_DIR).mark(shard_unit(job.stage, job.split, job.shard), ctx.plan_fingerprint, asdict(res))
    return res
