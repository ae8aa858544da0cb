"""The one resumable-stage contract every command that writes follows.

- **One output folder, one run.** :func:`open_out` checks ``--out`` before any work (a folder, not overlapping
  any input, made by this tool when ``--overwrite`` would delete it), takes the run lock and removes what dead
  runs left (temporary siblings, see :mod:`vlm_classdata.atomic`). The lock is an OS file lock (``filelock``): a killed
  run releases it with its process, so a stale lock never blocks; a live one is reported with its owner.
- **A unit is done only when all its work succeeded.** :class:`Stages` keeps one completion marker per unit
  (a shard, a chunk, a stage, a corpus): a JSON file holding the unit's *fingerprint* — a hash of everything
  that decides its bytes (settings, the source listing with sizes and mtimes, tool versions that shape output)
  — and what the unit reports. A marker whose fingerprint differs does not count; callers mark a unit only
  after its files are published (atomically) and nothing in it failed, so failed work is redone by the next
  run and successful work reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from vlm_classdata.atomic import (
    is_leftover,
    json_text,
    remove_leftovers,
    write_json_atomic,
    write_text_atomic,
)
from vlm_classdata.errors import UserError
from vlm_classdata.names import check_name

OWNER_FILE = ".vlm-classdata"  # written into every output folder this tool creates
LOCK_FILE = ".vlm-classdata.lock"
LOCK_OWNER_FILE = ".vlm-classdata.lock.owner"


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-able ``parts`` (dict key order does not matter)."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def file_listing(paths: Iterable[Path], root: Path | None = None) -> list[list]:
    """``[[path, size, mtime_ns], ...]`` of files (sorted), paths relative to ``root`` when given: the part of
    a fingerprint that notices an added, removed, resized or rewritten input file."""
    rows = []
    for p in paths:
        st = Path(p).stat()
        name = os.path.relpath(p, root) if root is not None else str(p)
        rows.append([name, st.st_size, st.st_mtime_ns])
    return sorted(rows)


def listing_changes(old: list[list], new: list[list], limit: int = 3) -> str:
    """One line saying how two :func:`file_listing` results differ ("2 added (a, b), 1 changed (c)")."""
    before = {r[0]: tuple(r[1:]) for r in old}
    after = {r[0]: tuple(r[1:]) for r in new}
    parts = []
    for what, names in (("added", sorted(set(after) - set(before))),
                        ("removed", sorted(set(before) - set(after))),
                        ("changed", sorted(k for k in set(after) & set(before) if after[k] != before[k]))):
        if names:
            shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
            parts.append(f"{len(names)} {what} ({shown})")
    return "; ".join(parts) or "no file differs"


# ----------------------------------------------------------------------------------------------------------
# the output folder


def paths_overlap(a: Path, b: Path) -> bool:
    """True when one path is the other or lies inside it (after resolving links)."""
    ra, rb = Path(a).expanduser().resolve(), Path(b).expanduser().resolve()
    return ra == rb or ra in rb.parents or rb in ra.parents


def _is_ours(out: Path, legacy: tuple[str, ...]) -> bool:
    return (out / OWNER_FILE).is_file() or any((out / name).exists() for name in legacy)


def check_out(out: Path, inputs: Iterable[str | Path | None] = (), flag: str = "--out") -> Path:
    """Validate an output folder before any work: not a file, not overlapping an input. Returns it."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is a file, not a folder")
    for inp in inputs:
        if inp is None or str(inp) == "" or "://" in str(inp):
            continue
        if Path(inp).expanduser().exists() and paths_overlap(out, Path(inp)):
            raise UserError(f"{flag} {out} overlaps the input {inp}; write outside the input and the input "
                            f"outside {flag}")
    return out


@dataclass
class RunLock:
    """The run lock of one output folder (an OS lock: released when its process dies, however it dies)."""

    out: Path
    lock: FileLock

    def release(self) -> None:
        """Let the next run in."""
        (self.out / LOCK_OWNER_FILE).unlink(missing_ok=True)
        self.lock.release()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_out(out: Path) -> RunLock:
    """Take the run lock of ``out`` (created if missing) or fail with one line naming the live owner."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            owner = json.loads((out / LOCK_OWNER_FILE).read_text(encoding="utf-8"))
            who = f"pid {owner.get('pid')} on {owner.get('host')} since {owner.get('since')}"
        except (OSError, ValueError):
            who = "another process"
        raise UserError(f"{out} is in use by another run ({who}); wait for it or use another output folder") \
            from None
    write_text_atomic(out / LOCK_OWNER_FILE, json_text({
        "pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": " ".join(sys.argv[:1])}))
    return RunLock(out, lock)


def open_out(out: str | Path, *, inputs: Iterable[str | Path | None] = (), overwrite: bool = False,
             command: str = "", legacy: tuple[str, ...] = (), flag: str = "--out") -> RunLock:
    """Check, (re)create and lock an output folder; clean what dead runs left. Returns the held lock.

    ``overwrite`` empties the folder first, but only one this tool made (its :data:`OWNER_FILE`, or one of the
    ``legacy`` names older versions wrote) and never one that overlaps an input. Without ``overwrite`` an
    existing folder is reused as it is (each command decides whether its contents may be resumed)."""
    out = check_out(Path(out), inputs, flag)
    # a folder holding only a lock or a dead run's temporary files is as good as empty
    existed = out.is_dir() and any(p.name not in (LOCK_FILE, LOCK_OWNER_FILE) and not is_leftover(p)
                                   for p in out.iterdir())
    if overwrite and existed and not _is_ours(out, legacy):
        raise UserError(f"--overwrite refused: {out} was not made by this tool (no {OWNER_FILE} in it); "
                        "delete it yourself or choose another folder")
    held = lock_out(out)
    try:
        if overwrite and existed:
            for child in out.iterdir():
                if child.name in (LOCK_FILE, LOCK_OWNER_FILE):
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        if not (out / OWNER_FILE).exists():
            write_json_atomic(out / OWNER_FILE, {"tool": "vlm-classdata", "command": command})
        remove_leftovers(out)
    except BaseException:
        held.release()
        raise
    return held


# ----------------------------------------------------------------------------------------------------------
# completion markers


class Stages:
    """Completion markers of units of work, one JSON file per unit under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, unit: str) -> Path:
        """The marker file of ``unit`` (``a/b`` names a marker in a subfolder)."""
        parts = unit.split("/")
        for part in parts:
            check_name(part, "stage unit")
        return self.folder.joinpath(*parts[:-1], parts[-1] + ".done.json")

    def done(self, unit: str, fingerprint: str) -> dict | None:
        """What ``unit`` reported when it finished with this ``fingerprint``; None when it must (re)run."""
        path = self.path(unit)
        try:
            marker = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(marker, dict) or marker.get("fingerprint") != fingerprint:
            return None
        return marker.get("info", {})

    def mark(self, unit: str, fingerprint: str, info: dict | None = None) -> None:
        """Record that ``unit`` finished, every part of it succeeded, and its files are published."""
        write_json_atomic(self.path(unit), {"unit": unit, "fingerprint": fingerprint, "info": info or {}})

    def clear(self, unit: str) -> None:
        """Forget ``unit`` (it will run again)."""
        self.path(unit).unlink(missing_ok=True)

    def units(self) -> list[str]:
        """Every unit with a marker, fingerprint not checked."""
        if not self.folder.is_dir():
            return []
        return sorted(str(p.relative_to(self.folder))[: -len(".done.json")]
                      for p in self.folder.rglob("*.done.json"))
