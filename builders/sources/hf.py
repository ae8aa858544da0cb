"""A Hugging Face ``datasets`` dataset: a local parquet/arrow/imagefolder folder, a ``save_to_disk`` folder,
a single ``.parquet``/``.arrow`` file, or a Hub id (when online).

The image column is cast to ``datasets.Image(decode=False)``, so images are never decoded here: ``read``
returns the stored bytes (or the bytes of the stored path when only a path is kept). A list-of-images column
(TRL's ``images``, as in this project's ``hf`` output) gives each row its first image; without
``image_column``, ``image`` is read, or ``images`` when the dataset has only that. Scans read the label
(and key) columns only. Locators are ``"<split>#<row>"``; keys are ``<split>_<row:08d>`` or the
``key_column`` value. A single saved ``Dataset`` (not a ``DatasetDict``) is one split named after its
recorded split, else ``train``.

Labels: a ``ClassLabel`` column gives the vocabulary when none is passed (ids ``"0"``, ``"1"``, ..., or the
names themselves when they are all WordNet ids, named as :meth:`ClassVocabulary.from_wnids` does). With a
vocabulary, ClassLabel names, string labels and integer labels all go through the one resolver,
:meth:`ClassVocabulary.resolve_label` (id, display name, unambiguous synonym; integers index the
vocabulary); without one, the sorted distinct strings of a string column become the classes. ``-1``/null
labels are skipped as ``no_label``, names several classes share as ``ambiguous_class`` (candidates in the
detail), anything else that does not resolve as ``unknown_class``. When a vocabulary is given and none of
the first labels of a split resolve, opening the dataset fails with one line naming the column and examples.

Split names become file names in the outputs: a split whose name cannot be one (``../x``, ``/abs``) is one
:class:`UserError` when the dataset is opened. Keys too long for a file name are skipped as ``unsafe_name``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from builders.records import SampleRef, safe_key
from builders.sources.base import Source
from vlm_classdata.errors import UserError, one_line
from vlm_classdata.local_datasets import LocalKind, detect_local_dataset, open_local_dataset
from vlm_classdata.names import name_problem
from vlm_classdata.vocabulary import WNID_RE, ClassVocabulary

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_SCAN_BATCH = 65_536
_READ_RUN = 256  # rows fetched per contiguous slice in read()
_PROBE_ROWS = 1000  # first rows of each split whose labels must not all fail to resolve


#: how each kind of local dataset is opened (as the manifest's source "loader" says)
_LOADERS = {LocalKind.SAVED_DATASET_DICT: "load_from_disk", LocalKind.SAVED_DATASET: "load_from_disk",
            LocalKind.ARROW_FILE: "from_file"}


def _image_list(feature: Any) -> bool:
    """Whether a ``datasets`` feature is a list of ``Image`` (TRL's ``images`` column)."""
    import datasets  # heavy: only a Hugging Face source needs it

    return isinstance(feature, (datasets.List, datasets.LargeList)) and isinstance(feature.feature, datasets.Image)


class HFSource(Source):
    """A classification dataset loaded with Hugging Face ``datasets`` (see the module docstring)."""

    kind = "hf"

    def __init__(self, path: str, vocabulary: ClassVocabulary | None = None, image_column: str | None = None,
                 label_column: str = "label", splits: list[str] | None = None,
                 key_column: str | None = None) -> None:
        self.path = str(path)
        self._pick_images = image_column is None  # "images" stands in for a missing default "image" column
        self.image_column = image_column or "image"
        self.label_column = label_column
        self.key_column = key_column
        self._local = Path(self.path).expanduser()
        if not self._local.exists():
            if self.path.startswith((".", "/", "~")) or not _HUB_ID.match(self.path):
                raise UserError(f"Hugging Face dataset path {self.path!r} does not exist")
            self._local = None  # a Hub id
        self._ds: dict[str, Any] | None = None
        self._views: dict[str, Any] = {}
        self._files: dict[str, list[str]] | None = None
        self.loader = ""
        datasets = self._load()
        available = list(datasets)
        if splits is not None:
            missing = [s for s in splits if s not in datasets]
            if missing:
                raise UserError(f"{self.path}: no split {missing[0]!r}; available: {', '.join(available)}")
            self._splits = list(dict.fromkeys(splits))
        else:
            self._splits = available
        if not self._splits:
            raise UserError(f"{self.path}: the dataset has no splits")
        for name in self._splits:
            if problem := name_problem(name):
                raise UserError(f"{self.path}: split {name!r} cannot be used in a file name: {problem}")
        first = datasets[self._splits[0]]
        for name in self._splits:
            cols = datasets[name].column_names
            for role, col in (("image", self.image_column), ("label", label_column), ("key", key_column)):
                if col is not None and col not in cols:
                    raise UserError(f"{self.path} [{name}]: no {role} column {col!r}; columns: {', '.join(cols)}")
        self._check_image_feature(first.features[self.image_column])
        self._label_kind, vocabulary = self._label_setup(first, vocabulary)
        super().__init__(vocabulary)
        self._classlabel_map: list[tuple[str | None, str | None, str]] = []
        if self._label_kind == "classlabel":
            names = first.features[label_column].names
            if self._own_vocab:
                self._classlabel_map = [(e.class_id, None, "") for e in vocabulary.entries]
            else:
                self._classlabel_map = [vocabulary.resolve_label(n) for n in names]
            self._classlabel_names = list(names)
        self._num_rows = {s: int(datasets[s].num_rows) for s in self._splits}
        if not self._own_vocab:
            for name in self._splits:
                self._probe_labels(name)

    # ----- loading ------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        """Open the dataset; cast the image column to undecoded images; remember the backing files."""
        import datasets  # heavy: only a Hugging Face source needs it

        p = self._local
        try:
            if p is None:
                self.loader = "load_dataset"
                loaded = datasets.load_dataset(self.path)
            else:  # the one opener of a local dataset; it says what it cannot open in one line
                self.loader = _LOADERS.get(detect_local_dataset(p), "load_dataset")
                loaded = open_local_dataset(self.path)
        except UserError:
            raise
        except Exception as exc:  # datasets raises many types for unusable Hub ids
            raise UserError(f"cannot load Hugging Face Hub dataset {self.path!r}: {one_line(exc, 300)}") from None
        if isinstance(loaded, datasets.Dataset):
            loaded = {str(loaded.split) if loaded.split else "train": loaded}
        columns = next(iter(loaded.values())).column_names if loaded else []
        if self._pick_images and "image" not in columns and "images" in columns:
            self.image_column = "images"
        out = {str(k): self._cast(v) for k, v in dict(loaded).items()}
        files: dict[str, list[str]] | None = {}
        for name, ds in out.items():
            names = [f["filename"] for f in ds.cache_files]
            if ds._indices is not None or not names:
                files = None
                break
            files[name] = names
        self._files = files
        self._ds = out
        self._views = {}
        return out

    def _cast(self, ds: Any) -> Any:
        import datasets  # heavy: only a Hugging Face source needs it

        feature = ds.features.get(self.image_column)
        if isinstance(feature, datasets.Image) and feature.decode:
            ds = ds.cast_column(self.image_column, datasets.Image(decode=False))
        elif _image_list(feature) and feature.feature.decode:
            ds = ds.cast_column(self.image_column, datasets.List(datasets.Image(decode=False)))
        return ds

    def _datasets(self) -> dict[str, Any]:
        """The open datasets; in a worker, reopened from the backing arrow files (or reloaded)."""
        if self._ds is None:
            if self._files and all(os.path.isfile(f) for names in self._files.values() for f in names):
                import datasets  # heavy: only a Hugging Face source needs it

                opened = {}
                for name, names in self._files.items():
                    parts = [datasets.Dataset.from_file(f) for f in names]
                    opened[name] = self._cast(parts[0] if len(parts) == 1
                                              else datasets.concatenate_datasets(parts))
                self._ds, self._views = opened, {}
            else:
                self._load()
        return self._ds

    def _view(self, split: str) -> Any:
        """The image column of a split, formatted as arrow (slicing it never decodes)."""
        if split not in self._views:
            ds = self._datasets()[split]
            self._views[split] = ds.select_columns([self.image_column]).with_format("arrow")
        return self._views[split]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_ds"] = None
        state["_views"] = {}
        return state

    # ----- schema -------------------------------------------------------------------------------
    def _check_image_feature(self, feature: Any) -> None:
        """Refuse an image column that is not an Image, binary or file-path column."""
        import datasets  # heavy: only a Hugging Face source needs it

        if isinstance(feature, datasets.Image) or _image_list(feature):
            return
        if isinstance(feature, datasets.Value) and feature.dtype in ("binary", "large_binary", "string", "large_string"):
            return
        if isinstance(feature, dict) and ("bytes" in feature or "path" in feature):
            return
        raise UserError(f"{self.path}: image column {self.image_column!r} has type {feature}; "
                        "expected an Image, a list of Image, binary or file-path column")

    @staticmethod
    def _vocab_from_classlabel(names: list[str], dataset: str) -> ClassVocabulary:
        """ClassLabel names as classes (ids ``"0"``, ``"1"``, ...); names that are all WordNet ids
        (an ImageNet-style imagefolder) become those ids with their WordNet display names."""
        if names and all(WNID_RE.match(n) for n in names) and len(set(names)) == len(names):
            try:
                return ClassVocabulary.from_wnids(names, dataset=dataset)
            except Exception:  # a wnid unknown to WordNet: fall back to the plain names
                pass
        return ClassVocabulary.from_names(names, dataset=dataset)

    def _label_setup(self, ds: Any, vocabulary: ClassVocabulary | None) -> tuple[str, ClassVocabulary]:
        import datasets  # heavy: only a Hugging Face source needs it

        feature = ds.features[self.label_column]
        name = self.path if self._local is None else (self._local.resolve().name or self.path)
        self._own_vocab = vocabulary is None
        if isinstance(feature, datasets.ClassLabel):
            if vocabulary is None:
                vocabulary = self._vocab_from_classlabel(list(feature.names), name)
            return "classlabel", vocabulary
        if isinstance(feature, datasets.Value) and (feature.dtype.startswith(("int", "uint"))
                                                    or feature.dtype.startswith("float")):
            if vocabulary is None:
                raise UserError(f"{self.path}: label column {self.label_column!r} holds numbers without "
                                "class names; pass a class list")
            return "int", vocabulary
        if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
            if vocabulary is None:
                values: set[str] = set()
                for split in self._splits:
                    col = self._datasets()[split].data.column(self.label_column)
                    values.update(v.strip() for v in col.unique().to_pylist() if v is not None and v.strip())
                if not values:
                    raise UserError(f"{self.path}: label column {self.label_column!r} is empty")
                ordered = sorted(values)
                vocabulary = ClassVocabulary.from_names(ordered, ids=ordered, dataset=name)
            return "str", vocabulary
        raise UserError(f"{self.path}: label column {self.label_column!r} has type {feature}; "
                        "expected a ClassLabel, integer or string column")

    # ----- Source API ---------------------------------------------------------------------------
    def splits(self) -> list[str]:
        return list(self._splits)

    def _label(self, value: Any) -> tuple[str | None, str | None, str]:
        """``(class_id, skip, detail)`` for one raw label value (-1 means unlabelled, as in HF datasets)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == -1:
            return None, "no_label", ""
        if self._label_kind != "classlabel" or value is None or (isinstance(value, float) and math.isnan(value)):
            return self.vocabulary.resolve_label(value)
        index = int(value)
        if 0 <= index < len(self._classlabel_map):
            return self._classlabel_map[index]
        return None, "unknown_class", f"label {index}"

    def _probe_labels(self, split: str) -> None:
        """UserError when labels are present in the first rows of ``split`` but none names a class."""
        ds = self._datasets()[split]
        view = ds.select_columns([self.label_column]).with_format("arrow")
        values = view[:_PROBE_ROWS].column(self.label_column).to_pylist()
        present = [v for v in values if self._label(v)[1] != "no_label"]
        if not present or any(self._label(v)[0] is not None for v in present):
            return
        shown = list(dict.fromkeys(
            self._classlabel_names[v] if self._label_kind == "classlabel" and 0 <= v < len(self._classlabel_names)
            else v for v in present))[:3]
        raise UserError(f"{self.path} [{split}]: none of the first {len(present)} labels in column "
                        f"{self.label_column!r} names a class of {self.vocabulary.dataset} "
                        f"(e.g. {', '.join(repr(v)[:60] for v in shown)}); check --label-column and --classes")

    def _has_image(self, column: Any) -> list[bool]:
        """Per row: whether the image cell holds anything (validity bitmaps only, no payload reads)."""
        out: list[bool] = []
        for chunk in column.chunks:
            if pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type):  # a list of images
                out.extend(pc.fill_null(pc.greater(pc.list_value_length(chunk), 0), False).to_pylist())
            elif pa.types.is_struct(chunk.type):
                names = [chunk.type.field(i).name for i in range(chunk.type.num_fields)]
                children = chunk.flatten()
                present = None
                for n, child in zip(names, children, strict=True):
                    if n in ("bytes", "path"):
                        valid = child.is_valid()
                        present = valid if present is None else pc.or_(present, valid)
                out.extend(present.to_pylist() if present is not None else [False] * len(chunk))
            else:
                out.extend(chunk.is_valid().to_pylist())
        return out

    def scan(self, split: str) -> Iterator[SampleRef]:
        """Every row of ``split`` in row order; reads the label/key columns and image validity only."""
        if split not in self._splits:
            raise UserError(f"{self.path}: no split {split!r}; available: {', '.join(self._splits)}")
        ds = self._datasets()[split]
        cols = list(dict.fromkeys([self.label_column, self.image_column]
                                  + ([self.key_column] if self.key_column else [])))
        view = ds.select_columns(cols).with_format("arrow")
        seen: set[str] = set()
        row = 0
        for batch in view.iter(batch_size=_SCAN_BATCH):
            labels = batch.column(self.label_column).to_pylist()
            images = self._has_image(batch.column(self.image_column))
            keys = batch.column(self.key_column).to_pylist() if self.key_column else None
            for i, value in enumerate(labels):
                r = row + i
                default = safe_key(f"{split}_{r:08d}")
                key, detail = default, ""
                if keys is not None:
                    if keys[i] is None or not str(keys[i]).strip():
                        detail = f"empty {self.key_column}; key from row"
                    else:
                        key = safe_key(str(keys[i]))
                        if key in seen:
                            detail = f"repeated {self.key_column} {str(keys[i])!r}"
                            key = safe_key(f"{key}__{r:08d}")
                if key in seen:
                    yield SampleRef(default + "__dup", split, None, f"{split}#{r}", "duplicate_key", detail)
                    continue
                seen.add(key)
                if problem := name_problem(key):
                    yield SampleRef(default, split, None, f"{split}#{r}", "unsafe_name",
                                    f"key {key[:80]!r}...: {problem}")
                    continue
                class_id, skip, why = self._label(value)
                if skip is None and not images[i]:
                    skip, why = "no_image", ""
                yield SampleRef(key, split, class_id if skip is None else None, f"{split}#{r}", skip,
                                "; ".join(x for x in (why, detail) if x))
            row += len(labels)

    def _locate(self, ref: SampleRef) -> tuple[str, int] | None:
        split, sep, row = ref.locator.rpartition("#")
        if not sep or split not in self._num_rows or not row.isdigit():
            return None
        r = int(row)
        return (split, r) if r < self._num_rows[split] else None

    def _bytes_of(self, value: Any) -> tuple[bytes | None, str | None]:
        data, path = None, None
        if isinstance(value, list):  # a list-of-images cell: its first image
            value = value[0] if value else None
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            data = value
        elif isinstance(value, str):
            path = value
        if data is not None:
            return bytes(data), None
        if not path:
            return None, "no_image"
        candidates = [Path(path).expanduser()]
        if not candidates[0].is_absolute() and self._local is not None:
            base = self._local if self._local.is_dir() else self._local.parent
            candidates.insert(0, base / path)
        for c in candidates:
            try:
                return c.read_bytes(), None
            except OSError:
                continue
        return None, "unreadable"

    def read(self, refs: Sequence[SampleRef]) -> Iterator[tuple[SampleRef, bytes | None, str | None]]:
        """Bytes of the requested rows only, fetched as contiguous row slices, in the given order."""
        refs = list(refs)
        i = 0
        while i < len(refs):
            ref = refs[i]
            if ref.skip:
                yield ref, None, ref.skip
                i += 1
                continue
            loc = self._locate(ref)
            if loc is None:
                yield ref, None, "bad_locator"
                i += 1
                continue
            split, start = loc
            j = i + 1
            while (j < len(refs) and j - i < _READ_RUN and not refs[j].skip
                   and self._locate(refs[j]) == (split, start + (j - i))):
                j += 1
            try:
                table = self._view(split)[start:start + (j - i)]
                values = table.column(self.image_column).to_pylist()
            except Exception:  # a damaged arrow/parquet file: report, never raise
                for ref in refs[i:j]:
                    yield ref, None, "unreadable"
                i = j
                continue
            for ref, value in zip(refs[i:j], values, strict=True):
                data, reason = self._bytes_of(value)
                yield ref, data, reason
            i = j

    def describe(self) -> dict:
        return {
            **super().describe(), "path": self.path, "loader": self.loader,
            "image_column": self.image_column, "label_column": self.label_column,
            "key_column": self.key_column, "splits": list(self._splits), "num_rows": dict(self._num_rows),
        }
