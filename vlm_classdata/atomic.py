"""Atomic publication of files: write a temporary sibling, then ``os.replace`` it into place.

The one way every command publishes a file. A reader never sees a half-written file under its final name; a
killed writer leaves only ``.<name>.tmp<pid>`` siblings, which :func:`remove_leftovers` deletes at the start of
the next run (under the run lock of :mod:`vlm_classdata.stages`, so no live writer owns them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_LEFTOVER = re.compile(r"^\..+\.tmp\d+$")


def atomic_path(path: Path) -> Path:
    """A temporary sibling of ``path`` to write to before :func:`commit`."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def commit(tmp: Path, final: Path) -> None:
    """Atomically move a finished temporary file (or folder) into place."""
    Path(final).parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


def discard(tmp: Path) -> None:
    """Remove a temporary file or folder after a failure; never raises."""
    tmp = Path(tmp)
    try:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Give an ``OSError`` raised while writing ``path`` that file's name: ``write`` and ``close`` of a file
    object (disk full, file too large) raise it without one, and the one-line report should say where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


@contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """``with atomic_output(path) as tmp:`` write ``tmp`` (a file or a folder); on success it replaces
    ``path`` atomically, on any error it is removed and ``path`` is left as it was."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(final)
    try:
        with naming(final):
            yield tmp
    except BaseException:
        discard(tmp)
        raise
    try:
        commit(tmp, final)
    except BaseException:
        discard(tmp)
        raise


_OS_ERROR = re.compile(r"os error (\d+)")


def write_with(final: Path, write: Callable[[Path], object]) -> None:
    """Publish ``final`` atomically from ``write(tmp_path)`` (for library writers such as ``write_parquet``).

    A library that reports a failed write as its own exception carrying "os error N" (polars' Rust I/O:
    a full disk is a ComputeError naming no file) raises it here as the :class:`OSError` it was, naming
    ``final``."""
    try:
        with atomic_output(final) as tmp:
            write(tmp)
    except OSError:
        raise
    except Exception as exc:
        code = _OS_ERROR.search(str(exc))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(final)) from None


def write_bytes_atomic(final: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling, then rename it into place."""
    with atomic_output(final) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(final: Path, text: str) -> None:
    """Write UTF-8 ``text`` atomically."""
    write_bytes_atomic(final, text.encode("utf-8"))


def json_text(obj: object) -> str:
    """The project's JSON file layout: indent 1, sorted keys, non-ASCII kept, trailing newline."""
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def dumps_compact(row: dict) -> str:
    """One row as compact JSON text on one line (UTF-8 kept as is, no NaN): the layout of JSONL and JSON-array
    rows."""
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def write_json_atomic(final: Path, obj: object) -> None:
    """Write ``obj`` as UTF-8 JSON in :func:`json_text` layout, atomically."""
    write_text_atomic(final, json_text(obj))


def write_jsonl_atomic(final: Path, rows: object) -> None:
    """Write an iterable of dicts as JSON Lines (sorted keys, non-ASCII kept), atomically."""
    write_text_atomic(final, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))


def is_leftover(path: Path) -> bool:
    """True for a temporary sibling written by :func:`atomic_path`."""
    return bool(_LEFTOVER.match(Path(path).name))


def remove_leftovers(root: Path) -> int:
    """Delete every temporary sibling under ``root`` (left by a killed or failed run); return how many.

    Call it only while holding the run lock of ``root``: then no live writer owns them."""
    root = Path(root)
    if not root.is_dir():
        return 0
    found = [p for p in root.rglob(".*.tmp*") if is_leftover(p)]
    for p in sorted(found, key=lambda p: len(p.parts), reverse=True):
        discard(p)
    return len(found)
