"""The build's resumable stages under ``OUT/stages`` and the model requests each stage sends.

A stage writes ``NAME.jsonl`` and a :class:`vlm_classdata.stages.Stages` marker holding the fingerprint of
every setting that shaped it; a rerun with the same fingerprint loads the rows instead of recomputing them. A
stage that sends model requests is marked done only when every request succeeded (:meth:`StageRunner.settle`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagewikiqa.build_config import BuildConfig, open_backend
from imagewikiqa.chat import ChatBackend, TalliedBackend
from vlm_classdata.atomic import write_jsonl_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.stages import Stages


class RequestsFailed(UserError):
    """Some model requests of a stage failed: the stage is not marked done; a rerun retries them."""


def _read_rows(path: Path) -> list[dict] | None:
    """The rows of a stage file, or None when it is missing or damaged (the stage then runs again)."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return rows if all(isinstance(r, dict) for r in rows) else None


class StageRunner:
    """The build's stages under ``OUT/stages``: ``NAME.jsonl`` plus the :class:`vlm_classdata.stages.Stages` marker."""

    def __init__(self, out: Path, log: Callable[[str], None]) -> None:
        self.dir = out / "stages"
        self.markers = Stages(self.dir)
        self.log = log
        self.reused: list[str] = []
        self.requests: dict[str, dict] = {}  # stage → RequestTally.to_json() of its model requests

    def run(self, name: str, fp: str, compute: Callable[[], tuple[list[dict], dict]]) -> tuple[list[dict], dict]:
        """Rows and info of stage ``name``: loaded when its marker matches ``fp``, else computed, published and
        marked (``compute`` raises when any of its work failed, so a failed stage is never marked)."""
        rows_path = self.dir / f"{name}.jsonl"
        done = self.markers.done(name, fp)
        if done is not None:
            rows = _read_rows(rows_path)
            if rows is not None and len(rows) == done.get("rows"):
                self.reused.append(name)
                self.log(f"[{name}] finished earlier with the same settings: reused {len(rows)} rows")
                return rows, done
        self.markers.clear(name)
        t0 = time.perf_counter()
        rows, info = compute()
        write_jsonl_atomic(rows_path, rows)
        info = {**info, "rows": len(rows), "seconds": round(time.perf_counter() - t0, 2)}
        self.markers.mark(name, fp, info)
        return rows, info

    def settle(self, stage: str, backend: TalliedBackend) -> None:
        """Record the requests ``stage`` sent through ``backend``; raise :class:`RequestsFailed` if any failed."""
        self.requests[stage] = backend.tally.to_json()
        problem = backend.tally.problem(stage)
        if problem:
            raise RequestsFailed(problem)

    def ask(self, stage: str, where: str, out: Path, config: BuildConfig,
            send: Callable[[ChatBackend], Any]) -> Any:
        """``send(backend)`` through a counting backend for ``stage``; fails the stage when a request failed."""
        backend = TalliedBackend(open_backend(where, out / "cache" / stage, config))
        try:
            result = send(backend)
        finally:
            backend.close()
        self.settle(stage, backend)
        return result
