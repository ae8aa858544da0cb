"""Multi-label truth: the classes an image may be named by, read from a ``--multi-labels FILE``, and a pass's
sidecar scored against it (``correct_any``, ``accepted_class_ids``).

Two file forms, told apart by their first character:

* **ReaL JSON** (ImageNet ReaL, Beyer et al. 2020, ``real.json``): a JSON list with one entry per ImageNet validation
  image in file order; entry ``i`` belongs to ``ILSVRC2012_val_{i+1:08d}`` and is a list of accepted class
  *indices* into the build's ``classes.json``. An empty list means the image has no valid label.
* **JSONL**: one object per line, ``{"id": sample_id, "class_ids": [...]}`` (class ids) or
  ``{"id": sample_id, "labels": [...]}`` (class indices).

Everything is checked when the file is read (an unknown class, a bad entry, a repeated id: one :class:`UserError`
line naming it). Items with an empty accepted set, and items the file does not name, get ``correct_any`` null and
do not count in ``accuracy_any``; entries naming no item are counted (:meth:`MultiLabels.coverage`).

The answers in the pass cache do not depend on this file: ``correct_any`` is worked out from the cached reply when
the sidecar is assembled (:func:`score_frame`), so a run with another multi-label file asks the model nothing again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vlm_classdata.errors import UserError, user_jsonl_objects
from vlm_classdata.verification.items import Item
from vlm_classdata.vocabulary import ClassVocabulary

REAL_ID = "ILSVRC2012_val_{:08d}"
"""Sample id of entry ``i`` (0-based) of a ReaL JSON list: the ImageNet validation file stem, numbered from 1."""


@dataclass(frozen=True)
class Coverage:
    """How a multi-label file meets a list of items."""

    items: int  # items asked
    scored: int  # items with a non-empty accepted set
    no_valid_label: int  # items whose accepted set is empty
    not_in_file: int  # items the file does not name
    unmatched_entries: int  # file entries naming no item

    def line(self, source: str, what: str) -> str:
        """One line for stderr."""
        return (f"multi-labels {source}: {self.scored} of {self.items} {what} items have accepted classes "
                f"({self.no_valid_label} with none, {self.not_in_file} not in the file); "
                f"{self.unmatched_entries} file entries match no item")


@dataclass(frozen=True)
class MultiLabels:
    """Accepted class ids per sample id (a tuple, possibly empty), and the file they came from."""

    accepted: dict[str, tuple[str, ...]]
    source: str

    def get(self, sample_id: str) -> tuple[str, ...] | None:
        """The accepted class ids of a sample; None when the file does not name it."""
        return self.accepted.get(sample_id)

    def coverage(self, items: list[Item]) -> Coverage:
        """Counts of :class:`Coverage` for ``items``."""
        ids = {it.sample_id for it in items}
        found = [self.accepted[i] for i in ids if i in self.accepted]
        return Coverage(items=len(ids), scored=sum(1 for a in found if a), no_valid_label=sum(1 for a in found if not a),
                        not_in_file=len(ids) - len(found), unmatched_entries=len(self.accepted.keys() - ids))


def _by_index(value: object, vocab: ClassVocabulary, where: str) -> str:
    if type(value) is not int:
        raise UserError(f"{where}: class index {value!r} is not an integer")
    if not 0 <= value < len(vocab):
        raise UserError(f"{where}: class index {value} is outside the {len(vocab)} classes of {vocab.dataset}")
    return vocab.by_index(value).class_id


def _by_id(value: object, vocab: ClassVocabulary, where: str) -> str:
    if not isinstance(value, str) or value not in vocab:
        raise UserError(f"{where}: unknown class id {value!r} (not in {vocab.dataset})")
    return value


def _class_list(values: object, vocab: ClassVocabulary, where: str, indices: bool) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise UserError(f"{where}: expected a list of class {'indices' if indices else 'ids'}, got {values!r}")
    read = _by_index if indices else _by_id
    return tuple(dict.fromkeys(read(v, vocab, where) for v in values))


def _read_real(path: Path, text: str, vocab: ClassVocabulary) -> dict[str, tuple[str, ...]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UserError(f"multi-labels {path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise UserError(f"multi-labels {path}: expected a JSON list (ReaL) or JSONL rows")
    return {REAL_ID.format(i + 1): _class_list(entry, vocab, f"multi-labels {path} entry {i}", indices=True)
            for i, entry in enumerate(data)}


def _read_jsonl(path: Path, text: str, vocab: ClassVocabulary) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for where, row in user_jsonl_objects(text, f"multi-labels {path}"):
        if row.get("id") is None or str(row["id"]) == "":
            raise UserError(f"{where}: expected {{\"id\": ..., \"class_ids\": [...]}} or {{\"id\": ..., "
                            f"\"labels\": [...]}}")
        has = [k for k in ("class_ids", "labels") if k in row]
        if len(has) != 1:
            raise UserError(f"{where}: give exactly one of class_ids and labels")
        sample_id = str(row["id"])
        if sample_id in out:
            raise UserError(f"{where}: id {sample_id!r} repeated")
        out[sample_id] = _class_list(row[has[0]], vocab, where, indices=has[0] == "labels")
    return out


def load_multi_labels(path: str | Path, vocab: ClassVocabulary) -> MultiLabels:
    """Read and check a multi-label file (ReaL JSON list or JSONL, see the module docstring) against ``vocab``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"multi-labels {str(path)!r} not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"multi-labels {path}: not UTF-8 text") from None
    body = text.lstrip()
    if not body:
        raise UserError(f"multi-labels {path}: empty file")
    accepted = _read_real(p, body, vocab) if body.startswith("[") else _read_jsonl(p, text, vocab)
    if not accepted:
        raise UserError(f"multi-labels {path}: no entries")
    return MultiLabels(accepted, str(path))
