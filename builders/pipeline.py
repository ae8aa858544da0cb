"""The build pipeline: plan shards, run them on an executor, finalise outputs, write the manifest.

    scan ─► plan (limit, shards) ─► [check stage: only when MCQ positions must be balanced exactly]
         ─► build stage: read ─► inspect ─► Record ─► task ─► layout ─► writers (per shard)
         ─► finalize writers ─► optional LLaVA mix ─► manifest.json

Safety: :func:`vlm_classdata.stages.open_out` claims ``OUT`` before any work (never a file, never overlapping an
input, ``--overwrite`` only of a folder this tool made) and holds its run lock for the whole build.

Resumability (:class:`vlm_classdata.stages.Stages` in ``OUT/.state/``): the *plan* fingerprint covers every setting
that shapes the shards (``--mix-with`` excepted: it only shapes the finalised ``llava/train_mixed.json``), the
vocabulary, the library versions and the source listing (every scanned key and locator, with size and mtime
for file-backed sources). A build whose plan differs is refused with one line saying what changed, never
mixed. Each finished shard is marked with the plan fingerprint; a restarted build skips marked shards and
redoes the others, whose files are overwritten atomically; a finished build rerun unchanged is a no-op.
Determinism: shards are fixed by the plan (not by workers); per-sample randomness comes from
``sample_rng(seed, ...)``; the manifest holds no times or worker counts (those go to ``OUT/run_log.jsonl``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import sys
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from builders.formats.base import Task
from builders.mix import MixSet, check_clashes, load_mix
from builders.records import Record, SampleRef
from builders.sources.base import Source
from vlm_classdata import progress
from vlm_classdata.atomic import atomic_output, is_leftover, write_json_atomic, write_text_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.executors import Executor, LocalExecutor
from vlm_classdata.images import DEFAULT_MAX_PIXELS, inspect_image, to_rgb_jpeg
from vlm_classdata.names import check_name
from vlm_classdata.provenance import TOOL_NAME, package_versions
from vlm_classdata.records.build_manifest import BuildManifest
from vlm_classdata.records.run_log import RunLogEntry
from vlm_classdata.secrets import redact_obj
from vlm_classdata.stages import (
    LOCK_FILE,
    LOCK_OWNER_FILE,
    OWNER_FILE,
    Stages,
    check_out,
    fingerprint,
    listing_changes,
    open_out,
)

STATE_DIR = ".state"
LISTING_FILE = "listing.jsonl.gz"  # the source listing of the plan, for saying what changed
LEGACY_MARKS = (STATE_DIR, "manifest.json")  # folders built by older versions count as made by this tool
COMMAND = "builders.imagenet_qa"
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
        """Raise UserError for impossible settings (those that can only give an empty or broken result)."""
        known = output_registry()
        bad = [o for o in self.outputs if o not in known]
        if bad:
            raise UserError(f"unknown output {bad[0]!r}; choose from {', '.join(known)}")
        if not self.outputs:
            raise UserError("no outputs selected")
        for option, value in (("--shard-size", self.shard_size), ("--limit", self.limit),
                              ("--max-pixels", self.max_pixels), ("--wds-max-bytes", self.wds_max_bytes),
                              ("--wds-max-count", self.wds_max_count)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserError(f"{option} must be a whole number of at least 1, got {value!r}")
        if isinstance(self.mcq_choices, bool) or not isinstance(self.mcq_choices, int) or self.mcq_choices < 2:
            raise UserError(f"--mcq-choices must be at least 2, got {self.mcq_choices!r}")
        if self.verify not in ("fast", "full"):
            raise UserError("--verify must be fast or full")
        if self.nonrgb not in ("convert", "skip"):
            raise UserError("--nonrgb must be convert or skip")
        if self.distractors not in ("random", "hard"):
            raise UserError("--distractors must be random or hard")
        if self.splits is not None:
            if not self.splits:
                raise UserError("--splits names no split")
            for split in self.splits:
                check_name(split, "--splits:")
        if self.prompts is not None and not Path(self.prompts).is_file():
            raise UserError(f"--prompts {self.prompts}: no such file")
        if self.mix_with:
            if not Path(self.mix_with).is_file():
                raise UserError(f"--mix-with {self.mix_with}: no such file")
            if "llava" not in self.outputs:
                raise UserError("--mix-with mixes the llava output, which --outputs does not include")

    def shard_settings(self) -> dict:
        """The settings that shape the shards: all but ``mix_with`` (it only shapes a finalised file)."""
        settings = asdict(self)
        del settings["mix_with"]
        return settings


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


def _no_row(example: Any, record: Record) -> dict:
    """Layout of the image-export writer: it needs only the record."""
    return {}


def _unit(stage: str, split: str, shard: int) -> str:
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
    Stages(ctx.out_dir / STATE_DIR).mark(_unit(job.stage, job.split, job.shard), ctx.plan_fingerprint, asdict(res))
    return res


def _spread_limit(refs: list[SampleRef], limit: int, seed: int) -> list[SampleRef]:
    """A seeded subset of ``limit`` refs spread over classes, kept in scan order."""
    if len(refs) <= limit:
        return refs

    def rank(ref: SampleRef) -> str:
        return hashlib.sha256(f"{seed}\x1f{ref.split}\x1f{ref.key}".encode()).hexdigest()

    chosen = {r.key for r in sorted(refs, key=rank)[:limit]}
    return [r for r in refs if r.key in chosen]


def _read_json(path: Path) -> Any:
    """The JSON value in ``path``, or None when it is missing or damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _local_files(value: object) -> dict[str, Path]:
    """Files (non-hidden, recursively) of a local file or folder named by ``value``, by path under it."""
    if not isinstance(value, str) or not value or "://" in value:
        return {}
    path = Path(value).expanduser()
    if path.is_file():
        return {path.name: path}
    if not path.is_dir():
        return {}
    found = {}
    for p in path.rglob("*"):
        rel = p.relative_to(path)
        if not any(part.startswith(".") for part in rel.parts) and p.is_file():
            found[rel.as_posix()] = p
    return found


class SourceListing:
    """What a build reads, as rows ``[name, size, mtime_ns, split, key, class_id, skip, detail]``.

    One row per scanned ref (name = its locator; for file-backed sources the size and mtime of its file, -1
    when it cannot be stat'ed) and, for other sources (HF, WebDataset), one row per file under the source's
    local root/path. Each file is stat'ed once, at scan time, into compact arrays; rows are made on demand."""

    def __init__(self, source: Source, scanned: dict[str, list[SampleRef]]) -> None:
        self.scanned = scanned
        self.sizes, self.mtimes = array("q"), array("q")
        root = source.image_root()
        self.containers: list[list] = []
        if root is not None:
            join, stat = os.path.join, os.stat
            for refs in scanned.values():
                for ref in refs:
                    try:
                        st = stat(join(root, ref.locator))
                    except (OSError, ValueError):
                        self.sizes.append(-1)
                        self.mtimes.append(-1)
                    else:
                        self.sizes.append(st.st_size)
                        self.mtimes.append(st.st_mtime_ns)
        else:
            desc = source.describe()
            files: dict[str, Path] = {}
            for key in ("root", "path"):
                files.update(_local_files(desc.get(key)))
            for name, path in sorted(files.items()):
                st = path.stat()
                self.containers.append([name, st.st_size, st.st_mtime_ns, "", "", None, None, ""])

    def rows(self) -> Iterator[list]:
        """Every row, in scan order (then the container files)."""
        i = 0
        stats = bool(self.sizes)
        for refs in self.scanned.values():
            for ref in refs:
                size, mtime = (self.sizes[i], self.mtimes[i]) if stats else (None, None)
                i += 1
                yield [ref.locator, size, mtime, ref.split, ref.key, ref.class_id, ref.skip, ref.detail]
        yield from self.containers

    def __len__(self) -> int:
        return sum(map(len, self.scanned.values())) + len(self.containers)

    def digest(self) -> str:
        """A hash of every row (order included)."""
        h = hashlib.sha256()
        batch: list[str] = []
        for row in self.rows():
            batch.append("\x00".join(map(str, row)) + "\n")
            if len(batch) >= 10_000:
                h.update("".join(batch).encode("utf-8", "surrogateescape"))
                batch = []
        h.update("".join(batch).encode("utf-8", "surrogateescape"))
        return h.hexdigest()[:20]

    def write(self, path: Path) -> None:
        """Save the rows (gzip'd JSON lines, deterministic bytes), atomically."""
        with atomic_output(path) as tmp, open(tmp, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            batch: list[str] = []
            for row in self.rows():
                batch.append(json.dumps(row, ensure_ascii=False) + "\n")
                if len(batch) >= 10_000:
                    gz.write("".join(batch).encode("utf-8", "surrogateescape"))
                    batch = []
            gz.write("".join(batch).encode("utf-8", "surrogateescape"))

    @staticmethod
    def read(path: Path) -> list[list] | None:
        """Rows saved by :meth:`write`, or None when the file is missing or damaged."""
        try:
            with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as fh:
                return [json.loads(line) for line in fh]
        except (OSError, ValueError, EOFError):
            return None


def _unique_names(rows: Iterable[list]) -> list[list]:
    """Rows whose names are made unique (a repeated locator becomes ``locator #2``), for a diff."""
    seen: Counter[str] = Counter()
    out = []
    for row in rows:
        seen[row[0]] += 1
        out.append(row if seen[row[0]] == 1 else [f"{row[0]} #{seen[row[0]]}", *row[1:]])
    return out


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

    # ----- the plan ---------------------------------------------------------------------------
    def _settings(self) -> dict:
        """Everything besides the source listing that shapes the shards' bytes."""
        prompts = None
        if self.config.prompts:
            prompts = hashlib.sha256(Path(self.config.prompts).read_bytes()).hexdigest()[:20]
        settings = {"config": self.config.shard_settings(), "source": self.source.describe(), "tool": TOOL_NAME,
                    "versions": package_versions(BUILD_PACKAGES),
                    "vocabulary": fingerprint(self.source.vocabulary.to_json()), "prompts": prompts}
        return json.loads(json.dumps(settings, sort_keys=True, default=str))

    def _check_plan(self, listing: SourceListing) -> str:
        """The plan fingerprint; a folder holding a build of another plan is refused with what changed."""
        stages = Stages(self.out_dir / STATE_DIR)
        settings = self._settings()
        digest = listing.digest()
        fp = fingerprint(settings, digest)
        if stages.done("plan", fp) is not None:
            return fp
        old = _read_json(stages.path("plan"))
        if isinstance(old, dict):
            raise UserError(f"{self.out_dir} holds {self._difference(old.get('info') or {}, settings, listing)}; "
                            "rerun with --overwrite or a new --out")
        if (self.out_dir / STATE_DIR / "plan.json").exists():
            raise UserError(f"{self.out_dir} holds a build of an older version of this tool; rerun with "
                            "--overwrite or a new --out")
        listing.write(self.out_dir / STATE_DIR / LISTING_FILE)
        stages.mark("plan", fp, {"settings": redact_obj(settings), "listing": digest, "rows": len(listing)})
        return fp

    def _difference(self, old: dict, settings: dict, listing: SourceListing) -> str:
        """What differs between the recorded plan ``old`` and this one, in a few words."""
        before = old.get("settings") or {}
        now = redact_obj(settings)
        old_cfg, new_cfg = before.get("config") or {}, now["config"]
        diff = sorted(k for k in set(old_cfg) | set(new_cfg) if old_cfg.get(k) != new_cfg.get(k))
        if diff:
            return f"another build (config differs in: {', '.join(diff)})"
        if before.get("source") != now["source"]:
            return "a build of another source (the source options differ)"
        if before.get("vocabulary") != now["vocabulary"]:
            return "a build with another class list"
        if before.get("prompts") != now["prompts"]:
            return "a build with other prompts (the --prompts file changed)"
        if before.get("versions") != now["versions"] or before.get("tool") != now["tool"]:
            old_v, new_v = before.get("versions") or {}, now["versions"]
            changed = [f"{k} {old_v.get(k)} → {new_v.get(k)}" for k in sorted(set(old_v) | set(new_v))
                       if old_v.get(k) != new_v.get(k)]
            return f"a build made with other library versions ({', '.join(changed) or 'tool'})"
        rows = SourceListing.read(self.out_dir / STATE_DIR / LISTING_FILE)
        if rows is None:
            return f"a build of another source listing ({old.get('rows')} inputs then, {len(listing)} now)"
        changes = listing_changes(_unique_names(rows), _unique_names(listing.rows()))
        if changes == "no file differs":
            changes = "the order of the inputs differs"
        return f"a build of another source listing: {changes}"

    def _mix_settings(self) -> dict | None:
        """What of ``--mix-with`` shapes the finalised outputs (its path, size and mtime)."""
        if not self.config.mix_with:
            return None
        st = Path(self.config.mix_with).stat()
        return {"mix_with": self.config.mix_with, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    # ----- stages -----------------------------------------------------------------------------
    def _scan(self) -> dict[str, list[SampleRef]]:
        available = self.source.splits()
        splits = self.config.splits or available
        missing = [s for s in splits if s not in available]
        if missing:
            raise UserError(f"split {missing[0]!r} not found; this source has: {', '.join(available) or 'none'}")
        scanned = {split: list(self.source.scan(split)) for split in splits}
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

    def _plan(self, scanned: dict[str, list[SampleRef]]
              ) -> tuple[dict[str, list[SampleRef]], dict[str, list[list[str]]], dict[str, int]]:
        plans, skipped, counts = {}, {}, {}
        for split, refs in scanned.items():
            counts[split] = len(refs)
            skipped[split] = [[r.key, r.locator, r.skip, r.detail] for r in refs if r.skip]
            good = [r for r in refs if not r.skip]
            if self.config.limit:
                good = _spread_limit(good, self.config.limit, self.config.seed)
            plans[split] = good
        return plans, skipped, counts

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
        stages = Stages(self.out_dir / STATE_DIR)
        done: dict[tuple[str, int], dict] = {}
        todo = []
        for job in jobs:
            info = stages.done(_unit(job.stage, job.split, job.shard), ctx.plan_fingerprint)
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
        plans, scan_skips, counts = self._plan(scanned)
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
        ctx.plan_fingerprint = self._check_plan(listing)
        stages = Stages(self.out_dir / STATE_DIR)
        final_fp = fingerprint(ctx.plan_fingerprint, self._mix_settings())
        if stages.done("finalize", final_fp) is not None:
            manifest = _read_json(self.out_dir / "manifest.json")
            if isinstance(manifest, dict):  # a finished build of the same plan: nothing to do
                self._log_run(manifest, time.time() - t0)
                return manifest

        check_skips: dict[str, list[list[str]]] = {s: [] for s in plans}
        positions = None
        balance = [t for t in ctx.tasks.values() if t.needs_positions]
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
        manifest = self._finalize(ctx, plans, built, scan_skips, check_skips, counts, mix)
        stages.mark("finalize", final_fp)
        self._log_run(manifest, time.time() - t0)
        return manifest

    # ----- finish -----------------------------------------------------------------------------
    def _finalize(self, ctx: BuildContext, plans, built, scan_skips, check_skips, scanned,
                  mix: MixSet | None) -> dict:
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
        if "llava" in outputs_info:
            llava_dir = self.out_dir / outputs_info["llava"]["dir"]
            if mix is not None:
                from builders.mix import mix_llava_json

                outputs_info["llava"]["mixed"] = mix_llava_json(llava_dir, mix, self.config.seed)
            else:  # a mix of an earlier run of this build, made with a --mix-with since dropped
                (llava_dir / "train_mixed.json").unlink(missing_ok=True)
        vocab = self.source.vocabulary
        manifest = redact_obj({
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
        })
        # the whole vocabulary beside the data: later steps (verification, cards) read it from the build
        write_json_atomic(self.out_dir / "classes.json", vocab.to_json())
        BuildManifest.model_validate(manifest).write(self.out_dir / "manifest.json")
        return manifest

    def _log_run(self, manifest: dict, seconds: float) -> None:
        """Append one line (times, executor, workers, the command with credentials masked) to run_log.jsonl."""
        written = sum(s["written"] for s in manifest["splits"].values())
        entry = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 3),
                 "executor": self.executor.name, "workers": getattr(self.executor, "num_workers", None),
                 "written": written, "images_per_s": round(written / seconds, 1) if seconds else None,
                 "argv": redact_obj(sys.argv)}
        log = self.out_dir / "run_log.jsonl"
        try:
            before = log.read_text(encoding="utf-8")
        except FileNotFoundError:
            before = ""
        if before and not before.endswith("\n"):
            before += "\n"
        write_text_atomic(log, before + RunLogEntry.model_validate(entry).line())
