"""WebDataset tar shards with deterministic bytes, plus per split a wids shard index and open_clip's sizes.json.

Files: ``out_dir/<split>-<shard:05d>-<part:03d>.tar``; a shard rolls over to the next part when the next
sample would push the part past ``max_bytes`` (tar member bytes: headers + padded data) or ``max_count``
samples. Each sample is ``<key>.jpg`` (the image; see ``image_format``), ``<key>.json`` (the row, UTF-8,
sorted keys), ``<key>.cls`` (the label index) and ``<key>.txt`` (a caption from the ``caption`` template,
CLIP style; none when the template is None). Tar headers are fixed (GNU format, mtime 0, uid/gid 0, empty
user/group names, mode 0o444), so the same rows always give the same bytes.

``finalize`` writes, beside the tars:

- ``<split>.json``: a wids shard index (``__kind__`` ``wids-shard-index-v1``, ``wids_version`` 1, ``shardlist``
  of ``{url, nsamples, filesize}`` with urls relative to the index, which is how ``wids.ShardListDataset``
  resolves them), plus ``brace_urls`` (the split's tars as one brace pattern, relative to the same folder:
  what ``webdataset.WebDataset`` and open_clip's ``--train-data`` take; webdataset 1.0 refuses a ``.json``
  url), ``extensions`` (every member extension present) and ``image_key`` (the image extensions present,
  ``;``-joined, as ``to_tuple``/``rename`` select them: ``jpg`` unless ``image_format`` is ``keep``);
- ``sizes.json``: tar file name → samples for every split, read by open_clip's ``get_dataset_size`` so
  training needs no ``--train-num-samples``.

Members are written directly: a header block built from a template (only name, size and checksum change),
the data, NUL padding to 512 bytes; the end-of-archive blocks on close. The bytes are exactly those of
Python's ``tarfile`` in GNU format (which builds the header of a name longer than 100 bytes, or of a member
of 8 GiB or more); ``webdataset.TarWriter`` is not used: its default user/group names are "bigdata" and its
mtime defaults to the current time.
"""

from __future__ import annotations

import json
import re
import string
import tarfile
from pathlib import Path
from typing import BinaryIO

from builders.records import Record
from builders.writers.base import ShardWriter, Writer, close_and_discard
from vlm_classdata.atomic import atomic_path, commit, naming, write_text_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.images import to_rgb_jpeg

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 10240: the archive is padded to a multiple of this
TAR_FORMAT = tarfile.GNU_FORMAT
INDEX_DIR = ".webdataset"
_ENCODING, _ERRORS = "utf-8", "surrogateescape"  # what tarfile.open(..., encoding="utf-8") uses
_MAX_OCTAL_SIZE = 8 ** 11  # sizes from here on use GNU base-256 encoding (left to tarfile)
DEFAULT_CAPTION = "a photo of a {name}."  # CLIP's prompt style; open_clip reads the ``txt`` member as the caption
CAPTION_FIELDS = ("name", "class_id")
IMAGE_FORMATS = ("jpg", "keep")
JPEG_QUALITY = 95
SIZES_FILE = "sizes.json"  # open_clip's name (training.data.get_dataset_size)
_JPEG_SOI = b"\xff\xd8\xff"
_BRACE_UNSAFE = re.compile(r"[{},$\\]|::")  # what webdataset's url expansion would read as syntax


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


def caption_problem(template: object) -> str | None:
    """Why ``template`` cannot be a caption template (None when it can): a string naming at least one of
    the fields ``{name}`` (class display name) and ``{class_id}``, nothing else, without format specs."""
    if not isinstance(template, str) or not template.strip():
        return "it must be a non-empty text"
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"{exc} (write {{{{ and }}}} for literal braces)"
    for field_name, spec, conv in fields:
        if field_name not in CAPTION_FIELDS or spec or conv:
            return f"unknown field {{{field_name}}}; use {{name}} or {{class_id}}"
    if not fields:
        return "it names no field; use {name} (the class name) or {class_id}"
    return None


def caption_text(template: str, record: Record) -> str:
    """The caption of one sample."""
    return template.format(name=record.class_name, class_id=record.class_id)


def sample_image(record: Record, image_format: str = "jpg") -> tuple[str, bytes]:
    """(extension, bytes) of a sample's image member. ``jpg``: JPEG bytes as they are, anything else decoded
    and re-encoded once as RGB JPEG (so every sample of the dataset is ``.jpg``); ``keep``: the bytes and
    extension as found."""
    key = record.key
    if image_format == "keep":
        ext = record.image_ext.lstrip(".")
        if not ext or "." in ext or "/" in ext:
            raise ValueError(f"webdataset: image extension {record.image_ext!r} of {key!r} is not a plain extension")
        return ext, record.image_bytes
    if record.image_bytes.startswith(_JPEG_SOI):
        return "jpg", record.image_bytes
    try:
        return "jpg", to_rgb_jpeg(record.image_bytes, quality=JPEG_QUALITY)
    except (OSError, ValueError) as exc:
        raise ValueError(f"webdataset: the image of {key!r} could not be re-encoded as JPEG: {exc}") from exc


def sample_members(record: Record, row: dict, caption: str | None = DEFAULT_CAPTION,
                   image_format: str = "jpg") -> list[tuple[str, bytes]]:
    """The tar members of one sample: image, JSON row, class index, and the caption unless ``caption`` is None."""
    key = record.key
    if "." in key or "/" in key or not key:
        raise ValueError(f"webdataset: sample key {key!r} must be non-empty without dots or slashes")
    ext, image = sample_image(record, image_format)
    text = json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    members = [(f"{key}.{ext}", image), (f"{key}.json", text.encode("utf-8")),
               (f"{key}.cls", str(int(record.label)).encode("ascii"))]
    if caption is not None:
        members.append((f"{key}.txt", caption_text(caption, record).encode("utf-8")))
    return members


def brace_urls(split: str, parts: list[tuple[int, int]]) -> str | None:
    """The tar files ``<split>-<shard>-<part>.tar`` of ``parts`` ((shard, parts in it), by shard) as one
    brace pattern that ``braceexpand`` turns back into them in order, e.g. ``train-{00000..00041}-000.tar``;
    runs of consecutive shards with equal part counts share one range. None when the split name holds
    characters the pattern syntax would misread."""
    if not parts or _BRACE_UNSAFE.search(split):
        return None
    runs: list[list[int]] = []  # [first shard, last shard, parts]
    for shard, count in parts:
        if runs and runs[-1][1] == shard - 1 and runs[-1][2] == count:
            runs[-1][1] = shard
        else:
            runs.append([shard, shard, count])

    def span(first: int, last: int, width: int) -> str:
        return f"{first:0{width}d}" if first == last else f"{{{first:0{width}d}..{last:0{width}d}}}"

    pieces = [f"{span(first, last, 5)}-{span(0, count - 1, 3)}" for first, last, count in runs]
    body = pieces[0] if len(pieces) == 1 else "{" + ",".join(pieces) + "}"
    return f"{split}-{body}.tar"


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
        self._exts: set[str] = set()  # member extensions of the open part
        self._part_exts: list[list[str]] = []

    def _open(self) -> None:
        final = self.writer.part_path(self.split, self.shard, self.part)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = atomic_path(final)
        self._fh = open(self._tmp, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in _publish/abort
        self._bytes = self._count = 0
        self._exts = set()

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
        self._part_exts.append(sorted(self._exts))
        self._fh = self._tmp = None
        self.part += 1

    def add(self, record: Record, row: dict) -> None:
        """Append one sample, rolling over to a new part first when it would not fit."""
        named = sample_members(record, row, self.writer.caption, self.writer.image_format)
        members = [(tar_header(name, len(data)), data) for name, data in named]
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
        self._exts.update(name.split(".", 1)[1] for name, _ in named)

    def close(self) -> list[Path]:
        """Publish the last part, remove parts of this shard left by an earlier, longer run, and record the
        parts' sample counts, sizes and member extensions in a small index file (so finalize need not re-read
        the tars)."""
        if self._fh is not None:
            self._publish()
        self.writer.remove_stale_parts(self.split, self.shard, keep=self.part)
        index = self.writer.index_path(self.split, self.shard)
        index.parent.mkdir(parents=True, exist_ok=True)
        entries = [{"url": p.name, "samples": n, "bytes": p.stat().st_size, "extensions": exts}
                   for p, n, exts in zip(self.published, self._counts, self._part_exts, strict=True)]
        write_text_atomic(index, json.dumps(entries, sort_keys=True) + "\n")
        return list(self.published)

    def abort(self) -> None:
        """Drop the unfinished part (also when closing it fails, e.g. on a full disk)."""
        fh, self._fh = self._fh, None
        tmp, self._tmp = self._tmp, None
        close_and_discard(fh, tmp)


class WebDatasetWriter(Writer):
    """WebDataset tar shards. Options: ``max_bytes`` (default 1e9), ``max_count`` (default 100000), ``caption``
    (the ``txt`` member's template, default :data:`DEFAULT_CAPTION`; None: no ``txt`` member) and
    ``image_format`` (``jpg``, the default: every image a JPEG; ``keep``: the bytes as found)."""

    name = "webdataset"
    option_names = ("max_bytes", "max_count", "caption", "image_format")

    def __init__(self, out_dir: Path, options: dict | None = None) -> None:
        super().__init__(out_dir, options)
        self.max_bytes = self._positive_int("max_bytes", 1_000_000_000)
        self.max_count = self._positive_int("max_count", 100_000)
        self.caption: str | None = self.options.get("caption", DEFAULT_CAPTION)
        if self.caption is not None:
            problem = caption_problem(self.caption)
            if problem:
                raise UserError(f"webdataset: caption template {self.caption!r}: {problem}")
        self.image_format: str = self.options.get("image_format", "jpg")
        if self.image_format not in IMAGE_FORMATS:
            raise UserError(f"webdataset: image_format must be one of {', '.join(IMAGE_FORMATS)}, "
                            f"got {self.image_format!r}")

    def _positive_int(self, option: str, default: int) -> int:
        value = self.options.get(option, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"webdataset: option {option!r} must be a positive integer, got {value!r}")
        return value

    def part_path(self, split: str, shard: int, part: int) -> Path:
        """The tar file of one part of one shard."""
        return self.out_dir / f"{split}-{shard:05d}-{part:03d}.tar"

    def index_path(self, split: str, shard: int) -> Path:
        """The index of one shard's parts (sample counts, sizes, extensions), read by :meth:`finalize`."""
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
        if f"{split}.json" == SIZES_FILE:
            raise UserError(f"webdataset: a split named {split!r} would overwrite {SIZES_FILE}; rename the split")
        return _TarShardWriter(self, split, shard)

    def _split_entries(self, split: str, num_shards: int) -> list[dict]:
        """The tar files of one split in order, each ``{url, samples, bytes, extensions}`` (from the shards'
        index files, or the tar headers when an index is missing or out of date); removes tar files of
        shards beyond ``num_shards`` and temporary files left by crashes."""
        indexed: dict[str, dict] = {}
        for shard in range(num_shards):
            index = self.index_path(split, shard)
            if index.exists():
                indexed.update((e["url"], e) for e in json.loads(index.read_text(encoding="utf-8")))
        entries = []
        for path, shard, part, temp in self._split_files(split):
            if temp or shard >= num_shards:
                path.unlink(missing_ok=True)
                continue
            entry = indexed.get(path.name)
            size = path.stat().st_size
            if entry is None or entry.get("bytes") != size or "extensions" not in entry:
                samples, extensions = scan_tar(path)  # no (current) index: read the headers
                entry = {"url": path.name, "samples": samples, "bytes": size, "extensions": extensions}
            entries.append({**entry, "shard": shard, "part": part})
        return entries

    def finalize(self, shards: dict[str, int], counts: dict[str, int]) -> list[Path]:
        """Write per split the wids index ``<split>.json``, and ``sizes.json`` (see the module docstring).

        Raises ``RuntimeError`` when a split's sample total differs from ``counts``.
        """
        written: list[Path] = []
        sizes: dict[str, int] = {}
        for split in sorted(set(shards) | set(counts)):
            entries = self._split_entries(split, shards.get(split, 0))
            total = sum(e["samples"] for e in entries)
            if split in counts and total != counts[split]:
                raise RuntimeError(f"webdataset: split {split!r} has {total} samples in {len(entries)} tar "
                                   f"file(s), expected {counts[split]}")
            sizes.update((e["url"], e["samples"]) for e in entries)
            final = self.out_dir / f"{split}.json"
            if not entries:  # wids refuses an empty shard list
                final.unlink(missing_ok=True)
                continue
            extensions = sorted({x for e in entries for x in e["extensions"]})
            per_shard: dict[int, int] = {}
            for e in entries:
                per_shard[e["shard"]] = per_shard.get(e["shard"], 0) + 1
            index = {
                "__kind__": "wids-shard-index-v1", "wids_version": 1,
                "shardlist": [{"url": e["url"], "nsamples": e["samples"], "filesize": e["bytes"]} for e in entries],
                "brace_urls": brace_urls(split, sorted(per_shard.items())),
                "extensions": extensions,
                "image_key": ";".join(x for x in extensions if x not in ("json", "cls", "txt")),
            }
            write_text_atomic(final, json.dumps(index, indent=1) + "\n")
            written.append(final)
        final = self.out_dir / SIZES_FILE
        write_text_atomic(final, json.dumps(sizes, indent=1, sort_keys=True) + "\n")
        (self.out_dir / "shards.json").unlink(missing_ok=True)  # this writer's listing before wids indexes
        return [*written, final]


def scan_tar(path: Path) -> tuple[int, list[str]]:
    """Number of samples (distinct keys) in a tar file and the member extensions in it, reading headers only."""
    keys: set[str] = set()
    extensions: set[str] = set()
    with tarfile.open(path, "r") as tar:
        for info in tar:
            if info.isfile():
                key, _, ext = info.name.partition(".")
                keys.add(key)
                extensions.add(ext)
    return len(keys), sorted(extensions)
