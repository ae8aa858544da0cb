"""The requests and replies every text backend speaks: :class:`ChatRequest`, :class:`ChatResult`,
:class:`JsonResult`, the :class:`ChatBackend` interface (JSON replies validated, with one repair round), the
on-disk :class:`ReplyCache` of successful replies, and :class:`RequestTally` / :class:`TalliedBackend`, what a
batch sent, reused and lost."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagewikiqa.json_reply import parse_json_reply, validate_json
from vlm_classdata.atomic import write_json_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.secrets import redact

CIRCUIT_OPEN = "circuit_open"
"""The error prefix of a request the circuit breaker refused to send (:class:`imagewikiqa.llm_client.ChatClient`)."""


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
