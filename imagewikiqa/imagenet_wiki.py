"""The ImageNet-Wiki reader (Bujwid & Sullivan, LANTERN 2021): its JSON records, a CSV of articles, or the
released pickle (only with the opt-in), and :func:`convert_pickle` to the JSON form once (see
:mod:`imagewikiqa.articles` for the formats)."""

from __future__ import annotations

import csv
import json
import pickle
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imagewikiqa.article_rows import (
    CLASS_COLUMNS,
    TEXT_COLUMNS,
    ArticleCollector,
    Articles,
    ClassResolver,
    looks_like_pickle,
    pickle_message,
)
from imagewikiqa.article_titles import is_correspondence_csv
from vlm_classdata.atomic import write_bytes_atomic
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.vocabulary import ClassVocabulary

_MAX_HEADING = 200


def _split_heading(text: str) -> tuple[str | None, str]:
    """``("Kit fox", body)`` when ``text`` starts with a one-line title and a blank line."""
    m = re.match(r"\s*([^\n]+?)[ \t]*\n[ \t]*\n", text)
    if not m:
        return None, text
    head = m.group(1).strip()
    if len(head) > _MAX_HEADING or head.endswith((".", "!", "?", ":", ";", ",")):
        return None, text
    return head, text[m.end():].strip()


def _wiki_records(data: Any) -> Iterator[Any]:
    """Records of the ImageNet-Wiki text data: a list of records, or ``{wnid: record | texts | text}``."""
    if isinstance(data, list):
        yield from data
    elif isinstance(data, dict) and isinstance(data.get("records"), list):
        yield from data["records"]
    elif isinstance(data, dict):
        for key, value in data.items():
            yield {"wnid": key, **value} if isinstance(value, dict) else {"wnid": key, "articles": value}
    else:
        raise UserError(f"ImageNet-Wiki data: expected a list of records, got {type(data).__name__}")


def _as_list(value: Any) -> list[Any] | None:
    """A list from a list/tuple/numpy array/string (one text), else None."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        got = value.tolist()
        return got if isinstance(got, list) else [got]
    return None


def _load_wiki_records(data: Any, vocab: ClassVocabulary, source: str,
                       titles: dict[str, list[str]]) -> tuple[Articles, Counter]:
    res, col = ClassResolver(vocab), ArticleCollector(vocab)
    for rec in _wiki_records(data):
        ids, reason = res.row(rec)
        if reason:
            col.skipped[reason] += 1
            continue
        texts = _as_list(rec["articles"]) if "articles" in rec else [rec["text"]] if "text" in rec else []
        if texts is None:
            col.skipped["bad_text"] += 1
            continue
        if not texts:
            col.skipped["no_articles"] += 1
            continue
        given = _as_list(rec.get("titles", rec.get("title"))) or []
        phrases = _as_list(rec.get("phrases")) or []
        for i, text in enumerate(texts):
            head, body = _split_heading(text) if isinstance(text, str) else (None, text)
            for cid in ids:
                wanted = titles.get(cid, [])
                title = (given[i] if i < len(given) and isinstance(given[i], str) else
                         head or (wanted[i] if i < len(wanted) else
                                  phrases[0] if phrases and isinstance(phrases[0], str) else vocab[cid].name))
                col.add([cid], title, body, source)
    return col.result()


def _load_wiki_csv(path: Path, vocab: ClassVocabulary, source: str) -> tuple[Articles, Counter]:
    if is_correspondence_csv(path):
        raise UserError(f"{path} is an ImageNet-Wiki title list (wnid, titles) without article text: pass it "
                        f"as titles (--titles) for a Wikipedia dump, or load the article texts (.json)")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    res, col = ClassResolver(vocab), ArticleCollector(vocab)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        text_col = next((fields[c] for c in TEXT_COLUMNS if c in fields), None)
        if text_col is None or not any(c in fields for c in CLASS_COLUMNS):
            raise UserError(f"{path}: a CSV of articles needs a class column ({'/'.join(CLASS_COLUMNS)}) and "
                            f"a text column ({'/'.join(TEXT_COLUMNS)}); found {', '.join(fields) or 'none'}")
        title_col = fields.get("title")
        for row in reader:
            if None in row:
                col.skipped["bad_row"] += 1
                continue
            low = {k.strip().lower(): v for k, v in row.items() if k is not None}
            ids, reason = res.row(low)
            if reason:
                col.skipped[reason] += 1
                continue
            col.add(ids, row.get(title_col) if title_col else vocab[ids[0]].name, row[text_col], source)
    return col.result()


def read_pickle(path: Path) -> Any:
    """Unpickle a file (callers have checked the opt-in)."""
    try:
        with path.open("rb") as f:
            return pickle.load(f)  # noqa: S301 - explicit opt-in, documented as unsafe
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, ValueError) as exc:
        raise UserError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})"[:300]) from None


def load_imagenet_wiki(path: Path, vocab: ClassVocabulary, allow_pickle: bool,
                       titles: dict[str, list[str]]) -> tuple[Articles, Counter]:
    """Articles per class of an ImageNet-Wiki file (JSON, CSV, or a pickle with ``allow_pickle``); ``titles``
    name the texts without a heading."""
    source = f"imagenet-wiki:{path.name}"
    if looks_like_pickle(path):
        if not allow_pickle:
            raise UserError(pickle_message(path))
        return _load_wiki_records(read_pickle(path), vocab, source, titles)
    if path.suffix.lower() == ".csv":
        return _load_wiki_csv(path, vocab, source)
    return _load_wiki_records(read_user_json(path, "ImageNet-Wiki file"), vocab, source, titles)


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON data from unpickled data (numpy arrays and scalars, tuples, sets become lists/values)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v, where) for v in value)
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist(), where)
    raise UserError(f"{where}: cannot convert a {type(value).__name__} to JSON")


def convert_pickle(src: str | Path, dst: str | Path) -> int:
    """Convert the ImageNet-Wiki pickle ``src`` to its JSON form ``dst``; return the records written.

    UNSAFE: unpickling runs whatever code the file names; convert only files you trust (e.g. the one
    released by the dataset authors). The JSON keeps the records as they are (``wnid``, ``phrases``,
    ``articles``) and is read by :func:`load_articles` without any opt-in.
    """
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not src.is_file():
        raise UserError(f"pickle file {str(src)!r} not found")
    data = _jsonable(read_pickle(src), str(src))
    if not isinstance(data, (list, dict)):
        raise UserError(f"{src}: expected a list of ImageNet-Wiki records, got {type(data).__name__}")
    write_bytes_atomic(dst, json.dumps(data, ensure_ascii=False).encode("utf-8"))
    return len(data)
