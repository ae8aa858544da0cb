"""On-disk cache of built lexicons: ``cache_dir()/lexicon/<key>.json``, so that a command does not load WordNet
(~2 CPU-s) to rebuild forms it built before.

The key (sha256) covers everything that decides the forms: :data:`FORMAT`; the source of the lexicon code (the
``vlm_classdata/lexicon/*.py`` files, ``vlm_classdata/wordnet.py`` and the stoplist); the versions of Python, NLTK and
``regex`` and Python's Unicode tables; the WordNet files read (path, size and mtime_ns of each, found without
loading NLTK); the vocabulary (id, display name, synonyms and wnid of each class, in order); the loaded aliases;
the method and the plurals switch. An entry is trusted only when it parses, names its own key and lists forms of
the vocabulary's classes with known kinds and flags; anything else is rebuilt and overwritten. Entries are
written atomically (concurrent writers of one key write the same bytes); a cache folder that cannot be written
only means no cache. ``VLMCD_LEXICON_CACHE=0`` (or ``Lexicon.build(..., cache=False)``) bypasses it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import itertools
import json
import os
import sys
import unicodedata
from importlib import resources
from pathlib import Path
from typing import Any

import regex

from vlm_classdata.atomic import dumps_compact, write_text_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon.forms import FLAGS, KINDS, Form
from vlm_classdata.vocabulary import ClassVocabulary
from vlm_classdata.wordnet import WordNetMissingError, cache_dir, locate_wordnet

FORMAT = 1                     # bump when the entry layout or the key's parts change
ENV_SWITCH = "VLMCD_LEXICON_CACHE"
MAX_ENTRIES = 64               # oldest entries beyond this many are removed when one is written
_ON, _OFF = ("", "1", "true", "yes", "on"), ("0", "false", "no", "off")
# every sorted subset of FLAGS, by its comma-joined text (the stored form); unknown texts are refused
_FLAG_SETS = {",".join(c): c for n in range(len(FLAGS) + 1) for c in itertools.combinations(sorted(FLAGS), n)}


def cache_enabled() -> bool:
    """Whether ``$VLMCD_LEXICON_CACHE`` allows the cache (unset, 1/true/yes/on: yes; 0/false/no/off: no)."""
    value = os.environ.get(ENV_SWITCH, "").strip().lower()
    if value not in _ON + _OFF:
        raise UserError(f"{ENV_SWITCH} must be 1 or 0 (cache on or off), got {os.environ[ENV_SWITCH]!r}")
    return value in _ON


def cache_folder() -> Path:
    """Where the entries live: ``cache_dir()/lexicon``."""
    return cache_dir() / "lexicon"


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the code and data that make forms: the lexicon package, the WordNet loader, the stoplist."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in [*sorted(here.glob("*.py")), here.parent / "wordnet.py"]:
        h.update(f"{path.name}\0".encode())
        h.update(path.read_bytes())
    h.update(b"stopwords.txt\0")
    h.update(resources.files("vlm_classdata.data").joinpath("stopwords.txt").read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour shapes forms, read without importing NLTK (~1 s)."""
    spec = importlib.util.find_spec("nltk")
    nltk_version = "absent"
    if spec is not None and spec.submodule_search_locations:
        version_file = Path(list(spec.submodule_search_locations)[0]) / "VERSION"
        nltk_version = version_file.read_text(encoding="utf-8").strip() if version_file.is_file() else "unknown"
    return {"nltk": nltk_version, "regex": str(regex.__version__), "unicode": unicodedata.unidata_version,
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}


def wordnet_stamp() -> list[Any] | None:
    """``[path, [[file name, size, mtime_ns], ...]]`` of the WordNet database files read, or None without one.
    An ``OSError`` (a file that cannot be listed or stat'ed) is the caller's: then nothing can be trusted."""
    try:
        where = locate_wordnet()
    except WordNetMissingError:
        return None
    files = []
    for path in where.files():
        st = path.stat()
        files.append([path.name, st.st_size, st.st_mtime_ns])
    return [str(where.path), files]


def cache_key(vocab: ClassVocabulary, method: str, plurals: bool, aliases: dict[str, list[str]]) -> str | None:
    """The sha256 naming the entry of a lexicon built from exactly these inputs (see the module docstring), or
    None when an input cannot be read (then the lexicon is built without the cache)."""
    try:
        stamp = wordnet_stamp() if method == "wordnet" else None
    except OSError:
        return None
    parts = {
        "format": FORMAT,
        "code": code_digest(),
        "libraries": library_versions(),
        "wordnet": stamp,
        "vocabulary": [[e.class_id, e.name, list(e.synonyms), e.wnid] for e in vocab],
        "aliases": aliases,
        "method": method,
        "plurals": bool(plurals),
    }
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def entry_path(key: str) -> Path:
    """The file of one entry."""
    return cache_folder() / f"{key}.json"


def load_forms(key: str, vocab: ClassVocabulary) -> list[Form] | None:
    """The forms stored under ``key``, or None when there is no entry or it cannot be trusted."""
    try:
        data = json.loads(entry_path(key).read_bytes())
        if not (isinstance(data, dict) and data.get("format") == FORMAT and data.get("key") == key):
            return None
        columns = [data[c] for c in ("text", "class_id", "kind", "flags", "note")]
        if not all(isinstance(c, list) and len(c) == len(columns[0]) for c in columns):
            return None
        texts, class_ids, kinds, flags, notes = columns
        if not (set(kinds) <= set(KINDS) and all(c in vocab for c in set(class_ids))
                and all(isinstance(t, str) and t for t in texts) and all(isinstance(n, str) for n in notes)):
            return None
        return [Form(t, c, k, _FLAG_SETS[f], n) for t, c, k, f, n in zip(texts, class_ids, kinds, flags, notes, strict=True)]
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None  # missing, unreadable, not JSON, or not this layout: rebuilt by the caller


def store_forms(key: str, forms: list[Form]) -> bool:
    """Write the entry of ``key`` (atomically) and trim the folder; False when it cannot be written."""
    entry = {
        "format": FORMAT,
        "key": key,
        "text": [f.text for f in forms],
        "class_id": [f.class_id for f in forms],
        "kind": [f.kind for f in forms],
        "flags": [",".join(f.flags) for f in forms],
        "note": [f.note for f in forms],
    }
    try:
        write_text_atomic(entry_path(key), dumps_compact(entry) + "\n")
    except (OSError, ValueError):  # read-only or full cache folder: just no cache
        return False
    _trim(cache_folder())
    return True


def _trim(where: Path) -> None:
    """Remove the oldest entries beyond :data:`MAX_ENTRIES` (each changed input leaves one behind)."""
    try:
        entries = sorted(where.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[MAX_ENTRIES:]:
            old.unlink(missing_ok=True)
    except OSError:  # another process removed one first, or the folder is read-only
        pass
