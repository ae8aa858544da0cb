"""WebDataset tar shards with deterministic bytes, plus ``shards.json`` listing them.

Files: ``out_dir/<split>-<shard:05d>-<part:03d>.tar``; a shard rolls over to the next part when the next
sample would push the part past ``max_bytes`` (tar member bytes: headers + padded data) or ``max_count``
samples. Each sample is ``<key>.<ext>`` (the image bytes as they are), ``<key>.json`` (the row, UTF-8,
sorted keys) and ``<key>.cls`` (the label index). Tar headers are fixed (GNU format, mtime 0, uid/gid 0,
empty user/group names, mode 0o444), so the same rows always give the same bytes.

Members are written directly: a header block built from a template (only name, size and checksum change),
the data, NUL padding to 512 bytes; the end-of-archive blocks on close. The bytes are exactly those of
Python's ``tarfile`` in GNU format (which builds the header of a name longer than 100 bytes, or of a member
of 8 GiB or more); ``webdataset.TarWriter`` is not used: its default user/group names are "bigdata" and its
mtime defaults to the current time.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import BinaryIO

from builders.records import Record
from builders.writers.base import ShardWriter, Writer, close_and_discard
from vlm_classdata.atomic import atomic_path, commit, naming, write_text_atomic
from vlm_classdata.errors import UserError

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 10240: the archive is padded to a multiple of this
TAR_FORMAT = tarfile.GNU_FORMAT
INDEX_DIR = ".webdataset"
_ENCODING, _ERRORS = "utf-8", "surrogateescape"  # what tarfile.open(..., encoding="utf-8") uses
_MAX_OCTAL_SIZE = 8 ** 11  # sizes from here on use GNU base-256 encoding (left to tarfile)


def tar_member(name: str, size: int) -> tarfile.TarInfo:
    """The header of a regular member with the fixed fields every builders tar uses (time 0, owner 0, mode 444)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _header_template() -> bytes:
    """The header block of an empty-named, empty member, checksum field blank (8 spaces)."""
    buf = bytearray(tar_member("", 0).tobuf(TAR_FORMAT, _ENCODING, _ERRORS))
    buf[148:156] = b" " * 8
    return bytes(buf)


_TEMPLATE = _header_template()
_TEMPLATE_SUM = sum(_TEMPLATE) - sum(_TEMPLATE[124:136])  # checksum of the template less its size field


def tar_header(name: str, size: int) -> bytes:
    """The header block(s) of one regular-file member, byte for byte what ``tarfile`` writes in GNU format
    with the fixed fields of :func:`tar_member`. Names up to 100 bytes patch a template (name, octal size,
    checksum); longer names and huge sizes are built by ``tarfile`` (GNU long-name blocks, base-256 size)."""
    raw = name.encode(_ENCODING, _ERRORS)
    if len(raw) > tarfile.LENGTH_NAME or not 0 <= size < _MAX_OCTAL_SIZE:
        return tar_member(name, size).tobuf(TAR_FORMAT, _ENCODING, _ERRORS)
    size_field = b"%011o\0" % size
    checksum = _TEMPLATE_SUM + sum(raw) + sum(size_field)
    return b"".join((raw, _TEMPLATE[len(raw):124], size_field, _TEMPLATE[136:148], b"%06o\0" % checksum,
                     _TEMPLATE[155:]))


def sample_members(record: Record, row: dict) -> list[tuple[str, bytes]]:
    """The tar members of one sample: image, JSON row, class index."""
    key = record.key
    if "." in key or "/" in key or not key:
        raise ValueError(f"webdataset: sample key {key!r} must be non-empty without dots or slashes")
    ext = record.image_ext.lstrip(".")
    if not ext or "." in ext or "/" in ext:
        raise ValueError(f"webdataset: image extension {record.image_ext!r} of {key!r} is not a plain extension")
    text = json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return [(f"{key}.{ext}", record.image_bytes), (f"{key}.json", text.encode("utf-8")),
            (f"{key}.cls", str(int(record.label)).encode("ascii"))]


class _TarShardWriter(ShardWriter):
    """Writes the parts of one shard, committing each part when it is full and the last one in close()."""

    def __init__(self, writer: WebDatasetWriter, split: str, shard: int) -> None:
        self.writer = writer
        self.split = split
        self.shard = shard
        self.part = 0
        self.published: list[Path] = []
        self._fh: BinaryIO | None = None
        self._tmp: Path | None = None
        self._bytes = 0  # member bytes written to the open part (its offset)
        self._count = 0
        self._counts: list[int] = []

    def _open(self) -> None:
        final = self.writer.part_path(self.split, self.shard, self.part)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = atomic_path(final)
        self._fh = open(self._tmp, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in _publish/abort
        self._bytes = self._count = 0

    def _publish(self) -> None:
        assert self._fh is not None and self._tmp is not None
        end = self._bytes + 2 * BLOCK  # two zero blocks end the archive, then padding to a full record
        final = self.writer.part_path(self.split, self.shard, self.part)
        with naming(final):
            self._fh.write(bytes(2 * BLOCK + -end % RECORD))
            self._fh.close()
        commit(self._tmp, final)
        self.published.append(final)
        self._counts.append(self._count)
        self._fh = self._tmp = None
        self.part += 1

    def add(self, record: Record, row: dict) -> None:
        """Append one sample, rolling over to a new part first when it would not fit."""
        members = [(tar_header(name, len(data)), data) for name, data in sample_members(record, row)]
        size = sum(len(header) + len(data) + -len(data) % BLOCK for header, data in members)
        if self._fh is not None and self._count and (
                self._count + 1 > self.writer.max_count or self._bytes + size > self.writer.max_bytes):
            self._publish()
        if self._fh is None:
            self._open()
        assert self._fh is not None
        write = self._fh.write
        with naming(self.writer.part_path(self.split, self.shard, self.part)):
            for header, data in members:
                write(header)
                write(data)
                pad = -len(data) % BLOCK
                if pad:
                    write(bytes(pad))
        self._bytes += size
        self._count += 1

    def close(self) -> list[Path]:
        """Publish the last part, remove parts of this shard left by an earlier, longer run, and record the
        parts' sample counts and sizes in a small index file (so finalize need not re-read the tars)."""
        if self._fh is not None:
            self._publish()
        self.writer.remove_stale_parts(self.split, self.shard, keep=self.part)
        index = self.writer.index_path(self.split, self.shard)
        index.parent.mkdir(parents=True, exist_ok=True)
        entries = [{"url": p.name, "samples": n, "bytes": p.stat().st_size}
                   for p, n in zip(self.published, self._counts, strict=True)]
        write_text_atomic(index, json.dumps(entries, sort_keys=True) + "\n")
        return list(self.published)

    def abort(self) -> None:
        """Drop the unfinished part (also when closing it fails, e.g. on a full disk)."""
        fh, self._fh = self._fh, None
        tmp, self._tmp = self._tmp, None
        close_and_discard(fh, tmp)


class WebDatasetWriter(Writer):
    """WebDataset tar shards. Options: ``max_bytes`` (default 1e9), ``max_count`` (default 100000)."""

    name = "webdataset"
    option_names = ("max_bytes", "max_count")

    def __init__(self, out_dir: Path, options: dict | None = None) -> None:
        super().__init__(out_dir, options)
        self.max_bytes = self._positive_int("max_bytes", 1_000_000_000)
        self.max_count = self._positive_int("max_count", 100_000)

    def _positive_int(self, option: str, default: int) -> int:
        value = self.options.get(option, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"webdataset: option {option!r} must be a positive integer, got {value!r}")
        return value

    def part_path(self, split: str, shard: int, part: int) -> Path:
        """The tar file of one part of one shard."""
        return self.out_dir / f"{split}-{shard:05d}-{part:03d}.tar"

    def index_path(self, split: str, shard: int) -> Path:
        """The index of one shard's parts (sample counts and sizes), read by :meth:`finalize`."""
        return self.out_dir / INDEX_DIR / f"{split}-{shard:05d}.json"

    def _split_files(self, split: str) -> list[tuple[Path, int, int, bool]]:
        """(path, shard, part, is_temp) of every tar file of a split, sorted by shard and part."""
        pattern = re.compile(rf"(\.)?{re.escape(split)}-(\d{{5}})-(\d{{3}})\.tar(\.tmp\d+)?")
        found = []
        if self.out_dir.is_dir():
            for path in self.out_dir.iterdir():
                m = pattern.fullmatch(path.name)
                if m:
                    found.append((path, int(m.group(2)), int(m.group(3)), bool(m.group(1) or m.group(4))))
        return sorted(found, key=lambda f: (f[1], f[2], f[0].name))

    def remove_stale_parts(self, split: str, shard: int, keep: int) -> None:
        """Remove this shard's parts numbered ``keep`` and above (left by an earlier run)."""
        for path, s, part, temp in self._split_files(split):
            if s == shard and part >= keep and not temp:
                path.unlink(missing_ok=True)

    def shard_writer(self, split: str, shard: int, num_shards: int) -> ShardWriter:
        """A writer for the parts of one shard."""
        return _TarShardWriter(self, split, shard)

    def finalize(self, shards: dict[str, int], counts: dict[str, int]) -> list[Path]:
        """Write ``shards.json``: per split, its tar files in order with sample counts and byte sizes.

        Counts come from the shards' index files (``.webdataset/<split>-<shard>.json``), or from the tar
        headers when an index is missing or out of date. Removes tar files of shards beyond this build's
        shard count and temporary files left by crashes.
        Raises ``RuntimeError`` when a split's sample total differs from ``counts``.
        """
        listing: dict[str, list[dict]] = {}
        for split in sorted(set(shards) | set(counts)):
            indexed: dict[str, dict] = {}
            for shard in range(shards.get(split, 0)):
                index = self.index_path(split, shard)
                if index.exists():
                    indexed.update((e["url"], e) for e in json.loads(index.read_text(encoding="utf-8")))
            entries = []
            for path, shard, _part, temp in self._split_files(split):
                if temp or shard >= shards.get(split, 0):
                    path.unlink(missing_ok=True)
                    continue
                entry = indexed.get(path.name)
                if entry is None or entry["bytes"] != path.stat().st_size:  # no index: read the headers
                    entry = {"url": path.name, "samples": count_samples(path), "bytes": path.stat().st_size}
                entries.append(entry)
            total = sum(e["samples"] for e in entries)
            if split in counts and total != counts[split]:
                raise RuntimeError(f"webdataset: split {split!r} has {total} samples in {len(entries)} tar "
                                   f"file(s), expected {counts[split]}")
            listing[split] = entries
        final = self.out_dir / "shards.json"
        write_text_atomic(final, json.dumps(listing, indent=1, sort_keys=True) + "\n")
        return [final]


def count_samples(path: Path) -> int:
    """Number of samples (distinct keys) in a tar file, reading headers only."""
    keys: set[str] = set()
    with tarfile.open(path, "r") as tar:
        for info in tar:
            if info.isfile():
                keys.add(info.name.split(".", 1)[0])
    return len(keys)
