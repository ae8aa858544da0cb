"""The chat client against servers that fail: a total deadline per attempt (a trickling server times out at
``timeout``), a circuit breaker (a dead server fails a batch in seconds, not minutes), 429 still retried, and
credentials in the URL sent as basic auth but never recorded."""

from __future__ import annotations

import base64
import json
import time

from chat_server import ChatServer, closed_port_url, rate_limited, reply, scripted, server_error, trickle

from imagewikiqa.chat import ChatRequest, RequestTally
from imagewikiqa.llm_client import ChatClient


def _req(text: str = "hi") -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], model="m")


def test_a_trickling_body_times_out_at_the_total_deadline():
    # 1 byte per 0.1 s: every read succeeds well inside a per-read timeout, the whole body takes ~25 s
    with ChatServer(scripted(trickle(0.1))) as srv, ChatClient(srv.url, timeout=1.0, max_retries=0) as client:
        t0 = time.monotonic()
        res = client.complete(_req())
        elapsed = time.monotonic() - t0
    assert not res.ok and res.error.startswith("timeout: no complete reply within 1s"), res.error
    assert 0.9 < elapsed < 2.0, elapsed


def test_trickling_headers_time_out_too():
    with ChatServer(scripted(trickle(0.1, headers_too=True))) as srv, \
            ChatClient(srv.url, timeout=1.0, max_retries=1, backoff=0.01) as client:
        t0 = time.monotonic()
        res = client.complete(_req())
        elapsed = time.monotonic() - t0
    assert not res.ok and res.error.startswith("timeout"), res.error
    assert res.attempts == 2 and 1.8 < elapsed < 3.5, elapsed


def test_a_dead_server_fails_a_batch_in_seconds_with_the_cause():
    """Default retries and backoff (5 retries, 1 s doubling): without a breaker 40 requests took ~2 minutes."""
    with ChatClient(closed_port_url(), max_retries=5, backoff=1.0) as client:
        t0 = time.monotonic()
        results = client.complete_many([_req(str(i)) for i in range(40)])
        elapsed = time.monotonic() - t0
    assert elapsed < 5, elapsed
    assert not any(r.ok for r in results)
    tally = RequestTally()
    tally.add(results)
    assert tally.failed == 40 and "Connection refused" in tally.first_error, tally.first_error
    assert not tally.first_error.startswith("circuit_open")
    opened = [r.error for r in results if r.error.startswith("circuit_open")]
    assert opened and "Connection refused" in opened[0]


def test_the_breaker_stops_sending_after_consecutive_5xx():
    with ChatServer(scripted(server_error(503, "overloaded"))) as srv, \
            ChatClient(srv.url, concurrency=1, max_retries=0, breaker_after=5) as client:
        results = client.complete_many([_req(str(i)) for i in range(20)])
        sent = srv.count
    assert sent == 5
    assert [r.error for r in results[:5]] == ["http_503: overloaded"] * 5
    assert all(r.error.startswith("circuit_open: not sent after 5 consecutive failed attempts (last: http_503: "
                                  "overloaded)") for r in results[5:])


def test_429_is_retried_and_does_not_open_the_breaker():
    steps = [rate_limited(0.05)] * 7 + [reply("finally")]
    with ChatServer(scripted(*steps)) as srv, \
            ChatClient(srv.url, max_retries=8, backoff=5.0, breaker_after=2) as client:
        t0 = time.monotonic()
        res = client.complete(_req())
        elapsed = time.monotonic() - t0
    assert res.ok and res.text == "finally" and res.attempts == 8
    assert elapsed < 2.5  # Retry-After (0.05 s) replaced the 5 s backoff


def test_url_credentials_are_sent_but_never_recorded(tmp_path):
    secret = "sk-LiveKey0123456789abcdef"
    with ChatServer() as srv:
        url = srv.url.replace("http://", f"http://alice:{secret}@")
        with ChatClient(url, cache_dir=tmp_path / "cache", max_retries=0) as client:
            assert client.complete(_req("hello")).text == "hello"
        with ChatClient(srv.url.replace("http://", "http://alice:another-password@"),
                        cache_dir=tmp_path / "cache") as client:
            assert client.complete(_req("hello")).cached  # the key does not depend on the credentials
        auth = srv.headers[0].get("Authorization")
    assert auth == "Basic " + base64.b64encode(f"alice:{secret}".encode()).decode()
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert secret not in text and "alice" not in text, path
        assert json.loads(text)["base_url"].startswith("http://127.0.0.1:")


def test_errors_name_no_credentials():
    secret = "sk-LiveKey0123456789abcdef"
    url = closed_port_url().replace("http://", f"http://bob:{secret}@")
    with ChatClient(url, max_retries=0) as client:
        res = client.complete(_req())
    assert not res.ok and secret not in res.error and "Connection refused" in res.error
