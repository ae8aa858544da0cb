"""The offline demo corpus ``wordnet:glosses``: every WordNet 3.0 synset's definition and examples."""

from __future__ import annotations

from collections.abc import Iterator

from corpora_stats.readers.base import Block, Span, TextBlock
from vlm_classdata.wordnet import wordnet


class WordNetGlossesReader:
    """The ``wordnet_glosses`` reader of :class:`~corpora_stats.readers.corpus.Corpus`."""

    def _read_wordnet(self, path: str, span: Span | None = None) -> Iterator[TextBlock]:
        wn = wordnet()
        block = Block(self)
        for pos in ("n", "v", "a", "r"):  # "a" includes the satellites, in data.adj offset order
            for synset in wn.all_synsets(pos):
                full = block.add(synset.definition())
                for example in synset.examples():
                    full = block.add(example)
                if full:
                    yield block.take()
        yield block.take()
