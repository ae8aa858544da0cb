"""`imagewikiqa build` against model servers that fail (real 127.0.0.1 servers, a real closed port).

A stage that sends requests is marked done only when every request succeeded: a partial or full outage ends
the build with one line naming how many requests failed and the first error, the answers it did get stay
cached, and the same command with the server back sends only the failed requests and produces what an
uninterrupted build produces. A dead server fails fast (circuit breaker); a trickling one at --timeout."""

from __future__ import annotations

import json
import time

from chat_server import ChatServer, closed_port_url, outage, trickle
from test_imagewikiqa_build import SEED, WNIDS, Oracle, Writer

from imagewikiqa.__main__ import main
from imagewikiqa.wordnet_questions import generate_wordnet_questions
from vlm_classdata.errors import run_cli
from vlm_classdata.vocabulary import ClassVocabulary

CLASSES = WNIDS[:12]


def _llm_args(out, url, *extra: str) -> list[str]:
    return ["build", "--out", str(out), "--class-ids", ",".join(CLASSES), "--generator", "llm", "--llm", url,
            "--llm-model", "writer", "--per-class", "3", "--verifier", url, "--verifier-model", "writer",
            "--no-progress", *extra]


def _last_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    return err.splitlines()[-1]


def test_partial_outage_fails_names_the_error_and_a_rerun_sends_only_the_failed_requests(tmp_path, capsys):
    writer = Writer()
    down = {"now": True}
    handler = outage(writer, fails=lambda req, idx: down["now"] and idx % 2 == 1, message="upstream overloaded")
    out = tmp_path / "bench"
    with ChatServer(handler) as srv:
        # one request at a time, no retries: every other generation request fails (6 of 12 classes)
        args = _llm_args(out, srv.url, "--concurrency", "1", "--max-retries", "0")
        assert run_cli(main, args) == 2
        assert _last_error(capsys) == ("error: generate: 6 of 12 requests failed (first: http_500: upstream "
                                       "overloaded); rerun the same command to retry them — 6 answers are cached")
        assert srv.count == 12
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "http_500: upstream overloaded" in manifest["error"]
        assert manifest["requests"]["generate"]["failed"] == 6
        assert not (out / "stages" / "generated.done.json").exists()

        # the server is back: the same command sends the 6 failed generation requests, not the 6 cached ones
        down["now"] = False
        generated_before = writer.generation_requests
        assert run_cli(main, args) == 0
        assert writer.generation_requests - generated_before == 6
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "complete"
        assert manifest["requests"]["generate"] == {"failed": 0, "first_error": None, "from_cache": 6, "ok": 12,
                                                    "requests": 12}

        # the same as a build that never saw the outage
        clean = tmp_path / "clean"
        assert run_cli(main, _llm_args(clean, srv.url)) == 0
    for name in ("questions.jsonl", "verification.jsonl", "stages/generated.jsonl", "classes.json"):
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name
    assert json.loads((out / "questions.jsonl").read_text().splitlines()[0])


def test_a_verifier_outage_is_not_recorded_as_done(tmp_path, capsys):
    """Before: every verdict was "request_failed", the stage was marked done, and every rerun failed with
    "no question is left" without sending a request."""
    vocab = ClassVocabulary.bundled("imagenet1k").subset(WNIDS[:6])
    oracle = Oracle(generate_wordnet_questions(vocab, per_class=5, seed=SEED)[0])
    down = {"now": True}
    handler = outage(oracle, fails=lambda req, idx: down["now"], status=503, message="verifier restarting")
    out = tmp_path / "bench"
    with ChatServer(handler) as srv:
        args = ["build", "--out", str(out), "--class-ids", ",".join(WNIDS[:6]), "--seed", str(SEED),
                "--verifier", srv.url, "--verifier-model", "oracle", "--no-progress"]
        t0 = time.monotonic()
        assert run_cli(main, args) == 2
        assert time.monotonic() - t0 < 10  # the breaker stopped the retries (5 by default, 1 s backoff)
        line = _last_error(capsys)
        assert line.startswith("error: verify: ") and "(first: http_503: verifier restarting)" in line, line
        assert line.endswith("— 0 answers are cached")
        assert srv.count <= 8  # the first wave, then the circuit opened
        assert not (out / "stages" / "verified.done.json").exists()
        assert not (out / "verification.jsonl").exists()

        down["now"] = False
        assert run_cli(main, args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reused_stages"] == ["generated", "ruled"] and manifest["questions"] > 0
    assert manifest["requests"]["verify"]["failed"] == 0


def test_a_dead_server_fails_a_40_class_build_in_seconds(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["build", "--out", str(out), "--max-classes", "40", "--generator", "llm", "--llm", closed_port_url(),
            "--llm-model", "m", "--no-progress"]
    t0 = time.monotonic()
    assert run_cli(main, args) == 2
    elapsed = time.monotonic() - t0
    line = _last_error(capsys)
    assert line.startswith("error: generate: 40 of 40 requests failed (first: connection_error: ConnectError: "), line
    assert "Connection refused" in line
    assert elapsed < 5, elapsed  # was 127 s (5 retries with 1-2-4-8-16 s backoff for every request)


def test_a_trickling_server_times_out_at_the_timeout_option(tmp_path, capsys):
    out = tmp_path / "bench"
    with ChatServer(lambda req, idx: trickle(0.1)) as srv:
        args = ["build", "--out", str(out), "--class-ids", ",".join(CLASSES[:2]), "--generator", "llm",
                "--llm", srv.url, "--llm-model", "m", "--timeout", "1", "--max-retries", "0", "--no-progress"]
        t0 = time.monotonic()
        assert run_cli(main, args) == 2
        elapsed = time.monotonic() - t0
    line = _last_error(capsys)
    assert line.startswith("error: generate: 2 of 2 requests failed (first: timeout: no complete reply within 1s"), line
    assert elapsed < 6, elapsed


def test_timeout_and_retries_are_checked_before_any_work(tmp_path, capsys):
    for extra, needle in ((["--timeout", "0"], "--timeout must be > 0"),
                          (["--max-retries", "-1"], "--max-retries must be >= 0"),
                          (["--verifier", "http://"], "--verifier: base_url")):
        out = tmp_path / "never"
        assert run_cli(main, ["build", "--out", str(out), "--max-classes", "2", "--no-progress", *extra]) == 2
        assert needle in _last_error(capsys)
        assert not out.exists()
