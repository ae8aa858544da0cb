"""``python -m corpora_stats {count,report,mine,demo}``: class-name frequency in corpora, and its relation to accuracy.

    python -m corpora_stats count --corpus pretrain=blip_laion_cc_sbu_558k.json \\
        --corpus instruct=llava_v1_5_mix665k.json --classes imagenet1k --out out/freq
    python -m corpora_stats report --counts out/freq --accuracy predictions.jsonl --out out/freq/report
    python -m corpora_stats report --counts out/freq --accuracy BUILD/verify/label_check.MODEL.parquet
    python -m corpora_stats mine --counts out/freq --select least:50 --corpus laion=laion_parquet/ --out out/mined
    python -m corpora_stats demo --out out/freq_demo     # WordNet glosses as an offline corpus
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from corpora_stats.count import FORMS_POLICIES, CountConfig, count_corpora
from corpora_stats.mine import add_mine_options, corpus_paths_from_args, format_summary, mine
from corpora_stats.report import write_report
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.executors import make_executor
from vlm_classdata.vocabulary import ClassVocabulary


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise UserError(f"{what} must look like NAME=VALUE, got {v!r}")
        if not name.replace("_", "").replace("-", "").isalnum():
            raise UserError(f"{what} name {name!r} may hold only letters, digits, '-' and '_'")
        out[name] = path
    return out


def build_parser() -> argparse.ArgumentParser:
    """Sub-commands and every option, explained in --help."""
    p = argparse.ArgumentParser(prog="python -m corpora_stats", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def counting_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--classes", default="imagenet1k",
                        help="class list: bundled name or file (default imagenet1k)")
        sp.add_argument("--method", choices=("wordnet", "paper"), default="wordnet",
                        help="wordnet: all lemmas + plurals + aliases, whole-word leftmost-longest (default); "
                             "paper: display names only, each counted independently, as in arXiv 2405.18415")
        sp.add_argument("--forms", choices=FORMS_POLICIES, default="separate",
                        help="flagged forms (shared/ambiguous/short): separate = main counts exclude them and "
                             "*_all columns include them (default); all; exclude-flagged")
        sp.add_argument("--aliases", help="extra names per class: JSON {class_id: [alias, ...]} or TSV class_id<TAB>alias")
        sp.add_argument("--no-plurals", action="store_true", help="do not add plural forms")
        sp.add_argument("--snippets", type=int, default=5, help="audit snippets kept per class (default 5)")
        sp.add_argument("--seed", type=int, default=0, help="seed for snippet sampling and bootstrap (default 0)")
        sp.add_argument("--num-workers", type=int, default=1, help="worker processes (files are the unit)")
        sp.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local processes or Ray tasks over corpus files (RAY_ADDRESS or a local Ray)")
        sp.add_argument("--ray-address", help="address of a running Ray cluster")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")

    c = sub.add_parser("count", help="count class mentions in corpora",
                       description="Count document frequency and mentions of every class in each corpus.")
    c.add_argument("--corpus", action="append", required=True, metavar="NAME=PATH",
                   help="a corpus: LLaVA JSON, JSONL, parquet, txt (.gz/.zst), HF dataset folder, tar folder; repeat")
    c.add_argument("--format", action="append", metavar="NAME=FORMAT",
                   help="force a reader: llava_pretrain, llava_instruct, jsonl, parquet, txt, hf, webdataset, or "
                        "mixed (every file of a folder by its own reader; the default unless it holds tars)")
    c.add_argument("--text-field", help="JSONL/parquet/HF text column (default: TEXT, caption, text, ...)")
    c.add_argument("--turns", choices=("all", "human", "gpt"), default="all",
                   help="LLaVA instruction JSON: which turns to count (default all)")
    c.add_argument("--out", required=True, help="output folder for the counts tables")
    counting_options(c)

    r = sub.add_parser("report", help="Markdown + HTML report from a counts folder",
                       description="Plots, most/least frequent classes, and correlation with accuracy.")
    r.add_argument("--counts", required=True, help="folder written by 'count'")
    r.add_argument("--out", help="report folder (default COUNTS/report)")
    r.add_argument("--accuracy", help="predictions JSONL (label/pred), CSV (class, accuracy) or a builders.verify "
                                      "sidecar BUILD/verify/<pass>.<alias>.parquet (label_check, mcq, rank)")
    r.add_argument("--build", help="build folder of an mcq sidecar (its items' classes; default: the folder "
                                   "above the sidecar's verify/)")
    r.add_argument("--multi-labels", help="multi-label truth (ImageNet ReaL JSON, or JSONL id → class ids) to score "
                                          "replies against any accepted class too: predictions JSONL rows need an "
                                          "id; label_check and rank sidecars are rescored")
    r.add_argument("--pretrain", help="corpus name to use as pretraining in the scatter plot")
    r.add_argument("--instruct", help="corpus name to use as instruction data in the scatter plot")
    r.add_argument("--top-k", type=int, default=20, help="classes listed as most/least frequent (default 20)")
    r.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")

    m = sub.add_parser("mine", help="img2dataset URL list for under-exposed classes from a LAION-style corpus",
                       description="Select classes from a counts folder by a rule and mine the rows of LAION-style "
                                   "parquet files whose captions name exactly one of them (same lexicon and "
                                   "matching as count); write urls.parquet, classes.json and mine_report.json.")
    add_mine_options(m)

    d = sub.add_parser("demo", help="offline demo: count ImageNet classes in WordNet's glosses, then report")
    d.add_argument("--out", default="out/corpora_demo", help="output folder (default out/corpora_demo)")
    counting_options(d)
    return p


def _count(args: argparse.Namespace, corpora: dict[str, str], formats: dict[str, str]) -> dict:
    if args.num_workers < 1:
        raise UserError("--num-workers must be at least 1")
    config = CountConfig(method=args.method, forms=args.forms, plurals=not args.no_plurals, aliases=args.aliases,
                         snippets=args.snippets, seed=args.seed, text_field=getattr(args, "text_field", None),
                         turns=getattr(args, "turns", "all"))
    executor = make_executor(args.executor, args.num_workers, args.ray_address)
    return count_corpora(corpora, ClassVocabulary.load(args.classes), args.out, config, executor, formats,
                         show_progress=not args.quiet)


def _mine(args: argparse.Namespace) -> int:
    """``mine`` with parsed arguments: mine, then print the summary."""
    report = mine(args.counts, corpus_paths_from_args(args.corpus), args.out, args.select, per_class=args.per_class,
                  seed=args.seed, forms=args.forms, url_col=args.url_col, text_col=args.text_col,
                  corpus=args.counts_corpus, batch_size=args.batch_size, column=args.column, classes=args.classes,
                  show_progress=not args.quiet)
    print(format_summary(report, args.out))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    # numpy arrives late (through pyarrow, for parquet) and only converts Arrow data here: OpenBLAS's idle threads
    # spinning beside the count took ~10% of its CPU. An explicit setting of the user's wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    if args.command == "mine":
        return _mine(args)
    if args.command in ("count", "demo"):
        if args.command == "count":
            corpora, formats = _pairs(args.corpus, "--corpus"), _pairs(args.format, "--format")
        else:
            corpora, formats = {"wordnet_glosses": "wordnet:glosses"}, {"wordnet_glosses": "wordnet_glosses"}
        meta = _count(args, corpora, formats)
        for name, info in meta["corpora"].items():
            skipped = sum(info["skipped"].values())
            print(f"{name}: {info['documents']} documents, {info['bytes'] / 1e6:.1f} MB, {skipped} skipped "
                  f"→ {Path(args.out) / f'counts_{name}.csv'}")
            files = info.get("skipped_files") or []
            for entry in files[:5]:
                print(f"  not (fully) read: {entry['file']}: {entry['reason']}")
            if len(files) > 5:
                print(f"  ... and {len(files) - 5} more files (all listed in count_meta.json)")
        if args.command == "count":
            return 0
        args.counts, args.accuracy, args.pretrain, args.instruct, args.top_k = args.out, None, None, None, 20
        args.build = args.multi_labels = None
        args.out = str(Path(args.out) / "report")
    out = args.out or str(Path(args.counts) / "report")
    summary = write_report(args.counts, out, accuracy=args.accuracy, pretrain=args.pretrain,
                           instruct=args.instruct, seed=args.seed, top_k=args.top_k, build=args.build,
                           multi_labels=args.multi_labels)
    print(f"report → {Path(out) / 'report.md'} and {Path(out) / 'report.html'}")
    shown = ("documents", "classes_never_mentioned", "spearman", "pearson", "mean_accuracy", "overall_accuracy")
    for key, value in (summary or {}).items():
        if key.startswith(shown) and isinstance(value, (int, float, str)):
            print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
