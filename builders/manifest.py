"""The end of a build: finalise the writers, mix the LLaVA output, write ``classes.json`` and ``manifest.json``,
and append the run's times to ``run_log.jsonl`` (the manifest holds no times or worker counts)."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from builders.config import BUILD_PACKAGES
from builders.mix import MixSet, mix_llava_json
from builders.records import SampleRef
from builders.shards import BuildContext
from vlm_classdata.atomic import write_text_atomic
from vlm_classdata.executors import Executor
from vlm_classdata.provenance import TOOL_NAME, package_versions
from vlm_classdata.records.build_manifest import BuildManifest
from vlm_classdata.records.run_log import RunLogEntry
from vlm_classdata.secrets import redact_obj


def split_summaries(plans: dict[str, list[SampleRef]], built: dict[tuple[str, int], dict],
                    scan_skips: dict[str, list[list[str]]], check_skips: dict[str, list[list[str]]],
                    scanned: dict[str, int]) -> tuple[dict[str, dict], dict[str, list[dict]], list[dict]]:
    """Per split: its counts, its shards' counts, and every skipped sample (with its reason)."""
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
    return splits_info, shard_stats, all_skipped


def finalize_outputs(ctx: BuildContext, built: dict[tuple[str, int], dict], shards: dict[str, int],
                     counts: dict[str, int], mix: MixSet | None) -> dict[str, dict]:
    """Finalise every writer (then the LLaVA mix, or drop a stale one); per output: what it is and its files."""
    out_dir, config = ctx.out_dir, ctx.config
    outputs_info = {}
    for name, writer in ctx.writers.items():
        extra = [os.path.relpath(p, out_dir) for p in writer.finalize(shards, counts)]
        if name.startswith("_"):
            continue
        spec = ctx.outputs[name]
        shard_files = {f for k in sorted(built) for f in built[k]["files"].get(name, [])}
        files = sorted(f for f in shard_files | set(extra) if (out_dir / f).is_file())
        image_root = None
        if writer.references_paths:
            image_root = "." if ctx.export_images else ctx.source.image_root()
        outputs_info[name] = {"task": spec["task"], "layout": spec["layout"], "writer": spec["writer"],
                              "dir": spec["dir"], "about": spec.get("about", ""), "files": files,
                              "counts": counts, "image_root": image_root,
                              "image_prefix": config.image_prefix}
    if "llava" in outputs_info:
        llava_dir = out_dir / outputs_info["llava"]["dir"]
        if mix is not None:
            outputs_info["llava"]["mixed"] = mix_llava_json(llava_dir, mix, config.seed)
        else:  # a mix of an earlier run of this build, made with a --mix-with since dropped
            (llava_dir / "train_mixed.json").unlink(missing_ok=True)
    return outputs_info


def finalize(ctx: BuildContext, plans: dict[str, list[SampleRef]], built: dict[tuple[str, int], dict],
             scan_skips: dict[str, list[list[str]]], check_skips: dict[str, list[list[str]]],
             scanned: dict[str, int], mix: MixSet | None) -> dict:
    """Finish the build: outputs, ``classes.json`` and ``manifest.json``; return the manifest."""
    size = ctx.config.shard_size
    shards = {s: (len(refs) + size - 1) // size for s, refs in plans.items()}
    splits_info, shard_stats, all_skipped = split_summaries(plans, built, scan_skips, check_skips, scanned)
    counts = {s: splits_info[s]["written"] for s in plans}
    outputs_info = finalize_outputs(ctx, built, shards, counts, mix)
    vocab = ctx.source.vocabulary
    manifest = redact_obj({
        "tool": {"name": TOOL_NAME, "versions": package_versions(BUILD_PACKAGES)},
        "config": asdict(ctx.config),
        "source": ctx.source.describe(),
        "vocabulary": {"dataset": vocab.dataset, "num_classes": len(vocab), "renamed": vocab.renamed,
                       "file": "classes.json"},
        "tasks": {name: t.describe() for name, t in sorted(ctx.tasks.items())},
        "outputs": outputs_info,
        "splits": splits_info,
        "shards": shard_stats,
        "skipped": all_skipped,
    })
    # the whole vocabulary beside the data: later steps (verification, cards) read it from the build
    vocab.save(ctx.out_dir / "classes.json")
    BuildManifest.model_validate(manifest).write(ctx.out_dir / "manifest.json")
    return manifest


def log_run(out_dir: Path, executor: Executor, manifest: dict, seconds: float) -> None:
    """Append one line (times, executor, workers, the command with credentials masked) to run_log.jsonl."""
    written = sum(s["written"] for s in manifest["splits"].values())
    entry = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 3),
             "executor": executor.name, "workers": getattr(executor, "num_workers", None),
             "written": written, "images_per_s": round(written / seconds, 1) if seconds else None,
             "argv": redact_obj(sys.argv)}
    log = out_dir / "run_log.jsonl"
    try:
        before = log.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = ""
    if before and not before.endswith("\n"):
        before += "\n"
    write_text_atomic(log, before + RunLogEntry.model_validate(entry).line())
