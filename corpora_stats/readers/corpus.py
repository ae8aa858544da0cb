"""The corpus: a path opened with its format, streaming batches of documents, and the registry of readers."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from corpora_stats._engine import split_lines
from corpora_stats.readers.base import (
    DEFAULT_CHUNK_SIZE,
    FORMATS,
    NOT_UTF8,
    TEXT_FIELDS,
    TURNS,
    WORDNET_GLOSSES,
    ArrowBlock,
    LineBlock,
    ReadStats,
    Span,
    TextBlock,
)
from corpora_stats.readers.columnar import ColumnarReaders
from corpora_stats.readers.detect import detect_format, folder_listing, kind_of_name
from corpora_stats.readers.sources import Source, line_start
from corpora_stats.readers.text import TextReaders
from corpora_stats.readers.webdataset import WebDatasetReader
from corpora_stats.readers.wordnet_glosses import WordNetGlossesReader
from vlm_classdata.errors import UserError, one_line

IMAGE_TOKEN = "<image>"
ROLES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt", "model": "gpt", "chatgpt": "gpt"}


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



class Corpus(TextReaders, ColumnarReaders, WebDatasetReader, WordNetGlossesReader):
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
        self._span: Span | None = None  # the part of the one file a work unit reads (see units())
        self._ordinal = 0  # the next document key of a format keyed by ordinal
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
        while kind_of_name(name) is not None and "." in name:
            name = name.rsplit(".", 1)[0]
        self.name = name or "corpus"
        if fmt == "hf":
            self._files = self._hf_files(p)
            self._formats = [fmt] * len(self._files)
        elif p.is_dir():
            found, self._unread = folder_listing(p, fmt)
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

    def files(self) -> list[str]:
        """The underlying files, in reading order; :meth:`part` reads one of them alone."""
        return list(self._files)

    def file_formats(self) -> list[str]:
        """The reader of each file of :meth:`files` (they differ in a ``mixed`` folder)."""
        return list(self._formats)

    def unread_files(self) -> list[dict]:
        """``{"file", "reason"}`` of each file in the corpus folder that is not read (another type)."""
        return [dict(u) for u in self._unread]

    def part(self, index: int, span: Span | None = None) -> Corpus:
        """File ``index`` alone (or its ``span``), read with this corpus's settings (a unit of work of ``count``)."""
        part = copy.copy(self)
        part._files, part._formats = [self._files[index]], [self._formats[index]]
        part.format = self._formats[index]
        part.turns = "gpt" if part.format == "llava_pretrain" else self._turns
        part.stats, part._unread, part._span = ReadStats(), [], span
        return part

    def again(self) -> Corpus:
        """The same files (or span) to read once more, with fresh statistics."""
        again = copy.copy(self)
        again.stats = ReadStats()
        return again

    def units(self, split_bytes: int | None = None) -> list[tuple[int, Span | None]]:
        """``(file index, span)`` units of work: every file whole, or with ``split_bytes`` a plain (uncompressed)
        txt or JSONL file larger than that in line-aligned byte ranges of about ``split_bytes``, and a parquet
        file in runs of row groups of about ``split_bytes``. Documents keep their keys whatever the split."""
        out: list[tuple[int, Span | None]] = []
        for i, (path, fmt) in enumerate(zip(self._files, self._formats, strict=True)):
            spans = self._spans(path, fmt, split_bytes) if split_bytes else None
            out += [(i, s) for s in spans] if spans else [(i, None)]
        return out

    def _spans(self, path: str, fmt: str, split_bytes: int) -> list[Span] | None:
        if fmt == "parquet" or (fmt == "hf" and path.endswith(".parquet")):
            return self.parquet_spans(path, split_bytes)
        if fmt not in ("txt", "jsonl"):
            return None
        try:
            size = os.path.getsize(path)
            if size <= split_bytes or self._compressed(path):
                return None
            cuts = {line_start(path, k * split_bytes) for k in range(math.ceil(size / split_bytes))} | {size}
        except OSError:  # reported when the file is read
            return None
        bounds = sorted(cuts)
        return [Span(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]

    def documents_at(self, keys: set[int]) -> dict[int, str]:
        """``{key: text}`` of the documents with these keys (a second, partial pass): a plain txt or JSONL file
        seeks to each key (a line's offset), anything else is read again up to its last wanted document."""
        fmt = self._formats[0]
        if fmt in ("txt", "jsonl") and not self._compressed(self._files[0]):
            return self._lines_at(self._files[0], fmt, sorted(keys))
        found: dict[int, str] = {}
        left = set(keys)
        for block in self.again().blocks():
            if isinstance(block, ArrowBlock):
                block = self.arrow_texts(block)
            if isinstance(block, LineBlock):
                texts, got, _ = split_lines(block.data, block.offset, self.max_doc_bytes, left)
            else:
                pairs = [(t, k) for t, k in zip(block.texts, block.keys, strict=True) if k in left]
                texts, got = [t for t, _ in pairs], [k for _, k in pairs]
            found.update(zip(got, texts, strict=True))
            left.difference_update(got)
            if not left:
                break
        return found

    @staticmethod
    def _compressed(path: str) -> bool:
        try:
            with Source(path) as src:
                return src.compressed
        except (OSError, ValueError):
            return True

    def _lines_at(self, path: str, fmt: str, offsets: list[int]) -> dict[int, str]:
        """The documents of the lines starting at ``offsets`` of a plain file, by the readers' rules."""
        found: dict[int, str] = {}
        with open(path, "rb") as fh:
            for at in offsets:
                fh.seek(at)
                line = fh.readline(self.max_doc_bytes + 2)
                texts, _, _ = split_lines(line[:-1] if line.endswith(b"\n") else line, at, self.max_doc_bytes)
                if fmt == "jsonl" and texts:
                    texts = self._keep([self._jsonl_text(texts[0])], [at]).texts
                if texts:
                    found[at] = texts[0]
        return found

    def blocks(self) -> Iterator[LineBlock | ArrowBlock | TextBlock]:
        """The documents in blocks as read: raw lines of a txt file (:class:`LineBlock`) and plain text columns of
        parquet (:class:`ArrowBlock`) — the consumer checks and counts them, then reports with
        :meth:`add_counts` —, checked texts with their keys for the others.
        Resets ``stats`` first, so a second pass counts afresh."""
        self.stats = ReadStats()
        for block in self._blocks():
            if isinstance(block, TextBlock):
                if not block.texts:
                    continue
                self.stats.documents += len(block.texts)
            yield block

    def add_counts(self, documents: int, nbytes: int, skipped: dict[str, int]) -> None:
        """What the engine kept (documents and their bytes) and skipped, by reason, of blocks it checks itself
        (:class:`LineBlock`, :class:`ArrowBlock`; JSONL lines before they are parsed)."""
        self.stats.documents += documents
        self.stats.bytes += nbytes
        for reason, n in skipped.items():
            if n:
                self.stats.skipped[reason] += n

    def texts(self) -> Iterator[TextBlock]:
        """Every block as checked texts with their keys (txt lines split and checked by the engine's rules)."""
        for block in self.blocks():
            if isinstance(block, LineBlock):
                texts, keys, counts = split_lines(block.data, block.offset, self.max_doc_bytes)
                nbytes = counts.pop("bytes")
                self.add_counts(len(texts), nbytes, counts)
                block = TextBlock(texts, keys)
            elif isinstance(block, ArrowBlock):
                block = self.arrow_texts(block)
                self.stats.documents += len(block.texts)
            if block.texts:
                yield block

    def batches(self) -> Iterator[tuple[int, list[str]]]:
        """``(index of the first document, texts)`` with ``batch_size`` texts (the last batch may be shorter).

        Indices are consecutive from 0 over all files in order; skipped documents take none. Resets
        ``stats`` first, so a second pass counts afresh.
        """
        size = self.batch_size
        pending: list[str] = []
        first = 0
        for text_block in self.texts():
            block = text_block.texts
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

    def _blocks(self) -> Iterator[LineBlock | ArrowBlock | TextBlock]:
        readers = {"llava_pretrain": self._read_json_array, "llava_instruct": self._read_json_array,
                   "jsonl": self._read_jsonl, "txt": self._read_txt, "parquet": self._read_parquet,
                   "hf": self._read_hf, "webdataset": self._read_tar, "wordnet_glosses": self._read_wordnet}
        turns = self.turns
        try:
            for f, fmt in zip(self._files, self._formats, strict=True):
                if self.format == "mixed":  # a LLaVA pretrain file of a mixed folder: its gpt turns
                    self.turns = "gpt" if fmt == "llava_pretrain" else self._turns
                self._ordinal = 0
                yield from readers[fmt](f, self._span)
        finally:
            self.turns = turns

    def _open(self, path: str, span: Span | None = None) -> Source | None:
        """The byte source of ``path`` (or of its ``span``), or None (recorded as damaged) when it cannot be opened."""
        try:
            return Source(path, span.start, span.stop) if span else Source(path)
        except Exception as exc:  # OSError, or zstandard refusing the frame header
            self._damaged(path, f"cannot open ({getattr(exc, 'strerror', None) or one_line(exc)})")
            return None

    def _damaged(self, path: str, reason: str, key: str = "read_error") -> None:
        """Count a damaged file under ``key`` and record it by name with the reason."""
        self.stats.skipped[key] += 1
        self.stats.damaged.append({"file": path, "reason": reason})

    def _keep(self, texts: Iterable[Any], keys: Iterable[int] | None = None) -> TextBlock:
        """The acceptable texts among ``texts`` with their keys (by default the ordinal in the file); the others
        are counted by reason."""
        texts = list(texts)
        if keys is None:
            keys = range(self._ordinal, self._ordinal + len(texts))
            self._ordinal += len(texts)
        out, kept = [], []
        skipped = self.stats.skipped
        limit = self.max_doc_bytes
        nbytes = 0
        for text, key in zip(texts, keys, strict=True):
            if text is NOT_UTF8:
                skipped["non_utf8"] += 1
                continue
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
                kept.append(key)
                nbytes += n
        self.stats.bytes += nbytes
        return TextBlock(out, kept)

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
                if not isinstance(role, str) or ROLES.get(role, ROLES.get(role.lower())) != want:
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
