"""Source kinds → classes, and the factory the builder uses (as writers.registry is for writers)."""

from __future__ import annotations

from typing import Any

from builders.sources.base import Source
from builders.sources.hf import HFSource
from builders.sources.imagefolder import ImageFolderSource
from builders.sources.imagenet import ImageNetSource
from builders.sources.manifest import ManifestSource
from builders.sources.wds import WebDatasetSource
from vlm_classdata.errors import UserError
from vlm_classdata.names import check_name
from vlm_classdata.vocabulary import ClassVocabulary

SOURCE_KINDS = ("imagenet", "imagefolder", "hf", "manifest", "webdataset")


def open_source(kind: str, path: str, classes: str | None = None, **options: Any) -> Source:
    """Construct a source by kind. ``classes`` is a bundled class-list name or a file (see ClassVocabulary.load).

    A ``split`` option (``--split-name``) that cannot be one file name is a :class:`UserError` here, before any
    source is read.
    """
    opts = {k: v for k, v in options.items() if v is not None}
    if "split" in opts:  # becomes part of output file names, whichever source
        check_name(opts["split"], "split name")
    vocab = ClassVocabulary.load(classes) if classes else None
    if kind == "imagenet":
        return ImageNetSource(path, vocabulary=vocab, **_pick(opts, "val_labels"))
    if kind == "imagefolder":
        return ImageFolderSource(path, vocabulary=vocab, **_pick(opts, "class_map", "split"))
    if kind == "hf":
        return HFSource(path, vocabulary=vocab, **_pick(opts, "image_column", "label_column", "key_column"))
    if kind == "manifest":
        if vocab is None:
            raise UserError("--source manifest needs --classes (a bundled list or a class-list file)")
        extra = _pick(opts, "image_root")
        if "split" in opts:
            extra["default_split"] = opts["split"]
        return ManifestSource(path, vocabulary=vocab, **extra)
    if kind == "webdataset":
        if vocab is None:
            raise UserError("--source webdataset needs --classes (a bundled list or a class-list file)")
        return WebDatasetSource(path, vocabulary=vocab, **_pick(opts, "label_field", "split"))
    raise UserError(f"unknown source {kind!r}; choose from {', '.join(SOURCE_KINDS)}")


def _pick(opts: dict, *names: str) -> dict:
    return {n: opts[n] for n in names if n in opts}
