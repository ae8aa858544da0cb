"""Wanted Wikipedia titles per class (:func:`read_titles`): a mapping, a JSON file or the ImageNet-Wiki
correspondence CSV (headerless ``wnid, Title-1, ...`` rows; ``wnid, -`` = none)."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from imagewikiqa.article_rows import ClassResolver
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.vocabulary import WNID_RE, ClassVocabulary


def is_correspondence_csv(path: Path) -> bool:
    """The released ImageNet-Wiki title list: headerless ``wnid, Title-1, ...`` rows."""
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.reader(f, skipinitialspace=True):
            if row and any(c.strip() for c in row):
                return bool(WNID_RE.match(row[0].strip())) and len(row) >= 2
    return False


def _read_correspondence_csv(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, wnid, titles)`` per row of the correspondence CSV (``-`` = no titles)."""
    with path.open(newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f, skipinitialspace=True), 1):
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            yield n, cells[0], [c for c in cells[1:] if c and c != "-"]


def read_titles(titles: str | Path | Mapping[str, Any], vocab: ClassVocabulary
                ) -> tuple[dict[str, list[str]], Counter]:
    """Wanted Wikipedia titles per class id (vocabulary order) and a Counter of skip reasons.

    ``titles``: a dict ``{class id | wnid | name: [title, ...] | title}``, a JSON file of the same (or a
    list of ``{class_id|wnid|class_name, titles|title}``), or the ImageNet-Wiki correspondence CSV.
    Keys that are no class of ``vocab`` count as ``unknown_class``; ``wnid, -`` rows as ``no_titles``.
    """
    res, skipped, out = ClassResolver(vocab), Counter(), {}

    def add(ids: list[str], value: object) -> None:
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else None
        if names is None or not all(isinstance(t, str) for t in names):
            skipped["bad_titles"] += 1
            return
        names = [t.strip() for t in names if t.strip() and t.strip() != "-"]
        if not names:
            skipped["no_titles"] += 1
            return
        for cid in ids:
            have = out.setdefault(cid, [])
            have += [t for t in names if t not in have]

    def add_label(label: object, value: object) -> None:
        ids, reason = res.label(label)
        if reason:
            skipped[reason] += 1
        else:
            add(ids, value)

    if isinstance(titles, Mapping):
        items: Iterable[tuple[Any, Any]] = titles.items()
        for key, value in items:
            add_label(key, value)
    else:
        path = Path(titles).expanduser()
        if not path.is_file():
            raise UserError(f"titles file {str(titles)!r} not found")
        if path.suffix.lower() == ".csv":
            if not is_correspondence_csv(path):
                raise UserError(f"titles file {path}: expected ImageNet-Wiki 'wnid, Title-1, ...' rows")
            for _, wnid, names in _read_correspondence_csv(path):
                add_label(wnid, names)
        else:
            data = read_user_json(path, "titles file")
            if isinstance(data, dict):
                return read_titles(data, vocab)
            if not isinstance(data, list):
                raise UserError(f"titles file {path}: expected an object or a list")
            for row in data:
                ids, reason = res.row(row)
                if reason:
                    skipped[reason] += 1
                else:
                    add(ids, row.get("titles", row.get("title")))
    return {cid: out[cid] for cid in vocab.ids if cid in out}, skipped
