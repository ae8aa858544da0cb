"""Readers of text files: LLaVA JSON arrays, JSON Lines and plain text (one document per line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from corpora_stats._engine import split_lines
from corpora_stats.readers.base import Block, LineBlock, Span, TextBlock
from corpora_stats.readers.json_stream import JsonElements, is_doc
from corpora_stats.readers.sources import line_blocks

_DECODER = json.JSONDecoder(strict=False)
_SCAN, _LOADS = _DECODER.scan_once, _DECODER.decode
_MALFORMED = object()


class TextReaders:
    """The text-file readers of :class:`~corpora_stats.readers.corpus.Corpus`."""

    def _read_json_array(self, path: str, span: Span | None = None) -> Iterator[TextBlock]:
        skipped = self.stats.skipped
        src = self._open(path)
        if src is None:
            return
        with src:
            block = Block(self)
            limit = max(2 * self.max_doc_bytes, 1 << 16)
            for status, value in JsonElements(src, self.chunk_size, limit, is_doc):
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

    def _line_blocks(self, path: str, span: Span | None) -> Iterator[tuple[int, bytes]]:
        """``(offset, block)`` of whole lines of a (compressed) text file, or of the lines of ``span``; a line
        that grows too long while it is read is counted and left out (see :func:`line_blocks`)."""
        src = self._open(path, span)
        if src is None:
            return
        with src:
            yield from line_blocks(src, self.chunk_size, self.max_doc_bytes, self.stats.skipped,
                                   span.start if span else 0)
            if src.failed:
                self._damaged(path, src.error)

    def _read_txt(self, path: str, span: Span | None = None) -> Iterator[LineBlock]:
        for at, block in self._line_blocks(path, span):
            yield LineBlock(block, at)

    def _read_jsonl(self, path: str, span: Span | None = None) -> Iterator[TextBlock]:
        for at, block in self._line_blocks(path, span):
            lines, line_keys, counts = split_lines(block, at, self.max_doc_bytes)
            del counts["bytes"]  # a JSONL document's bytes are its text's, counted when it is kept
            self.add_counts(0, 0, counts)
            texts, keys = [], []
            for line, key in zip(lines, line_keys, strict=True):
                text = self._jsonl_text(line)
                if text is not _MALFORMED:
                    texts.append(text)
                    keys.append(key)
            yield self._keep(texts, keys)

    def _jsonl_text(self, line: str) -> Any:
        """The document text of one JSON line (None without one); a malformed line is counted, → ``_MALFORMED``."""
        try:
            obj, end = _SCAN(line, 0)  # the C scanner: no wrapper overhead on the common case
            if end != len(line) and not line[end:].isspace():
                raise ValueError("extra data")
        except StopIteration:  # leading whitespace, or no JSON value at all
            try:
                obj = _LOADS(line)
            except (ValueError, RecursionError):
                self.stats.skipped["malformed_json"] += 1
                return _MALFORMED
        except (ValueError, RecursionError):
            self.stats.skipped["malformed_json"] += 1
            return _MALFORMED
        return self._text_of(obj)
