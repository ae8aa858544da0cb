"""One class vocabulary keyed by class id (wnid or dataset id), never by name.

Every class has exactly one unique display name; renames made to reach uniqueness are kept explicit in
:attr:`ClassVocabulary.renamed`. Bundled vocabularies: imagenet1k, flowers102, stanford_cars, caltech101,
cub200, food101, objectnet (provenance in each file's ``source`` field).

Labels of every kind (ClassLabel names, folder names, strings, integers, JSON fields, class-map values) go
through one resolution, :meth:`ClassVocabulary.resolve_label`: class id or WordNet id, then display name,
then a synonym only one class has; a name several classes share is ``ambiguous_class`` (candidates named),
an integer indexes the vocabulary.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from vlm_classdata.atomic import write_json_atomic
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.wordnet import synset_from_wnid

BUNDLED = ("imagenet1k", "flowers102", "stanford_cars", "caltech101", "cub200", "food101", "objectnet")
WNID_RE = re.compile(r"^[nvar]\d{8}$")


def normalize_name(text: str) -> str:
    """Lower-case, ``_``/``-`` → space, collapse spaces (used to match folder names to class names)."""
    return " ".join(re.sub(r"[_\-]+", " ", text).lower().split())


def ambiguity(name: str, found: Sequence[ClassEntry]) -> str:
    """Detail of an ``ambiguous_class`` skip: the name and every candidate's id and display name."""
    listed = ", ".join(f"{e.class_id} ({e.name})" for e in found[:8])
    more = f", and {len(found) - 8} more" if len(found) > 8 else ""
    return f"label {name!r} names {len(found)} classes: {listed}{more}"


@dataclass(frozen=True)
class ClassEntry:
    """One class: its position, stable id, unique display name, other names and WordNet id."""

    index: int
    class_id: str
    name: str
    synonyms: tuple[str, ...] = ()
    wnid: str | None = None

    @property
    def all_names(self) -> tuple[str, ...]:
        """Display name first, then synonyms without repeats."""
        seen, out = set(), []
        for n in (self.name, *self.synonyms):
            if n.lower() not in seen:
                seen.add(n.lower())
                out.append(n)
        return tuple(out)


@dataclass
class ClassVocabulary:
    """An ordered set of classes with lookups by id, index and (case-insensitive) name."""

    dataset: str
    entries: list[ClassEntry]
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_id = {e.class_id: e for e in self.entries}
        self._by_name = {e.name.lower(): e for e in self.entries}
        if len(self._by_id) != len(self.entries):
            raise UserError(f"class vocabulary {self.dataset!r} has duplicate class ids")
        if len(self._by_name) != len(self.entries):
            raise UserError(f"class vocabulary {self.dataset!r} has duplicate display names")
        self._wnid_owners: dict[str, list[ClassEntry]] = {}
        for e in self.entries:
            if e.wnid and e.wnid != e.class_id and e.wnid not in self._by_id:
                self._wnid_owners.setdefault(e.wnid, []).append(e)
        self._norm_names: dict[str, list[ClassEntry]] | None = None  # built on first use
        self._norm_synonyms: dict[str, list[ClassEntry]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __contains__(self, class_id: object) -> bool:
        return class_id in self._by_id

    def __getitem__(self, class_id: str) -> ClassEntry:
        try:
            return self._by_id[class_id]
        except KeyError:
            raise KeyError(f"class id {class_id!r} not in vocabulary {self.dataset!r}") from None

    @property
    def ids(self) -> list[str]:
        return [e.class_id for e in self.entries]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def by_index(self, index: int) -> ClassEntry:
        return self.entries[index]

    def by_name(self, name: str) -> ClassEntry | None:
        """Entry whose display name equals ``name`` (case-insensitive), else None."""
        return self._by_name.get(name.lower())

    def candidates(self, name: str) -> list[ClassEntry]:
        """The classes ``name`` denotes, by the one name rule every label kind goes through.

        The first step that finds anything decides: exact class id, WordNet id, display name
        (case-insensitive), display name after :func:`normalize_name`, then synonyms after it. One entry
        is a match; several mean the name is ambiguous (WordNet's two "crane"s); none, unknown.
        """
        text = name.strip()
        if text in self._by_id:
            return [self._by_id[text]]
        if text in self._wnid_owners:
            return list(self._wnid_owners[text])
        if (entry := self._by_name.get(text.lower())) is not None:
            return [entry]
        if self._norm_names is None:
            names: dict[str, list[ClassEntry]] = {}
            synonyms: dict[str, list[ClassEntry]] = {}
            for e in self.entries:
                names.setdefault(normalize_name(e.name), []).append(e)
                for n in {normalize_name(s) for s in e.synonyms} - {normalize_name(e.name)}:
                    synonyms.setdefault(n, []).append(e)
            self._norm_names, self._norm_synonyms = names, synonyms
        norm = normalize_name(text)
        return list(self._norm_names.get(norm) or self._norm_synonyms.get(norm) or ())

    def resolve_label(self, value: object) -> tuple[str | None, str | None, str]:
        """``(class_id, skip_reason, detail)`` for a raw label of any kind, from any source.

        None, NaN and blank strings are ``no_label``. An integer (or integral float) is an index into the
        vocabulary. A string goes through :meth:`candidates`; a name several classes share is
        ``ambiguous_class`` with the candidates' ids and names in ``detail``; a string of digits that names
        no class is then tried as an index. Anything else is ``unknown_class`` with the label in ``detail``.
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None, "no_label", ""
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None, "unknown_class", f"label {value!r}"[:200]
        if isinstance(value, float):
            if not value.is_integer():
                return None, "unknown_class", f"label {value!r}"
            value = int(value)
        if isinstance(value, int):
            return self._by_index(value)
        text = value.strip()
        if not text:
            return None, "no_label", ""
        found = self.candidates(text)
        if len(found) == 1:
            return found[0].class_id, None, ""
        if found:
            return None, "ambiguous_class", ambiguity(text, found)
        if re.fullmatch(r"[+-]?\d+", text):
            return self._by_index(int(text))
        return None, "unknown_class", f"label {text!r}"[:200]

    def _by_index(self, index: int) -> tuple[str | None, str | None, str]:
        if 0 <= index < len(self.entries):
            return self.entries[index].class_id, None, ""
        return None, "unknown_class", f"label {index} (index out of range 0..{len(self.entries) - 1})"

    def subset(self, class_ids: Iterable[str]) -> ClassVocabulary:
        """A vocabulary of the given ids, in this vocabulary's order, re-indexed from 0."""
        keep = set(class_ids)
        missing = keep - set(self._by_id)
        if missing:
            raise UserError(f"unknown class ids for {self.dataset}: {', '.join(sorted(missing)[:5])}")
        picked = [e for e in self.entries if e.class_id in keep]
        return ClassVocabulary(
            self.dataset,
            [ClassEntry(i, e.class_id, e.name, e.synonyms, e.wnid) for i, e in enumerate(picked)],
            {k: v for k, v in self.renamed.items() if k in keep},
        )

    def to_json(self) -> dict:
        """Plain JSON form (the same shape the loaders read)."""
        return {"dataset": self.dataset, "classes": [
            {"id": e.class_id, "name": e.name, **({"synonyms": list(e.synonyms)} if e.synonyms else {}),
             **({"wnid": e.wnid} if e.wnid and e.wnid != e.class_id else {})} for e in self.entries],
            "renamed": self.renamed}

    def save(self, path: str | Path) -> None:
        """Write this vocabulary as ``classes.json`` (the one writer of that file): :meth:`to_json` in the
        project's JSON layout (:func:`vlm_classdata.atomic.json_text`), published atomically. :meth:`load`
        reads it back to an equal vocabulary."""
        write_json_atomic(Path(path), self.to_json())

    # ----- constructors -------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: dict, dataset: str | None = None) -> ClassVocabulary:
        """Build from ``{"dataset", "classes": [{"id", "name", "wordnet_names"|"synonyms", ...}]}``."""
        entries, renamed = [], dict(data.get("renamed", {}))
        for i, c in enumerate(data["classes"]):
            cid = str(c["id"])
            syn = tuple(n for n in (c.get("wordnet_names") or c.get("synonyms") or ()) if n != c["name"])
            wnid = c.get("wnid") or (cid if WNID_RE.match(cid) else None)
            entries.append(ClassEntry(i, cid, c["name"], syn, wnid))
            if "renamed_because" in c:
                renamed[cid] = {"from": c.get("original_name", ""), "to": c["name"], "why": c["renamed_because"]}
        return cls(dataset or data.get("dataset", "custom"), entries, renamed)

    @classmethod
    def bundled(cls, name: str) -> ClassVocabulary:
        """One of :data:`BUNDLED`."""
        if name not in BUNDLED:
            raise UserError(f"unknown class list {name!r}; bundled: {', '.join(BUNDLED)}")
        text = resources.files("vlm_classdata.data.classlists").joinpath(f"{name}.json").read_text()
        return cls.from_json(json.loads(text), name)

    @classmethod
    def from_names(cls, names: Sequence[str], ids: Sequence[str] | None = None,
                   dataset: str = "custom") -> ClassVocabulary:
        """From display names (ids default to the index); repeated names get a numbered suffix, recorded."""
        ids = [str(i) for i in range(len(names))] if ids is None else [str(i) for i in ids]
        if len(ids) != len(names):
            raise UserError(f"{len(ids)} class ids but {len(names)} class names")
        seen: dict[str, int] = {}
        entries, renamed = [], {}
        for i, (cid, name) in enumerate(zip(ids, names, strict=True)):
            name = " ".join(str(name).split())
            unique = name
            while unique.lower() in seen:
                seen[name.lower()] += 1
                unique = f"{name} ({seen[name.lower()]})"
            seen.setdefault(name.lower(), 1)
            seen.setdefault(unique.lower(), 1)
            if unique != name:
                renamed[cid] = {"from": name, "to": unique, "why": "repeated display name"}
            entries.append(ClassEntry(i, cid, unique, (), cid if WNID_RE.match(cid) else None))
        return cls(dataset, entries, renamed)

    @classmethod
    def from_wnids(cls, wnids: Sequence[str], dataset: str = "wordnet") -> ClassVocabulary:
        """Classes named by WordNet: ImageNet-1k clean names where known, else the synset's first lemma."""
        inet = cls.bundled("imagenet1k")
        names, syns = [], []
        for w in wnids:
            if w in inet:
                names.append(inet[w].name)
                syns.append(inet[w].synonyms)
            else:
                lemmas = [lemma.replace("_", " ") for lemma in synset_from_wnid(w).lemma_names()]
                names.append(lemmas[0])
                syns.append(tuple(lemmas[1:]))
        vocab = cls.from_names(names, list(wnids), dataset)
        vocab.entries = [ClassEntry(e.index, e.class_id, e.name, s, e.class_id) for e, s in zip(vocab.entries, syns, strict=True)]
        vocab.__post_init__()
        return vocab

    @classmethod
    def load(cls, spec: str | Path) -> ClassVocabulary:
        """A bundled name, or a file: ``.json`` (list of names, or {"dataset", "classes": [...]}) or ``.txt`` (one
        per line). The dataset name is the JSON's ``dataset`` field, else the file's stem.

        Text lines may be ``name``, ``id<TAB>name`` or ``wnid name, synonym, ...`` (LOC_synset_mapping).
        """
        spec = str(spec)
        if spec in BUNDLED:
            return cls.bundled(spec)
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"class list {spec!r} is neither a bundled list ({', '.join(BUNDLED)}) nor a file")
        dataset = path.stem
        if path.suffix == ".json":
            data = read_user_json(path, "class list")
            if isinstance(data, list):
                return cls.from_names([str(x) for x in data], dataset=dataset)
            if isinstance(data, dict) and "classes" in data:  # our own format names its dataset
                return cls.from_json(data, str(data.get("dataset") or dataset))
            if isinstance(data, dict):
                return cls.from_names([str(v) for v in data.values()], list(data.keys()), dataset)
            raise UserError(f"class list {spec}: expected a list or an object")
        lines = [ln.rstrip("\n") for ln in path.read_text().splitlines() if ln.strip()]
        if lines and all("\t" in ln for ln in lines):
            pairs = [ln.split("\t", 1) for ln in lines]
            return cls.from_names([p[1] for p in pairs], [p[0] for p in pairs], dataset)
        if lines and all(WNID_RE.match(ln.split(" ", 1)[0]) for ln in lines):
            ids = [ln.split(" ", 1)[0] for ln in lines]
            names = [ln.split(" ", 1)[1].split(",")[0].strip() for ln in lines]
            return cls.from_names(names, ids, dataset)
        return cls.from_names(lines, dataset=dataset)
