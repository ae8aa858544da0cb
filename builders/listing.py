"""What a build reads, listed: one row per scanned sample (with its file's size and mtime) or per container file.

The plan fingerprint covers the listing's digest; the listing itself is saved beside the plan so that a refused
build can say which inputs changed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from builders.records import SampleRef
from builders.sources.base import Source
from vlm_classdata.atomic import atomic_output


def _local_files(value: object) -> dict[str, Path]:
    """Files (non-hidden, recursively) of a local file or folder named by ``value``, by path under it."""
    if not isinstance(value, str) or not value or "://" in value:
        return {}
    path = Path(value).expanduser()
    if path.is_file():
        return {path.name: path}
    if not path.is_dir():
        return {}
    found = {}
    for p in path.rglob("*"):
        rel = p.relative_to(path)
        if not any(part.startswith(".") for part in rel.parts) and p.is_file():
            found[rel.as_posix()] = p
    return found


class SourceListing:
    """What a build reads, as rows ``[name, size, mtime_ns, split, key, class_id, skip, detail]``.

    One row per scanned ref (name = its locator; for file-backed sources the size and mtime of its file, -1
    when it cannot be stat'ed) and, for other sources (HF, WebDataset), one row per file under the source's
    local root/path. Each file is stat'ed once, at scan time, into compact arrays; rows are made on demand."""

    def __init__(self, source: Source, scanned: dict[str, list[SampleRef]]) -> None:
        self.scanned = scanned
        self.sizes, self.mtimes = array("q"), array("q")
        root = source.image_root()
        self.containers: list[list] = []
        if root is not None:
            join, stat = os.path.join, os.stat
            for refs in scanned.values():
                for ref in refs:
                    try:
                        st = stat(join(root, ref.locator))
                    except (OSError, ValueError):
                        self.sizes.append(-1)
                        self.mtimes.append(-1)
                    else:
                        self.sizes.append(st.st_size)
                        self.mtimes.append(st.st_mtime_ns)
        else:
            desc = source.describe()
            files: dict[str, Path] = {}
            for key in ("root", "path"):
                files.update(_local_files(desc.get(key)))
            for name, path in sorted(files.items()):
                st = path.stat()
                self.containers.append([name, st.st_size, st.st_mtime_ns, "", "", None, None, ""])

    def rows(self) -> Iterator[list]:
        """Every row, in scan order (then the container files)."""
        i = 0
        stats = bool(self.sizes)
        for refs in self.scanned.values():
            for ref in refs:
                size, mtime = (self.sizes[i], self.mtimes[i]) if stats else (None, None)
                i += 1
                yield [ref.locator, size, mtime, ref.split, ref.key, ref.class_id, ref.skip, ref.detail]
        yield from self.containers

    def __len__(self) -> int:
        return sum(map(len, self.scanned.values())) + len(self.containers)

    def digest(self) -> str:
        """A hash of every row (order included)."""
        h = hashlib.sha256()
        batch: list[str] = []
        for row in self.rows():
            batch.append("\x00".join(map(str, row)) + "\n")
            if len(batch) >= 10_000:
                h.update("".join(batch).encode("utf-8", "surrogateescape"))
                batch = []
        h.update("".join(batch).encode("utf-8", "surrogateescape"))
        return h.hexdigest()[:20]

    def write(self, path: Path) -> None:
        """Save the rows (gzip'd JSON lines, deterministic bytes), atomically."""
        with atomic_output(path) as tmp, open(tmp, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            batch: list[str] = []
            for row in self.rows():
                batch.append(json.dumps(row, ensure_ascii=False) + "\n")
                if len(batch) >= 10_000:
                    gz.write("".join(batch).encode("utf-8", "surrogateescape"))
                    batch = []
            gz.write("".join(batch).encode("utf-8", "surrogateescape"))

    @staticmethod
    def read(path: Path) -> list[list] | None:
        """Rows saved by :meth:`write`, or None when the file is missing or damaged."""
        try:
            with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as fh:
                return [json.loads(line) for line in fh]
        except (OSError, ValueError, EOFError):
            return None


def unique_names(rows: Iterable[list]) -> list[list]:
    """Rows whose names are made unique (a repeated locator becomes ``locator #2``), for a diff."""
    seen: Counter[str] = Counter()
    out = []
    for row in rows:
        seen[row[0]] += 1
        out.append(row if seen[row[0]] == 1 else [f"{row[0]} #{seen[row[0]]}", *row[1:]])
    return out
