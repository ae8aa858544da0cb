"""Build instruction-tuning and QA data from ImageNet (or any classification dataset).

    python -m builders.imagenet_qa                       # the embedded sample → out/imagenet_qa
    python -m builders.imagenet_qa --root /data/imagenet --out out/inet --num-workers 8
    python -m builders.imagenet_qa --source imagefolder --root food-101/images --classes food101 ...

Outputs (``--outputs``): llava (LLaVA training JSON), hf (HF parquet with images + chat messages),
wds (WebDataset shards), eval_open (LLaVA eval JSONL), mcq (K-way multiple choice JSONL), mcq_hf,
vlmevalkit (VLMEvalKit TSV). A killed build resumes when started again with the same options and an
unchanged source; a changed source or option is refused with one line saying what changed (never mixed).
``--out`` must not overlap any input; ``--overwrite`` empties only a folder this tool made; one run per
``--out`` at a time (a run lock).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from builders.build import build, summarize
from builders.build_options import build_parser, settings_from_args
from vlm_classdata.errors import run_cli


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m builders.imagenet_qa``: parse the options, build, print a summary."""
    settings = settings_from_args(build_parser().parse_args(argv))
    manifest = build(settings)
    print(summarize(manifest, settings.out))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
