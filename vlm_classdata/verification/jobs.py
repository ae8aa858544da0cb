"""What one verification run is: a pass × model job (:class:`PassJob`) and how to run it (:class:`RunOptions`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vlm_classdata.verification.passes import Pass, PassSettings, make_pass
from vlm_classdata.vocabulary import ClassVocabulary

_ALIAS_BAD = re.compile(r"[^A-Za-z0-9_\-]+")


def model_alias(model: str) -> str:
    """A file-name-safe short name for a model: a folder's name, or ``org__name`` for a hub id."""
    text = model.rstrip("/")
    path = Path(text).expanduser()
    if path.exists() or text.startswith(("/", ".", "~")):
        text = path.name
    return _ALIAS_BAD.sub("_", text.replace("/", "__")).strip("_") or "model"


@dataclass
class PassJob:
    """Everything one pass × model run needs (picklable: it travels to Ray actors)."""

    pass_name: str
    model: str  # local folder or hub id
    alias: str
    vocab: dict | None = None  # ClassVocabulary.to_json()
    settings: PassSettings = field(default_factory=PassSettings)
    device: str | None = None
    dtype: str | None = None

    def make_pass(self) -> Pass:
        """The pass object (needs no model)."""
        vocab = ClassVocabulary.from_json(self.vocab) if self.vocab is not None else None
        return make_pass(self.pass_name, self.settings, vocab)


@dataclass
class RunOptions:
    """How to run: chunking, executor, sharding, progress."""

    chunk_size: int = 64
    executor: str = "local"
    num_workers: int = 1
    gpus_per_worker: float = 0.0
    ray_address: str | None = None
    shard: tuple[int, int] | None = None
    progress: bool = True
