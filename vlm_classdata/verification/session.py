"""The ``verify run`` command as a library call: :class:`RunRequest` (its flags) → :func:`run_verification`.

The request is checked before any work (passes, models, aliases, numbers, ``--out``), the output folder is locked
for the run (each shard locks its own slot), the items are loaded once per question output, and every pass ×
model runs with its own cache and sidecar (:func:`vlm_classdata.verification.runner.run_pass`), logged in
``OUT/runs.jsonl``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vlm_classdata.errors import UserError
from vlm_classdata.extras import require
from vlm_classdata.stages import RunLock, check_out, lock_out, open_out
from vlm_classdata.verification.items import Item, ItemSet, build_vocabulary, load_build, load_items
from vlm_classdata.verification.jobs import PassJob, RunOptions, model_alias
from vlm_classdata.verification.multilabels import MultiLabels, load_multi_labels
from vlm_classdata.verification.passes import DEFAULT_OUTPUT, PASSES, PassSettings
from vlm_classdata.verification.runner import run_pass
from vlm_classdata.verification.summary import log_run
from vlm_classdata.verification.workers import ModelCache
from vlm_classdata.vlm.loading import model_source
from vlm_classdata.vocabulary import ClassVocabulary


@dataclass
class RunRequest:
    """The flags of ``verify run`` (see ``python -m builders.verify run --help``)."""

    model: list[str]
    build: str | None = None
    input: str | None = None
    image_root: str | None = None
    classes: str | None = None
    output: str | None = None
    splits: str | None = None
    limit: int | None = None
    passes: str = "label_check"
    alias: list[str] | None = None
    device: str | None = None
    dtype: str | None = None
    batch_size: int = 8
    score_batch_size: int = 128
    max_new_tokens: int = 32
    max_prompt_tokens: int | None = None
    out: str | None = None
    chunk_size: int = 64
    executor: str = "local"
    num_workers: int = 1
    gpus_per_worker: float = 0.0
    ray_address: str | None = None
    shard: str | None = None
    quiet: bool = False
    multi_labels: str | None = None


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` → ``(I, N)``; None stays None; anything else is a :class:`UserError`."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def _check_request(req: RunRequest) -> tuple[list[str], list[str], list[str]]:
    """The passes, the models (local folders by absolute path) and their aliases; one line for any mistake."""
    if bool(req.build) == bool(req.input):
        raise UserError("give exactly one of --build and --input")
    passes = [x.strip() for x in req.passes.split(",") if x.strip()]
    unknown = [x for x in passes if x not in PASSES]
    if unknown or not passes:
        raise UserError(f"unknown pass {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(PASSES)}")
    aliases = req.alias or []
    if aliases and len(aliases) != len(req.model):
        raise UserError(f"{len(aliases)} --alias for {len(req.model)} --model; give one per model or none")
    aliases = aliases or [model_alias(m) for m in req.model]
    # a wrong path is one line before any work starts; local folders are named by their absolute path
    models = [str(Path(src).resolve()) if Path(src).is_dir() else src for src in map(model_source, req.model)]
    if len(set(aliases)) != len(aliases):
        raise UserError(f"two models share the alias {aliases!r}; name them with --alias")
    for name, value in (("--batch-size", req.batch_size), ("--max-new-tokens", req.max_new_tokens),
                        ("--score-batch-size", req.score_batch_size), ("--num-workers", req.num_workers),
                        ("--limit", req.limit if req.limit is not None else 1)):
        if value < 1:
            raise UserError(f"{name} must be at least 1")
    return passes, models, aliases


def run_verification(req: RunRequest, report: Callable[[dict, Path], None]) -> None:
    """Run every pass × model of ``req``; ``report(summary, out)`` is called as each one finishes."""
    passes, models, aliases = _check_request(req)
    require("vlm")
    if req.executor == "ray":
        require("ray")
    if req.quiet:
        from transformers.utils import logging as hf_logging  # heavy: only --quiet needs it here

        hf_logging.disable_progress_bar()
    if req.classes:
        vocab = ClassVocabulary.load(req.classes)
    elif req.build:
        vocab = build_vocabulary(req.build)
    else:
        vocab = None
    if vocab is None and any(p in ("label_check", "rank") for p in passes):
        raise UserError("label_check and rank need the class list: give --classes")
    multi_labels = _multi_labels(req.multi_labels, passes, vocab)
    out = Path(req.out) if req.out else (Path(req.build) / "verify" if req.build
                                         else Path(req.input).parent / "verify")
    shard = parse_shard(req.shard)
    settings = PassSettings(max_new_tokens=req.max_new_tokens, batch_size=req.batch_size,
                            score_batch_size=req.score_batch_size, max_prompt_tokens=req.max_prompt_tokens)
    options = RunOptions(chunk_size=req.chunk_size, executor=req.executor, num_workers=req.num_workers,
                         gpus_per_worker=req.gpus_per_worker, ray_address=req.ray_address,
                         shard=shard, progress=not req.quiet)
    with _claim_out(out, req, shard):
        _run_passes(req, passes, models, aliases, vocab, settings, options, out, report, multi_labels)


def _multi_labels(path: str | None, passes: list[str], vocab: ClassVocabulary | None) -> MultiLabels | None:
    """The ``--multi-labels`` file read and checked against the class list (None when not given)."""
    if path is None:
        return None
    judged = [p for p in passes if PASSES[p].multi_label]
    if not judged:
        raise UserError(f"--multi-labels applies to {', '.join(n for n, p in PASSES.items() if p.multi_label)}; "
                        f"none of them is in --passes")
    if vocab is None:
        raise UserError("--multi-labels needs the class list: give --classes")
    return load_multi_labels(path, vocab)


def _claim_out(out: Path, req: RunRequest, shard: tuple[int, int] | None) -> RunLock:
    """Check ``--out`` (a folder, not the build or the input) and lock it for this run; leftovers of dead runs
    are removed. Shards of one run share OUT: each locks its own shard instead (the same shard twice is refused)
    and the next run without ``--shard`` removes leftovers."""
    check_out(out, [req.input] if req.input else [])
    if req.build:
        build, where = Path(req.build).expanduser().resolve(), out.expanduser().resolve()
        if where == build or where in build.parents:
            raise UserError(f"--out {out} is the build folder or holds it; sidecars go beside the build's files, "
                            f"e.g. {Path(req.build) / 'verify'} (the default)")
    if shard is None:
        return open_out(out, command="builders.verify run")
    return lock_out(out / ".shards" / f"{shard[0]}-of-{shard[1]}")


def _run_passes(req: RunRequest, passes: list[str], models: list[str], aliases: list[str],
                vocab: ClassVocabulary | None, settings: PassSettings, options: RunOptions, out: Path,
                report: Callable[[dict, Path], None], multi_labels: MultiLabels | None = None) -> None:
    """Every pass × model, each with its own cache and sidecar under ``out``; with ``multi_labels``, a line on
    how the file meets each output's items (none at all is a :class:`UserError`)."""
    loaded: dict[str, ItemSet] = {}
    covered: set[str] = set()  # outputs whose multi-label coverage is checked
    models_held = ModelCache()
    for pass_name in passes:
        source = req.output or DEFAULT_OUTPUT[pass_name]
        if source not in loaded:
            if req.build:
                splits = [s.strip() for s in req.splits.split(",")] if req.splits else None
                loaded[source] = load_build(req.build, source, splits, vocab)
            else:
                loaded[source] = load_items(req.input, req.image_root, vocab=vocab)
            skipped = loaded[source].skipped
            if skipped:
                print(f"input {source}: skipped {sum(skipped.values())} rows "
                      + ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())), file=sys.stderr)
        items = loaded[source].items[:req.limit] if req.limit else loaded[source].items
        if not items:
            raise UserError(f"no items to ask in {source!r}")
        if multi_labels is not None and PASSES[pass_name].multi_label and source not in covered:
            _check_coverage(multi_labels, items, source)
            covered.add(source)
        for model, alias in zip(models, aliases, strict=True):
            job = PassJob(pass_name, model, alias, vocab.to_json() if vocab is not None else None, settings,
                          req.device, req.dtype)
            started = time.perf_counter()
            summary = run_pass(items, job, out, options, models_held, multi_labels)
            log_run(out, summary, time.perf_counter() - started)
            report(summary, out)


def _check_coverage(multi_labels: MultiLabels, items: list[Item], source: str) -> None:
    """Print how the multi-label file meets ``items``; a file naming none of them is a :class:`UserError`."""
    cover = multi_labels.coverage(items)
    if cover.not_in_file == cover.items:
        raise UserError(f"--multi-labels {multi_labels.source} names none of the {cover.items} {source} items "
                        f"(file ids like {next(iter(multi_labels.accepted))!r}, items like {items[0].sample_id!r})")
    print(cover.line(multi_labels.source, source), file=sys.stderr)
