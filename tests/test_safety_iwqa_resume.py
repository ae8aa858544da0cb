"""A build killed with SIGKILL in the middle of generation: the next run is not blocked by the dead run's
lock, leaves nothing of it behind, and sends only the requests whose answers were not cached yet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from chat_server import ChatServer, slow
from test_imagewikiqa_build import WNIDS, Writer

from imagewikiqa.__main__ import main
from vlm_classdata.atomic import is_leftover
from vlm_classdata.errors import run_cli

REPO = Path(__file__).resolve().parents[1]
CLASSES = WNIDS[:6]


def test_sigkill_mid_generation_then_resume(tmp_path):
    writer = Writer()
    out = tmp_path / "bench"
    pace = {"seconds": 0.3}  # slow while the first run is killed, fast for the rerun
    with ChatServer(lambda req, idx: slow(pace["seconds"], writer(req, idx))(req, idx)) as srv:
        args = ["build", "--out", str(out), "--class-ids", ",".join(CLASSES), "--generator", "llm",
                "--llm", srv.url, "--llm-model", "writer", "--per-class", "3", "--concurrency", "1",
                "--no-progress"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "imagewikiqa", *args], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while writer.generation_requests < 3 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert proc.poll() is None, proc.stderr.read()
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        cached = [p for p in (out / "cache" / "generate").rglob("*.json")]
        assert 1 <= len(cached) < len(CLASSES)
        assert not (out / "stages" / "generated.done.json").exists()

        sent_before, pace["seconds"] = writer.generation_requests, 0
        assert run_cli(main, args) == 0  # the dead run's lock does not block
        assert writer.generation_requests - sent_before == len(CLASSES) - len(cached)
    assert not [p for p in out.rglob("*") if is_leftover(p)]
    assert (out / "stages" / "generated.done.json").is_file() and (out / "questions.jsonl").stat().st_size > 0
