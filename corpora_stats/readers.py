"""Streaming corpus readers: files → batches of ``(first_doc_index, texts)`` in bounded memory.

Formats (:data:`FORMATS`):

- ``llava_pretrain`` / ``llava_instruct``: one big JSON array of ``{"conversations": [{"from", "value"}]}``
  objects (``blip_laion_cc_sbu_558k.json``, ``llava_v1_5_mix665k.json``), parsed element by element from
  fixed-size chunks with ``json.JSONDecoder.raw_decode``. Each conversation is one document: its turns
  (pretrain: the gpt turn(s); instruct: ``turns`` = all | human | gpt) with ``<image>`` removed, stripped
  and joined with ``"\\n"``. Objects without ``conversations`` fall back to a text field.
- ``jsonl``: one JSON object per line; the text field is auto-detected per line among :data:`TEXT_FIELDS`
  (or ``text_field``); a ``conversations`` list is read as LLaVA.
- ``parquet``: the text column only, with ``pyarrow`` ``iter_batches``, row group by row group.
- ``txt``: one document per line.
- ``hf``: a local Hugging Face dataset (``save_to_disk`` folder, a folder of data files, or an ``.arrow``).
- ``webdataset``: every ``.txt`` member of the tar shards is one document (other members are ignored).
- ``wordnet_glosses`` (path ``"wordnet:glosses"``): every WordNet 3.0 synset's definition and each of its
  example sentences, nouns, verbs, adjectives then adverbs, each in offset order.
- ``mixed``: a folder holding several of these (the default for such a folder unless it holds tar shards):
  every file is read by its own reader (each ``.json`` sniffed), in path order.

A folder corpus names every file it does not read, with the reason (another file type; another format than a
forced one; a WebDataset folder reads its tars only) in ``describe()["skipped_files"]``.

JSON, JSONL, txt and tar files may be gzip- or zstd-compressed (recognised by their magic bytes). They are
decompressed as a stream: everything that decompresses before damage is read (a truncated gzip member or zstd
frame is noticed at its end, a corrupt block where zlib/zstd report it; the unfinished last line is dropped).

Bad input never raises: it is counted in ``stats.skipped`` by reason and skipped —
``non_utf8`` (invalid UTF-8 in the document), ``too_long`` (more than ``max_doc_bytes``), ``empty``,
``malformed_json``, ``no_text`` (no text field / null), ``unrecoverable_json`` (after a malformed JSON
array element no later element could be found: the rest of that file is dropped), ``read_error`` (a file that
cannot be opened, a truncated or damaged compressed stream or tar archive, a parquet file whose footer or
row groups do not read: what was read before the damage, and a parquet file's other row groups, are kept).
Skipped documents take no index. ``unrecoverable_json`` and ``read_error`` also name the file and the reason
in ``stats.damaged`` / ``describe()["skipped_files"]``.

Memory: a reader holds at most about ``chunk_size + max_doc_bytes`` bytes of a text file (twice
``max_doc_bytes`` for one JSON array element) plus one batch of texts.
"""

from __future__ import annotations

import codecs
import copy
import json
import os
import re
import tarfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm_classdata.errors import UserError

FORMATS = ("llava_pretrain", "llava_instruct", "jsonl", "parquet", "txt", "hf", "webdataset", "wordnet_glosses",
           "mixed")
TEXT_FIELDS = ("TEXT", "caption", "text", "Caption", "txt")
TURNS = ("all", "human", "gpt")
WORDNET_GLOSSES = "wordnet:glosses"
DEFAULT_CHUNK_SIZE = 1 << 20
IMAGE_TOKEN = "<image>"

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_COMPRESSION = (".gz", ".zst", ".zstd")
_EXTENSIONS = {
    "llava_pretrain": (".json",), "llava_instruct": (".json",), "jsonl": (".jsonl", ".ndjson"),
    "txt": (".txt",), "parquet": (".parquet",), "webdataset": (".tar", ".tgz"),
}
_FOLDER_KINDS = ("parquet", "jsonl", "json", "txt", "tar")
_FORMAT_KINDS = {"llava_pretrain": ("json",), "llava_instruct": ("json",), "jsonl": ("jsonl",), "txt": ("txt",),
                 "parquet": ("parquet",), "webdataset": ("tar",)}
_KIND_FORMAT = {"parquet": "parquet", "jsonl": "jsonl", "txt": "txt", "tar": "webdataset", "arrow": "hf"}
_ROLES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt", "model": "gpt", "chatgpt": "gpt"}
_SKIP = re.compile(r"[\s,\[\]\ufeff]*")
_PEEK_ELEMENTS = 100
_BLOCK_DOCS = 16_384
_RAW_CHUNK = 1 << 16


@dataclass
class ReadStats:
    """What one corpus read produced: documents kept, their UTF-8 bytes, and skips by reason."""

    documents: int = 0
    bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    damaged: list[dict] = field(default_factory=list)  # {"file", "reason"} of each damaged file


# ----- byte sources ---------------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _zstd_damage(path: str) -> str | None:
    """None when every frame of a zstd file is whole (walked by its frame and block headers), else what is
    wrong: the stream reader of ``zstandard`` ends a truncated frame silently, so its end is checked here."""
    import zstandard

    size = os.path.getsize(path)
    pos = 0
    with open(path, "rb") as fh:
        while pos < size:
            fh.seek(pos)
            head = fh.read(18)
            magic = int.from_bytes(head[:4], "little")
            if 0x184D2A50 <= magic <= 0x184D2A5F and len(head) >= 8:  # a skippable frame
                pos += 8 + int.from_bytes(head[4:8], "little")
                continue
            if magic != 0xFD2FB528:
                return f"not a zstd frame at byte {pos:,}"
            try:
                pos += zstandard.frame_header_size(head)
                checksum = zstandard.get_frame_parameters(head).has_checksum
            except zstandard.ZstdError:
                return f"truncated zstd stream (frame header at byte {pos:,} is cut off)"
            last = False
            while not last:
                fh.seek(pos)
                block = fh.read(3)
                if len(block) < 3:
                    break
                value = int.from_bytes(block, "little")
                last = bool(value & 1)
                pos += 3 + (1 if (value >> 1) & 3 == 1 else value >> 3)  # an RLE block holds one byte
            pos += 4 if checksum and last else 0
            if not last or pos > size:
                return f"truncated zstd stream (the file ends inside a frame, at byte {size:,})"
    return None


class _Source:
    """A binary file, transparently gunzipped or zstd-decompressed (by magic bytes), read in bounded pieces.

    Every byte that decompresses before damage is returned; then the stream ends (``read`` returns ``b""``),
    ``failed`` is set and ``error`` says what was wrong (truncated or damaged stream, failed read).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.failed = False
        self.error = ""
        self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        magic = self._raw.read(4)
        self._raw.seek(0)
        self._kind = "gzip" if magic[:2] == _GZIP_MAGIC else "zstd" if magic == _ZSTD_MAGIC else ""
        self._zstd: Any = None
        self._gzip: Any = None
        self._pending = b""  # gzip input not yet decompressed
        self._ended = False
        if self._kind == "zstd":
            import zstandard

            dctx = zstandard.ZstdDecompressor(max_window_size=1 << 31)
            self._zstd = dctx.stream_reader(self._raw, read_across_frames=True, closefd=False)
        elif self._kind == "gzip":
            self._gzip = zlib.decompressobj(wbits=31)

    def _fail(self, reason: str) -> bytes:
        self.failed = True
        self.error = reason
        return b""

    def read(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes (``b""`` at the end of the stream or after damage)."""
        if self.failed or self._ended:
            return b""
        try:
            if self._kind == "gzip":
                return self._read_gzip(size)
            if self._kind == "zstd":
                return self._read_zstd(size)
            data = self._raw.read(size)
        except OSError as exc:
            return self._fail(f"read failed ({exc.strerror or _one_line(exc)})")
        if not data:
            self._ended = True
        return data

    def _read_gzip(self, size: int) -> bytes:
        while True:
            d = self._gzip
            if d.eof:  # a member ended: another may follow (trailing zero padding is ignored, as gzip does)
                rest = d.unused_data + self._pending
                self._pending = b""
                if not rest.strip(b"\x00"):
                    rest += self._raw.read(_RAW_CHUNK)
                    if not rest.strip(b"\x00"):
                        self._ended = True
                        return b""
                self._gzip = d = zlib.decompressobj(wbits=31)
                self._pending = rest
            data = d.unconsumed_tail or self._pending or self._raw.read(_RAW_CHUNK)
            self._pending = b""
            if not data:
                return self._fail("truncated gzip stream (the file ends inside a member)")
            try:
                out = d.decompress(data, size)
            except zlib.error as exc:
                return self._fail(f"damaged gzip stream ({_one_line(exc)})")
            if out:
                return out

    def _read_zstd(self, size: int) -> bytes:
        import zstandard

        try:
            out = self._zstd.read(min(size, _RAW_CHUNK))  # small reads: a damaged block loses little
        except zstandard.ZstdError as exc:
            return self._fail(f"damaged zstd stream ({_one_line(exc)})")
        if not out:
            damage = _zstd_damage(self.path)
            if damage:
                return self._fail(damage)
            self._ended = True
        return out

    def close(self) -> None:
        try:
            if self._zstd is not None:
                self._zstd.close()
        except Exception:
            pass
        self._raw.close()

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line_blocks(src: _Source, chunk_size: int, max_bytes: int, skipped: Counter[str]) -> Iterator[bytes]:
    """Blocks of whole lines (joined by ``\\n``, without the final one), read ``chunk_size`` bytes at a time.

    A line that grows past ``max_bytes`` before its newline is counted ``too_long`` and dropped while it is
    read, so no more than ``chunk_size + max_bytes`` bytes are held. Longer lines inside a block are left
    to the caller to count. After a read error the unfinished last line is dropped.
    """
    carry = b""
    skipping = False
    while True:
        chunk = src.read(chunk_size)
        if not chunk:
            break
        if skipping:
            i = chunk.find(b"\n")
            if i < 0:
                continue
            chunk = chunk[i + 1:]
            skipping = False
        data = carry + chunk if carry else chunk
        last = data.rfind(b"\n")
        if last < 0:
            carry = data
        else:
            yield data[:last]
            carry = data[last + 1:]
        if len(carry) > max_bytes:
            skipped["too_long"] += 1
            carry = b""
            skipping = True
    if carry and not src.failed:
        yield carry


class _JsonElements:
    """The top-level values of a JSON array (or of concatenated / line-separated JSON values), streamed.

    Yields ``("ok", value)``, ``("bad", None)`` for a malformed element, ``("too_long", None)`` for an
    element longer than ``limit`` characters, and ``("unrecoverable", None)`` when no element follows a
    bad one. After a bad or too long element it resynchronises at the next ``{`` that parses into a value
    accepted by ``is_doc`` (so objects nested inside the broken element are not taken for elements).
    """

    def __init__(self, src: _Source, chunk_size: int, limit: int, is_doc: Callable[[Any], bool]) -> None:
        self.src = src
        self.chunk_size = chunk_size
        self.limit = limit
        self.is_doc = is_doc
        self._text = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self._decoder = json.JSONDecoder(strict=False)
        self.buf = ""
        self.eof = False

    def _read_more(self, keep_from: int, size: int) -> tuple[int, bool]:
        """Drop ``buf[:keep_from]``, append about ``size`` more bytes; → (characters dropped, grew)."""
        if self.eof:
            return 0, False
        data = self.src.read(size)
        text = self._text.decode(data, final=not data)
        if not data:
            self.eof = True
        self.buf = self.buf[keep_from:] + text
        return keep_from, bool(text)

    def _decode_at(self, start: int) -> tuple[str, Any, int, int]:
        """Parse the value at ``buf[start]``, reading more while it is incomplete; → (status, value, start, end)."""
        while True:
            try:
                value, end = self._decoder.raw_decode(self.buf, start)
                return "ok", value, start, end
            except json.JSONDecodeError as exc:
                incomplete = not self.eof and (exc.msg.startswith("Unterminated string")
                                               or exc.pos >= len(self.buf) - 64)
            except (ValueError, RecursionError):  # e.g. an integer with too many digits, deep nesting
                incomplete = False
            if not incomplete:
                return "bad", None, start, start
            if len(self.buf) - start > self.limit:
                return "too_long", None, start, start
            shift, _ = self._read_more(start, max(self.chunk_size, len(self.buf) - start))
            start -= shift

    def _resync(self, start: int) -> int | None:
        """Position of the next ``{`` after ``buf[start]`` that starts a document-like value, or None."""
        i = start + 1
        while True:
            j = self.buf.find("{", i)
            if j < 0:
                _, grew = self._read_more(len(self.buf), self.chunk_size)
                if not grew:
                    return None
                i = 0
                continue
            status, value, j, _ = self._decode_at(j)
            if status == "ok" and self.is_doc(value):
                return j
            i = j + 1

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        pos = 0
        while True:
            pos = _SKIP.match(self.buf, pos).end()
            if pos >= len(self.buf):
                _, grew = self._read_more(len(self.buf), self.chunk_size)
                pos = 0
                if not grew:
                    return
                continue
            status, value, start, end = self._decode_at(pos)
            if status == "ok":
                yield "ok", value
                pos = end
                continue
            yield status, None
            found = self._resync(start)
            if found is None:
                if status == "bad":
                    yield "unrecoverable", None
                return
            pos = found


# ----- format detection -----------------------------------------------------------------------------
def _strip_compression(name: str) -> str:
    low = name.lower()
    for suffix in _COMPRESSION:
        if low.endswith(suffix):
            return low[: -len(suffix)]
    return low


def _kind_of_name(name: str) -> str | None:
    """The data kind a file name says: parquet, jsonl, json, txt, tar, arrow (or None)."""
    base = _strip_compression(name)
    if base.endswith(".parquet"):
        return "parquet"
    if base.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if base.endswith(".json"):
        return "json"
    if base.endswith(".txt"):
        return "txt"
    if base.endswith((".tar", ".tgz")):
        return "tar"
    if base.endswith(".arrow"):
        return "arrow"
    return None


def _is_saved_hf(p: Path) -> bool:
    return p.is_dir() and ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file())


def _data_files(folder: Path, kinds: tuple[str, ...] | None) -> list[Path]:
    """Files under ``folder`` (recursively, hidden ones skipped) of the given kinds (None: all), in path order."""
    out = []
    for f in folder.rglob("*"):
        rel = f.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not f.is_file():
            continue
        if kinds is None or _kind_of_name(f.name) in kinds:
            out.append(f)
    return sorted(out, key=lambda f: f.relative_to(folder).as_posix())


def _is_doc(value: Any) -> bool:
    return isinstance(value, dict) and ("conversations" in value or any(f in value for f in TEXT_FIELDS))


def _sniff_json(path: Path) -> str:
    """``.json`` content: JSONL, or a LLaVA array (pretrain when every peeked conversation has 2 turns)."""
    try:
        with _Source(str(path)) as src:
            head = src.read(1 << 16)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        first = text.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return "jsonl"
        except ValueError:
            pass
    lengths = []
    with _Source(str(path)) as src:
        for i, (status, value) in enumerate(_JsonElements(src, 1 << 16, 8 << 20, _is_doc)):
            if i >= _PEEK_ELEMENTS:
                break
            if status == "ok" and isinstance(value, dict) and isinstance(value.get("conversations"), list):
                lengths.append(len(value["conversations"]))
    return "llava_pretrain" if lengths and all(n == 2 for n in lengths) else "llava_instruct"


def _file_format(path: Path, kind: str) -> str:
    """The reader of one data file of a folder, from its kind (``.json`` content is sniffed)."""
    return _sniff_json(path) if kind == "json" else _KIND_FORMAT[kind]


def _folder_listing(folder: Path, fmt: str) -> tuple[list[tuple[str, str]], list[dict]]:
    """``([(file, format)], [{"file", "reason"}])``: the files of ``folder`` a ``fmt`` corpus reads, each with
    its reader (``mixed``: every data file by its own reader), and the files it leaves unread, with why."""
    wanted = _FOLDER_KINDS if fmt == "mixed" else _FORMAT_KINDS[fmt]
    read: list[tuple[str, str]] = []
    left: list[dict] = []
    for f in _data_files(folder, None):
        kind = _kind_of_name(f.name)
        if kind in wanted:
            read.append((str(f), _file_format(f, kind) if fmt == "mixed" else fmt))
        elif kind is None or kind == "arrow":
            left.append({"file": str(f), "reason": "not a corpus file type (.json, .jsonl, .parquet, .txt, .tar)"})
        else:
            left.append({"file": str(f), "reason": f"a {kind} file in a {fmt} corpus (pass --format NAME=mixed "
                                                   "to read every file by its own reader)"})
    return read, left


def detect_format(path: str) -> str:
    """The format of a corpus path, from its name and (for ``.json`` or unknown names) its content.

    ``.json`` → ``llava_pretrain`` if every peeked conversation has exactly 2 turns, else ``llava_instruct``
    (or ``jsonl`` when it holds one object per line); ``.jsonl`` → ``jsonl``; ``.parquet`` → ``parquet``;
    ``.txt`` → ``txt`` (all also ``.gz``/``.zst``); ``.tar`` or a folder of tars → ``webdataset``; a
    ``save_to_disk`` folder, a folder with ``dataset_info.json`` or with parquet files under ``data/``, or an
    ``.arrow`` file → ``hf``; another folder → the kind of its data files; ``"wordnet:glosses"`` →
    ``wordnet_glosses``. Raises :class:`UserError` when the path is missing or says nothing.
    """
    if path.startswith("wordnet:"):
        if path == WORDNET_GLOSSES:
            return "wordnet_glosses"
        raise UserError(f"unknown WordNet corpus {path!r} (only {WORDNET_GLOSSES!r})")
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"corpus path {path!r} does not exist")
    if p.is_dir():
        if _is_saved_hf(p) or (p / "dataset_info.json").is_file():
            return "hf"
        if _data_files(p, ("tar",)):
            return "webdataset"
        if (p / "data").is_dir() and _data_files(p / "data", ("parquet",)):
            return "hf"
        formats = {_file_format(f, _kind_of_name(f.name) or "") for f in _data_files(p, _FOLDER_KINDS)}
        if not formats:
            raise UserError(f"{path}: no corpus files found (expected .json, .jsonl, .parquet, .txt or .tar files)")
        return formats.pop() if len(formats) == 1 else "mixed"
    kind = _kind_of_name(p.name)
    if kind is None:
        try:
            with _Source(str(p)) as src:
                head = src.read(4096)
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        if head.startswith(b"PAR1"):
            return "parquet"
        start = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")[:1]
        if start in ("[", "{"):
            return _sniff_json(p)
        raise UserError(f"cannot tell the format of {path}; pass one of: {', '.join(FORMATS)}")
    if kind == "json":
        return _sniff_json(p)
    return _KIND_FORMAT[kind]


class _Block:
    """Texts gathered one by one, handed on (filtered by ``Corpus._keep``) when a batch or a chunk is full."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.max_docs = min(corpus.batch_size, _BLOCK_DOCS)
        self.max_chars = corpus.chunk_size
        self.items: list[Any] = []
        self.chars = 0

    def add(self, text: Any) -> bool:
        """Add one text (or None); → whether the block is full."""
        self.items.append(text)
        if isinstance(text, str):
            self.chars += len(text)
        return len(self.items) >= self.max_docs or self.chars >= self.max_chars

    def take(self) -> list[str]:
        items, self.items, self.chars = self.items, [], 0
        return self.corpus._keep(items)


# ----- the corpus -----------------------------------------------------------------------------------
def open_corpus(path: str, fmt: str | None = None, text_field: str | None = None, turns: str = "all",
                max_doc_bytes: int = 1_000_000, batch_size: int = 100_000,
                chunk_size: int = DEFAULT_CHUNK_SIZE) -> Corpus:
    """Open a corpus (a file, a folder of files, a HF dataset or ``"wordnet:glosses"``) for streaming.

    ``fmt`` defaults to :func:`detect_format`; ``text_field`` defaults to the first of :data:`TEXT_FIELDS`
    present; ``turns`` selects LLaVA instruction turns; ``chunk_size`` is the read size in bytes.
    Raises :class:`UserError` for a missing path, an unknown option or a file without a text column.
    """
    path = str(path)
    if fmt is None:
        fmt = detect_format(path)
        if fmt not in ("hf", "webdataset") and Path(path).expanduser().is_dir():
            fmt = "mixed"  # every file by its own reader (the folder's format when they all agree)
    if fmt not in FORMATS:
        raise UserError(f"unknown corpus format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if turns not in TURNS:
        raise UserError(f"turns must be one of {', '.join(TURNS)}, not {turns!r}")
    if max_doc_bytes < 1 or batch_size < 1 or chunk_size < 1:
        raise UserError("max_doc_bytes, batch_size and chunk_size must be positive")
    return Corpus(path, fmt, text_field, turns, max_doc_bytes, batch_size, chunk_size)


class Corpus:
    """A corpus opened by :func:`open_corpus`: ``batches()`` streams its documents, ``stats`` counts them."""

    def __init__(self, path: str, fmt: str, text_field: str | None, turns: str, max_doc_bytes: int,
                 batch_size: int, chunk_size: int) -> None:
        self.path = path
        self.format = fmt
        self.text_field = text_field
        self.turns = "gpt" if fmt == "llava_pretrain" else turns
        self._turns = turns  # as asked: a mixed folder's LLaVA pretrain files read their gpt turns only
        self.max_doc_bytes = max_doc_bytes
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.stats = ReadStats()
        self._column: str | None = None  # resolved text column (parquet / hf)
        self._unread: list[dict] = []  # files of the folder this corpus does not read, with the reason
        if fmt == "wordnet_glosses":
            if path != WORDNET_GLOSSES:
                raise UserError(f"the wordnet_glosses corpus is {WORDNET_GLOSSES!r}, not {path!r}")
            self.name = "wordnet_glosses"
            self._files, self._formats = [WORDNET_GLOSSES], [fmt]
            return
        p = Path(path).expanduser()
        if not p.exists():
            raise UserError(f"corpus path {path!r} does not exist")
        name = p.name
        while _kind_of_name(name) is not None and "." in name:
            name = name.rsplit(".", 1)[0]
        self.name = name or "corpus"
        if fmt == "hf":
            self._files = self._hf_files(p)
            self._formats = [fmt] * len(self._files)
        elif p.is_dir():
            found, self._unread = _folder_listing(p, fmt)
            if not found:
                raise UserError(f"{path}: no {'corpus' if fmt == 'mixed' else fmt} files found in this folder")
            self._files, self._formats = [f for f, _ in found], [f for _, f in found]
            if fmt == "mixed" and len(set(self._formats)) == 1:
                self.format = fmt = self._formats[0]
                self.turns = "gpt" if fmt == "llava_pretrain" else turns
        else:
            self._files, self._formats = [str(p)], [detect_format(str(p)) if fmt == "mixed" else fmt]
        if fmt == "parquet":  # the text column, from the first file whose schema reads (damaged ones are skips)
            for f in self._files:
                names = self._parquet_names(f)
                if names is not None:
                    self._column = self._pick_column(names)
                    if self._column is None:
                        raise self._no_column_error(f, names)
                    break

    # ----- public -------------------------------------------------------------------------------
    def files(self) -> list[str]:
        """The underlying files, in reading order; :meth:`part` reads one of them alone."""
        return list(self._files)

    def file_formats(self) -> list[str]:
        """The reader of each file of :meth:`files` (they differ in a ``mixed`` folder)."""
        return list(self._formats)

    def unread_files(self) -> list[dict]:
        """``{"file", "reason"}`` of each file in the corpus folder that is not read (another type)."""
        return [dict(u) for u in self._unread]

    def part(self, index: int) -> Corpus:
        """File ``index`` alone, read with this corpus's settings (the unit of work of ``count``)."""
        part = copy.copy(self)
        part._files, part._formats = [self._files[index]], [self._formats[index]]
        part.format = self._formats[index]
        part.turns = "gpt" if part.format == "llava_pretrain" else self._turns
        part.stats, part._unread = ReadStats(), []
        return part

    def batches(self) -> Iterator[tuple[int, list[str]]]:
        """``(index of the first document, texts)`` with ``batch_size`` texts (the last batch may be shorter).

        Indices are consecutive from 0 over all files in order; skipped documents take none. Resets
        ``stats`` first, so a second pass counts afresh.
        """
        self.stats = ReadStats()
        size = self.batch_size
        pending: list[str] = []
        first = 0
        for block in self._blocks():
            if not block:
                continue
            self.stats.documents += len(block)
            if pending:
                pending.extend(block)
            else:
                pending = block
            start = 0
            while len(pending) - start >= size:
                yield first, pending[start:start + size]
                first += size
                start += size
            pending = pending[start:]
        if pending:
            yield first, pending

    def describe(self) -> dict:
        """Path, format, text field, turns and (after iterating) documents, bytes and skips by reason."""
        field_name = self._column or self.text_field
        if self.format in ("llava_pretrain", "llava_instruct") and field_name is None:
            field_name = "conversations"
        return {"path": self.path, "format": self.format, "text_field": field_name, "turns": self.turns,
                "documents": self.stats.documents, "bytes": self.stats.bytes,
                "skipped": dict(sorted(self.stats.skipped.items())),
                "skipped_files": self.unread_files() + [dict(d) for d in self.stats.damaged]}

    def __repr__(self) -> str:
        return f"Corpus({self.path!r}, format={self.format!r}, files={len(self._files)})"

    # ----- documents ----------------------------------------------------------------------------
    def _blocks(self) -> Iterator[list[str]]:
        readers = {"llava_pretrain": self._read_json_array, "llava_instruct": self._read_json_array,
                   "jsonl": self._read_jsonl, "txt": self._read_txt, "parquet": self._read_parquet,
                   "hf": self._read_hf, "webdataset": self._read_tar, "wordnet_glosses": self._read_wordnet}
        turns = self.turns
        try:
            for f, fmt in zip(self._files, self._formats, strict=True):
                if self.format == "mixed":  # a LLaVA pretrain file of a mixed folder: its gpt turns
                    self.turns = "gpt" if fmt == "llava_pretrain" else self._turns
                yield from readers[fmt](f)
        finally:
            self.turns = turns

    def _open(self, path: str) -> _Source | None:
        """The byte source of ``path``, or None (recorded as damaged) when it cannot be opened."""
        try:
            return _Source(path)
        except Exception as exc:  # OSError, or zstandard refusing the frame header
            self._damaged(path, f"cannot open ({getattr(exc, 'strerror', None) or _one_line(exc)})")
            return None

    def _damaged(self, path: str, reason: str, key: str = "read_error") -> None:
        """Count a damaged file under ``key`` and record it by name with the reason."""
        self.stats.skipped[key] += 1
        self.stats.damaged.append({"file": path, "reason": reason})

    def _keep(self, texts: Iterable[Any]) -> list[str]:
        """The acceptable texts among ``texts``; the others are counted by reason."""
        out = []
        skipped = self.stats.skipped
        limit = self.max_doc_bytes
        nbytes = 0
        for text in texts:
            if not isinstance(text, str):
                skipped["no_text"] += 1
                continue
            try:
                n = len(text.encode("utf-8"))
            except UnicodeEncodeError:  # lone surrogates: undecodable bytes or bad \\u escapes
                skipped["non_utf8"] += 1
                continue
            if n > limit:
                skipped["too_long"] += 1
            elif not text or text.isspace():
                skipped["empty"] += 1
            else:
                out.append(text)
                nbytes += n
        self.stats.bytes += nbytes
        return out

    def _conversation_text(self, conversations: Any) -> str | None:
        """The selected turns of a LLaVA conversation, ``<image>`` removed, stripped, joined by newlines."""
        if not isinstance(conversations, list):
            return None
        want = self.turns
        parts = []
        for turn in conversations:
            if not isinstance(turn, dict):
                continue
            value = turn.get("value")
            if value is None:
                value = turn.get("content")
            if not isinstance(value, str):
                continue
            if want != "all":
                role = turn.get("from")
                if role is None:
                    role = turn.get("role")
                if not isinstance(role, str) or _ROLES.get(role, _ROLES.get(role.lower())) != want:
                    continue
            if IMAGE_TOKEN in value:
                value = value.replace(IMAGE_TOKEN, "")
            value = value.strip()
            if value:
                parts.append(value)
        return "\n".join(parts)

    def _text_of(self, obj: Any) -> str | None:
        """The document text of one JSON object (None when it has none)."""
        if not isinstance(obj, dict):
            return None
        if self.text_field is not None:
            value = obj.get(self.text_field)
            if self.text_field == "conversations" or isinstance(value, list):
                return self._conversation_text(value)
            return value if isinstance(value, str) else None
        if "conversations" in obj:
            return self._conversation_text(obj["conversations"])
        for name in TEXT_FIELDS:
            value = obj.get(name)
            if isinstance(value, str):
                return value
        return None

    def _read_json_array(self, path: str) -> Iterator[list[str]]:
        skipped = self.stats.skipped
        src = self._open(path)
        if src is None:
            return
        with src:
            block = _Block(self)
            limit = max(2 * self.max_doc_bytes, 1 << 16)
            for status, value in _JsonElements(src, self.chunk_size, limit, _is_doc):
                if status == "ok":
                    if block.add(self._text_of(value)):
                        yield block.take()
                elif src.failed:
                    break
                elif status == "unrecoverable":
                    self._damaged(path, "malformed JSON and no later element found: the rest of the file is "
                                        "not read", "unrecoverable_json")
                else:
                    skipped["malformed_json" if status == "bad" else status] += 1
            yield block.take()
            if src.failed:
                self._damaged(path, src.error)

    def _lines(self, path: str) -> Iterator[list[bytes]]:
        """Lines of a (compressed) text file in blocks; too long lines are counted and left out."""
        skipped = self.stats.skipped
        src = self._open(path)
        if src is None:
            return
        limit = self.max_doc_bytes
        with src:
            for block in _line_blocks(src, self.chunk_size, limit, skipped):
                lines = block.split(b"\n")
                out = []
                for raw in lines:
                    if raw[-1:] == b"\r":
                        raw = raw[:-1]
                    if len(raw) > limit:
                        skipped["too_long"] += 1
                    else:
                        out.append(raw)
                yield out
            if src.failed:
                self._damaged(path, src.error)

    def _read_txt(self, path: str) -> Iterator[list[str]]:
        skipped = self.stats.skipped
        for lines in self._lines(path):
            out = []
            nbytes = 0
            for raw in lines:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    skipped["non_utf8"] += 1
                    continue
                if not text or text.isspace():
                    skipped["empty"] += 1
                    continue
                out.append(text)
                nbytes += len(raw)
            self.stats.bytes += nbytes
            yield out

    def _read_jsonl(self, path: str) -> Iterator[list[str]]:
        skipped = self.stats.skipped
        decoder = json.JSONDecoder(strict=False)
        scan, loads = decoder.scan_once, decoder.decode
        for lines in self._lines(path):
            texts = []
            for raw in lines:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    skipped["non_utf8"] += 1
                    continue
                if not line or line.isspace():
                    skipped["empty"] += 1
                    continue
                try:
                    obj, end = scan(line, 0)  # the C scanner: no wrapper overhead on the common case
                    if end != len(line) and not line[end:].isspace():
                        raise ValueError("extra data")
                except StopIteration:  # leading whitespace, or no JSON value at all
                    try:
                        obj = loads(line)
                    except (ValueError, RecursionError):
                        skipped["malformed_json"] += 1
                        continue
                except (ValueError, RecursionError):
                    skipped["malformed_json"] += 1
                    continue
                texts.append(self._text_of(obj))
            yield self._keep(texts)

    # ----- columnar -----------------------------------------------------------------------------
    def _pick_column(self, names: list[str]) -> str | None:
        if self.text_field is not None:
            return self.text_field if self.text_field in names else None
        for name in (*TEXT_FIELDS, "conversations"):
            if name in names:
                return name
        return None

    def _no_column_error(self, path: str, names: list[str]) -> UserError:
        wanted = repr(self.text_field) if self.text_field else f"any of {', '.join(TEXT_FIELDS)}"
        return UserError(f"{path}: no text column {wanted}; columns: {', '.join(names) or '(none)'}"
                         + ("" if self.text_field else " (pass text_field)"))

    @staticmethod
    def _parquet_names(path: str) -> list[str] | None:
        """The column names of a parquet file, or None when its footer does not read."""
        import pyarrow.parquet as pq

        try:
            return pq.read_schema(path).names
        except Exception:  # ArrowInvalid, OSError: a damaged file, reported when it is read
            return None

    def _parquet_column(self, path: str, strict: bool) -> str | None:
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except Exception as exc:
            if strict:
                raise UserError(f"{path}: not a readable parquet file ({' '.join(str(exc).split())[:200]})") from None
            return None
        column = self._pick_column(names)
        if column is None and strict:
            raise self._no_column_error(path, names)
        return column

    def _arrow_values(self, arr: Any) -> list[Any]:
        """Python values of one Arrow text column chunk; values that are not UTF-8 are counted and left out."""
        import pyarrow as pa

        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            try:
                return arr.to_pylist()
            except UnicodeDecodeError:
                arr = arr.cast(pa.large_binary())
        if not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
            return arr.to_pylist()
        out: list[Any] = []
        for raw in arr.to_pylist():
            try:
                out.append(raw if raw is None else raw.decode("utf-8"))
            except UnicodeDecodeError:
                self.stats.skipped["non_utf8"] += 1
        return out

    def _column_texts(self, column: str, values: list[Any]) -> list[str]:
        if column == "conversations" or (values and isinstance(next((v for v in values if v is not None), None),
                                                                    list)):
            values = [self._conversation_text(v) for v in values]
        return self._keep(values)

    def _read_parquet(self, path: str) -> Iterator[list[str]]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            column = self._pick_column(pf.schema_arrow.names)
        except Exception as exc:  # no readable footer: nothing of the file can be read
            self._damaged(path, f"not a readable parquet file ({_one_line(exc)})")
            return
        if column is None:
            self.stats.skipped["no_text"] += pf.metadata.num_rows
            return
        bad: list[str] = []
        for group in range(pf.num_row_groups):  # a damaged row group is skipped; the others are read
            rows = 0
            try:
                for batch in pf.iter_batches(batch_size=min(self.batch_size, _BLOCK_DOCS), row_groups=[group],
                                             columns=[column]):
                    rows += batch.num_rows
                    yield self._column_texts(column, self._arrow_values(batch.column(0)))
            except Exception as exc:  # ArrowInvalid, OSError, ...: the rest of this row group is lost
                lost = pf.metadata.row_group(group).num_rows - rows
                bad.append(f"row group {group} ({lost:,} of its rows lost: {_one_line(exc)})")
        if bad:
            self._damaged(path, f"damaged parquet: {'; '.join(bad)}")

    # ----- Hugging Face datasets ----------------------------------------------------------------
    def _hf_load(self, path: str) -> list[tuple[str, Any]]:
        """(split, dataset) pairs: ``load_from_disk``, ``Dataset.from_file`` or streaming ``load_dataset``."""
        import datasets

        p = Path(path).expanduser()
        if p.is_file() and p.suffix == ".arrow":
            loaded: Any = datasets.Dataset.from_file(str(p))
        elif _is_saved_hf(p):
            loaded = datasets.load_from_disk(str(p))
        elif p.is_dir():
            loaded = datasets.load_dataset(str(p), streaming=True)
        else:
            raise UserError(f"{path}: expected a Hugging Face dataset folder, a .parquet or an .arrow file")
        if isinstance(loaded, (datasets.Dataset, datasets.IterableDataset)):
            return [(str(loaded.split) if loaded.split else "train", loaded)]
        return [(str(k), v) for k, v in loaded.items()]

    @staticmethod
    def _hf_columns(ds: Any) -> list[str]:
        names = ds.column_names
        if names is None and getattr(ds, "features", None) is not None:
            names = list(ds.features)
        if names is None:  # a streaming dataset with unknown features: look at the first row
            first = next(iter(ds.take(1)), {})
            names = list(first)
        return list(names)

    def _hf_files(self, p: Path) -> list[str]:
        """Shards of a HF dataset: its arrow files when saved to disk (in split order), else the path itself."""
        if p.is_file() and p.suffix == ".parquet":
            self._column = self._parquet_column(str(p), strict=True)
            return [str(p)]
        try:
            splits = self._hf_load(str(p))
        except UserError:
            raise
        except Exception as exc:  # datasets raises many types for unusable folders
            raise UserError(f"cannot load Hugging Face dataset {str(p)!r}: "
                            f"{' '.join(str(exc).split())[:300]}") from None
        if not splits:
            raise UserError(f"{p}: the dataset has no splits")
        names = self._hf_columns(splits[0][1])
        self._column = self._pick_column(names)
        if self._column is None:
            raise self._no_column_error(str(p), names)
        files: list[str] = []
        for _, ds in splits:
            cache = getattr(ds, "cache_files", None)
            if not cache or getattr(ds, "_indices", None) is not None:
                return [str(p)]
            files += [f["filename"] for f in cache]
        return files if len(files) > 1 and p.is_dir() else [str(p)]

    def _read_hf(self, path: str) -> Iterator[list[str]]:
        skipped = self.stats.skipped
        if path.endswith(".parquet") and Path(path).is_file():
            yield from self._read_parquet(path)
            return
        try:
            splits = self._hf_load(path)
            for _, ds in splits:
                column = self._pick_column(self._hf_columns(ds))
                if column is None:
                    skipped["no_text"] += int(getattr(ds, "num_rows", 0) or 0)
                    continue
                view = ds.select_columns([column])
                for batch in view.iter(batch_size=min(self.batch_size, _BLOCK_DOCS)):
                    yield self._column_texts(column, list(batch[column]))
        except Exception as exc:  # a damaged shard: the rest of it is dropped
            self._damaged(path, f"unreadable dataset file ({_one_line(exc)})")

    # ----- WebDataset ---------------------------------------------------------------------------
    def _read_tar(self, path: str) -> Iterator[list[str]]:
        skipped = self.stats.skipped
        block = _Block(self)
        src = self._open(path)
        if src is None:
            return
        try:
            with src, tarfile.open(fileobj=src, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    if not member.isfile() or not member.name.endswith(".txt"):
                        continue
                    if member.size > self.max_doc_bytes:
                        skipped["too_long"] += 1
                        continue
                    fh = tar.extractfile(member)
                    raw = fh.read() if fh is not None else b""
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        skipped["non_utf8"] += 1
                        continue
                    if block.add(text.rstrip("\r\n")):
                        yield block.take()
                if src.failed:
                    raise tarfile.ReadError(src.error)
        except Exception as exc:  # tarfile.ReadError, OSError, ...: the rest of this shard is dropped
            self._damaged(path, src.error or f"damaged tar archive ({_one_line(exc)})")
        yield block.take()

    # ----- WordNet --------------------------------------------------------------------------------
    def _read_wordnet(self, path: str) -> Iterator[list[str]]:
        from vlm_classdata.wordnet import wordnet

        wn = wordnet()
        block = _Block(self)
        for pos in ("n", "v", "a", "r"):  # "a" includes the satellites, in data.adj offset order
            for synset in wn.all_synsets(pos):
                full = block.add(synset.definition())
                for example in synset.examples():
                    full = block.add(example)
                if full:
                    yield block.take()
        yield block.take()
