"""Byte sources of the corpus readers: a file read in bounded pieces, transparently gunzipped or
zstd-decompressed (by magic bytes), keeping what decompresses before damage; and whole-line blocks of it."""

from __future__ import annotations

import os
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import zstandard

from vlm_classdata.errors import one_line

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
RAW_CHUNK = 1 << 16


def _zstd_damage(path: str) -> str | None:
    """None when every frame of a zstd file is whole (walked by its frame and block headers), else what is
    wrong: the stream reader of ``zstandard`` ends a truncated frame silently, so its end is checked here."""
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


class Source:
    """A binary file, transparently gunzipped or zstd-decompressed (by magic bytes), read in bounded pieces.

    Every byte that decompresses before damage is returned; then the stream ends (``read`` returns ``b""``),
    ``failed`` is set and ``error`` says what was wrong (truncated or damaged stream, failed read).
    """

    def __init__(self, path: str, start: int = 0, stop: int | None = None) -> None:
        self.path = path
        self.failed = False
        self.error = ""
        self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        magic = self._raw.read(4)
        self._raw.seek(0)
        self._kind = "gzip" if magic[:2] == _GZIP_MAGIC else "zstd" if magic == _ZSTD_MAGIC else ""
        self._left = None if stop is None else stop - start  # bytes [start, stop) of a plain file
        if start or stop is not None:
            if self._kind:
                self._raw.close()
                raise ValueError(f"{path}: a compressed file is read whole, not a byte range")
            self._raw.seek(start)
        self._zstd: Any = None
        self._gzip: Any = None
        self._pending = b""  # gzip input not yet decompressed
        self._ended = False
        if self._kind == "zstd":
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
            if self._left is not None:
                size = min(size, self._left)
                data = self._raw.read(size) if size else b""
                self._left -= len(data)
            else:
                data = self._raw.read(size)
        except OSError as exc:
            return self._fail(f"read failed ({exc.strerror or one_line(exc)})")
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
                    rest += self._raw.read(RAW_CHUNK)
                    if not rest.strip(b"\x00"):
                        self._ended = True
                        return b""
                self._gzip = d = zlib.decompressobj(wbits=31)
                self._pending = rest
            data = d.unconsumed_tail or self._pending or self._raw.read(RAW_CHUNK)
            self._pending = b""
            if not data:
                return self._fail("truncated gzip stream (the file ends inside a member)")
            try:
                out = d.decompress(data, size)
            except zlib.error as exc:
                return self._fail(f"damaged gzip stream ({one_line(exc)})")
            if out:
                return out

    def _read_zstd(self, size: int) -> bytes:
        try:
            out = self._zstd.read(min(size, RAW_CHUNK))  # small reads: a damaged block loses little
        except zstandard.ZstdError as exc:
            return self._fail(f"damaged zstd stream ({one_line(exc)})")
        if not out:
            damage = _zstd_damage(self.path)
            if damage:
                return self._fail(damage)
            self._ended = True
        return out

    @property
    def compressed(self) -> bool:
        return bool(self._kind)

    def close(self) -> None:
        try:
            if self._zstd is not None:
                self._zstd.close()
        except Exception:
            pass
        self._raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def line_blocks(src: Source, chunk_size: int, max_bytes: int, skipped: Counter[str],
                offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """``(offset, block)``: blocks of whole lines (joined by ``\\n``, without the final one) read ``chunk_size``
    bytes at a time, and where each starts in the stream (``offset``: where the source starts).

    A line that grows past ``max_bytes`` before its newline is counted ``too_long`` and dropped while it is
    read, so no more than ``chunk_size + max_bytes`` bytes are held. Longer lines inside a block are left
    to the caller to count. After a read error the unfinished last line is dropped.
    """
    carry, carry_at = b"", offset
    read_at = offset
    skipping = False
    while True:
        chunk = src.read(chunk_size)
        if not chunk:
            break
        chunk_at = read_at
        read_at += len(chunk)
        if skipping:
            i = chunk.find(b"\n")
            if i < 0:
                continue
            chunk = chunk[i + 1:]
            chunk_at += i + 1
            skipping = False
        data, data_at = (carry + chunk, carry_at) if carry else (chunk, chunk_at)
        last = data.rfind(b"\n")
        if last < 0:
            carry, carry_at = data, data_at
        else:
            yield data_at, data[:last]
            carry, carry_at = data[last + 1:], data_at + last + 1
        if len(carry) > max_bytes + 1 or (len(carry) == max_bytes + 1 and carry[-1:] != b"\r"):  # a final \r goes
            skipped["too_long"] += 1
            carry = b""
            skipping = True
    if carry and not src.failed:
        yield carry_at, carry


def line_start(path: str, at: int) -> int:
    """The first line start at or after byte ``at`` of a plain file (its size when no line starts there)."""
    if at <= 0:
        return 0
    with open(path, "rb") as fh:
        fh.seek(at - 1)
        pos = at - 1
        while True:
            piece = fh.read(RAW_CHUNK)
            if not piece:
                return pos
            i = piece.find(b"\n")
            if i >= 0:
                return pos + i + 1
            pos += len(piece)
