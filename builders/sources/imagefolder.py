"""Any ``root/<class folder>/*`` tree (optionally ``root/<split>/<class folder>/*``), plus the file helpers
shared by the file-backed sources (ImageNet, ImageFolder, manifest).

Scan order is the sorted order of path components (each folder's entries sorted by name, walked depth first);
hidden files and folders (``.name``) are ignored entirely. Keys are ``safe_key(file stem)``, made unique
within a split by appending ``_2``, ``_3``, ... in scan order; a key too long for a file name is skipped as
``unsafe_name``. Class folders are named through :meth:`ClassVocabulary.resolve_label` (id, display name,
unambiguous synonym): a folder name several classes share is ``ambiguous_class``, an unknown one
``unknown_class`` (detail: the folder name). A ``split`` option must be usable as a file name.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath

from builders.records import SampleRef, safe_key
from builders.sources.base import IMAGE_EXTENSIONS, Source
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.names import check_name, name_problem
from vlm_classdata.vocabulary import ClassVocabulary

#: ``(class_id, skip reason, detail)`` as :meth:`ClassVocabulary.resolve_label` returns it
Resolved = tuple[str | None, str | None, str]

#: folder names recognised as splits, mapped to the split name used in outputs
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_SPLIT_RANK = {"train": 0, "val": 1, "test": 2}
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


# ----- helpers shared by the file-backed sources ----------------------------------------------------
def order_splits(names: Iterable[str]) -> list[str]:
    """Split names ordered train, val, test, then the others alphabetically (no repeats)."""
    return sorted(set(names), key=lambda n: (_SPLIT_RANK.get(n, 3), n))


def is_image_name(name: str) -> bool:
    """True when the file name's extension is one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_dir(folder: Path) -> tuple[list[str], list[str]]:
    """Sorted non-hidden ``(folders, files)`` of a folder; symlinks to folders count as folders,
    anything else (dangling links included) as files."""
    dirs, files = [], []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
    return sorted(dirs), sorted(files)


def walk_files(folder: Path, prefix: str = "") -> Iterator[str]:
    """Posix paths (``prefix/...``) of all non-hidden files under ``folder``, in sorted path-component order.

    Folder symlinks are followed, but a folder is never entered twice on one path (no symlink loops).
    """
    yield from _walk(folder, prefix, frozenset())


def _walk(folder: Path, prefix: str, stack: frozenset[str]) -> Iterator[str]:
    real = os.path.realpath(folder)
    if real in stack:
        return
    stack = stack | {real}
    try:
        dirs, files = list_dir(folder)
    except OSError:
        return
    dirset = set(dirs)
    for name in sorted(dirs + files):
        rel = f"{prefix}/{name}" if prefix else name
        if name in dirset:
            yield from _walk(folder / name, rel, stack)
        else:
            yield rel


class KeyAllocator:
    """Hands out unique keys: ``safe_key(base)``, then ``base_2``, ``base_3``, ... on collisions."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, base: str) -> str:
        base = safe_key(base) or "_"
        key, n = base, 1
        while key in self.used:
            n += 1
            key = f"{base}_{n}"
        self.used.add(key)
        return key


def stem_of(locator: str) -> str:
    """File name without its last extension."""
    name = PurePosixPath(locator).name
    stem = os.path.splitext(name)[0]
    return stem or name


def read_files(root: Path, refs: Sequence[SampleRef]) -> Iterator[tuple[SampleRef, bytes | None, str | None]]:
    """Read ``root / ref.locator`` for each ref; anything that cannot be read as a regular file is
    ``(ref, None, "unreadable")`` (missing, dangling link, folder, FIFO, permission denied, bad path).

    Files are opened non-blocking (opening a FIFO never waits for a writer) and read with one ``read`` of
    the size ``fstat`` reports, plus one byte to notice a file that grew; more reads only when needed."""
    base = os.fspath(root)
    for ref in refs:
        try:
            fd = os.open(os.path.join(base, ref.locator), os.O_RDONLY | _O_NONBLOCK)
        except (OSError, ValueError):
            yield ref, None, "unreadable"
            continue
        try:
            data = _read_regular(fd)
        except (OSError, ValueError):
            data = None
        finally:
            os.close(fd)
        yield (ref, data, None) if data is not None else (ref, None, "unreadable")


def _read_regular(fd: int) -> bytes | None:
    """All bytes of an open regular file, or None when ``fd`` is something else."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        return None
    size = st.st_size
    data = os.read(fd, size + 1)
    if len(data) == size:  # the common case: exactly the size fstat reported, and nothing more
        return data
    chunks = [data]  # the file grew or a read came back short: read on until end of file
    while chunks[-1]:
        chunks.append(os.read(fd, max(size, 1 << 16)))
    return b"".join(chunks)


def require_dir(path: str | os.PathLike, what: str) -> Path:
    """``Path(path)`` if it is an existing folder, else a :class:`UserError`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{what} {p} does not exist")
    if not p.is_dir():
        raise UserError(f"{what} {p} is not a folder")
    return p.absolute()


class FileTreeSource(Source):
    """Base for sources whose samples are files under one root folder (locator = posix path under it)."""

    def __init__(self, root: Path, vocabulary: ClassVocabulary) -> None:
        super().__init__(vocabulary)
        self.root = root

    def read(self, refs: Sequence[SampleRef]) -> Iterator[tuple[SampleRef, bytes | None, str | None]]:
        """Bytes of each ref's file, or ``"unreadable"``; never raises, never checks image content."""
        return read_files(self.root, refs)

    def image_root(self) -> str | None:
        return str(self.root)

    def image_path(self, ref: SampleRef) -> str | None:
        return ref.locator

    def _scan_class_folders(self, split: str, split_dir: Path, prefix: str,
                            resolve: Callable[[str], Resolved]) -> Iterator[SampleRef]:
        """Refs of ``split_dir/<class folder>/**`` (locators start with ``prefix``); ``resolve(folder)``
        gives ``(class_id, skip, detail)``. Files directly in ``split_dir`` are ``no_label`` (or
        ``not_an_image_file``)."""
        keys = KeyAllocator()
        try:
            dirs, files = list_dir(split_dir)
        except OSError as exc:
            raise UserError(f"cannot list {split_dir}: {exc.strerror or exc}") from None
        dirset = set(dirs)
        for name in sorted(dirs + files):
            rel = f"{prefix}/{name}" if prefix else name
            if name not in dirset:
                yield self._file_ref(keys, split, rel, None, "no_label", "image outside a class folder")
                continue
            class_id, skip, detail = resolve(name)
            for loc in walk_files(split_dir / name, rel):
                yield self._file_ref(keys, split, loc, class_id, skip, detail)

    @staticmethod
    def _file_ref(keys: KeyAllocator, split: str, locator: str, class_id: str | None,
                  skip: str | None = None, detail: str = "") -> SampleRef:
        """A ref for one file; a non-image extension, then an unusable key, override any other skip reason."""
        if not is_image_name(locator):
            skip, detail = "not_an_image_file", PurePosixPath(locator).name
        key = keys(stem_of(locator))
        if problem := name_problem(key):
            skip, detail = "unsafe_name", f"key {key[:80]!r}...: {problem}"
        return SampleRef(key, split, class_id if skip is None else None, locator, skip, detail)


# ----- ImageFolder ----------------------------------------------------------------------------------
class ImageFolderSource(FileTreeSource):
    """``root/<class folder>/*`` (one split) or ``root/<split>/<class folder>/*``.

    Folder → class: ``class_map`` (dict or JSON file: folder → class id or display name) first, then
    ``vocabulary.resolve_label``. Without a vocabulary, one is built from the sorted folder names of all
    splits (id = folder, display name = folder with ``_`` → space, or the ``class_map`` target).
    """

    kind = "imagefolder"

    def __init__(self, root: str | os.PathLike, vocabulary: ClassVocabulary | None = None,
                 class_map: dict[str, str] | str | None = None, split: str | None = None) -> None:
        root_p = require_dir(root, "ImageFolder root")
        if split is not None:
            check_name(split, "split name")
        self.class_map_source = class_map if isinstance(class_map, str) else ("dict" if class_map else None)
        cmap = _load_class_map(class_map)
        dirs, _ = list_dir(root_p)
        split_dirs: dict[str, str] = {}  # split name -> folder name
        if dirs and all(d.lower() in SPLIT_FOLDERS for d in dirs):
            for d in dirs:
                name = SPLIT_FOLDERS[d.lower()]
                if name in split_dirs:
                    raise UserError(f"ImageFolder root {root_p} has two folders for split {name!r}: "
                                    f"{split_dirs[name]}/ and {d}/")
                split_dirs[name] = d
            self.layout = "splits"
            if split is not None:
                split = SPLIT_FOLDERS.get(split.lower(), split)
                if split not in split_dirs:
                    raise UserError(f"ImageFolder root {root_p} has no {split!r} split; found: "
                                    f"{', '.join(order_splits(split_dirs))}")
                split_dirs = {split: split_dirs[split]}
        else:
            if not dirs:
                raise UserError(f"ImageFolder root {root_p} has no class folders")
            self.layout = "classes"
            split_dirs = {split or "train": ""}
        self.split_dirs = split_dirs
        self.split_option = split
        self.vocabulary_source = "given" if vocabulary is not None else "folders"
        if vocabulary is None:
            folders: set[str] = set()
            for folder in split_dirs.values():
                folders.update(list_dir(root_p / folder)[0] if folder else dirs)
            targets = sorted({cmap.get(f, f) for f in folders})
            if not targets:
                raise UserError(f"ImageFolder root {root_p} has no class folders")
            vocabulary = ClassVocabulary.from_names([t.replace("_", " ") for t in targets], ids=targets,
                                                    dataset=root_p.resolve().name or "imagefolder")
        super().__init__(root_p, vocabulary)
        self.class_map: dict[str, str] = {}
        for folder, target in cmap.items():
            class_id, skip, detail = vocabulary.resolve_label(target)
            if class_id is None:
                why = detail.partition(": ")[2] if skip == "ambiguous_class" else ""
                raise UserError(f"class_map: {folder!r} -> {target!r} is not a class of {vocabulary.dataset}"
                                + (f"; it names several: {why}" if why else ""))
            self.class_map[folder] = class_id

    def _resolve(self, folder: str) -> Resolved:
        if folder in self.class_map:
            return self.class_map[folder], None, ""
        return resolve_folder_label(self.vocabulary, folder)

    def splits(self) -> list[str]:
        return order_splits(self.split_dirs)

    def scan(self, split: str) -> Iterator[SampleRef]:
        """Refs of one split, in sorted path order; never reads image bytes."""
        if split not in self.split_dirs:
            raise UserError(f"ImageFolder {self.root} has no {split!r} split; found: {', '.join(self.splits())}")
        folder = self.split_dirs[split]
        return self._scan_class_folders(split, self.root / folder if folder else self.root, folder,
                                        self._resolve)

    def describe(self) -> dict:
        return {**super().describe(), "root": str(self.root), "layout": self.layout,
                "split_folders": dict(self.split_dirs), "split": self.split_option,
                "class_map": self.class_map_source, "label_source": "class_folders",
                "vocabulary_source": self.vocabulary_source}


def resolve_folder_label(vocabulary: ClassVocabulary, folder: str) -> Resolved:
    """``(class_id, skip, detail)`` of a class folder name; an unknown folder's detail is its name."""
    class_id, skip, detail = vocabulary.resolve_label(folder)
    if skip in ("unknown_class", "no_label"):
        return None, "unknown_class", folder
    return class_id, skip, detail


def _load_class_map(class_map: dict[str, str] | str | None) -> dict[str, str]:
    if class_map is None:
        return {}
    if isinstance(class_map, str):
        class_map = read_user_json(class_map, "class_map")
    if not isinstance(class_map, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int)) and not isinstance(v, bool)
            for k, v in class_map.items()):
        raise UserError("class_map must be a JSON object of folder name -> class id or display name")
    return {k: str(v) for k, v in class_map.items()}
