"""Which reader a corpus path needs: from file names, folder contents and (for JSON) a peek at the data."""

from __future__ import annotations

import json
from pathlib import Path

from corpora_stats.readers.base import FORMATS, WORDNET_GLOSSES
from corpora_stats.readers.json_stream import JsonElements, is_doc
from corpora_stats.readers.sources import Source
from vlm_classdata.errors import UserError
from vlm_classdata.local_datasets import SAVED_KINDS, LocalKind, detect_local_dataset

_COMPRESSION = (".gz", ".zst", ".zstd")
_FOLDER_KINDS = ("parquet", "jsonl", "json", "txt", "tar")
_FORMAT_KINDS = {"llava_pretrain": ("json",), "llava_instruct": ("json",), "jsonl": ("jsonl",), "txt": ("txt",),
                 "parquet": ("parquet",), "webdataset": ("tar",)}
_KIND_FORMAT = {"parquet": "parquet", "jsonl": "jsonl", "txt": "txt", "tar": "webdataset", "arrow": "hf"}
_PEEK_ELEMENTS = 100
_NAME_KINDS = (((".parquet",), "parquet"), ((".jsonl", ".ndjson"), "jsonl"), ((".json",), "json"), ((".txt",), "txt"),
               ((".tar", ".tgz"), "tar"), ((".arrow",), "arrow"))


def _strip_compression(name: str) -> str:
    low = name.lower()
    for suffix in _COMPRESSION:
        if low.endswith(suffix):
            return low[: -len(suffix)]
    return low


def kind_of_name(name: str) -> str | None:
    """The data kind a file name says: parquet, jsonl, json, txt, tar, arrow (or None)."""
    base = _strip_compression(name)
    return next((kind for suffixes, kind in _NAME_KINDS if base.endswith(suffixes)), None)


def _data_files(folder: Path, kinds: tuple[str, ...] | None) -> list[Path]:
    """Files under ``folder`` (recursively, hidden ones skipped) of the given kinds (None: all), in path order."""
    out = []
    for f in folder.rglob("*"):
        rel = f.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not f.is_file():
            continue
        if kinds is None or kind_of_name(f.name) in kinds:
            out.append(f)
    return sorted(out, key=lambda f: f.relative_to(folder).as_posix())


def _sniff_json(path: Path) -> str:
    """``.json`` content: JSONL, or a LLaVA array (pretrain when every peeked conversation has 2 turns)."""
    try:
        with Source(str(path)) as src:
            head = src.read(1 << 16)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        first = text.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return "jsonl"
        except ValueError:
            pass
    lengths = []
    with Source(str(path)) as src:
        for i, (status, value) in enumerate(JsonElements(src, 1 << 16, 8 << 20, is_doc)):
            if i >= _PEEK_ELEMENTS:
                break
            if status == "ok" and isinstance(value, dict) and isinstance(value.get("conversations"), list):
                lengths.append(len(value["conversations"]))
    return "llava_pretrain" if lengths and all(n == 2 for n in lengths) else "llava_instruct"


def _file_format(path: Path, kind: str) -> str:
    """The reader of one data file of a folder, from its kind (``.json`` content is sniffed)."""
    return _sniff_json(path) if kind == "json" else _KIND_FORMAT[kind]


def folder_listing(folder: Path, fmt: str) -> tuple[list[tuple[str, str]], list[dict]]:
    """``([(file, format)], [{"file", "reason"}])``: the files of ``folder`` a ``fmt`` corpus reads, each with
    its reader (``mixed``: every data file by its own reader), and the files it leaves unread, with why."""
    wanted = _FOLDER_KINDS if fmt == "mixed" else _FORMAT_KINDS[fmt]
    read: list[tuple[str, str]] = []
    left: list[dict] = []
    for f in _data_files(folder, None):
        kind = kind_of_name(f.name)
        if kind in wanted:
            read.append((str(f), _file_format(f, kind) if fmt == "mixed" else fmt))
        elif kind is None or kind == "arrow":
            left.append({"file": str(f), "reason": "not a corpus file type (.json, .jsonl, .parquet, .txt, .tar)"})
        else:
            left.append({"file": str(f), "reason": f"a {kind} file in a {fmt} corpus (pass --format NAME=mixed "
                                                   "to read every file by its own reader)"})
    return read, left


def detect_format(path: str) -> str:
    """The format of a corpus path, from its name and (for ``.json`` or unknown names) its content.

    ``.json`` → ``llava_pretrain`` if every peeked conversation has exactly 2 turns, else ``llava_instruct``
    (or ``jsonl`` when it holds one object per line); ``.jsonl`` → ``jsonl``; ``.parquet`` → ``parquet``;
    ``.txt`` → ``txt`` (all also ``.gz``/``.zst``); ``.tar`` or a folder of tars → ``webdataset``; a
    ``save_to_disk`` folder, a folder with ``dataset_info.json`` or with parquet files under ``data/``, or an
    ``.arrow`` file → ``hf``; another folder → the kind of its data files; ``"wordnet:glosses"`` →
    ``wordnet_glosses``. Raises :class:`UserError` when the path is missing or says nothing.
    """
    if path.startswith("wordnet:"):
        if path == WORDNET_GLOSSES:
            return "wordnet_glosses"
        raise UserError(f"unknown WordNet corpus {path!r} (only {WORDNET_GLOSSES!r})")
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"corpus path {path!r} does not exist")
    if p.is_dir():
        local = detect_local_dataset(p)
        if local in SAVED_KINDS or (p / "dataset_info.json").is_file():
            return "hf"
        if _data_files(p, ("tar",)):
            return "webdataset"
        if local is LocalKind.HUB_FOLDER:  # parquet files under data/
            return "hf"
        formats = {_file_format(f, kind_of_name(f.name) or "") for f in _data_files(p, _FOLDER_KINDS)}
        if not formats:
            raise UserError(f"{path}: no corpus files found (expected .json, .jsonl, .parquet, .txt or .tar files)")
        return formats.pop() if len(formats) == 1 else "mixed"
    kind = kind_of_name(p.name)
    if kind is None:
        try:
            with Source(str(p)) as src:
                head = src.read(4096)
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        if head.startswith(b"PAR1"):
            return "parquet"
        start = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")[:1]
        if start in ("[", "{"):
            return _sniff_json(p)
        raise UserError(f"cannot tell the format of {path}; pass one of: {', '.join(FORMATS)}")
    if kind == "json":
        return _sniff_json(p)
    return _KIND_FORMAT[kind]

