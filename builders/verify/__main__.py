"""Run VLMs over built data and filter it by their answers.

    python -m builders.verify run --build out/inet --passes label_check,mcq,blind,rank --model llava-hf/llava-1.5-7b-hf
    python -m builders.verify filter --build out/inet --rule drop:blind --rule 'keep:label_check>=2' --out out/inet-clean
    python -m builders.verify summary --build out/inet

``run`` writes one sidecar parquet per pass × model into ``BUILD/verify/`` (or ``--out``) and never touches
the build's files; ``filter`` writes a filtered copy of the build's JSON/JSONL/parquet outputs with counts
per rule in ``filter_report.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vlm_classdata.errors import UserError, run_cli

if TYPE_CHECKING:
    from builders.verify.items import ItemSet
    from builders.verify.passes import PassSettings
    from builders.verify.runner import RunOptions
    from vlm_classdata.stages import RunLock
    from vlm_classdata.vocabulary import ClassVocabulary


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; every option explained in --help."""
    from builders.verify.passes import DEFAULT_OUTPUT, PASSES

    p = argparse.ArgumentParser(prog="python -m builders.verify", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="ask models the build's questions; one sidecar parquet per pass × model")
    src = run.add_argument_group("input")
    src.add_argument("--build", help="a build folder (has manifest.json) from python -m builders.imagenet_qa")
    src.add_argument("--input", help="instead of --build: a question JSONL (LLaVA eval rows, or ImageWikiQA "
                                     "rows with image/text/label/classname)")
    src.add_argument("--image-root", help="with --input: folder the rows' image paths are relative to "
                                          "(default: the file's folder)")
    src.add_argument("--classes", help="class list (bundled name or file); default: the build's classes.json")
    src.add_argument("--output", help="which question output of the build to ask; default per pass: "
                                      + ", ".join(f"{k}→{v}" for k, v in DEFAULT_OUTPUT.items()))
    src.add_argument("--splits", help="comma-separated splits (default: all)")
    src.add_argument("--limit", type=int, help="only the first N items (a quick look)")
    what = run.add_argument_group("passes and models")
    what.add_argument("--passes", default="label_check",
                      help=f"comma-separated, any of {', '.join(PASSES)} (default label_check)")
    what.add_argument("--model", action="append", required=True,
                      help="model folder or cached hub id; repeat for several models")
    what.add_argument("--alias", action="append",
                      help="short name per --model used in file names and the model column "
                           "(default: folder name, or org__name)")
    what.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when available)")
    what.add_argument("--dtype", help="bf16, fp16, fp32 (default: bf16 on CUDA, fp32 on CPU)")
    what.add_argument("--batch-size", type=int, default=8, help="generation batch (halved on out-of-memory)")
    what.add_argument("--score-batch-size", type=int, default=128, help="candidates per scoring batch (rank)")
    what.add_argument("--max-new-tokens", type=int, default=32, help="reply length limit (default 32)")
    what.add_argument("--max-prompt-tokens", type=int,
                      help="longer prompts are recorded as prompt_too_long (default: the model's context)")
    how = run.add_argument_group("running")
    how.add_argument("--out", help="sidecar folder (default BUILD/verify, or next to --input)")
    how.add_argument("--chunk-size", type=int, default=64, help="items per cached part (default 64)")
    how.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local: one model in this process; ray: Ray Data actor pool, one model per actor")
    how.add_argument("--num-workers", type=int, default=1, help="Ray actors (one model each)")
    how.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray actor (1 on a GPU cluster)")
    how.add_argument("--ray-address", help="address of a running Ray cluster (default: RAY_ADDRESS or local)")
    how.add_argument("--shard", help="I/N: run only every N-th chunk starting at I (one process per GPU)")
    how.add_argument("--quiet", action="store_true", help="no progress bars")

    flt = sub.add_parser("filter", help="a filtered copy of the build's outputs by rules over pass results")
    flt.add_argument("--build", required=True, help="the build folder")
    flt.add_argument("--verify-dir", help="sidecar folder (default BUILD/verify)")
    flt.add_argument("--rule", action="append", required=True,
                     help="ACTION:PASS[.COLUMN][>=N|=all|=any], e.g. drop:blind, 'keep:label_check>=2', "
                          "keep:rank.in_top5; applied in order")
    flt.add_argument("--outputs", help="comma-separated outputs to copy (default: every JSON/JSONL/parquet one)")
    flt.add_argument("--out", required=True, help="folder for the filtered copy")

    summ = sub.add_parser("summary", help="a table of the pass results in a sidecar folder")
    summ.add_argument("--build", help="the build folder (reads BUILD/verify)")
    summ.add_argument("--verify-dir", help="sidecar folder")
    return p


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def _run(args: argparse.Namespace) -> int:
    from builders.verify.items import build_vocabulary
    from builders.verify.passes import PASSES, PassSettings
    from builders.verify.runner import RunOptions, model_alias
    from vlm_classdata.vlm.runtime import model_source
    from vlm_classdata.vocabulary import ClassVocabulary

    if bool(args.build) == bool(args.input):
        raise UserError("give exactly one of --build and --input")
    passes = [x.strip() for x in args.passes.split(",") if x.strip()]
    unknown = [x for x in passes if x not in PASSES]
    if unknown or not passes:
        raise UserError(f"unknown pass {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(PASSES)}")
    aliases = args.alias or []
    if aliases and len(aliases) != len(args.model):
        raise UserError(f"{len(aliases)} --alias for {len(args.model)} --model; give one per model or none")
    aliases = aliases or [model_alias(m) for m in args.model]
    # a wrong path is one line before any work starts; local folders are named by their absolute path
    models = [str(Path(src).resolve()) if Path(src).is_dir() else src for src in map(model_source, args.model)]
    if len(set(aliases)) != len(aliases):
        raise UserError(f"two models share the alias {aliases!r}; name them with --alias")
    for name, value in (("--batch-size", args.batch_size), ("--max-new-tokens", args.max_new_tokens),
                        ("--score-batch-size", args.score_batch_size), ("--num-workers", args.num_workers),
                        ("--limit", args.limit if args.limit is not None else 1)):
        if value < 1:
            raise UserError(f"{name} must be at least 1")
    if args.quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

    if args.classes:
        vocab = ClassVocabulary.load(args.classes)
    elif args.build:
        vocab = build_vocabulary(args.build)
    else:
        vocab = None
    if vocab is None and any(p in ("label_check", "rank") for p in passes):
        raise UserError("label_check and rank need the class list: give --classes")
    out = Path(args.out) if args.out else (Path(args.build) / "verify" if args.build
                                           else Path(args.input).parent / "verify")
    shard = _parse_shard(args.shard)
    settings = PassSettings(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                            score_batch_size=args.score_batch_size, max_prompt_tokens=args.max_prompt_tokens)
    options = RunOptions(chunk_size=args.chunk_size, executor=args.executor, num_workers=args.num_workers,
                         gpus_per_worker=args.gpus_per_worker, ray_address=args.ray_address,
                         shard=shard, progress=not args.quiet)
    with _claim_out(out, args, shard):
        return _run_passes(args, passes, models, aliases, vocab, settings, options, out)


def _claim_out(out: Path, args: argparse.Namespace, shard: tuple[int, int] | None) -> RunLock:
    """Check ``--out`` (a folder, not the build or the input) and lock it for this run; leftovers of dead runs
    are removed. Shards of one run share OUT: each locks its own shard instead (the same shard twice is refused)
    and the next run without ``--shard`` removes leftovers."""
    from vlm_classdata.stages import check_out, lock_out, open_out

    check_out(out, [args.input] if args.input else [])
    if args.build:
        build, where = Path(args.build).expanduser().resolve(), out.expanduser().resolve()
        if where == build or where in build.parents:
            raise UserError(f"--out {out} is the build folder or holds it; sidecars go beside the build's files, "
                            f"e.g. {Path(args.build) / 'verify'} (the default)")
    if shard is None:
        return open_out(out, command="builders.verify run")
    return lock_out(out / ".shards" / f"{shard[0]}-of-{shard[1]}")


def _run_passes(args: argparse.Namespace, passes: list[str], models: list[str], aliases: list[str],
                vocab: ClassVocabulary | None, settings: PassSettings, options: RunOptions, out: Path) -> int:
    """Every pass × model, each with its own cache and sidecar under ``out``."""
    from builders.verify.items import load_build, load_items
    from builders.verify.passes import DEFAULT_OUTPUT
    from builders.verify.runner import PassJob, run_pass

    loaded: dict[str, ItemSet] = {}
    for pass_name in passes:
        source = args.output or DEFAULT_OUTPUT[pass_name]
        if source not in loaded:
            if args.build:
                splits = [s.strip() for s in args.splits.split(",")] if args.splits else None
                loaded[source] = load_build(args.build, source, splits, vocab)
            else:
                loaded[source] = load_items(args.input, args.image_root, vocab=vocab)
            skipped = loaded[source].skipped
            if skipped:
                print(f"input {source}: skipped {sum(skipped.values())} rows "
                      + ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())), file=sys.stderr)
        items = loaded[source].items[:args.limit] if args.limit else loaded[source].items
        if not items:
            raise UserError(f"no items to ask in {source!r}")
        for model, alias in zip(models, aliases, strict=True):
            job = PassJob(pass_name, model, alias, vocab.to_json() if vocab is not None else None, settings,
                          args.device, args.dtype)
            started = time.perf_counter()
            summary = run_pass(items, job, out, options)
            _log_run(out, summary, time.perf_counter() - started)
            print(_summary_line(summary, out))
    return 0


def _summary_line(s: dict, out: Path) -> str:
    head = f"{s['pass']}[{s['model']}]"
    if not s.get("complete"):
        return f"{head}: shard done ({s['answered_now']} answered now, {s['remaining']} left for other shards)"
    acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
    errors = ", ".join(f"{k}={v}" for k, v in s["errors"].items()) or "none"
    extra = f", top-5 {s['top5_accuracy']:.3f}, mean rank {s['mean_rank']}" if "top5_accuracy" in s else ""
    return (f"{head}: {s['items']} items, {s['ok']} ok, accuracy {acc}{extra}; errors: {errors}; "
            f"answered now {s['answered_now']}, from cache {s['cached']} → {out / s['sidecar']}")


def _log_run(out: Path, summary: dict, seconds: float) -> None:
    entry = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 3),
             "argv": sys.argv, **{k: summary.get(k) for k in ("pass", "model", "answered_now", "cached",
                                                              "items_per_s", "complete")}}
    with open(out / "runs.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")


def _filter(args: argparse.Namespace) -> int:
    from builders.verify.filters import parse_rule, run_filter, write_build_meta
    from vlm_classdata.errors import read_user_json
    from vlm_classdata.stages import open_out

    build = Path(args.build)
    manifest = read_user_json(build / "manifest.json", "build manifest")
    wanted = {o.strip() for o in args.outputs.split(",")} if args.outputs else None
    files, names = [], []
    for name, info in sorted(manifest.get("outputs", {}).items()):
        if wanted is not None and name not in wanted:
            continue
        if info.get("writer") in ("json_array", "jsonl", "hf_parquet"):
            names.append(name)
            files += [build / f for f in info["files"] if f.endswith((".json", ".jsonl", ".parquet"))]
    if wanted is not None and (missing := wanted - set(manifest.get("outputs", {}))):
        raise UserError(f"build {build} has no output {sorted(missing)[0]!r}")
    if not files:
        raise UserError("no JSON, JSONL or parquet outputs to filter")
    verify_dir = Path(args.verify_dir) if args.verify_dir else build / "verify"
    for rule in args.rule:  # a mistyped rule is one line before the output folder is made
        parse_rule(rule)
    with open_out(args.out, inputs=[build, verify_dir], command="builders.verify filter"):
        report = run_filter(files, build, verify_dir, args.rule, Path(args.out))
        write_build_meta(build, Path(args.out), report, names)
    print(f"kept {report['kept']} of {report['input']} samples → {args.out}")
    for r in report["rules"]:
        print(f"  {r['rule']:<28} dropped {r['dropped']:>6}  (alone {r['dropped_alone']}; models: "
              f"{', '.join(r['models'])})")
    return 0


def _summary(args: argparse.Namespace) -> int:
    folder = Path(args.verify_dir) if args.verify_dir else (Path(args.build) / "verify" if args.build else None)
    if folder is None:
        raise UserError("give --build or --verify-dir")
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            s = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            print(f"skipped {path}: not valid JSON ({exc})", file=sys.stderr)
            continue
        if isinstance(s, dict) and "pass" in s:
            rows.append(s)
    if not rows:
        raise UserError(f"no readable pass results in {folder}")
    print(f"{'pass':<12} {'model':<24} {'items':>7} {'ok':>7} {'accuracy':>9}  errors")
    for s in rows:
        acc = "n/a" if s.get("accuracy") is None else f"{s['accuracy']:.3f}"
        errors = ", ".join(f"{k}={v}" for k, v in s.get("errors", {}).items()) or "-"
        print(f"{s['pass']:<12} {s['model']:<24} {s['items']:>7} {s['ok']:>7} {acc:>9}  {errors}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m builders.verify``."""
    args = build_parser().parse_args(argv)
    return {"run": _run, "filter": _filter, "summary": _summary}[args.command](args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
