"""An OpenAI-compatible chat-completions client (OpenAI, vLLM, TGI, llama.cpp servers).

Features: retries with capped exponential backoff (seeded jitter, ``Retry-After`` honoured) on timeouts,
connection errors, 429 and 5xx; a total deadline per attempt (connect + every read and write: a server that
trickles bytes still times out); a circuit breaker that stops sending after a run of consecutive connection
failures / timeouts / 5xx, so a dead server fails a batch in seconds; an on-disk cache of successful replies
(one JSON file per request key, so a stopped run resumes with zero HTTP calls for the finished requests);
bounded concurrency for batches; JSON replies validated against a small JSON-schema subset with one repair
round; and a :class:`RequestTally` of what a batch sent, reused and lost, with the first error's text.

Credentials in the URL (``http://user:key@host/v1``) are sent as HTTP basic auth and never recorded: cache
keys, cache records and error texts use the redacted URL (:func:`vlm_classdata.secrets.redact`).

Only the standard library, ``httpx`` and ``httpcore`` (httpx's transport) are used (no ``openai`` package, no
``jsonschema``).
"""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import json
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpcore
import httpx

from vlm_classdata.atomic import write_json_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.progress import make_bar
from vlm_classdata.secrets import redact

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_JSON_TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


@dataclass
class ChatRequest:
    """One chat-completions request; ``response_format`` is e.g. ``{"type": "json_object"}``."""

    messages: list[dict]
    model: str
    temperature: float = 0.0
    max_tokens: int = 512
    response_format: dict | None = None
    seed: int | None = None

    def payload(self) -> dict:
        """The JSON body sent to ``/chat/completions`` (optional fields only when set)."""
        body: dict[str, Any] = {"model": self.model, "messages": self.messages,
                                "temperature": float(self.temperature), "max_tokens": int(self.max_tokens)}
        if self.response_format is not None:
            body["response_format"] = self.response_format
        if self.seed is not None:
            body["seed"] = int(self.seed)
        return body

    def key(self, base_url: str = "") -> str:
        """Cache key: sha256 hex of the canonical JSON of all fields plus the (normalised) ``base_url``."""
        canon = {"base_url": base_url.rstrip("/"), "messages": self.messages, "model": self.model,
                 "temperature": float(self.temperature), "max_tokens": int(self.max_tokens),
                 "response_format": self.response_format,
                 "seed": None if self.seed is None else int(self.seed)}
        text = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class ChatResult:
    """Outcome of one request: ``text`` on success, else ``error`` (e.g. ``"http_400: ..."``).

    ``attempts`` counts HTTP attempts (0 for a cache hit); ``usage`` is the server's token usage dict.
    """

    text: str | None
    error: str | None
    cached: bool = False
    attempts: int = 0
    usage: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@dataclass
class JsonResult:
    """Outcome of :meth:`ChatClient.complete_json`.

    ``value`` is the validated JSON value or None; ``error`` the rejection reason; ``raw`` the last reply text;
    ``repaired`` is True when a repair request was sent (the value, if any, then comes from the repair reply).
    """

    value: Any
    error: str | None
    raw: str | None
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


# ----------------------------------------------------------------------------------------------------------
# JSON parsing and a small JSON-schema subset


_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)```", re.S)


def parse_json_reply(text: str) -> tuple[Any, str | None]:
    """Parse a model reply as JSON: strips ```json fences and, failing that, tries the outermost ``{...}`` or
    ``[...]`` span. Returns ``(value, None)`` or ``(None, reason)``."""
    if text is None:
        return None, "empty reply"
    s = text.strip()
    m = _FENCE.search(s)
    if m:
        s = m.group(1).strip()
    if not s:
        return None, "empty reply"
    try:
        return json.loads(s), None
    except ValueError as exc:
        first_err = f"not valid JSON ({exc})"
    for open_c, close_c in (("{", "}"), ("[", "]")):
        i, j = s.find(open_c), s.rfind(close_c)
        if 0 <= i < j:
            try:
                return json.loads(s[i:j + 1]), None
            except ValueError:
                pass
    return None, first_err


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, t: str) -> bool:
    actual = _type_name(value)
    if t == "number":
        return actual in ("integer", "number")
    if t == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == t


def validate_json(value: Any, schema: dict, path: str = "$") -> str | None:
    """Validate ``value`` against a JSON-schema subset; return the first error (``"$.a[0]: ..."``) or None.

    Supported keywords: ``type`` (object/array/string/integer/number/boolean/null, or a list of them),
    ``required``, ``properties``, ``items``, ``enum``, ``minItems``/``maxItems``, ``minLength``/``maxLength``,
    ``minimum``/``maximum``, ``additionalProperties: false``. Other keywords are ignored.
    """
    if not isinstance(schema, dict):
        raise UserError(f"JSON schema at {path} must be an object, got {_type_name(schema)}")
    t = schema.get("type")
    if t is not None:
        types = [t] if isinstance(t, str) else list(t)
        bad = [x for x in types if x not in _JSON_TYPES]
        if bad:
            raise UserError(f"JSON schema at {path}: unsupported type {bad[0]!r}")
        if not any(_is_type(value, x) for x in types):
            return f"{path}: expected {' or '.join(types)}, got {_type_name(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {json.dumps(value, ensure_ascii=False)[:80]} is not one of {schema['enum']}"
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return f"{path}: string shorter than {schema['minLength']}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{path}: string longer than {schema['maxLength']}"
    if _type_name(value) in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{path}: {value} is less than minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{path}: {value} is greater than maximum {schema['maximum']}"
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"{path}: expected at least {schema['minItems']} items, got {len(value)}"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{path}: expected at most {schema['maxItems']} items, got {len(value)}"
        if isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                err = validate_json(item, schema["items"], f"{path}[{i}]")
                if err:
                    return err
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                return f"{path}: missing required property {name!r}"
        props = schema.get("properties", {})
        for name, sub in props.items():
            if name in value:
                err = validate_json(value[name], sub, f"{path}.{name}")
                if err:
                    return err
        if schema.get("additionalProperties") is False:
            extra = sorted(k for k in value if k not in props)
            if extra:
                return f"{path}: unexpected property {extra[0]!r}"
    return None


# ----------------------------------------------------------------------------------------------------------
# The client


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


class ReplyCache:
    """Successful replies on disk, one JSON file per request key (``<dir>/<key[:2]>/<key>.json``), written
    atomically; a damaged entry is a miss that the next success overwrites. ``directory=None`` caches nothing."""

    def __init__(self, directory: str | Path | None) -> None:
        self.dir = Path(directory).expanduser() if directory is not None else None
        if self.dir is not None:
            if self.dir.exists() and not self.dir.is_dir():
                raise UserError(f"cache_dir {str(directory)!r} exists and is not a directory")
            self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path | None:
        return None if self.dir is None else self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> ChatResult | None:
        """The cached reply for ``key`` as a ``cached=True`` result, or None."""
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
            return None
        usage = rec.get("usage") if isinstance(rec.get("usage"), dict) else {}
        return ChatResult(text=rec["text"], error=None, cached=True, attempts=0, usage=usage)

    def put(self, key: str, record: dict) -> None:
        """Store ``record`` (must hold ``"text"``) under ``key``."""
        path = self._path(key)
        if path is None:
            return
        write_json_atomic(path, {"key": key, **record, "created": time.time()})


class ChatBackend:
    """What every text backend offers (the HTTP :class:`ChatClient`, the local transformers model in
    :mod:`imagewikiqa.local_backend`): :meth:`complete_many` over :class:`ChatRequest`, and JSON replies
    validated against a schema with one repair round. Subclasses implement :meth:`complete_many`."""

    def complete_many(self, reqs: Sequence[ChatRequest], progress: bool = False) -> list[ChatResult]:
        """One result per request, in input order; errors kept in the results, never raised."""
        raise NotImplementedError

    def complete(self, req: ChatRequest) -> ChatResult:
        """One request."""
        return self.complete_many([req])[0]

    def complete_json(self, req: ChatRequest, schema: dict, repair: bool = True) -> JsonResult:
        """Ask for a JSON reply, parse it (```json fences stripped) and validate it against ``schema``.

        On invalid output and ``repair``, ask once more with the previous reply and the validation error
        appended to the conversation; if that also fails, reject with the reason kept.
        """
        return self.complete_json_many([req], schema, repair)[0]

    def complete_json_many(self, reqs: Sequence[ChatRequest], schema: dict, repair: bool = True,
                           progress: bool = False) -> list[JsonResult]:
        """:meth:`complete_json` for many requests: all first attempts in one :meth:`complete_many` call,
        then all repairs in a second one (input order kept)."""
        if not isinstance(schema, dict):
            raise UserError("complete_json schema must be a JSON-schema object (dict)")
        reqs = list(reqs)
        results: list[JsonResult | None] = [None] * len(reqs)
        repairs: list[tuple[int, ChatRequest, str, str]] = []
        for i, (req, first) in enumerate(zip(reqs, self.complete_many(reqs, progress), strict=True)):
            if not first.ok:
                results[i] = JsonResult(value=None, error=f"request_failed: {first.error}", raw=first.text)
                continue
            value, err = self._parse_validate(first.text, schema)
            if err is None:
                results[i] = JsonResult(value=value, error=None, raw=first.text)
            elif not repair:
                results[i] = JsonResult(value=None, error=err, raw=first.text)
            else:
                repairs.append((i, self.repair_request(req, first.text, err, schema), first.text, err))
        seconds = self.complete_many([r for _, r, _, _ in repairs], progress) if repairs else []
        for (i, _, first_text, err), second in zip(repairs, seconds, strict=True):
            if not second.ok:
                results[i] = JsonResult(value=None, error=f"{err}; repair request_failed: {second.error}",
                                        raw=first_text, repaired=True)
                continue
            value2, err2 = self._parse_validate(second.text, schema)
            results[i] = (JsonResult(value=value2, error=None, raw=second.text, repaired=True) if err2 is None
                          else JsonResult(value=None, error=f"invalid_after_repair: {err2}", raw=second.text,
                                          repaired=True))
        return [r for r in results if r is not None]

    @staticmethod
    def repair_request(req: ChatRequest, bad_reply: str, error: str, schema: dict) -> ChatRequest:
        """The follow-up request asking the model to fix its reply (includes the validation error)."""
        msg = (f"Your previous reply was not valid: {error}\n"
               f"Reply again with only a JSON value (no prose, no code fences) that satisfies this JSON schema:\n"
               f"{json.dumps(schema, ensure_ascii=False, sort_keys=True)}")
        messages = [*req.messages, {"role": "assistant", "content": bad_reply},
                    {"role": "user", "content": msg}]
        return dataclasses.replace(req, messages=messages)

    @staticmethod
    def _parse_validate(text: str, schema: dict) -> tuple[Any, str | None]:
        value, err = parse_json_reply(text)
        if err is not None:
            return None, err
        err = validate_json(value, schema)
        return (value, None) if err is None else (None, f"schema: {err}")

@dataclass
class RequestTally:
    """What the requests of one piece of work came to: ``requests`` answered or failed, ``ok`` (cached now),
    ``from_cache`` (answered from the cache, no HTTP), ``failed`` and the ``first_error`` (redacted; an error
    naming the real cause is preferred over the circuit breaker's "circuit_open")."""

    requests: int = 0
    ok: int = 0
    from_cache: int = 0
    failed: int = 0
    first_error: str | None = None

    def add(self, results: Sequence[ChatResult]) -> None:
        """Count a batch of results."""
        for res in results:
            self.requests += 1
            if res.ok:
                self.ok += 1
                self.from_cache += int(res.cached)
                continue
            self.failed += 1
            error = redact(res.error or "no reply")
            if self.first_error is None or (self.first_error.startswith(CIRCUIT_OPEN)
                                            and not error.startswith(CIRCUIT_OPEN)):
                self.first_error = error

    def problem(self, what: str) -> str | None:
        """One line saying how many requests of ``what`` failed and how to resume; None when none failed."""
        if not self.failed:
            return None
        return (f"{what}: {self.failed} of {self.requests} requests failed (first: {self.first_error}); rerun "
                f"the same command to retry them — {self.ok} answers are cached")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class TalliedBackend(ChatBackend):
    """A backend that counts every request it passes on (repair requests included) in :attr:`tally`."""

    def __init__(self, inner: ChatBackend) -> None:
        self.inner = inner
        self.tally = RequestTally()

    def complete_many(self, reqs: Sequence[ChatRequest], progress: bool = False) -> list[ChatResult]:
        results = self.inner.complete_many(reqs, progress)
        self.tally.add(results)
        return results

    def close(self) -> None:
        """Close the wrapped backend when it holds connections."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


# ----------------------------------------------------------------------------------------------------------
# a total deadline per attempt: every socket operation gets only the time left until the attempt's deadline


_deadline = threading.local()  # .at: time.monotonic() deadline of the attempt running in this thread


def _time_left(timeout: float | None, exc: type[Exception]) -> float | None:
    """The socket timeout for the next operation: ``timeout`` capped by what is left of the deadline."""
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise exc("the total deadline of the request passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname,
                                                     _time_left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, with every connect/read/write bounded by the attempt's deadline."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(host, port, _time_left(timeout, httpcore.ConnectTimeout),
                                                       local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(
            path, _time_left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose sockets honour the per-attempt deadline."""

    def __init__(self, limits: httpx.Limits, trust_env: bool) -> None:
        super().__init__(limits=limits, trust_env=trust_env)
        # httpx takes no network backend, so the pool it built is replaced by the same pool over ours
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=trust_env),
            max_connections=limits.max_connections, max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=_DeadlineBackend())


CIRCUIT_OPEN = "circuit_open"


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
                                  auth=auth, transport=_DeadlineTransport(limits, trust_env))

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
            _deadline.at = time.monotonic() + self.timeout
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
                _deadline.at = None
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
