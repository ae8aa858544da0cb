"""A JSONL manifest, one sample per line (the format of the paper's VLMClassifier code)::

    {"image": "relative/or/absolute/path.jpg", "label": "n01440764" | "tench" | 0 | "0",
     "split": "train", "id": "optional-key"}

Relative image paths are under ``image_root`` (default: the manifest's folder). A label goes through
:meth:`ClassVocabulary.resolve_label` (class id, display name, unambiguous synonym; an integer indexes the
vocabulary): a name several classes share is ``ambiguous_class``, anything else unresolved ``unknown_class``.
Lines that cannot be used (bad JSON, not UTF-8, missing fields) become ``bad_manifest_line`` refs keyed
``line_<n>`` in the default split; so does a line whose ``split`` cannot be a file name (``../x``, ``/abs``),
skipped as ``unsafe_name``, and a key too long for a file name is ``unsafe_name`` too. Blank lines are
ignored. The file is streamed, never loaded whole.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterator
from pathlib import Path

from builders.records import SampleRef
from builders.sources.imagefolder import (
    FileTreeSource,
    KeyAllocator,
    is_image_name,
    order_splits,
    require_dir,
    stem_of,
)
from vlm_classdata.errors import UserError
from vlm_classdata.names import check_name, name_problem
from vlm_classdata.vocabulary import ClassVocabulary


class _BadLine(Exception):
    """A manifest line that cannot be used; the message says why, ``reason`` is the skip reason."""

    def __init__(self, message: str, reason: str = "bad_manifest_line") -> None:
        super().__init__(message)
        self.reason = reason


class ManifestSource(FileTreeSource):
    """Samples listed in a JSONL manifest; see the module docstring for the line format."""

    kind = "manifest"

    def __init__(self, path: str | os.PathLike, vocabulary: ClassVocabulary, image_root: str | None = None,
                 default_split: str = "train") -> None:
        manifest = Path(path).expanduser()
        if not manifest.is_file():
            raise UserError(f"manifest {manifest} does not exist" if not manifest.exists()
                            else f"manifest {manifest} is not a file")
        if vocabulary is None:
            raise UserError("a manifest source needs a class vocabulary (--classes)")
        if not isinstance(default_split, str) or not default_split.strip():
            raise UserError("default_split must be a non-empty split name")
        check_name(default_split.strip(), "split name")
        root = require_dir(image_root, "image root") if image_root is not None else manifest.parent.absolute()
        super().__init__(root, vocabulary)
        self.manifest = manifest.absolute()
        self.default_split = default_split.strip()
        self._splits: list[str] | None = None  # small; computed by one pass over the file

    # ----- parsing ----------------------------------------------------------------------------------
    def _lines(self) -> Iterator[tuple[int, bytes]]:
        try:
            fh = open(self.manifest, "rb")  # noqa: SIM115 - closed below; the generator streams it
        except OSError as exc:
            raise UserError(f"cannot open manifest {self.manifest}: {exc.strerror or exc}") from None
        with fh:
            for n, raw in enumerate(fh, start=1):
                if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                if raw.strip():
                    yield n, raw

    def _entries(self) -> Iterator[tuple[str, str, SampleRef]]:
        """``(split, key base, ref without a final key)`` for every non-blank line, in file order."""
        for n, raw in self._lines():
            try:
                yield self._parse(raw)
            except _BadLine as exc:
                yield self.default_split, f"line_{n}", SampleRef(
                    "", self.default_split, None, "", exc.reason, f"line {n}: {exc}")

    def _parse(self, raw: bytes) -> tuple[str, str, SampleRef]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _BadLine("not UTF-8") from None
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise _BadLine(f"invalid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise _BadLine("not a JSON object")
        image = obj.get("image")
        if not isinstance(image, str) or not image.strip():
            raise _BadLine("missing 'image' (a path string)")
        if "label" not in obj or obj["label"] is None:
            raise _BadLine("missing 'label'")
        label = obj["label"]
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise _BadLine("'label' must be a class id, a class name or an integer index")
        split = obj.get("split")
        if split is None:
            split = self.default_split
        elif not isinstance(split, str) or not split.strip():
            raise _BadLine("'split' must be a non-empty string")
        split = split.strip()
        if problem := name_problem(split):
            raise _BadLine(f"split {split[:80]!r} cannot be used in a file name: {problem}", "unsafe_name")
        sample_id = obj.get("id")
        if sample_id is not None and (isinstance(sample_id, bool) or not isinstance(sample_id, (str, int))):
            raise _BadLine("'id' must be a string or an integer")
        locator = self._locator(image)
        key_base = str(sample_id) if sample_id is not None and str(sample_id).strip() else stem_of(locator)
        if not is_image_name(locator):
            return split, key_base, SampleRef("", split, None, locator, "not_an_image_file",
                                              posixpath.basename(locator))
        class_id, skip, detail = self.vocabulary.resolve_label(label)
        if class_id is None:
            why = detail if skip == "ambiguous_class" else str(label)
            return split, key_base, SampleRef("", split, None, locator, skip or "unknown_class", why)
        return split, key_base, SampleRef("", split, class_id, locator)

    def _locator(self, image: str) -> str:
        """Posix path relative to the image root; absolute (normalised) when outside it."""
        if os.path.isabs(image):
            full = os.path.normpath(image)
            root = os.path.normpath(str(self.root))
            if full.startswith(root.rstrip(os.sep) + os.sep):
                return Path(os.path.relpath(full, root)).as_posix()
            return Path(full).as_posix()
        return posixpath.normpath(image)

    # ----- Source API -------------------------------------------------------------------------------
    def splits(self) -> list[str]:
        if self._splits is None:
            self._splits = order_splits(split for split, _, _ in self._entries())
        return list(self._splits)

    def scan(self, split: str) -> Iterator[SampleRef]:
        """Refs of one split in file order; never reads image bytes."""
        if split not in self.splits():
            raise UserError(f"manifest {self.manifest} has no {split!r} split; found: {', '.join(self.splits())}")
        return self._scan(split)

    def _scan(self, split: str) -> Iterator[SampleRef]:
        keys = KeyAllocator()
        for line_split, key_base, ref in self._entries():
            if line_split == split:
                key = keys(key_base)
                if ref.skip is None and (problem := name_problem(key)):
                    yield SampleRef(key, ref.split, None, ref.locator, "unsafe_name",
                                    f"key {key[:80]!r}...: {problem}")
                    continue
                yield SampleRef(key, ref.split, ref.class_id, ref.locator, ref.skip, ref.detail)

    def input_paths(self) -> list[str]:
        """The manifest file: the image folder is not scanned (the pipeline checks the listed images)."""
        return [str(self.manifest)]

    def describe(self) -> dict:
        return {**super().describe(), "root": str(self.root), "manifest": str(self.manifest),
                "default_split": self.default_split, "label_source": "manifest"}
