"""What every corpus reader shares: the format names, the read statistics and the blocks of documents."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("llava_pretrain", "llava_instruct", "jsonl", "parquet", "txt", "hf", "webdataset", "wordnet_glosses",
           "mixed")
TEXT_FIELDS = ("TEXT", "caption", "text", "Caption", "txt")
TURNS = ("all", "human", "gpt")
WORDNET_GLOSSES = "wordnet:glosses"
DEFAULT_CHUNK_SIZE = 1 << 20
NOT_UTF8 = object()  # a value read from a binary column that is not UTF-8 (counted as non_utf8)
BLOCK_DOCS = 16_384


@dataclass
class ReadStats:
    """What one corpus read produced: documents kept, their UTF-8 bytes, and skips by reason."""

    documents: int = 0
    bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    damaged: list[dict] = field(default_factory=list)  # {"file", "reason"} of each damaged file



@dataclass
class LineBlock:
    """Whole lines of a txt file as read (joined by ``\\n``, not decoded): the counting engine splits, checks and
    counts them itself (:func:`corpora_stats._engine.split_lines` for everyone else). ``offset``: where ``data``
    starts in the (decompressed) file; a line's key is its own offset."""

    data: bytes
    offset: int


@dataclass
class ArrowBlock:
    """A chunk of a text column as read (an Arrow string or binary array, not converted): the counting engine
    checks and counts its values from their buffers (:meth:`corpora_stats._engine.Scanner.count_arrow`);
    :meth:`Corpus.texts` turns it into a :class:`TextBlock` for everyone else. ``first_key``: the key (row index
    in the file) of its first value; ``column``: the column it comes from."""

    array: Any
    first_key: int
    column: str


@dataclass
class TextBlock:
    """Checked document texts, each with its key: a number that names the document within its file whatever
    part of the file is read (a line's byte offset, a parquet row's index, else the document's ordinal)."""

    texts: list[str]
    keys: list[int]


@dataclass(frozen=True)
class Span:
    """A part of one file read alone: the lines that start in bytes ``[start, stop)`` of a plain txt or JSONL
    file (``start`` and ``stop`` are line starts), or parquet row groups ``[start, stop)``."""

    start: int
    stop: int


class Block:
    """Texts gathered one by one, handed on (filtered by ``Corpus._keep``) when a batch or a chunk is full."""

    def __init__(self, corpus: Any) -> None:  # a Corpus
        self.corpus = corpus
        self.max_docs = min(corpus.batch_size, BLOCK_DOCS)
        self.max_chars = corpus.chunk_size
        self.items: list[Any] = []
        self.chars = 0

    def add(self, text: Any) -> bool:
        """Add one text (or None); → whether the block is full."""
        self.items.append(text)
        if isinstance(text, str):
            self.chars += len(text)
        return len(self.items) >= self.max_docs or self.chars >= self.max_chars

    def take(self) -> TextBlock:
        items, self.items, self.chars = self.items, [], 0
        return self.corpus._keep(items)

