"""Writers serialise rows shard by shard, then finalise (merge parts, write metadata).

Contract that makes builds resumable and byte-identical whatever the worker count:
- a :class:`ShardWriter` writes only files derived from (split, shard, num_shards), via a temporary name
  and an atomic ``os.replace`` in :meth:`ShardWriter.close`;
- :meth:`Writer.finalize` runs once after every shard is done, is idempotent, and also writes atomically;
- nothing depends on time, hostname, pid or worker count (tar headers use mtime 0, uid/gid 0).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from builders.records import Record
from vlm_classdata.atomic import commit, discard, naming


class ShardWriter(ABC):
    """Writes one shard of one split."""

    @abstractmethod
    def add(self, record: Record, row: dict) -> None:
        """Append one sample. ``row`` is the layout's dict; ``record`` carries image bytes and ids."""

    @abstractmethod
    def close(self) -> list[Path]:
        """Finish and atomically publish this shard's files; return them."""

    def abort(self) -> None:  # noqa: B027 - optional hook
        """Drop temporary files after an error."""


class Writer(ABC):
    """A factory of shard writers for one output folder, plus the finalise step."""

    name: str = "writer"
    #: True when rows reference image files by path (the pipeline then needs file-backed images)
    references_paths: bool = False

    def __init__(self, out_dir: Path, options: dict | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.options = dict(options or {})

    @abstractmethod
    def shard_writer(self, split: str, shard: int, num_shards: int) -> ShardWriter:
        """A writer for shard ``shard`` of ``num_shards`` in ``split``."""

    def finalize(self, shards: dict[str, int], counts: dict[str, int]) -> list[Path]:
        """After all shards: merge parts / write metadata. ``shards``/``counts`` are per split."""
        return []


def close_and_discard(handle: Any, tmp: Path | None) -> None:
    """What a shard writer's ``abort`` does: close ``handle`` (an open file or writer; None: nothing open), then
    remove the temporary file ``tmp`` — also when closing fails (e.g. on a full disk)."""
    try:
        if handle is not None:
            handle.close()
    finally:
        if tmp is not None:
            discard(tmp)


def close_and_publish(handle: Any, tmp: Path, final: Path) -> list[Path]:
    """What a shard writer's ``close`` does for its one file: close ``handle`` (a close error names ``final``),
    then publish ``tmp`` atomically as ``final``; returns ``[final]``."""
    with naming(final):
        handle.close()
    commit(tmp, final)
    return [final]
