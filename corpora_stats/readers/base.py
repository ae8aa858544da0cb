"""What every corpus reader shares: the format names, the read statistics and the block of texts."""

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
BLOCK_DOCS = 16_384


@dataclass
class ReadStats:
    """What one corpus read produced: documents kept, their UTF-8 bytes, and skips by reason."""

    documents: int = 0
    bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    damaged: list[dict] = field(default_factory=list)  # {"file", "reason"} of each damaged file



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

    def take(self) -> list[str]:
        items, self.items, self.chars = self.items, [], 0
        return self.corpus._keep(items)

