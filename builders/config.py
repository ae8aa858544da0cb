"""What a build is asked to make: the named outputs (builders/outputs.json) and :class:`BuildConfig`."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from builders.writers.webdataset import DEFAULT_CAPTION, IMAGE_FORMATS, caption_problem
from vlm_classdata.errors import UserError
from vlm_classdata.images import DEFAULT_MAX_PIXELS
from vlm_classdata.names import check_name

BUILD_PACKAGES = ("datasets", "pyarrow", "pillow", "webdataset", "nltk", "numpy")  # they shape the output bytes
_HUB_SPLIT = re.compile(r"\w+(\.\w+)*")  # what datasets accepts as a split name
DEFAULT_SPLIT_NAMES = {"val": "validation"}  # source split → output split (the Hub's conventional names)


def output_registry() -> dict[str, dict]:
    """Named outputs (task + layout + writer + folder), from builders/outputs.json."""
    return json.loads(resources.files("builders").joinpath("outputs.json").read_text())


@dataclass
class BuildConfig:
    """Everything that determines a build's bytes (executor and worker count deliberately excluded)."""

    outputs: list[str] = field(default_factory=lambda: ["llava", "hf", "eval_open", "mcq"])
    seed: int = 0
    splits: list[str] | None = None
    limit: int | None = None
    shard_size: int = 1000
    verify: str = "fast"
    nonrgb: str = "convert"
    max_pixels: int = DEFAULT_MAX_PIXELS
    mcq_choices: int = 4
    distractors: str = "random"
    cot: bool = False
    paraphrase_eval: bool = False
    prompts: str | None = None
    image_prefix: str = ""
    wds_max_bytes: int = 1_000_000_000
    wds_max_count: int = 100_000
    wds_caption: str | None = DEFAULT_CAPTION  # the ``txt`` member's template; None: no caption member
    wds_image_format: str = "jpg"  # jpg: every image re-encoded to JPEG unless it is one; keep: as found
    mix_with: str | None = None
    split_names: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SPLIT_NAMES))

    def output_split(self, split: str) -> str:
        """The name a source split is written under (:attr:`split_names`; unnamed splits keep theirs)."""
        return self.split_names.get(split, split)

    def validate(self) -> None:
        """Raise UserError for impossible settings (those that can only give an empty or broken result)."""
        known = output_registry()
        bad = [o for o in self.outputs if o not in known]
        if bad:
            raise UserError(f"unknown output {bad[0]!r}; choose from {', '.join(known)}")
        if not self.outputs:
            raise UserError("no outputs selected")
        for option, value in (("--shard-size", self.shard_size), ("--limit", self.limit),
                              ("--max-pixels", self.max_pixels), ("--wds-max-bytes", self.wds_max_bytes),
                              ("--wds-max-count", self.wds_max_count)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserError(f"{option} must be a whole number of at least 1, got {value!r}")
        if isinstance(self.mcq_choices, bool) or not isinstance(self.mcq_choices, int) or self.mcq_choices < 2:
            raise UserError(f"--mcq-choices must be at least 2, got {self.mcq_choices!r}")
        if self.verify not in ("fast", "full"):
            raise UserError("--verify must be fast or full")
        if self.nonrgb not in ("convert", "skip"):
            raise UserError("--nonrgb must be convert or skip")
        if self.wds_caption is not None and (problem := caption_problem(self.wds_caption)):
            raise UserError(f"--wds-caption {self.wds_caption!r}: {problem}")
        if self.wds_image_format not in IMAGE_FORMATS:
            raise UserError(f"--wds-image-format must be {' or '.join(IMAGE_FORMATS)}, got {self.wds_image_format!r}")
        if self.distractors not in ("random", "hard"):
            raise UserError("--distractors must be random or hard")
        if self.splits is not None:
            if not self.splits:
                raise UserError("--splits names no split")
            for split in self.splits:
                check_name(split, "--splits:")
        check_split_names(self.split_names)
        if self.prompts is not None and not Path(self.prompts).is_file():
            raise UserError(f"--prompts {self.prompts}: no such file")
        if self.mix_with:
            if not Path(self.mix_with).is_file():
                raise UserError(f"--mix-with {self.mix_with}: no such file")
            if "llava" not in self.outputs:
                raise UserError("--mix-with mixes the llava output, which --outputs does not include")
            if not self.image_prefix:  # LLaVA's loader joins every row's image to one image folder
                raise UserError("--mix-with needs --image-prefix: this build's image paths are relative to its own "
                                "image root, the other set's to LLaVA's data folder; e.g. --image-prefix imagenet/ "
                                "with the images placed in <LLaVA data folder>/imagenet/ (--image-prefix ./ when both "
                                "sets already share one root)")

    def shard_settings(self) -> dict:
        """The settings that shape the shards: all but ``mix_with`` (it only shapes a finalised file)."""
        settings = asdict(self)
        del settings["mix_with"]
        return settings


def check_split_names(names: object) -> None:
    """UserError unless ``names`` maps source split names to distinct, safe output split names."""
    if not isinstance(names, dict):
        raise UserError(f"--split-names must map source splits to output names, got {names!r}")
    seen: dict[str, str] = {}
    for source, out in names.items():
        if not isinstance(source, str) or not isinstance(out, str):
            raise UserError(f"--split-names {source!r}={out!r}: split names are text")
        check_name(source, "--split-names:")
        check_name(out, "--split-names:")
        if not _HUB_SPLIT.fullmatch(out):
            raise UserError(f"--split-names: {out!r} is not a Hugging Face split name (letters, digits, _ and "
                            "inner dots only)")
        if out in seen:
            raise UserError(f"--split-names maps both {seen[out]!r} and {source!r} to {out!r}; "
                            "each output split needs its own name")
        seen[out] = source


def parse_split_names(text: str) -> dict[str, str]:
    """``--split-names``: ``keep`` (no renaming) or ``SRC=OUT[,SRC=OUT...]``; UserError for anything else."""
    text = text.strip()
    if text == "keep":
        return {}
    names: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        source, sep, out = (x.strip() for x in part.partition("="))
        if not sep or not source or not out:
            raise UserError(f"--split-names {text!r}: expected keep or SOURCE=OUTPUT[,SOURCE=OUTPUT], "
                            f"e.g. val=validation (bad part {part!r})")
        if source in names:
            raise UserError(f"--split-names {text!r}: split {source!r} is named twice")
        names[source] = out
    check_split_names(names)
    return names
