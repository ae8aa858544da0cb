"""The build pipeline: :class:`Build` runs one build of one source into one output folder.

    scan (refs renamed to their output splits, ``--split-names``) ─► plan (builders.plan) ─► [check stage: only when MCQ positions must be balanced exactly]
         ─► build stage (builders.shards.run_shard): read ─► inspect ─► Record ─► task ─► layout ─► writers
         ─► finalize (builders.manifest): writers ─► optional LLaVA mix ─► classes.json, manifest.json
         ─► lmms-eval task folder for the parquet eval outputs (builders.eval_packages)

Safety: :func:`vlm_classdata.stages.open_out` claims ``OUT`` before any work (never a file, never overlapping an
input, ``--overwrite`` only of a folder this tool made) and holds its run lock for the whole build.

Resumability (:class:`vlm_classdata.stages.Stages` in ``OUT/.state/``): a build whose plan differs is refused
with one line saying what changed, never mixed (:mod:`builders.plan`). Each finished shard is marked with the
plan fingerprint; a restarted build skips marked shards and redoes the others, whose files are overwritten
atomically; a finished build rerun unchanged is a no-op. Determinism: shards are fixed by the plan (not by
workers); per-sample randomness comes from ``sample_rng(seed, ...)``; the manifest holds no times or worker
counts (those go to ``OUT/run_log.jsonl``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from builders.config import BuildConfig, output_registry
from builders.eval_packages.lmms_tasks import write_build_tasks
from builders.formats.base import Task
from builders.formats.layouts import layout_for
from builders.formats.mcq import balanced_positions
from builders.formats.tasks import make_task
from builders.listing import SourceListing
from builders.manifest import finalize, log_run
from builders.mix import MixSet, check_clashes, load_mix
from builders.plan import check_plan, plan_settings, plan_splits, read_json, shard_jobs
from builders.prompts import PromptRegistry
from builders.records import SampleRef
from builders.shards import STATE_DIR, BuildContext, ShardJob, no_row, prepare_writers, run_shard, shard_unit
from builders.sources.base import Source
from builders.writers.registry import make_writer
from vlm_classdata import progress
from vlm_classdata.atomic import is_leftover
from vlm_classdata.errors import UserError
from vlm_classdata.executors import Executor, LocalExecutor
from vlm_classdata.stages import (
    LOCK_FILE,
    LOCK_OWNER_FILE,
    OWNER_FILE,
    Stages,
    check_out,
    fingerprint,
    open_out,
)

LEGACY_MARKS = (STATE_DIR, "manifest.json")  # folders built by older versions count as made by this tool
COMMAND = "builders.imagenet_qa"


class Build:
    """One build of one source into one output folder.

    ``overwrite`` empties ``out_dir`` first (only a folder this tool made, never one overlapping an input);
    ``inputs``: further local files or folders the caller read (class lists, label files), which the output
    folder must not overlap either."""

    def __init__(self, source: Source, out_dir: str | os.PathLike, config: BuildConfig,
                 executor: Executor | None = None, show_progress: bool = True, overwrite: bool = False,
                 inputs: Iterable[str | os.PathLike | None] = ()) -> None:
        config.validate()
        self.source, self.out_dir, self.config = source, Path(out_dir), config
        self.executor = executor or LocalExecutor(1)
        self.show_progress = show_progress
        self.overwrite = overwrite
        self.inputs = [str(p) for p in inputs if p is not None and str(p)]
        self.registry = output_registry()

    # ----- set-up -----------------------------------------------------------------------------
    def _make_tasks(self) -> dict[str, Task]:
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
        outputs, writers = {}, {}
        export = False
        for name in self.config.outputs:
            spec = dict(self.registry[name])
            spec["layout_fn"] = layout_for(spec["layout"])
            options: dict[str, Any] = {}
            if spec["writer"] == "hf_parquet":
                options["class_names"] = self.source.vocabulary.names
            if spec["writer"] == "webdataset":
                options.update(max_bytes=self.config.wds_max_bytes, max_count=self.config.wds_max_count,
                               caption=self.config.wds_caption, image_format=self.config.wds_image_format)
            options.update(spec.get("writer_options", {}))  # per-output settings from outputs.json
            writer = make_writer(spec["writer"], self.out_dir / spec["dir"], options)
            if writer.references_paths and self.source.image_root() is None:
                export = True
            outputs[name], writers[name] = spec, writer
        if export:
            writers["_images"] = make_writer("image_files", self.out_dir, {})
            outputs["_images"] = {"task": next(iter(outputs.values()))["task"], "layout_fn": no_row}
        return outputs, writers, export

    def input_paths(self) -> list[str]:
        """Every local input this build reads; the output folder may overlap none of them."""
        desc = self.source.describe()
        found = [*self.source.input_paths(), desc.get("val_label_path"), self.config.prompts,
                 self.config.mix_with, *self.inputs]
        if desc.get("kind") == "hf" and desc.get("path"):
            found.append(desc["path"])  # a local dataset folder (a hub id does not exist locally: skipped)
        return sorted({str(p) for p in found if isinstance(p, (str, os.PathLike)) and str(p)})

    def _check_out(self) -> list[str]:
        """Check the output folder (nothing is written): not a file, no overlap with an input, and not a
        foreign non-empty folder (unless ``--overwrite``, which :func:`vlm_classdata.stages.open_out` then judges).
        Returns the inputs."""
        inputs = self.input_paths()
        out = check_out(self.out_dir, inputs)
        if out.is_dir() and not self.overwrite and not (out / STATE_DIR).is_dir():
            foreign = sorted(p.name for p in out.iterdir()
                             if p.name not in (OWNER_FILE, LOCK_FILE, LOCK_OWNER_FILE) and not is_leftover(p))
            if foreign:
                raise UserError(f"{out} is not empty and holds no build of this tool (e.g. {foreign[0]}); "
                                "use a new --out (or --overwrite for a folder this tool made)")
        return inputs

    # ----- the run ---------------------------------------------------------------------------
    def _mix_settings(self) -> dict | None:
        """What of ``--mix-with`` shapes the finalised outputs (its path, size and mtime)."""
        if not self.config.mix_with:
            return None
        st = Path(self.config.mix_with).stat()
        return {"mix_with": self.config.mix_with, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    # ----- stages -----------------------------------------------------------------------------
    def _scan(self) -> dict[str, list[SampleRef]]:
        """Scan the chosen splits; refs come back under their output split names (``--split-names``)."""
        available = self.source.splits()
        by_output = {self.config.output_split(s): s for s in available}
        splits = [s if s in available else by_output.get(s, s) for s in self.config.splits or available]
        missing = [s for s in splits if s not in available]
        if missing:
            raise UserError(f"split {missing[0]!r} not found; this source has: {', '.join(available) or 'none'}")
        written: dict[str, str] = {}
        for split in dict.fromkeys(splits):
            name = self.config.output_split(split)
            if name in written:
                raise UserError(f"splits {written[name]!r} and {split!r} would both be written as {name!r}; "
                                "choose other --split-names (or keep)")
            written[name] = split
        scanned = {}
        for split in dict.fromkeys(splits):
            name = self.config.output_split(split)
            refs = self.source.scan(split)
            scanned[name] = list(refs) if name == split else [replace(r, split=name) for r in refs]
        self._check_listed_images(scanned)
        return scanned

    def _check_listed_images(self, scanned: dict[str, list[SampleRef]]) -> None:
        """A source whose image folder is not an input as a whole (a manifest lists its files) may still
        list an image inside the output folder: refuse that before any work."""
        root = self.source.image_root()
        if root is None or root in self.source.input_paths():
            return
        out = str(self.out_dir.expanduser().resolve()) + os.sep
        base = Path(root).expanduser().resolve()
        for refs in scanned.values():
            for ref in refs:
                if ref.locator and os.path.normpath(base / ref.locator).startswith(out):
                    raise UserError(f"--out {self.out_dir} holds an input image of this build ({ref.locator}); "
                                    "write outside the inputs")

    def _run_stage(self, ctx: BuildContext, jobs: list[ShardJob], desc: str) -> dict[tuple[str, int], dict]:
        stages = Stages(self.out_dir / STATE_DIR)
        done: dict[tuple[str, int], dict] = {}
        todo = []
        for job in jobs:
            info = stages.done(shard_unit(job.stage, job.split, job.shard), ctx.plan_fingerprint)
            if info is not None:
                done[(job.split, job.shard)] = info
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
        """Run (or resume) the build; return the manifest. Every setting is checked, and the source scanned,
        before ``out_dir`` is touched; the run lock of ``out_dir`` is held from then to the end."""
        t0 = time.time()
        inputs = self._check_out()  # cheap, so first: a wrong --out is refused before WordNet or a scan
        mix = load_mix(self.config.mix_with) if self.config.mix_with else None
        tasks = self._make_tasks()
        outputs, writers, export = self._make_outputs()
        ctx = BuildContext(self.source, self.out_dir, self.config, tasks, outputs, writers, export)
        self.executor.warm_up(ctx.worker_modules())  # workers get ready while the source is scanned
        scanned = self._scan()
        plans, scan_skips, counts = plan_splits(scanned, self.config)
        if mix is not None:
            if "train" not in plans:
                raise UserError(f"--mix-with mixes the llava train split, which this build has not "
                                f"(splits: {', '.join(plans) or 'none'})")
            check_clashes(mix, (r.key for r in plans["train"]))
        listing = SourceListing(self.source, scanned)
        del scanned
        lock = open_out(self.out_dir, inputs=inputs, overwrite=self.overwrite, command=COMMAND, legacy=LEGACY_MARKS)
        try:
            return self._run_locked(ctx, mix, listing, plans, scan_skips, counts, t0)
        finally:
            lock.release()

    def _run_locked(self, ctx: BuildContext, mix: MixSet | None, listing: SourceListing,
                    plans: dict[str, list[SampleRef]], scan_skips: dict[str, list[list[str]]],
                    counts: dict[str, int], t0: float) -> dict:
        ctx.plan_fingerprint = check_plan(self.out_dir, plan_settings(self.config, self.source), listing)
        stages = Stages(self.out_dir / STATE_DIR)
        final_fp = fingerprint(ctx.plan_fingerprint, self._mix_settings())
        if stages.done("finalize", final_fp) is not None:
            manifest = read_json(self.out_dir / "manifest.json")
            if isinstance(manifest, dict):  # a finished build of the same plan: nothing to do
                log_run(self.out_dir, self.executor, manifest, time.time() - t0)
                return manifest

        check_skips: dict[str, list[list[str]]] = {s: [] for s in plans}
        positions = None
        balance = [t for t in ctx.tasks.values() if t.needs_positions]
        if balance:
            checked = self._run_stage(ctx, shard_jobs("check", plans, self.config.shard_size), "check")
            bad: dict[str, set[str]] = {s: set() for s in plans}
            for (split, _), res in sorted(checked.items()):
                check_skips[split].extend(res["skipped"])
                bad[split].update(k[0] for k in res["skipped"])
            plans = {s: [r for r in refs if r.key not in bad[s]] for s, refs in plans.items()}
            k = balance[0].num_positions
            positions = {s: balanced_positions(len(refs), k, self.config.seed, s) for s, refs in plans.items()}
        for split, refs in plans.items():
            if not refs:
                scan_skips[split].append(["", split, "empty_split", "no usable samples in this split"])
        plans = {s: r for s, r in plans.items() if r}
        if plans:
            first = next(iter(plans))
            prepare_writers(ctx, plans[first][0], positions[first][0] if positions else None)
        built = self._run_stage(ctx, shard_jobs("build", plans, self.config.shard_size, positions), "build")
        manifest = finalize(ctx, plans, built, scan_skips, check_skips, counts, mix)
        write_build_tasks(self.out_dir, manifest)  # OUT/lmms_eval/: tasks for the parquet eval outputs
        stages.mark("finalize", final_fp)
        log_run(self.out_dir, self.executor, manifest, time.time() - t0)
        return manifest
