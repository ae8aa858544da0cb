"""ImageWikiQA-style knowledge benchmarks.

    python -m imagewikiqa evaluate PREDICTIONS --questions BENCHMARK.jsonl [--out report.json]
        [--per-class-csv per_class.csv]

``evaluate`` scores a model's replies (JSONL rows with an id and a reply, LLaVA ``model_vqa`` answers, rows
matched by position, or a ``builders.verify`` sidecar parquet) against a benchmark JSONL (the released
ImageWikiQA file or our LLaVA-eval rows), prints a short summary and writes a JSON report. Definitions of
every number: ``imagewikiqa/evaluate.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (subcommands; only ``evaluate`` so far)."""
    p = argparse.ArgumentParser(prog="python -m imagewikiqa", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score a model's replies to a multiple-choice benchmark")
    ev.add_argument("predictions", help="predictions: JSONL (id + reply per row, or by position) or a "
                                        "builders.verify sidecar .parquet (sample_id, reply, status)")
    ev.add_argument("--questions", required=True, help="the benchmark JSONL (released ImageWikiQA or ours)")
    ev.add_argument("--out", help="write the JSON report here")
    ev.add_argument("--per-class-csv", help="write per-class accuracy as CSV here")
    return p


def _evaluate(args: argparse.Namespace) -> int:
    from imagewikiqa.evaluate import evaluate_files, summary_text, write_per_class_csv, write_report

    report = evaluate_files(args.predictions, args.questions)
    print(summary_text(report))
    if args.out:
        write_report(report, args.out)
        print(f"report → {args.out}")
    if args.per_class_csv:
        write_per_class_csv(report, args.per_class_csv)
        print(f"per-class accuracy → {args.per_class_csv}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand."""
    args = build_parser().parse_args(argv)
    commands = {"evaluate": _evaluate}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
