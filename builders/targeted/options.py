"""Typed options of the targeted flow: download (img2dataset), build, and the whole loop (mining takes
:class:`corpora_stats.mine.MineOptions`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from vlm_classdata.errors import UserError
from vlm_classdata.extras import require

DEFAULT_OUTPUTS = "llava,hf,eval_open,mcq"
RESIZE_MODES = ("border", "keep_ratio", "keep_ratio_largest", "center_crop", "no")


@dataclass
class DownloadOptions:
    """img2dataset's settings."""

    image_size: int = 256
    """Resize target in pixels (shapes the shards: a download with another is refused on the same OUT)."""
    resize_mode: str = "border"
    """One of :data:`RESIZE_MODES` (shapes the shards)."""
    shard_size: int = 10000
    """URLs per shard, the unit of resume (shapes the shards)."""
    processes: int = 1
    threads: int = 16
    timeout: float = 10  # seconds per request
    retries: int = 0

    def validate(self) -> None:
        """Raise :class:`UserError` for impossible settings, before any process starts."""
        if self.image_size < 1:
            raise UserError("--image-size must be at least 1")
        if self.resize_mode not in RESIZE_MODES:
            raise UserError(f"--resize-mode must be one of {', '.join(RESIZE_MODES)}, not {self.resize_mode!r}")
        if self.processes < 1 or self.threads < 1:
            raise UserError("--processes and --threads must be at least 1")
        if not self.timeout > 0:
            raise UserError("--timeout must be positive")
        if self.retries < 0:
            raise UserError("--retries must be 0 or more")
        if self.shard_size < 1:
            raise UserError("--shard-size must be at least 1")
        require("targeted", "the targeted image download")


@dataclass
class BuildOptions:
    """The build on the shards: outputs and seed; ``extra_args``: further ``python -m builders.imagenet_qa``
    options (not those targeted sets itself); ``rebuild``: redo ``OUT/build`` from scratch."""

    outputs: str = DEFAULT_OUTPUTS
    seed: int = 0
    extra_args: Sequence[str] = ()
    rebuild: bool = False


@dataclass
class LoopOptions:
    """The whole loop on one MINED folder and one OUT."""

    mined: str | os.PathLike
    out: str | os.PathLike
    download: DownloadOptions = field(default_factory=DownloadOptions)
    build: BuildOptions = field(default_factory=BuildOptions)
    progress: bool = True
