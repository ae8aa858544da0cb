"""Knowledge sources for ImageWikiQA: the articles questions are written from, grouped by class.

``python -m imagewikiqa.sources convert-pickle SRC DST`` converts the ImageNet-Wiki pickle to JSON (trusted
files only); ``describe PATH --classes LIST`` loads articles (:func:`imagewikiqa.articles.load_articles`, or
the offline fallback without PATH) and prints coverage and skip reasons as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from imagewikiqa.articles import KINDS, describe, load_articles
from imagewikiqa.imagenet_wiki import convert_pickle
from imagewikiqa.offline_articles import fallback_articles
from vlm_classdata.errors import run_cli
from vlm_classdata.vocabulary import ClassVocabulary


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m imagewikiqa.sources convert-pickle SRC DST`` | ``describe PATH --classes LIST``."""
    ap = argparse.ArgumentParser(prog="python -m imagewikiqa.sources", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    cp = sub.add_parser("convert-pickle", help="convert the ImageNet-Wiki pickle to JSON (trusted files only)")
    cp.add_argument("src")
    cp.add_argument("dst")
    ds = sub.add_parser("describe", help="load articles and print coverage and skip reasons as JSON")
    ds.add_argument("path", nargs="?", help="articles (omit for the offline fallback)")
    ds.add_argument("--classes", default="imagenet1k", help="class list (bundled name or file)")
    ds.add_argument("--kind", default="auto", choices=KINDS)
    ds.add_argument("--titles", default=None)
    ds.add_argument("--allow-pickle", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "convert-pickle":
        print(f"wrote {convert_pickle(args.src, args.dst)} records to {args.dst}")
        return 0
    vocab = ClassVocabulary.load(args.classes)
    if args.path:
        arts, skipped = load_articles(args.path, vocab, args.kind, args.allow_pickle, args.titles)
    else:
        arts, skipped = fallback_articles(vocab)
    print(json.dumps({**describe(arts), "skipped": dict(sorted(skipped.items()))}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
