"""The one opener of a local Hugging Face dataset: what kind a path is, how to open it, which files back it.

Kinds (:class:`LocalKind`), decided from the path alone (nothing is loaded):

- ``saved_dataset_dict``: a ``DatasetDict.save_to_disk`` folder (``dataset_dict.json``);
- ``saved_dataset``: a ``Dataset.save_to_disk`` folder (``state.json``; opening also needs its
  ``dataset_info.json``);
- ``arrow_file`` / ``parquet_file``: one ``.arrow`` (as ``save_to_disk`` writes) or ``.parquet`` file;
- ``hub_folder``: a folder in the Hub's layout (``dataset_info.json``, or parquet files under ``data/``),
  loaded by ``load_dataset``;
- ``data_folder``: any other folder; ``load_dataset`` infers a loader from its files (images in class
  folders, csv, json, ...), or fails, which :func:`open_local_dataset` reports as a :class:`UserError`.

A missing path or a file of another type is ``None``. Callers that must tell an HF dataset from other
folders (the corpus readers) test for the first five kinds; ``data_folder`` is what a folder is when nothing
marks it as a dataset.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from vlm_classdata.errors import UserError, one_line, read_user_json


class LocalKind(str, Enum):
    """What a local path holds, as far as Hugging Face ``datasets`` is concerned."""

    SAVED_DATASET_DICT = "saved_dataset_dict"
    SAVED_DATASET = "saved_dataset"
    ARROW_FILE = "arrow_file"
    PARQUET_FILE = "parquet_file"
    HUB_FOLDER = "hub_folder"
    DATA_FOLDER = "data_folder"


SAVED_KINDS = (LocalKind.SAVED_DATASET_DICT, LocalKind.SAVED_DATASET)


def _has_parquet_files(folder: Path) -> bool:
    """True when ``folder`` holds a ``.parquet`` file at any depth (hidden files and folders skipped)."""
    if not folder.is_dir():
        return False
    return any(f.suffix == ".parquet" and f.is_file()
               and not any(part.startswith(".") for part in f.relative_to(folder).parts) for f in folder.rglob("*"))


def detect_local_dataset(path: str | Path) -> LocalKind | None:
    """The :class:`LocalKind` of ``path`` (``~`` expanded), or None for a missing path or another file type."""
    p = Path(path).expanduser()
    if p.is_file():
        return {".arrow": LocalKind.ARROW_FILE, ".parquet": LocalKind.PARQUET_FILE}.get(p.suffix.lower())
    if not p.is_dir():
        return None
    if (p / "dataset_dict.json").is_file():
        return LocalKind.SAVED_DATASET_DICT
    if (p / "state.json").is_file():
        return LocalKind.SAVED_DATASET
    if (p / "dataset_info.json").is_file() or _has_parquet_files(p / "data"):
        return LocalKind.HUB_FOLDER
    return LocalKind.DATA_FOLDER


def _load(p: Path, kind: LocalKind, streaming: bool) -> dict[str, Any]:
    """``{split: dataset}`` of one kind; a single dataset is keyed by its split name, else ``train``."""
    import datasets  # heavy: only opening a dataset needs it

    if kind in SAVED_KINDS:
        if kind is LocalKind.SAVED_DATASET and not (p / "dataset_info.json").is_file():
            raise UserError(f"damaged save_to_disk folder {str(p)!r}: state.json without dataset_info.json")
        loaded = datasets.load_from_disk(str(p))
    elif kind is LocalKind.ARROW_FILE:
        loaded = datasets.Dataset.from_file(str(p))
    elif kind is LocalKind.PARQUET_FILE:
        loaded = datasets.load_dataset("parquet", data_files={"train": str(p)}, streaming=streaming)
    else:
        loaded = datasets.load_dataset(str(p), streaming=streaming)
    if isinstance(loaded, (datasets.Dataset, datasets.IterableDataset)):
        return {str(loaded.split) if loaded.split else "train": loaded}
    return {str(k): v for k, v in loaded.items()}


def open_local_dataset(path: str | Path, *, streaming: bool = False, split: str | None = None) -> dict[str, Any]:
    """Open a local dataset of any :class:`LocalKind`; return ``{split name: dataset}`` in the dataset's order.

    ``save_to_disk`` folders go through ``load_from_disk``, an ``.arrow`` file through ``Dataset.from_file``
    (both memory-mapped: ``streaming`` does not apply), a ``.parquet`` file through the parquet loader as split
    ``train``, other folders through ``load_dataset(folder)`` (an ``IterableDataset`` per split when
    ``streaming``). A single dataset is keyed by its own split name, else ``train``. With ``split``, only that
    split is returned. A missing path, another file type, a damaged or unloadable dataset, or a missing split is
    a :class:`UserError` naming the path and the cause.
    """
    p = Path(path).expanduser()
    kind = detect_local_dataset(p)
    if kind is None:
        if not p.exists():
            raise UserError(f"Hugging Face dataset path {str(path)!r} does not exist")
        raise UserError(f"{path}: expected a dataset folder, a .parquet or an .arrow file")
    try:
        splits = _load(p, kind, streaming)
    except UserError:
        raise
    except Exception as exc:  # datasets raises many types for unusable folders and files
        raise UserError(f"cannot load Hugging Face dataset {str(path)!r}: {one_line(exc, 300)}") from None
    if split is None:
        return splits
    if split not in splits:
        raise UserError(f"{path}: no split {split!r}; available: {', '.join(splits)}")
    return {split: splits[split]}


def saved_data_files(folder: str | Path) -> list[Path]:
    """The data files of a ``save_to_disk`` folder, in the order the dataset reads them.

    A DatasetDict folder lists its splits' files in ``dataset_dict.json`` order; a Dataset folder the files
    its ``state.json`` names, else (no state, or none named) its ``*.arrow`` files sorted by name. A malformed
    ``dataset_dict.json``/``state.json`` is a :class:`UserError` naming it."""
    folder = Path(folder).expanduser()
    if (folder / "dataset_dict.json").is_file():
        splits = _json_object(folder / "dataset_dict.json").get("splits", [])
        return [f for s in splits for f in saved_data_files(folder / s)]
    state = _json_object(folder / "state.json") if (folder / "state.json").is_file() else {}
    names = [d["filename"] for d in state.get("_data_files", []) if isinstance(d, dict) and "filename" in d]
    return [folder / n for n in names] if names else sorted(folder.glob("*.arrow"))


def _json_object(path: Path) -> dict:
    data = read_user_json(path, path.name)
    if not isinstance(data, dict):
        raise UserError(f"{path.name} {path}: expected a JSON object")
    return data
