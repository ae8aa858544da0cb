"""A WebDataset tar walked as WebDataset groups it: consecutive members of one key form a sample.

The key is the member name up to the first dot of its base name, the extension (lower-cased) the rest. Only
the small members named by the caller are read; others are seeked over. A truncated or unreadable tar ends
with a :class:`TarBroken` marker.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: WebDataset's own split of a member name into (key, extension)
KEY_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
MAX_LABEL_BYTES = 1 << 20


@dataclass
class TarSample:
    """Consecutive members of one key: the first member per extension, and the payloads read."""

    key: str
    members: dict[str, tarfile.TarInfo] = field(default_factory=dict)  # ext -> first member
    payload: dict[str, bytes | None] = field(default_factory=dict)  # ext -> bytes (None: too large)


@dataclass
class TarBroken:
    """End of a shard that could not be read to its end-of-archive marker."""

    detail: str


def walk_tar(path: Path, read_exts: frozenset[str]) -> Iterator[TarSample | TarBroken]:
    """Samples of one tar in order; then, if the tar ends early or cannot be read, a :class:`TarBroken`.

    A sample that may have lost members to the damage is yielded *after* the ``TarBroken`` marker (the
    caller treats it as cut off); samples before the marker are complete.
    """
    try:
        size = path.stat().st_size
        fh = open(path, "rb")  # noqa: SIM115 (closed in finally)
    except OSError as exc:
        yield TarBroken(f"{type(exc).__name__}: {exc}"[:200])
        return
    current: TarSample | None = None
    broken: str | None = None
    try:
        try:
            tf = tarfile.open(fileobj=fh, mode="r:*")  # noqa: SIM115 (closed with fh)
        except (tarfile.TarError, OSError, EOFError) as exc:
            yield TarBroken(f"not a readable tar: {exc}"[:200])
            return
        compressed = tf.fileobj is not fh
        while True:
            try:
                info = tf.next()
            except Exception as exc:  # tarfile/zlib/lzma raise several types on damaged data
                broken = f"{type(exc).__name__}: {exc}"[:200]
                break
            tf.members = []  # streaming: do not keep every TarInfo
            if info is None:
                break
            m = KEY_EXT.match(info.name) if info.isreg() else None
            if m is None:
                if not compressed and info.offset_data + info.size > size:
                    broken = f"member {info.name!r} cut off at byte {size}"
                    break
                continue
            key, ext = m.group(1), m.group(2).lower()
            if current is None or current.key != key:
                if current is not None:
                    yield current  # complete: a member of another key follows it
                current = TarSample(key)
            if not compressed and info.offset_data + info.size > size:
                broken = f"member {info.name!r} cut off at byte {size}"
                break
            if ext in current.members:
                continue
            current.members[ext] = info
            if ext in read_exts:
                if info.size > MAX_LABEL_BYTES:
                    current.payload[ext] = None
                    continue
                try:
                    fobj = tf.extractfile(info)
                    data = fobj.read() if fobj is not None else b""
                except Exception as exc:
                    broken = f"{type(exc).__name__}: {exc}"[:200]
                    break
                if len(data) != info.size:
                    broken = f"member {info.name!r} cut off"
                    break
                current.payload[ext] = data
        if broken is None:
            try:
                tf.fileobj.seek(tf.offset)
                block = tf.fileobj.read(tarfile.BLOCKSIZE)
            except Exception as exc:
                block, broken = b"", f"{type(exc).__name__}: {exc}"[:200]
            if broken is None and (len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE):
                broken = "no end-of-archive marker (truncated)"
        tf.close()
    finally:
        fh.close()
    if broken is not None:
        yield TarBroken(broken)
    if current is not None:
        yield current
