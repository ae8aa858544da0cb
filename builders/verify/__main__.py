"""Run VLMs over built data and filter it by their answers.

    python -m builders.verify run --build out/inet --passes label_check,mcq,blind,rank --model llava-hf/llava-1.5-7b-hf
    python -m builders.verify filter --build out/inet --rule drop:blind --rule 'keep:label_check>=2' --out out/inet-clean
    python -m builders.verify summary --build out/inet
    python -m builders.verify audit --build out/inet --rule agree_other_class:2 --decisions decisions.jsonl
    python -m builders.verify summary --build out/inet-random --build out/inet-hard   # random vs hard distractors

``run`` writes one sidecar parquet per pass × model into ``BUILD/verify/`` (or ``--out``) and never touches
the build's files; ``filter`` writes a filtered copy of the build's JSON/JSONL/parquet outputs with counts
per rule in ``filter_report.json``; ``audit`` flags items whose label the models' verdicts dispute and writes a
review gallery, relabel suggestions and counts (``BUILD/verify/audit`` by default, which the dataset card reads).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vlm_classdata.errors import run_cli
from vlm_classdata.verification.audit import DEFAULT_RULE, run_audit
from vlm_classdata.verification.distractor_strength import (
    distractor_strength,
    strength_sources,
    strength_table,
)
from vlm_classdata.verification.filtered_build import filter_build
from vlm_classdata.verification.passes import DEFAULT_OUTPUT, PASSES
from vlm_classdata.verification.session import RunRequest, run_verification
from vlm_classdata.verification.summary import read_summaries, summary_line, summary_table


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; every option explained in --help."""
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
    src.add_argument("--multi-labels", help="multi-label truth for label_check, mcq and rank: a ReaL-style JSON "
                                            "list (accepted class indices per ImageNet validation image, in file "
                                            "order) or JSONL rows {id, class_ids|labels}; adds correct_any and "
                                            "accuracy_any")
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

    summ = sub.add_parser("summary", help="a table of the pass results in a sidecar folder; with several, MCQ "
                                          "accuracy with random vs hard distractors per model")
    summ.add_argument("--build", action="append",
                      help="the build folder (reads BUILD/verify); repeat to compare builds, e.g. one made with "
                           "--distractors random and one with --distractors hard of the same images")
    summ.add_argument("--verify-dir", action="append",
                      help="sidecar folder; repeat like --build (paired with the --build of the same position, "
                           "else its parent folder is the build)")

    aud = sub.add_parser("audit", help="flag items whose label the models dispute; a review gallery and "
                                       "relabel suggestions")
    aud.add_argument("--build", required=True, help="the build folder (its images and classes)")
    aud.add_argument("--verify-dir", help="sidecar folder with label_check sidecars (default BUILD/verify)")
    aud.add_argument("--out", help="folder for gallery.html, relabel_suggestions.jsonl, summary.json "
                                   "(default VERIFY_DIR/audit, where the dataset card looks)")
    aud.add_argument("--rule", action="append",
                     help=f"agree_other_class[:N] (N models name the same other class), any_other_class, "
                          f"all_wrong (every model wrong); repeat for several (default {DEFAULT_RULE})")
    aud.add_argument("--decisions", help="JSONL of a human's decisions {sample_id, decision: keep|relabel|drop, "
                                         "class_id}, counted in summary.json")
    aud.add_argument("--output", default="eval_open", help="the build output label_check asked (default eval_open)")
    return p


def _run(args: argparse.Namespace) -> int:
    request = RunRequest(**{k: v for k, v in vars(args).items() if k != "command"})
    run_verification(request, lambda summary, out: print(summary_line(summary, out)))
    return 0


def _filter(args: argparse.Namespace) -> int:
    outputs = {o.strip() for o in args.outputs.split(",")} if args.outputs else None
    report = filter_build(Path(args.build), args.rule, Path(args.out), args.verify_dir, outputs)
    print(f"kept {report['kept']} of {report['input']} samples → {args.out}")
    for r in report["rules"]:
        print(f"  {r['rule']:<28} dropped {r['dropped']:>6}  (alone {r['dropped_alone']}; models: "
              f"{', '.join(r['models'])})")
    return 0


def _summary(args: argparse.Namespace) -> int:
    if len(args.build or []) <= 1 and len(args.verify_dir or []) <= 1:
        folder = (Path(args.verify_dir[0]) if args.verify_dir
                  else (Path(args.build[0]) / "verify" if args.build else None))
        for line in summary_table(read_summaries(folder)):
            print(line)
        return 0
    sources = strength_sources(args.build, args.verify_dir)
    tables = [(verify, summary_table(read_summaries(verify))) for verify, _ in sources]  # all read before printing
    strength = strength_table(distractor_strength(sources))
    for verify, table in tables:
        print(f"== {verify}")
        for line in table:
            print(line)
    print()
    for line in strength:
        print(line)
    return 0


def _audit(args: argparse.Namespace) -> int:
    summary, out = run_audit(args.build, args.rule, args.verify_dir, args.out, args.decisions, args.output)
    by_rule = ", ".join(f"{k} {v}" for k, v in summary.flagged_by_rule.items())
    print(f"checked {summary.items_checked} items ({', '.join(summary.models)}); flagged {summary.flagged} "
          f"({by_rule}) → {out / 'gallery.html'}")
    if summary.resolved is not None:
        r = summary.resolved
        print(f"  resolved {r.items} of {summary.flagged}: keep {r.keep}, relabel {r.relabel}, drop {r.drop}"
              + (f" ({r.unflagged} decisions about unflagged items)" if r.unflagged else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m builders.verify``."""
    args = build_parser().parse_args(argv)
    return {"run": _run, "filter": _filter, "summary": _summary, "audit": _audit}[args.command](args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
