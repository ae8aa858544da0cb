"""An OpenAI-compatible chat-completions client (OpenAI, vLLM, TGI, llama.cpp servers).

Features: retries with capped exponential backoff (seeded jitter, ``Retry-After`` honoured) on timeouts,
connection errors, 429 and 5xx; a total deadline per attempt (connect + every read and write: a server that
trickles bytes still times out); a circuit breaker that stops sending after a run of consecutive connection
failures / timeouts / 5xx, so a dead server fails a batch in seconds; an on-disk cache of successful replies
(one JSON file per request key, so a stopped run resumes with zero HTTP calls for the finished requests);
bounded concurrency for batches; JSON replies validated against a small JSON-schema subset with one repair
round (:class:`imagewikiqa.chat.ChatBackend`); the request and reply types, the cache and the tally of what a
batch sent, reused and lost live in :mod:`imagewikiqa.chat`, the per-attempt deadline in
:mod:`imagewikiqa.http_deadline`.

Credentials in the URL (``http://user:key@host/v1``) are sent as HTTP basic auth and never recorded: cache
keys, cache records and error texts use the redacted URL (:func:`vlm_classdata.secrets.redact`).

Only the standard library, ``httpx`` and ``httpcore`` (httpx's transport) are used (no ``openai`` package, no
``jsonschema``).
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from imagewikiqa.chat import CIRCUIT_OPEN, ChatBackend, ChatRequest, ChatResult, ReplyCache
from imagewikiqa.http_deadline import DeadlineTransport, clear_deadline, start_deadline
from vlm_classdata.errors import UserError
from vlm_classdata.progress import make_bar
from vlm_classdata.secrets import redact

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _first_line(text: str, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:limit]


def _error_text(resp: httpx.Response) -> str:
    """The server's error message: ``error.message`` of an OpenAI-style JSON body, else the body text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text
    if isinstance(body, dict):
        err = body.get("error")
        message = err.get("message") if isinstance(err, dict) else err if isinstance(err, str) else None
        if isinstance(message, str) and message.strip():
            return message
    return resp.text


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class ChatClient(ChatBackend):
    """A thread-safe client for ``POST {base_url}/chat/completions``.

    ``base_url`` like ``http://127.0.0.1:8000/v1`` or ``https://api.openai.com/v1``; user and password in it
    (``http://user:key@host/v1``) are sent as basic auth and kept out of every recorded text. ``api_key``
    defaults to ``$OPENAI_API_KEY``; without one no ``Authorization: Bearer`` header is sent (local servers).
    ``timeout`` is the total time one attempt may take (connect, send, every read), however the server
    paces its bytes (for a remote host reached through an environment proxy, httpx's own transport is used and
    ``timeout`` bounds each socket operation instead). ``max_retries`` is the number of retries after the first attempt. Backoff before retry
    ``n`` (1-based) is ``min(max_backoff, backoff * 2**(n-1))`` scaled by a jitter in [0.5, 1] from
    ``random.Random(seed)``; a ``Retry-After`` header (seconds, capped at ``max_retry_after``) replaces it.
    After ``breaker_after`` consecutive attempts that failed by connection error, timeout or 5xx (429 counts
    neither way), the circuit opens: no more requests are sent and every pending one fails at once with
    ``circuit_open: ...`` naming the last error. At most ``concurrency`` requests are in flight at once.
    """

    def __init__(self, base_url: str, api_key: str | None = None, cache_dir: str | Path | None = None,
                 concurrency: int = 8, max_retries: int = 5, timeout: float = 60.0, backoff: float = 1.0,
                 max_backoff: float = 30.0, max_retry_after: float = 60.0, seed: int = 0,
                 headers: dict[str, str] | None = None, breaker_after: int = 5) -> None:
        shown = redact(str(base_url or ""))
        parts = urlsplit(str(base_url or ""))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(f"base_url {shown!r} must be an http(s) URL like http://127.0.0.1:8000/v1")
        if parts.path.rstrip("/").endswith("/chat/completions"):
            raise UserError(f"base_url {shown!r} should stop before /chat/completions (e.g. .../v1)")
        if int(concurrency) < 1:
            raise UserError(f"concurrency must be >= 1, got {concurrency}")
        if int(max_retries) < 0:
            raise UserError(f"max_retries must be >= 0, got {max_retries}")
        if not float(timeout) > 0:
            raise UserError(f"timeout must be > 0 seconds, got {timeout}")
        if float(backoff) < 0 or float(max_backoff) < 0 or float(max_retry_after) < 0:
            raise UserError("backoff, max_backoff and max_retry_after must be >= 0")
        if int(breaker_after) < 1:
            raise UserError(f"breaker_after must be >= 1, got {breaker_after}")
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
        auth = (unquote(parts.username or ""), unquote(parts.password or "")) \
            if parts.username or parts.password else None
        self.base_url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")).rstrip("/")
        self.shown_url = redact(self.base_url)  # what cache keys and records name (no secret query part)
        self.url = f"{self.base_url}/chat/completions"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.cache = ReplyCache(cache_dir)
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.timeout = float(timeout)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = float(max_retry_after)
        self.breaker_after = int(breaker_after)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._streak = 0                    # consecutive attempts failed by connection/timeout/5xx
        self._open = threading.Event()      # set when the circuit breaker opened
        self._open_reason = ""
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if self.api_key:
            hdrs["Authorization"] = f"Bearer {self.api_key}"
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        trust_env = host not in _LOCAL_HOSTS
        self._http = httpx.Client(timeout=httpx.Timeout(self.timeout), headers=hdrs, trust_env=trust_env,
                                  auth=auth, transport=DeadlineTransport(limits, trust_env))

    # -- lifecycle
    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- retries and the circuit breaker
    def _delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        base = min(self.max_backoff, self.backoff * (2 ** (retry - 1)))
        with self._lock:
            jitter = 0.5 + 0.5 * self._rng.random()
        return base * jitter

    def _note(self, outcome: str, error: str | None, status: int | None) -> None:
        """Feed one attempt's outcome to the circuit breaker."""
        with self._lock:
            if outcome == "ok" or (status is not None and status < 500 and status != 429):
                self._streak = 0  # the server answered (even a 4xx or a malformed body is an answer)
            elif status != 429:
                self._streak += 1
                if self._streak >= self.breaker_after and not self._open.is_set():
                    self._open_reason = (f"{CIRCUIT_OPEN}: not sent after {self._streak} consecutive failed "
                                         f"attempts (last: {error})")
                    self._open.set()

    def _attempt(self, payload: dict) -> tuple[str, Any, float | None, int | None]:
        """One HTTP attempt → ``(outcome, data, retry_after, status)``: ``("ok", (text, usage), None, 200)``,
        ``("retry", error, retry_after, status)`` or ``("fail", error, None, status)``."""
        with self._slots:
            if self._open.is_set():
                return "fail", self._open_reason, None, None
            start_deadline(self.timeout)
            try:
                resp = self._http.post(self.url, json=payload)
            except httpx.TimeoutException as exc:
                return "retry", f"timeout: no complete reply within {self.timeout:g}s ({type(exc).__name__})", \
                    None, None
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                return "retry", f"connection_error: {type(exc).__name__}: {_first_line(str(exc))}", None, None
            except httpx.HTTPError as exc:
                return "fail", f"http_error: {type(exc).__name__}: {_first_line(str(exc))}", None, None
            finally:
                clear_deadline()
        status = resp.status_code
        if status == 429 or status >= 500:
            return "retry", f"http_{status}: {_first_line(_error_text(resp))}", \
                _retry_after_seconds(resp.headers.get("retry-after")), status
        if status >= 400:
            return "fail", f"http_{status}: {_first_line(_error_text(resp))}", None, status
        try:
            body = resp.json()
            choice = body["choices"][0]
            content = choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return "fail", f"bad_response: {_first_line(resp.text)}", None, status
        if not isinstance(content, str):
            return "fail", f"no_content: finish_reason={choice.get('finish_reason')}", None, status
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return "ok", (content, usage), None, status

    # -- public API
    def complete(self, req: ChatRequest) -> ChatResult:
        """Send one request (or answer it from the cache). Errors are kept in the result, never raised."""
        key = req.key(self.shown_url)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        payload = req.payload()
        attempts, error, retry_after = 0, "no_attempt", None
        while attempts <= self.max_retries:
            if attempts and self._open.wait(self._delay(attempts, retry_after)):
                return ChatResult(text=None, error=redact(error), cached=False, attempts=attempts, usage={})
            if self._open.is_set():
                return ChatResult(text=None, error=redact(self._open_reason), cached=False, attempts=attempts)
            attempts += 1
            outcome, data, retry_after, status = self._attempt(payload)
            if outcome != "fail" or status is not None:
                self._note(outcome, None if outcome == "ok" else data, status)
            if outcome == "ok":
                text, usage = data
                self.cache.put(key, {"base_url": self.shown_url, "request": payload, "text": text,
                                     "usage": usage})
                return ChatResult(text=text, error=None, cached=False, attempts=attempts, usage=usage)
            error = data
            if outcome == "fail":
                break
        return ChatResult(text=None, error=redact(error), cached=False, attempts=attempts, usage={})

    def complete_many(self, reqs: Sequence[ChatRequest], progress: bool = False) -> list[ChatResult]:
        """Run requests with at most ``concurrency`` in flight; results in input order."""
        reqs = list(reqs)
        results: list[Any] = [None] * len(reqs)
        if not reqs:
            return results
        bar = make_bar(total=len(reqs), desc="chat", unit="req", disable=not progress)
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(reqs)), thread_name_prefix="chat")
        try:
            futures = {pool.submit(self.complete, r): i for i, r in enumerate(reqs)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        return results
