"""Readers of text files: LLaVA JSON arrays, JSON Lines and plain text (one document per line)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

from corpora_stats.readers.base import Block
from corpora_stats.readers.json_stream import JsonElements, is_doc
from corpora_stats.readers.sources import line_blocks


def _decoded(lines: list[bytes], skipped: Counter[str]) -> Iterator[tuple[bytes, str]]:
    """``(raw, text)`` of each line that is UTF-8 and not blank; the others are counted by reason."""
    for raw in lines:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped["non_utf8"] += 1
            continue
        if not text or text.isspace():
            skipped["empty"] += 1
            continue
        yield raw, text


class TextReaders:
    """The text-file readers of :class:`~corpora_stats.readers.corpus.Corpus`."""

    def _read_json_array(self, path: str) -> Iterator[list[str]]:
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

    def _lines(self, path: str) -> Iterator[list[bytes]]:
        """Lines of a (compressed) text file in blocks; too long lines are counted and left out."""
        skipped = self.stats.skipped
        src = self._open(path)
        if src is None:
            return
        limit = self.max_doc_bytes
        with src:
            for block in line_blocks(src, self.chunk_size, limit, skipped):
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
            for raw, text in _decoded(lines, skipped):
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
            for _, line in _decoded(lines, skipped):
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
