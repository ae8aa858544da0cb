"""Streaming corpus readers: files → batches of ``(first_doc_index, texts)`` in bounded memory.

Formats (:data:`FORMATS`):

- ``llava_pretrain`` / ``llava_instruct``: one big JSON array of ``{"conversations": [{"from", "value"}]}``
  objects (``blip_laion_cc_sbu_558k.json``, ``llava_v1_5_mix665k.json``), parsed element by element from
  fixed-size chunks with ``json.JSONDecoder.raw_decode``. Each conversation is one document: its turns
  (pretrain: the gpt turn(s); instruct: ``turns`` = all | human | gpt) with ``<image>`` removed, stripped
  and joined with ``"\\n"``. Objects without ``conversations`` fall back to a text field.
- ``jsonl``: one JSON object per line; the text field is auto-detected per line among :data:`TEXT_FIELDS`
  (or ``text_field``); a ``conversations`` list is read as LLaVA.
- ``parquet``: the text column only, with ``pyarrow`` ``iter_batches``, row group by row group.
- ``txt``: one document per line.
- ``hf``: a local Hugging Face dataset (``save_to_disk`` folder, a folder of data files, or an ``.arrow``).
- ``webdataset``: every ``.txt`` member of the tar shards is one document (other members are ignored).
- ``wordnet_glosses`` (path ``"wordnet:glosses"``): every WordNet 3.0 synset's definition and each of its
  example sentences, nouns, verbs, adjectives then adverbs, each in offset order.
- ``mixed``: a folder holding several of these (the default for such a folder unless it holds tar shards):
  every file is read by its own reader (each ``.json`` sniffed), in path order.

A folder corpus names every file it does not read, with the reason (another file type; another format than a
forced one; a WebDataset folder reads its tars only) in ``describe()["skipped_files"]``.

JSON, JSONL, txt and tar files may be gzip- or zstd-compressed (recognised by their magic bytes). They are
decompressed as a stream: everything that decompresses before damage is read (a truncated gzip member or zstd
frame is noticed at its end, a corrupt block where zlib/zstd report it; the unfinished last line is dropped).

Bad input never raises: it is counted in ``stats.skipped`` by reason and skipped —
``non_utf8`` (invalid UTF-8 in the document), ``too_long`` (more than ``max_doc_bytes``), ``empty``,
``malformed_json``, ``no_text`` (no text field / null), ``unrecoverable_json`` (after a malformed JSON
array element no later element could be found: the rest of that file is dropped), ``read_error`` (a file that
cannot be opened, a truncated or damaged compressed stream or tar archive, a parquet file whose footer or
row groups do not read: what was read before the damage, and a parquet file's other row groups, are kept).
Skipped documents take no index. ``unrecoverable_json`` and ``read_error`` also name the file and the reason
in ``stats.damaged`` / ``describe()["skipped_files"]``.

Memory: a reader holds at most about ``chunk_size + max_doc_bytes`` bytes of a text file (twice
``max_doc_bytes`` for one JSON array element) plus one batch of texts.

Modules: ``corpus`` (:func:`open_corpus`, :class:`Corpus` and its registry format → reader), ``detect``
(:func:`detect_format`, folder listings), one module per format family (``text``, ``columnar``,
``webdataset``, ``wordnet_glosses``), ``sources`` (decompressing byte sources), ``json_stream`` (JSON array
elements) and ``base`` (format names, :class:`ReadStats`). To add a format: its reader method in a family
module, its name in ``FORMATS``, an entry in ``Corpus._blocks``'s registry and, if a file name or folder says
it, in ``detect``.
"""

from corpora_stats.readers.base import FORMATS, TEXT_FIELDS, TURNS, WORDNET_GLOSSES, ReadStats
from corpora_stats.readers.corpus import Corpus, open_corpus
from corpora_stats.readers.detect import detect_format

__all__ = ["FORMATS", "TEXT_FIELDS", "TURNS", "WORDNET_GLOSSES", "Corpus", "ReadStats", "detect_format", "open_corpus"]
