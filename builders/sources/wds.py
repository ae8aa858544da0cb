"""WebDataset shards: a folder of ``*.tar`` (searched recursively), one tar, or a brace pattern
(``dir/shard-{00000..00009}.tar``).

Members are grouped as WebDataset does: the sample key is the member name up to the first dot of its
base name, the extension (lower-cased) is the rest; consecutive members with one key form a sample. The
image is the first member whose extension is in ``image_exts`` (in that order of preference). The label
comes from ``<key>.cls`` (``label_field="cls"``), ``<key>.txt`` (``"txt"``) or a field of ``<key>.json``
(``"json:<field>"``, e.g. img2dataset's ``save_additional_columns``); it goes through
:meth:`ClassVocabulary.resolve_label` (class id, display name, unambiguous synonym; a JSON integer indexes
the vocabulary; a name several classes share is ``ambiguous_class``). A ``.json`` whose ``"status"`` is not
``"success"`` (img2dataset's failed downloads) skips the sample with that status as the reason. Opening the
source reads the first samples (up to 64 with an image) and fails with one line when none of them carries
the label member or JSON field (naming what they do carry), or when labels are there but none names a class.
The split name (``split``) must be usable as a file name.

Keys are ``safe_key("<shard path without .tar>_<key>")``, with ``__dup2``, ``__dup3``, ... appended when two
different names give one safe key (a key repeated within a tar is skipped as ``duplicate_key``); locators are
``"<shard path relative to the root>#<key>"``; a key too long for a file name is skipped as
``unsafe_name``. ``scan`` walks tar headers (seeking over payloads) and
reads only the small label/json members. A truncated or unreadable shard yields what could be read, the
sample that was cut off as ``unreadable``, and one ``<shard>__truncated`` ref skipped as
``unreadable_shard``.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import tarfile
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from braceexpand import braceexpand

from builders.records import SampleRef, safe_key
from builders.sources.base import Source
from builders.sources.tar_samples import TarBroken, TarSample, walk_tar
from vlm_classdata.errors import UserError
from vlm_classdata.names import check_name, name_problem
from vlm_classdata.vocabulary import ClassVocabulary

_INDEX_CACHE = 4  # shard indexes kept per process by read()
_STATUS_RE = re.compile(r"[^a-z0-9]+")
_PROBE_SAMPLES = 64  # samples with an image looked at when the source is opened


@dataclass
class _ShardIndex:
    """What read() needs of one shard: image member (offset, size) per key."""

    images: dict[str, tuple[int, int] | None]
    broken: str | None


class WebDatasetSource(Source):
    """WebDataset tar shards (see the module docstring)."""

    kind = "webdataset"

    def __init__(self, path: str, vocabulary: ClassVocabulary, label_field: str = "cls", split: str = "train",
                 image_exts: tuple = ("jpg", "jpeg", "png", "webp")) -> None:
        if vocabulary is None:
            raise UserError("a WebDataset source needs a class list (vocabulary)")
        super().__init__(vocabulary)
        self.path = str(path)
        self.split = check_name(str(split), "split name")
        self.label_field = str(label_field)
        if self.label_field in ("cls", "txt"):
            self._label_ext, self._json_field = self.label_field, None
        elif self.label_field.startswith("json:") and self.label_field[5:].strip():
            self._label_ext, self._json_field = "json", self.label_field[5:].strip()
        else:
            raise UserError(f"label_field must be 'cls', 'txt' or 'json:<field>', not {self.label_field!r}")
        self.image_exts = tuple(dict.fromkeys(str(e).lower().lstrip(".") for e in image_exts if str(e).strip()))
        if not self.image_exts:
            raise UserError("image_exts is empty")
        self._root, self._shards = self._find_shards(self.path)
        self._shard_set = frozenset(self._shards)
        stems = sorted(safe_key(self._stem(r)) for r in self._shards)
        # keys are "<stem>_<key>": two shards can only produce the same key when one safe stem equals
        # another or is a prefix of it followed by "_"; only then must scan track keys across shards
        self._stems_may_collide = len(set(stems)) != len(stems) or any(
            (i := bisect.bisect_left(stems, s + "_")) < len(stems) and stems[i].startswith(s + "_")
            for s in stems)
        self._index: OrderedDict[str, _ShardIndex] = OrderedDict()
        self._probe_labels()

    # ----- shards -------------------------------------------------------------------------------
    @staticmethod
    def _find_shards(spec: str) -> tuple[Path, list[str]]:
        """``(root, shard paths relative to root)`` in a fixed order."""
        if "://" in spec or spec.startswith("pipe:"):
            raise UserError(f"WebDataset path {spec!r}: only local shards are supported")
        if "{" in spec and "}" in spec:
            paths = [Path(p).expanduser() for p in dict.fromkeys(braceexpand(spec))]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise UserError(f"WebDataset pattern {spec!r}: {len(missing)} of {len(paths)} shards missing, "
                                f"e.g. {missing[0]}")
            paths = [p.resolve() for p in paths]
            root = Path(os.path.commonpath([str(p.parent) for p in paths]))
            return root, [p.relative_to(root).as_posix() for p in paths]
        p = Path(spec).expanduser()
        if p.is_file():
            p = p.resolve()
            return p.parent, [p.name]
        if p.is_dir():
            root = p.resolve()
            rels = sorted((q.relative_to(root).as_posix() for q in root.rglob("*.tar")
                           if q.is_file() and not any(part.startswith(".") for part in q.relative_to(root).parts)),
                          key=lambda r: r.split("/"))
            if not rels:
                raise UserError(f"WebDataset folder {spec!r} has no .tar shards")
            return root, rels
        raise UserError(f"WebDataset path {spec!r} does not exist")

    @staticmethod
    def _stem(rel: str) -> str:
        for suffix in (".tar.gz", ".tgz", ".tar"):
            if rel.endswith(suffix):
                return rel[: -len(suffix)]
        return rel

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_index"] = OrderedDict()
        return state

    # ----- labels -------------------------------------------------------------------------------
    def _resolve(self, value: object) -> tuple[str | None, str | None, str]:
        """``(class_id, skip, detail)`` via the vocabulary's one label resolver."""
        return self.vocabulary.resolve_label(value)

    def _classify(self, sample: TarSample) -> tuple[str | None, str | None, str]:
        """``(class_id, skip, detail)`` of one sample."""
        _, value, skip, detail = self._label_value(sample)
        return (None, skip, detail) if skip is not None else self._resolve(value)

    def _label_value(self, sample: TarSample) -> tuple[dict | None, object, str | None, str]:
        """``(json object or None, raw label, skip, detail)``; ``skip`` set when there is no usable label."""
        meta = None
        if "json" in sample.members:
            raw = sample.payload.get("json")
            try:
                meta = json.loads(raw.decode("utf-8")) if raw is not None else None
            except (UnicodeDecodeError, ValueError):
                meta = None
                if self._json_field is not None:
                    return None, None, "bad_label", "json member is not valid JSON"
            if isinstance(meta, dict) and meta.get("status") not in (None, "success"):
                status = _STATUS_RE.sub("_", str(meta["status"]).lower()).strip("_")[:40] or "no_image"
                return meta, None, status, str(meta.get("error_message") or "")[:200]
        meta = meta if isinstance(meta, dict) else None
        if not any(ext in sample.members for ext in self.image_exts):
            return meta, None, "no_image", ""
        if self._label_ext not in sample.members:
            return meta, None, "no_label", f"no .{self._label_ext} member"
        if self._json_field is not None:
            if meta is None:
                return None, None, "bad_label", "json member is not an object"
            if self._json_field not in meta:
                return meta, None, "no_label", f"no {self._json_field!r} in json"
            return meta, meta[self._json_field], None, ""
        raw = sample.payload.get(self._label_ext)
        if raw is None:
            return meta, None, "bad_label", "label member too large"
        try:
            return meta, raw.decode("utf-8"), None, ""
        except UnicodeDecodeError:
            return meta, None, "bad_label", "label member is not UTF-8 text"

    def _probe_labels(self) -> None:
        """UserError when the first samples with an image show the label is absent or names no class.

        Stops at the first label that resolves, so a usable source costs a few header reads.
        """
        read_exts = frozenset({self._label_ext, "json"})
        looked, values = 0, []
        fields: dict[str, None] = {}
        members: dict[str, None] = {}
        for rel in self._shards:
            walker = walk_tar(self._root / rel, read_exts)
            try:
                for item in walker:
                    if isinstance(item, TarBroken):
                        break
                    meta, value, skip, _ = self._label_value(item)
                    if skip not in (None, "no_label", "bad_label"):
                        continue  # a failed download or a sample without an image says nothing
                    looked += 1
                    members.update(dict.fromkeys(item.members))
                    fields.update(dict.fromkeys(meta or ()))
                    if skip is None:
                        if self._resolve(value)[0] is not None:
                            return
                        values.append(value)
                    if looked >= _PROBE_SAMPLES:
                        break
            finally:
                walker.close()
            if looked >= _PROBE_SAMPLES:
                break
        if looked == 0:
            return  # nothing usable at the start: the scan counts every sample with its reason
        first = f"{self.path}: none of the first {looked} samples with an image"
        if values:
            shown = ", ".join(repr(v)[:60] for v in list(dict.fromkeys(map(str, values)))[:3])
            raise UserError(f"{first} has a {self.label_field} label that names a class of "
                            f"{self.vocabulary.dataset} (e.g. {shown}); check --label-field and --classes")
        if self._json_field is not None:
            raise UserError(f"{first} has the field {self._json_field!r} in its .json; fields present: "
                            f"{', '.join(sorted(fields)) or 'none'}")
        raise UserError(f"{first} has a .{self._label_ext} member; members present: "
                        f"{', '.join(sorted(members))}; choose --label-field cls, txt or json:<field>")

    # ----- Source API ---------------------------------------------------------------------------
    def splits(self) -> list[str]:
        return [self.split]

    def scan(self, split: str) -> Iterator[SampleRef]:
        """Samples of every shard in shard order, then member order; label members are the only reads."""
        if split != self.split:
            raise UserError(f"WebDataset source {self.path!r} has only the split {self.split!r}, not {split!r}")
        read_exts = frozenset({self._label_ext, "json"})
        seen: set[str] = set()  # output keys; kept across shards only when shard stems could collide
        for rel in self._shards:
            stem = self._stem(rel)
            if not self._stems_may_collide:
                seen = set()
            raw_seen: set[str] = set()
            broken: TarBroken | None = None
            for item in walk_tar(self._root / rel, read_exts):
                if isinstance(item, TarBroken):
                    broken = item
                    continue
                locator = f"{rel}#{item.key}"
                key = self._unique(safe_key(f"{stem}_{item.key}"), seen)
                seen.add(key)
                if problem := name_problem(key):
                    yield SampleRef(key, split, None, locator, "unsafe_name", f"key {key[:80]!r}...: {problem}")
                    continue
                if item.key in raw_seen:
                    yield SampleRef(key, split, None, locator, "duplicate_key", f"key {item.key!r} repeated in {rel}")
                    continue
                raw_seen.add(item.key)
                if broken is not None:
                    yield SampleRef(key, split, None, locator, "unreadable", "cut off by a truncated shard")
                    continue
                class_id, skip, detail = self._classify(item)
                yield SampleRef(key, split, class_id if skip is None else None, locator, skip, detail)
            if broken is not None:
                key = self._unique(safe_key(f"{stem}__truncated"), seen)
                seen.add(key)
                yield SampleRef(key, split, None, f"{rel}#", "unreadable_shard", broken.detail)

    @staticmethod
    def _unique(key: str, seen: set[str]) -> str:
        """``key``, or ``key__dup2``, ``key__dup3``, ... when already used (distinct names, same safe key)."""
        n = 2
        out = key
        while out in seen:
            out = f"{key}__dup{n}"
            n += 1
        return out

    def _shard_index(self, rel: str) -> _ShardIndex:
        if rel in self._index:
            self._index.move_to_end(rel)
            return self._index[rel]
        images: dict[str, tuple[int, int] | None] = {}
        broken = None
        for item in walk_tar(self._root / rel, frozenset()):
            if isinstance(item, TarBroken):
                broken = item.detail
                continue
            if item.key in images or broken is not None:  # repeated, or cut off by the damage
                continue
            ext = next((e for e in self.image_exts if e in item.members), None)
            images[item.key] = None if ext is None else (item.members[ext].offset_data, item.members[ext].size)
        index = _ShardIndex(images, broken)
        self._index[rel] = index
        while len(self._index) > _INDEX_CACHE:
            self._index.popitem(last=False)
        return index

    def _split_locator(self, locator: str) -> tuple[str, str] | None:
        start = 0
        while (pos := locator.find("#", start)) >= 0:
            if locator[:pos] in self._shard_set:
                return locator[:pos], locator[pos + 1:]
            start = pos + 1
        return None

    def _read_shard(self, rel: str, wanted: list[tuple[int, str]]) -> dict[int, tuple[bytes | None, str | None]]:
        """Read the image members of ``wanted`` ``(position, key)`` from one shard, in file order."""
        out: dict[int, tuple[bytes | None, str | None]] = {}
        try:
            index = self._shard_index(rel)
        except Exception:
            return {i: (None, "unreadable") for i, _ in wanted}
        todo = []
        for i, key in wanted:
            if key not in index.images:
                out[i] = (None, "unreadable" if index.broken else "not_found")
            elif index.images[key] is None:
                out[i] = (None, "no_image")
            else:
                todo.append((index.images[key], i))
        if not todo:
            return out
        try:
            with tarfile.open(self._root / rel, mode="r:*") as tf:
                fobj = tf.fileobj
                for (offset, size), i in sorted(todo):
                    try:
                        fobj.seek(offset)
                        data = fobj.read(size)
                    except Exception:
                        data = b""
                    out[i] = (data, None) if len(data) == size else (None, "unreadable")
        except Exception:
            for _, i in todo:
                out.setdefault(i, (None, "unreadable"))
        return out

    def read(self, refs: Sequence[SampleRef]) -> Iterator[tuple[SampleRef, bytes | None, str | None]]:
        """Image bytes per ref in the given order; each shard is opened once per call, read in file order."""
        refs = list(refs)
        results: dict[int, tuple[bytes | None, str | None]] = {}
        by_shard: dict[str, list[tuple[int, str]]] = {}
        for i, ref in enumerate(refs):
            if ref.skip:
                results[i] = (None, ref.skip)
                continue
            parsed = self._split_locator(ref.locator)
            if parsed is None or not parsed[1]:
                results[i] = (None, "bad_locator")
                continue
            by_shard.setdefault(parsed[0], []).append((i, parsed[1]))
        shard_of = {i: rel for rel, items in by_shard.items() for i, _ in items}
        for i, ref in enumerate(refs):
            if i not in results:
                rel = shard_of[i]
                results.update(self._read_shard(rel, by_shard.pop(rel)))
            data, reason = results.pop(i)
            yield ref, data, reason

    def input_paths(self) -> list[str]:
        """The shard files (the folder that holds them is not scanned beyond them)."""
        return [str(self._root / rel) for rel in self._shards]

    def describe(self) -> dict:
        return {**super().describe(), "path": self.path, "root": str(self._root), "split": self.split,
                "label_field": self.label_field, "image_exts": list(self.image_exts),
                "num_shards": len(self._shards)}
