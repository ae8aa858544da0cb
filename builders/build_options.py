"""The builder's command-line options and their translation into :class:`builders.build.BuildSettings`.

Shared by ``python -m builders.imagenet_qa`` and ``python -m builders.targeted`` (which passes the build options
it does not set itself through to the build).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from builders.build import BuildSettings, RunSettings, SourceSettings
from builders.config import BuildConfig, output_registry, parse_split_names
from builders.sources.registry import SOURCE_KINDS
from builders.writers.webdataset import DEFAULT_CAPTION, IMAGE_FORMATS
from vlm_classdata.executors import DEFAULT_RAY_TIMEOUT

DEFAULT_OUTPUTS = "llava,hf,wds,eval_open,open_hf,mcq,mcq_hf,vlmevalkit"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; every option explained in --help."""
    outs = output_registry()
    p = argparse.ArgumentParser(
        prog="python -m builders.imagenet_qa",
        description="Convert a classification dataset into instruction-tuning and evaluation data for VLMs. "
                    "With no --root, builds from the embedded ImageNet-layout sample.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="outputs:\n" + "\n".join(f"  {k:<11} {v['about']}" for k, v in outs.items()))
    src = p.add_argument_group("source")
    src.add_argument("--source", choices=SOURCE_KINDS, default="imagenet",
                     help="input kind (default: imagenet = ILSVRC-2012 layout train/<wnid>/, val/)")
    src.add_argument("--root", help="dataset folder, HF dataset folder/id, manifest .jsonl, or tar folder/pattern "
                                    "(default: the embedded sample)")
    src.add_argument("--classes", help="class list: bundled name (imagenet1k, flowers102, stanford_cars, caltech101, "
                                       "cub200, food101, objectnet) or a .json/.txt file; imagenet defaults to imagenet1k")
    src.add_argument("--class-map", help="imagefolder: JSON file mapping folder name → class id or name")
    src.add_argument("--val-labels", default=None,
                     help="imagenet flat val labels: auto (default), devkit, loc_csv, package, or a file path")
    src.add_argument("--image-column", help="hf: image column (default image)")
    src.add_argument("--label-column", help="hf: label column (default label)")
    src.add_argument("--label-field", help="webdataset: cls (default), txt, or json:<field>")
    src.add_argument("--split-name", help="imagefolder/manifest/webdataset: split name for unsplit data (default train)")
    src.add_argument("--image-root", help="manifest: folder image paths are relative to (default: the manifest's)")

    out = p.add_argument_group("output")
    out.add_argument("--out", default="out/imagenet_qa", help="output folder (default out/imagenet_qa)")
    out.add_argument("--outputs", default=DEFAULT_OUTPUTS,
                     help=f"comma-separated outputs, or 'all' (default {DEFAULT_OUTPUTS})")
    out.add_argument("--splits", help="comma-separated splits to build, by source or output name "
                                      "(default: all the source has)")
    out.add_argument("--split-names", default="val=validation",
                     help="rename source splits in the outputs: SRC=OUT[,SRC=OUT] (default val=validation, "
                          "the Hub's name), or keep")
    out.add_argument("--limit", type=int, help="at most N samples per split (a seeded subset spread over classes)")
    out.add_argument("--seed", type=int, default=0, help="seed for templates, distractors, letters, mixing (default 0)")
    out.add_argument("--overwrite", action="store_true",
                     help="empty --out first instead of resuming (only a folder this tool made)")
    out.add_argument("--image-prefix", default="", help="prefix for image paths in JSON outputs (e.g. imagenet/)")
    out.add_argument("--mix-with", help="an existing LLaVA instruction JSON (e.g. llava_v1_5_mix665k.json) to mix "
                                        "with the llava train output → llava/train_mixed.json (seeded shuffle)")
    out.add_argument("--wds-max-bytes", type=int, default=1_000_000_000, help="WebDataset tar size cap in bytes")
    out.add_argument("--wds-max-count", type=int, default=100_000, help="WebDataset samples per tar cap")
    out.add_argument("--wds-caption", default=DEFAULT_CAPTION, metavar="TEMPLATE|none",
                     help="WebDataset <key>.txt caption from {name} / {class_id}, or none for no caption member "
                          f"(default {DEFAULT_CAPTION!r}, CLIP style)")
    out.add_argument("--wds-image-format", choices=IMAGE_FORMATS, default="jpg",
                     help="jpg: every WebDataset image a .jpg (other formats re-encoded once); keep: as found")

    task = p.add_argument_group("questions")
    task.add_argument("--mcq-choices", type=int, default=4,
                      help="options per multiple-choice item, 2..classes; lettered A-Z up to 26, a name list beyond")
    task.add_argument("--distractors", choices=("random", "hard"), default="random",
                      help="random classes (the paper) or hard = nearest classes in the WordNet hierarchy")
    task.add_argument("--cot", action="store_true", help="chain-of-thought prompt variants for eval questions")
    task.add_argument("--paraphrase-eval", action="store_true",
                      help="eval questions use seeded paraphrases (default: the canonical first template)")
    task.add_argument("--prompts", help="JSON file of prompt templates replacing/extending the bundled registry")

    run = p.add_argument_group("run")
    run.add_argument("--num-workers", type=int, default=1, help="worker processes (default 1)")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local processes, or Ray tasks (uses RAY_ADDRESS or starts a local Ray)")
    run.add_argument("--ray-address", help="address of a running Ray cluster")
    run.add_argument("--ray-timeout", type=float, default=DEFAULT_RAY_TIMEOUT,
                     help=f"seconds to wait for --ray-address to answer (default {DEFAULT_RAY_TIMEOUT:g})")
    run.add_argument("--shard-size", type=int, default=1000, help="samples per shard (the unit of resume)")
    run.add_argument("--verify", choices=("fast", "full"), default="fast",
                     help="fast: header + end marker (full decode only if missing); full: decode every image")
    run.add_argument("--nonrgb", choices=("convert", "skip"), default="convert",
                     help="CMYK/palette/LA/16-bit images: convert to RGB JPEG in embedded outputs, or skip")
    run.add_argument("--max-pixels", type=int, default=89_478_485, help="skip images larger than this (bombs)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def settings_from_args(args: argparse.Namespace) -> BuildSettings:
    """The :class:`BuildSettings` that parsed options ask for."""
    outputs = list(output_registry()) if args.outputs == "all" else [o.strip() for o in args.outputs.split(",") if o.strip()]
    config = BuildConfig(
        outputs=outputs, seed=args.seed, limit=args.limit, shard_size=args.shard_size,
        splits=[s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else None,
        verify=args.verify, nonrgb=args.nonrgb, max_pixels=args.max_pixels, mcq_choices=args.mcq_choices,
        distractors=args.distractors, cot=args.cot, paraphrase_eval=args.paraphrase_eval, prompts=args.prompts, image_prefix=args.image_prefix,
        wds_max_bytes=args.wds_max_bytes, wds_max_count=args.wds_max_count, mix_with=args.mix_with,
        split_names=parse_split_names(args.split_names),
        wds_caption=None if args.wds_caption.strip().lower() == "none" else args.wds_caption,
        wds_image_format=args.wds_image_format)
    source = SourceSettings(kind=args.source, root=args.root, classes=args.classes, class_map=args.class_map,
                            val_labels=args.val_labels, image_column=args.image_column,
                            label_column=args.label_column, label_field=args.label_field,
                            split_name=args.split_name, image_root=args.image_root)
    run = RunSettings(executor=args.executor, num_workers=args.num_workers, ray_address=args.ray_address,
                      ray_timeout=args.ray_timeout, show_progress=not args.quiet)
    return BuildSettings(out=Path(args.out), source=source, config=config, run=run, overwrite=args.overwrite)
