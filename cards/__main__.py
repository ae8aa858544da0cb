"""Hugging Face dataset cards from build manifests, an offline check, and publishing to the Hub.

    python -m cards write BUILD [--repo-folder DIR] [--corpora COUNTS_DIR] [--pretty-name NAME] [--license ID]
    python -m cards check FOLDER
    python -m cards publish FOLDER --repo-id OWNER/NAME [--private] [--dry-run]

``write`` reads what a build wrote (``manifest.json``, ``classes.json``, the run log, verification and filter
summaries, an ImageWikiQA quality report; corpus counts with ``--corpora``) and writes the card
(``README.md``) and its plots into the publishable folder (``BUILD/hf`` by default). ``check`` loads that
folder offline and reports every problem at once. ``publish`` creates the dataset repo if needed and uploads
the folder; the token comes from ``HF_TOKEN`` or the login cache and is never printed or written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cards.check import check_folder, check_main
from cards.publish import publish_main
from cards.write import write_card
from vlm_classdata.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface: ``write``, ``check``, ``publish``."""
    p = argparse.ArgumentParser(prog="python -m cards", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the dataset card (README.md + plots) of a build")
    w.add_argument("build", help="a build folder (builders, builders.verify filter, or imagewikiqa build)")
    w.add_argument("--repo-folder", help="the folder to publish (default: BUILD/hf)")
    w.add_argument("--corpora", help="a corpora_stats counts folder: adds class-frequency coverage and a plot")
    w.add_argument("--pretty-name", help="the dataset's display name (default: from the build)")
    w.add_argument("--license", help="licence id, overriding the one inherited from the source dataset")
    c = sub.add_parser("check", help="check a card folder offline (metadata, loading, links, sections)")
    c.add_argument("folder")
    u = sub.add_parser("publish", help="create the dataset repo if missing and upload the folder")
    u.add_argument("folder")
    u.add_argument("--repo-id", required=True, help="OWNER/NAME on the Hub")
    u.add_argument("--private", action="store_true", help="create the repo as private")
    u.add_argument("--dry-run", action="store_true", help="list exactly what would be uploaded; send nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand."""
    args = build_parser().parse_args(argv)
    if args.command == "write":
        path = write_card(args.build, repo_folder=args.repo_folder, corpora=args.corpora,
                          pretty_name=args.pretty_name, license=args.license)
        print(f"card → {path}")
        problems = check_folder(path.parent)
        for problem in problems:
            print(f"problem: {problem}")
        return 1 if problems else 0
    if args.command == "check":
        return check_main(args.folder)
    return publish_main(args.folder, args.repo_id, private=args.private, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(run_cli(main))
