"""Reader of WebDataset shards: every ``.txt`` member of a (compressed) tar is one document."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator

from corpora_stats.readers.base import Block, Span, TextBlock
from vlm_classdata.errors import one_line


class WebDatasetReader:
    """The WebDataset reader of :class:`~corpora_stats.readers.corpus.Corpus`."""

    def _read_tar(self, path: str, span: Span | None = None) -> Iterator[TextBlock]:
        skipped = self.stats.skipped
        block = Block(self)
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
            self._damaged(path, src.error or f"damaged tar archive ({one_line(exc)})")
        yield block.take()
