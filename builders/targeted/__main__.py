"""``python -m builders.targeted``: (mine →) download → build, with per-class counts; see :mod:`builders.targeted`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from builders.targeted.download import download
from builders.targeted.errors import TargetedError
from builders.targeted.loop import run_loop
from builders.targeted.options import (
    DEFAULT_OUTPUTS,
    RESIZE_MODES,
    BuildOptions,
    DownloadOptions,
    LoopOptions,
)
from corpora_stats.mine import (
    MineOptions,
    add_mine_options,
    corpus_paths_from_args,
    format_summary,
    mine_urls,
)
from vlm_classdata.errors import UserError, run_cli


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; options not listed here are passed to ``python -m builders.imagenet_qa``."""
    p = argparse.ArgumentParser(
        prog="python -m builders.targeted", allow_abbrev=False,
        description="Mine a URL list for under-exposed classes (--counts/--select/--corpus, as python -m "
                    "corpora_stats mine) or take one (--mined), download it with img2dataset and build "
                    "instruction/eval data from it, with per-class mined/downloaded/kept counts. Running it "
                    "again with the same --out resumes; finished shards are never fetched twice. Other options "
                    "(e.g. --mcq-choices 5, --limit 100) are passed to python -m builders.imagenet_qa.")
    p.add_argument("--mined", help="MINED folder from python -m corpora_stats mine (urls.parquet, classes.json, "
                                   "mine_report.json); or mine here with --counts/--select/--corpus")
    p.add_argument("--out", required=True, help="output folder (mined/, shards/, build/, download.json)")
    m = p.add_argument_group("mining in the same command (instead of --mined; written to OUT/mined)")
    add_mine_options(m, standalone=False)
    d = p.add_argument_group("download (img2dataset)")
    d.add_argument("--image-size", type=int, default=256, help="resize target in pixels (default 256)")
    d.add_argument("--resize-mode", choices=RESIZE_MODES, default="border", help="img2dataset resize mode (default border)")
    d.add_argument("--processes", type=int, default=1, help="download processes (default 1)")
    d.add_argument("--threads", type=int, default=16, help="download threads per process (default 16)")
    d.add_argument("--timeout", type=float, default=10, help="per-request timeout in seconds (default 10)")
    d.add_argument("--retries", type=int, default=0, help="retries per failed URL (default 0)")
    d.add_argument("--shard-size", type=int, default=10000, help="URLs per shard, the unit of resume (default 10000)")
    b = p.add_argument_group("build")
    b.add_argument("--outputs", default=DEFAULT_OUTPUTS, help=f"builders outputs (default {DEFAULT_OUTPUTS})")
    b.add_argument("--seed", type=int, default=0, help="seed for templates, distractors, letters (default 0)")
    b.add_argument("--rebuild", action="store_true", help="rebuild OUT/build from the shards instead of resuming it")
    b.add_argument("--download-only", action="store_true", help="stop after the download and its account")
    p.add_argument("--quiet", action="store_true", help="no progress output (img2dataset's goes to OUT/img2dataset.log)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m builders.targeted``."""
    args, extra = build_parser().parse_known_args(argv)
    mining = [args.counts, args.select, args.corpus]
    if args.mined and any(mining):
        raise UserError("give either --mined or --counts/--select/--corpus, not both")
    if not args.mined:
        if not all(mining):
            raise UserError("give --mined MINED, or --counts, --select and --corpus to mine in the same command")
        args.mined = str(Path(args.out) / "mined")
        report = mine_urls(MineOptions(
            counts=args.counts, corpus_paths=corpus_paths_from_args(args.corpus), out=args.mined, rule=args.select,
            per_class=args.per_class, seed=args.seed, forms=args.forms, url_col=args.url_col,
            text_col=args.text_col, counts_corpus=args.counts_corpus, show_progress=not args.quiet))
        print(format_summary(report, args.mined))
    fetch = DownloadOptions(image_size=args.image_size, resize_mode=args.resize_mode, processes=args.processes,
                            threads=args.threads, timeout=args.timeout, retries=args.retries,
                            shard_size=args.shard_size)
    try:
        if args.download_only:
            if extra:
                raise UserError(f"unknown option {extra[0]} (build options make no sense with --download-only)")
            dl = download(args.mined, args.out, fetch, progress=not args.quiet)
            t = dl["totals"]
            print(f"downloaded {t['downloaded']} of {t['mined']} ({t['failed']} failed) → {Path(args.out) / 'shards'}")
            return 0
        build = BuildOptions(outputs=args.outputs, seed=args.seed, extra_args=extra, rebuild=args.rebuild)
        run_loop(LoopOptions(args.mined, args.out, download=fetch, build=build, progress=not args.quiet))
    except TargetedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
