"""One line of a build's ``run_log.jsonl``: when a run finished, how fast, and the command that started it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from vlm_classdata.errors import UserError
from vlm_classdata.records.base import Num, Record


class RunLogEntry(Record):
    """A run of a build (times and workers vary run to run, so they live here, not in the manifest)."""

    WHAT: ClassVar[str] = "run log entry"

    finished_at: str | None = None
    seconds: Num | None = None
    executor: str | None = None
    workers: int | None = None
    written: int | None = None
    images_per_s: Num | None = None
    argv: list[str] | None = None

    def line(self) -> str:
        """The entry as one JSON line (fields in the order above, non-ASCII kept)."""
        return json.dumps(self.to_obj(), ensure_ascii=False) + "\n"

    @classmethod
    def last(cls, path: Path) -> RunLogEntry | None:
        """The last valid entry of a run log, None when there is no file or no valid line."""
        if not path.is_file():
            return None
        last = None
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                last = cls.from_obj(json.loads(line), path)
            except (ValueError, UserError):  # a torn line or one of another shape is skipped
                continue
        return last
