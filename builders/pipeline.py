"""The build pipeline: plan shards, run them on an executor, finalise outputs, write the manifest.

    scan ─► plan (limit, shards) ─► [check stage: only when MCQ positions must be balanced exactly]
         ─► build stage: read ─► inspect ─► Record ─► task ─► layout ─► writers (per shard)
         ─► finalize writers ─► optional LLaVA mix ─► manifest.json

Resumability: each finished shard leaves a completion marker in ``OUT/.state/<stage>/``; a restarted build
skips marked shards and redoes the others, whose files are overwritten atomically. Determinism: shards
are fixed by the plan (not by workers); per-sample randomness comes from ``sample_rng(seed, ...)``; the
manifest holds no times or worker counts (those go to ``OUT/run_log.jsonl``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from builders.formats.base import Task
from builders.records import Record, SampleRef
from builders.sources.base import Source
from core import progress
from core.atomic import write_json_atomic
from core.errors import UserError
from core.executors import Executor, LocalExecutor
from core.images import DEFAULT_MAX_PIXELS, inspect_image, to_rgb_jpeg
from core.provenance import TOOL_NAME, package_versions

STATE_DIR = ".state"
BUILD_PACKAGES = ("datasets", "pyarrow", "pillow", "webdataset", "nltk", "numpy")  # they shape the output bytes


def output_registry() -> dict[str, dict]:
    """Named outputs (task + layout + writer + folder), from builders/outputs.json."""
    return json.loads(resources.files("builders").joinpath("outputs.json").read_text())


@dataclass
class BuildConfig:
    """Everything that determines a build's bytes (executor and worker count deliberately excluded)."""

    outputs: list[str] = field(default_factory=lambda: ["llava", "hf", "eval_open", "mcq"])
    seed: int = 0
    splits: list[str] | None = None
    limit: int | None = None
    shard_size: int = 1000
    verify: str = "fast"
    nonrgb: str = "convert"
    max_pixels: int = DEFAULT_MAX_PIXELS
    mcq_choices: int = 4
    distractors: str = "random"
    cot: bool = False
    paraphrase_eval: bool = False
    prompts: str | None = None
    image_prefix: str = ""
    wds_max_bytes: int = 1_000_000_000
    wds_max_count: int = 100_000
    mix_with: str | None = None

    def validate(self) -> None:
        """Raise UserError for impossible settings."""
        known = output_registry()
        bad = [o for o in self.outputs if o not in known]
        if bad:
            raise UserError(f"unknown output {bad[0]!r}; choose from {', '.join(known)}")
        if not self.outputs:
            raise UserError("no outputs selected")
        if self.shard_size < 1:
            raise UserError("--shard-size must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")
        if self.verify not in ("fast", "full"):
            raise UserError("--verify must be fast or full")
        if self.nonrgb not in ("convert", "skip"):
            raise UserError("--nonrgb must be convert or skip")
        if self.distractors not in ("random", "hard"):
            raise UserError("--distractors must be random or hard")
        if self.mix_with and not Path(self.mix_with).is_file():
            raise UserError(f"--mix-with {self.mix_with}: no such file")


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


def _no_row(example: Any, record: Record) -> dict:
    """Layout of the image-export writer: it needs only the record."""
    return {}


def _marker_path(out_dir: Path, stage: str, split: str, shard: int) -> Path:
    return out_dir / STATE_DIR / stage / f"{split}-{shard:05d}.json"


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
            sw.abort()
        raise
    res.written = sum(classes.values())
    res.class_counts = dict(sorted(classes.items()))
    res.converted = dict(sorted(converted.items()))
    write_json_atomic(_marker_path(ctx.out_dir, job.stage, job.split, job.shard), asdict(res))
    return res


def _spread_limit(refs: list[SampleRef], limit: int, seed: int) -> list[SampleRef]:
    """A seeded subset of ``limit`` refs spread over classes, kept in scan order."""
    if len(refs) <= limit:
        return refs

    def rank(ref: SampleRef) -> str:
        return hashlib.sha256(f"{seed}\x1f{ref.split}\x1f{ref.key}".encode()).hexdigest()

    chosen = {r.key for r in sorted(refs, key=rank)[:limit]}
    return [r for r in refs if r.key in chosen]


class Build:
    """One build of one source into one output folder."""

    def __init__(self, source: Source, out_dir: str | os.PathLike, config: BuildConfig,
                 executor: Executor | None = None, show_progress: bool = True) -> None:
        config.validate()
        self.source, self.out_dir, self.config = source, Path(out_dir), config
        self.executor = executor or LocalExecutor(1)
        self.show_progress = show_progress
        self.registry = output_registry()

    # ----- set-up -----------------------------------------------------------------------------
    def _make_tasks(self) -> dict[str, Task]:
        from builders.formats.tasks import make_task
        from builders.prompts import PromptRegistry

        prompts = PromptRegistry.load(self.config.prompts)
        vocab = self.source.vocabulary
        needed = sorted({self.registry[o]["task"] for o in self.config.outputs})
        tasks = {}
        for name in needed:
            options: dict[str, Any] = {"cot": self.config.cot}
            if name in ("open", "mcq"):
                options["paraphrase"] = self.config.paraphrase_eval
            if name == "mcq":
                options.update(num_choices=self.config.mcq_choices, distractors=self.config.distractors)
            tasks[name] = make_task(name, vocab, self.config.seed, prompts, **options)
        return tasks

    def _make_outputs(self) -> tuple[dict[str, dict], dict[str, Any], bool]:
        from builders.formats.layouts import layout_for
        from builders.writers.registry import make_writer

        outputs, writers = {}, {}
        export = False
        for name in self.config.outputs:
            spec = dict(self.registry[name])
            spec["layout_fn"] = layout_for(spec["layout"])
            options: dict[str, Any] = {}
            if spec["writer"] == "hf_parquet":
                options["class_names"] = self.source.vocabulary.names
            if spec["writer"] == "webdataset":
                options.update(max_bytes=self.config.wds_max_bytes, max_count=self.config.wds_max_count)
            writer = make_writer(spec["writer"], self.out_dir / spec["dir"], options)
            if writer.references_paths and self.source.image_root() is None:
                export = True
            outputs[name], writers[name] = spec, writer
        if export:
            writers["_images"] = make_writer("image_files", self.out_dir, {})
            outputs["_images"] = {"task": next(iter(outputs.values()))["task"], "layout_fn": _no_row}
        return outputs, writers, export

    def _fingerprint(self) -> dict:
        return {"config": asdict(self.config), "source": self.source.describe(), "tool": TOOL_NAME}

    def _prepare_state(self) -> None:
        state = self.out_dir / STATE_DIR
        plan_file = state / "plan.json"
        fp = self._fingerprint()
        if plan_file.is_file():
            old = json.loads(plan_file.read_text())
            if old != json.loads(json.dumps(fp, sort_keys=True)):
                diff = sorted(k for k in set(old.get("config", {})) | set(fp["config"])
                              if old.get("config", {}).get(k) != fp["config"].get(k))
                what = f"config differs in: {', '.join(diff)}" if diff else "the source differs"
                raise UserError(f"{self.out_dir} holds another build ({what}); use a new --out or --overwrite")
        elif self.out_dir.exists() and any(p.name != STATE_DIR for p in self.out_dir.iterdir()):
            raise UserError(f"{self.out_dir} is not empty and holds no build state; use a new --out or --overwrite")
        write_json_atomic(plan_file, fp)
        for tmp in self.out_dir.rglob(".*.tmp*"):  # leftovers of a killed run
            if tmp.is_file():
                tmp.unlink()
            elif tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)

    # ----- stages -----------------------------------------------------------------------------
    def _scan(self) -> tuple[dict[str, list[SampleRef]], dict[str, list[list[str]]], dict[str, int]]:
        available = self.source.splits()
        splits = self.config.splits or available
        missing = [s for s in splits if s not in available]
        if missing:
            raise UserError(f"split {missing[0]!r} not found; this source has: {', '.join(available) or 'none'}")
        plans, skipped, scanned = {}, {}, {}
        for split in splits:
            refs = list(self.source.scan(split))
            scanned[split] = len(refs)
            skipped[split] = [[r.key, r.locator, r.skip, r.detail] for r in refs if r.skip]
            good = [r for r in refs if not r.skip]
            if self.config.limit:
                good = _spread_limit(good, self.config.limit, self.config.seed)
            plans[split] = good
        return plans, skipped, scanned

    def _jobs(self, stage: str, plans: dict[str, list[SampleRef]],
              positions: dict[str, list[int]] | None = None) -> list[ShardJob]:
        jobs = []
        size = self.config.shard_size
        for split, refs in plans.items():
            n = (len(refs) + size - 1) // size
            for s in range(n):
                lo, hi = s * size, min(len(refs), (s + 1) * size)
                pos = positions[split][lo:hi] if positions else None
                jobs.append(ShardJob(stage, split, s, n, refs[lo:hi], lo, pos))
        return jobs

    def _run_stage(self, ctx: BuildContext, jobs: list[ShardJob], desc: str) -> dict[tuple[str, int], dict]:
        done: dict[tuple[str, int], dict] = {}
        todo = []
        for job in jobs:
            marker = _marker_path(self.out_dir, job.stage, job.split, job.shard)
            if marker.is_file():
                done[(job.split, job.shard)] = json.loads(marker.read_text())
            else:
                todo.append(job)
        if todo:
            total = sum(len(j.refs) for j in todo)
            bar = progress.make_bar(total, desc, disable=not self.show_progress)
            try:
                for res in self.executor.map(run_shard, todo, bar=bar, context=ctx):
                    done[(res.split, res.shard)] = asdict(res)
            finally:
                bar.close()
        return done

    def run(self) -> dict:
        """Run (or resume) the build; return the manifest."""
        t0 = time.time()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_state()
        tasks = self._make_tasks()
        outputs, writers, export = self._make_outputs()
        ctx = BuildContext(self.source, self.out_dir, self.config, tasks, outputs, writers, export)
        self.executor.warm_up(ctx.worker_modules())  # workers get ready while the source is scanned
        plans, scan_skips, scanned = self._scan()

        check_skips: dict[str, list[list[str]]] = {s: [] for s in plans}
        check_converted: dict[str, Counter] = {s: Counter() for s in plans}
        positions = None
        balance = [t for t in tasks.values() if t.needs_positions]
        if balance:
            checked = self._run_stage(ctx, self._jobs("check", plans), "check")
            bad: dict[str, set[str]] = {s: set() for s in plans}
            for (split, _), res in sorted(checked.items()):
                check_skips[split].extend(res["skipped"])
                bad[split].update(k[0] for k in res["skipped"])
            plans = {s: [r for r in refs if r.key not in bad[s]] for s, refs in plans.items()}
            from builders.formats.mcq import balanced_positions

            k = balance[0].num_positions
            positions = {s: balanced_positions(len(refs), k, self.config.seed, s) for s, refs in plans.items()}
        for split, refs in plans.items():
            if not refs:
                scan_skips[split].append(["", split, "empty_split", "no usable samples in this split"])
        plans = {s: r for s, r in plans.items() if r}
        if plans:
            first = next(iter(plans))
            prepare_writers(ctx, plans[first][0], positions[first][0] if positions else None)
        built = self._run_stage(ctx, self._jobs("build", plans, positions), "build")
        manifest = self._finalize(ctx, plans, built, scan_skips, check_skips, scanned, check_converted)
        self._log_run(manifest, time.time() - t0)
        return manifest

    # ----- finish -----------------------------------------------------------------------------
    def _finalize(self, ctx: BuildContext, plans, built, scan_skips, check_skips, scanned, _conv) -> dict:
        shards = {s: (len(refs) + self.config.shard_size - 1) // self.config.shard_size for s, refs in plans.items()}
        splits_info: dict[str, dict] = {}
        all_skipped = []
        shard_stats: dict[str, list[dict]] = {}
        for split in scanned:
            results = [built[k] for k in sorted(built) if k[0] == split]
            skipped = list(scan_skips.get(split, [])) + list(check_skips.get(split, []))
            for r in results:
                skipped.extend(r["skipped"])
            classes: Counter[str] = Counter()
            converted: Counter[str] = Counter()
            for r in results:
                classes.update(r["class_counts"])
                converted.update(r["converted"])
            written = sum(r["written"] for r in results)
            reasons = Counter(s[2] for s in skipped)
            splits_info[split] = {"scanned": scanned[split], "planned": len(plans.get(split, [])),
                                  "written": written, "skipped": sum(1 for s in skipped if s[2] != "empty_split"),
                                  "skip_reasons": dict(sorted(reasons.items())),
                                  "converted": dict(sorted(converted.items())),
                                  "class_counts": dict(sorted(classes.items()))}
            shard_stats[split] = [{"shard": r["shard"], "items": r["num_items"], "written": r["written"],
                                   "skipped": len(r["skipped"])} for r in results]
            all_skipped += [{"split": split, "key": s[0], "locator": s[1], "reason": s[2], "detail": s[3]}
                            for s in skipped]
        counts = {s: splits_info[s]["written"] for s in plans}
        outputs_info = {}
        for name, writer in ctx.writers.items():
            extra = [os.path.relpath(p, self.out_dir) for p in writer.finalize(shards, counts)]
            if name.startswith("_"):
                continue
            spec = ctx.outputs[name]
            shard_files = {f for k in sorted(built) for f in built[k]["files"].get(name, [])}
            files = sorted(f for f in shard_files | set(extra) if (self.out_dir / f).is_file())
            image_root = None
            if writer.references_paths:
                image_root = "." if ctx.export_images else self.source.image_root()
            outputs_info[name] = {"task": spec["task"], "layout": spec["layout"], "writer": spec["writer"],
                                  "dir": spec["dir"], "about": spec.get("about", ""), "files": files,
                                  "counts": counts, "image_root": image_root,
                                  "image_prefix": self.config.image_prefix}
        if self.config.mix_with and "llava" in outputs_info:
            from builders.mix import mix_llava_json

            mixed = mix_llava_json(self.out_dir / outputs_info["llava"]["dir"], self.config.mix_with,
                                   self.config.seed)
            outputs_info["llava"]["mixed"] = mixed
        vocab = self.source.vocabulary
        manifest = {
            "tool": {"name": TOOL_NAME, "versions": package_versions(BUILD_PACKAGES)},
            "config": asdict(self.config),
            "source": self.source.describe(),
            "vocabulary": {"dataset": vocab.dataset, "num_classes": len(vocab), "renamed": vocab.renamed,
                           "file": "classes.json"},
            "tasks": {name: t.describe() for name, t in sorted(ctx.tasks.items())},
            "outputs": outputs_info,
            "splits": splits_info,
            "shards": shard_stats,
            "skipped": all_skipped,
        }
        # the whole vocabulary beside the data: later steps (verification, cards) read it from the build
        write_json_atomic(self.out_dir / "classes.json", vocab.to_json())
        write_json_atomic(self.out_dir / "manifest.json", manifest)
        return manifest

    def _log_run(self, manifest: dict, seconds: float) -> None:
        written = sum(s["written"] for s in manifest["splits"].values())
        entry = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 3),
                 "executor": self.executor.name, "workers": getattr(self.executor, "num_workers", None),
                 "written": written, "images_per_s": round(written / seconds, 1) if seconds else None,
                 "argv": sys.argv}
        with open(self.out_dir / "run_log.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
