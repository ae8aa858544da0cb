"""Streaming the top-level values of a JSON array (or of concatenated JSON values) in bounded memory."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from corpora_stats.readers.base import TEXT_FIELDS
from corpora_stats.readers.sources import Source

_SKIP = re.compile(r"[\s,\[\]\ufeff]*")


def is_doc(value: Any) -> bool:
    """Whether a JSON value looks like one document of a corpus (resynchronising after damage looks for one)."""
    return isinstance(value, dict) and ("conversations" in value or any(f in value for f in TEXT_FIELDS))


class JsonElements:
    """The top-level values of a JSON array (or of concatenated / line-separated JSON values), streamed.

    Yields ``("ok", value)``, ``("bad", None)`` for a malformed element, ``("too_long", None)`` for an
    element longer than ``limit`` characters, and ``("unrecoverable", None)`` when no element follows a
    bad one. After a bad or too long element it resynchronises at the next ``{`` that parses into a value
    accepted by ``is_doc`` (so objects nested inside the broken element are not taken for elements).
    """

    def __init__(self, src: Source, chunk_size: int, limit: int, is_doc: Callable[[Any], bool]) -> None:
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

