"""Image files for sources that are not file-backed: ``out_dir/images/<split>/<key>.<ext>``."""

from __future__ import annotations

from pathlib import Path

from builders.records import Record
from builders.writers.base import ShardWriter, Writer
from vlm_classdata.atomic import atomic_path, commit, discard, naming


class _ImageShardWriter(ShardWriter):
    """Writes each image atomically as soon as it is added; an identical existing file is left untouched."""

    def __init__(self, writer: ImageFilesWriter, split: str) -> None:
        self.writer = writer
        self.split = split
        self.paths: list[Path] = []
        self._tmp: Path | None = None

    def add(self, record: Record, row: dict) -> None:
        """Write the record's image bytes (skipped when the same bytes are already there)."""
        final = self.writer.image_path(self.split, record)
        self.paths.append(final)
        data = record.image_bytes
        try:
            if final.stat().st_size == len(data) and final.read_bytes() == data:
                return
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = atomic_path(final)
        with naming(final):
            self._tmp.write_bytes(data)
        commit(self._tmp, final)
        self._tmp = None

    def close(self) -> list[Path]:
        """Every image file of this shard (each was published in :meth:`add`)."""
        return list(self.paths)

    def abort(self) -> None:
        """Drop a half-written image."""
        if self._tmp is not None:
            discard(self._tmp)
            self._tmp = None


class ImageFilesWriter(Writer):
    """Writes every image to ``out_dir/images/<split>/<key>.<ext>`` (bytes as they are, no re-encoding)."""

    name = "image_files"
    option_names: tuple[str, ...] = ()

    def image_path(self, split: str, record: Record) -> Path:
        """Where a record's image goes."""
        key, ext = record.key, record.image_ext.lstrip(".")
        if not key or "/" in key or "\\" in key or key.startswith(".") or not ext or "/" in ext:
            raise ValueError(f"image_files: key {key!r} / extension {ext!r} cannot name a file")
        return self.out_dir / "images" / split / f"{key}.{ext}"

    def shard_writer(self, split: str, shard: int, num_shards: int) -> ShardWriter:
        """A writer for one shard's images."""
        return _ImageShardWriter(self, split)
