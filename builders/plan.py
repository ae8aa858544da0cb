"""The plan of a build: which samples go into which shard, and the fingerprint that pins it.

The *plan* fingerprint covers every setting that shapes the shards (``--mix-with`` excepted: it only shapes the
finalised ``llava/train_mixed.json``), the vocabulary, the library versions and the source listing. A folder
holding a build of another plan is refused with one line saying what changed, never mixed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from builders.config import BUILD_PACKAGES, BuildConfig
from builders.listing import SourceListing, unique_names
from builders.records import SampleRef
from builders.shards import STATE_DIR, ShardJob
from builders.sources.base import Source
from vlm_classdata.errors import UserError
from vlm_classdata.provenance import TOOL_NAME, package_versions
from vlm_classdata.secrets import redact_obj
from vlm_classdata.stages import Stages, fingerprint, listing_changes

LISTING_FILE = "listing.jsonl.gz"  # the source listing of the plan, for saying what changed


def spread_limit(refs: list[SampleRef], limit: int, seed: int) -> list[SampleRef]:
    """A seeded subset of ``limit`` refs spread over classes, kept in scan order."""
    if len(refs) <= limit:
        return refs

    def rank(ref: SampleRef) -> str:
        return hashlib.sha256(f"{seed}\x1f{ref.split}\x1f{ref.key}".encode()).hexdigest()

    chosen = {r.key for r in sorted(refs, key=rank)[:limit]}
    return [r for r in refs if r.key in chosen]


def plan_splits(scanned: dict[str, list[SampleRef]], config: BuildConfig
                ) -> tuple[dict[str, list[SampleRef]], dict[str, list[list[str]]], dict[str, int]]:
    """Per split: the refs to build (``--limit`` applied), the scan's skips and the number scanned."""
    plans, skipped, counts = {}, {}, {}
    for split, refs in scanned.items():
        counts[split] = len(refs)
        skipped[split] = [[r.key, r.locator, r.skip, r.detail] for r in refs if r.skip]
        good = [r for r in refs if not r.skip]
        if config.limit:
            good = spread_limit(good, config.limit, config.seed)
        plans[split] = good
    return plans, skipped, counts


def shard_jobs(stage: str, plans: dict[str, list[SampleRef]], size: int,
               positions: dict[str, list[int]] | None = None) -> list[ShardJob]:
    """The shards of ``stage``: contiguous slices of ``size`` refs of each split's plan."""
    jobs = []
    for split, refs in plans.items():
        n = (len(refs) + size - 1) // size
        for s in range(n):
            lo, hi = s * size, min(len(refs), (s + 1) * size)
            pos = positions[split][lo:hi] if positions else None
            jobs.append(ShardJob(stage, split, s, n, refs[lo:hi], lo, pos))
    return jobs


def read_json(path: Path) -> Any:
    """The JSON value in ``path``, or None when it is missing or damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def plan_settings(config: BuildConfig, source: Source) -> dict:
    """Everything besides the source listing that shapes the shards' bytes."""
    prompts = None
    if config.prompts:
        prompts = hashlib.sha256(Path(config.prompts).read_bytes()).hexdigest()[:20]
    settings = {"config": config.shard_settings(), "source": source.describe(), "tool": TOOL_NAME,
                "versions": package_versions(BUILD_PACKAGES),
                "vocabulary": fingerprint(source.vocabulary.to_json()), "prompts": prompts}
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def check_plan(out_dir: Path, settings: dict, listing: SourceListing) -> str:
    """The plan fingerprint; a folder holding a build of another plan is refused with what changed."""
    stages = Stages(out_dir / STATE_DIR)
    digest = listing.digest()
    fp = fingerprint(settings, digest)
    if stages.done("plan", fp) is not None:
        return fp
    old = read_json(stages.path("plan"))
    if isinstance(old, dict):
        raise UserError(f"{out_dir} holds {plan_difference(out_dir, old.get('info') or {}, settings, listing)}; "
                        "rerun with --overwrite or a new --out")
    if (out_dir / STATE_DIR / "plan.json").exists():
        raise UserError(f"{out_dir} holds a build of an older version of this tool; rerun with "
                        "--overwrite or a new --out")
    listing.write(out_dir / STATE_DIR / LISTING_FILE)
    stages.mark("plan", fp, {"settings": redact_obj(settings), "listing": digest, "rows": len(listing)})
    return fp


def plan_difference(out_dir: Path, old: dict, settings: dict, listing: SourceListing) -> str:
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
    rows = SourceListing.read(out_dir / STATE_DIR / LISTING_FILE)
    if rows is None:
        return f"a build of another source listing ({old.get('rows')} inputs then, {len(listing)} now)"
    changes = listing_changes(unique_names(rows), unique_names(listing.rows()))
    if changes == "no file differs":
        changes = "the order of the inputs differs"
    return f"a build of another source listing: {changes}"
