"""Shared pieces of the article readers: the class a raw row names (:class:`ClassResolver`) and the articles
collected per class with skip reasons (:class:`ArticleCollector`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from imagewikiqa.records import Article
from vlm_classdata.vocabulary import WNID_RE, ClassVocabulary

Articles = dict[str, list[Article]]
CLASS_COLUMNS = ("class_id", "wnid", "class_name", "class", "label", "name")
TEXT_COLUMNS = ("text", "article", "description", "content")
PICKLE_SUFFIXES = (".pkl", ".pickle")


def pickle_message(path: str | Path) -> str:
    """The one line refusing to unpickle ``path`` without the opt-in."""
    return (f"{path}: refusing to load a pickle, which can execute arbitrary code; pass --allow-pickle "
            f"(allow_pickle=True) only for a file you trust, or convert it once with "
            f"'python -m imagewikiqa.sources convert-pickle {path} articles.json' (convert_pickle)")


def looks_like_pickle(path: Path) -> bool:
    """A pickle file (protocol 2+ starts with 0x80) whatever its name."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def norm_title(title: str) -> str:
    """Case-insensitive title key: lower case, ``_`` → space, spaces collapsed."""
    return " ".join(title.replace("_", " ").lower().split())


class ClassResolver:
    """Class lookups for raw rows: class id, wnid (``entry.wnid``), then name/synonym/index."""

    def __init__(self, vocab: ClassVocabulary) -> None:
        self.vocab = vocab
        self.by_wnid: dict[str, list[str]] = {}
        for e in vocab:
            for w in {e.wnid, e.class_id if WNID_RE.match(e.class_id) else None} - {None}:
                self.by_wnid.setdefault(w, []).append(e.class_id)

    def wnid(self, value: object) -> list[str]:
        """Class ids of a wnid."""
        return list(self.by_wnid.get(str(value).strip(), [])) if isinstance(value, str) else []

    def label(self, value: object) -> tuple[list[str], str | None]:
        """Class ids of a class id / wnid / name, or ``([], reason)``."""
        if isinstance(value, str) and value.strip() in self.by_wnid and value.strip() not in self.vocab:
            return self.wnid(value), None
        cid, reason, _ = self.vocab.resolve_label(value)
        return ([cid], None) if cid is not None else ([], reason or "unknown_class")

    def row(self, row: object) -> tuple[list[str], str | None]:
        """Class ids of a row with ``class_id``/``wnid``/``class_name``... fields, or ``([], reason)``
        (``not_an_object`` for a row that is no JSON object)."""
        if not isinstance(row, Mapping):
            return [], "not_an_object"
        present = [k for k in CLASS_COLUMNS if row.get(k) not in (None, "")]
        if not present:
            return [], "no_class"
        for key in present:
            ids = (self.wnid(row[key]) if key == "wnid" else []) or self.label(row[key])[0]
            if ids:
                return ids, None
        return [], "unknown_class"


class ArticleCollector:
    """Articles per class in file order, duplicates (same class, title and text) counted."""

    def __init__(self, vocab: ClassVocabulary) -> None:
        self.vocab = vocab
        self.by_class: dict[str, list[Article]] = {}
        self.seen: set[tuple[str, str, str]] = set()
        self.skipped: Counter = Counter()

    def add(self, class_ids: Iterable[str], title: object, text: object, source: str) -> None:
        """Add one article to each of ``class_ids`` (counted as skipped when its text is empty or no string)."""
        if not isinstance(text, str):
            self.skipped["empty_text" if text is None else "bad_text"] += 1
            return
        if not text.strip():
            self.skipped["empty_text"] += 1
            return
        title = "" if title is None else str(title).strip()
        for cid in class_ids:
            key = (cid, title, text)
            if key in self.seen:
                self.skipped["duplicate_article"] += 1
                continue
            self.seen.add(key)
            self.by_class.setdefault(cid, []).append(Article(cid, title, text, source))

    def result(self) -> tuple[Articles, Counter]:
        """Articles per class in vocabulary order, and the skip reasons."""
        return {cid: self.by_class[cid] for cid in self.vocab.ids if cid in self.by_class}, self.skipped
