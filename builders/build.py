"""The builder as a library: typed :class:`BuildSettings` → :func:`build` → the build's manifest.

``python -m builders.imagenet_qa`` parses its command line into these settings (:mod:`builders.build_options`);
``builders.targeted`` fills them in itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from builders.config import BuildConfig
from builders.pipeline import Build
from builders.sample import SAMPLE_ROOT
from builders.sources.registry import open_source
from vlm_classdata.errors import UserError
from vlm_classdata.executors import DEFAULT_RAY_TIMEOUT, make_executor


@dataclass
class SourceSettings:
    """What to read: the source kind, where it is, its class list and the kind's own options (None: default)."""

    kind: str = "imagenet"
    root: str | None = None  # None: the embedded sample (imagenet only)
    classes: str | None = None
    class_map: str | None = None
    val_labels: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    label_field: str | None = None
    split_name: str | None = None
    image_root: str | None = None


@dataclass
class RunSettings:
    """How to run (none of it shapes the output bytes)."""

    executor: str = "local"
    num_workers: int = 1
    ray_address: str | None = None
    ray_timeout: float = DEFAULT_RAY_TIMEOUT
    show_progress: bool = True


@dataclass
class BuildSettings:
    """One build: the source, the output folder, what to make (:class:`BuildConfig`) and how to run."""

    out: Path
    source: SourceSettings = field(default_factory=SourceSettings)
    config: BuildConfig = field(default_factory=BuildConfig)
    run: RunSettings = field(default_factory=RunSettings)
    overwrite: bool = False


def build(settings: BuildSettings) -> dict:
    """Run (or resume) one build; return its manifest. Impossible settings are one :class:`UserError`."""
    src, run = settings.source, settings.run
    if run.num_workers < 1:
        raise UserError("--num-workers must be at least 1")
    if not run.ray_timeout > 0:
        raise UserError(f"--ray-timeout must be more than 0 seconds, got {run.ray_timeout:g}")
    root = src.root or (str(SAMPLE_ROOT) if src.kind == "imagenet" else None)
    if root is None:
        raise UserError(f"--source {src.kind} needs --root")
    settings.config.validate()
    source = open_source(src.kind, root, src.classes, val_labels=src.val_labels,
                         class_map=src.class_map, image_column=src.image_column,
                         label_column=src.label_column, label_field=src.label_field,
                         split=src.split_name, image_root=src.image_root)
    executor = make_executor(run.executor, run.num_workers, run.ray_address, run.ray_timeout)
    inputs = [root, src.classes, src.class_map, src.val_labels, src.image_root]
    pipeline = Build(source, Path(settings.out), settings.config, executor, show_progress=run.show_progress,
                     overwrite=settings.overwrite, inputs=[p for p in inputs if p and Path(p).exists()])
    return pipeline.run()


def summarize(manifest: dict, out: Path) -> str:
    """A short human summary of a finished build."""
    lines = [f"built {manifest['source'].get('kind')} ({manifest['vocabulary']['num_classes']} classes) → {out}"]
    for split, info in manifest["splits"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in info["skip_reasons"].items()) or "none"
        conv = ", ".join(f"{k} {v}" for k, v in info["converted"].items())
        lines.append(f"  {split:<10} written {info['written']:>7}  skipped {info['skipped']:>5} ({reasons})"
                     + (f"  converted: {conv}" if conv else ""))
    for name, info in manifest["outputs"].items():
        shown = info["files"][:3] + (["..."] if len(info["files"]) > 3 else [])
        lines.append(f"  {name:<11} {', '.join(shown)}")
        if info.get("mixed"):
            lines.append(f"  {'':<11} mixed: {info['mixed']['file']} ({info['mixed']['total']} samples)")
    tasks = sorted(p.stem for p in (out / "lmms_eval").glob("*.yaml"))  # written after the manifest, see pipeline
    if tasks:
        shown = tasks[:2] + (["..."] if len(tasks) > 2 else [])
        lines.append(f"  {'lmms_eval':<11} {len(tasks)} tasks (lmms_eval/README.md): {', '.join(shown)}")
    lines.append(f"  manifest   {out / 'manifest.json'}")
    return "\n".join(lines)
