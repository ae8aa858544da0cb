"""A scriptable local OpenAI-compatible chat-completions server for tests (127.0.0.1 only, port 0).

Usage::

    from chat_server import ChatServer, scripted, reply, rate_limited, server_error, slow

    with ChatServer(scripted(rate_limited(0.2), server_error(), reply("hello"))) as srv:
        client = ChatClient(srv.url)            # srv.url == "http://127.0.0.1:<port>/v1"
        ...
        assert srv.count == 3                   # requests received (any path)
        srv.requests[-1]["messages"]            # recorded JSON bodies, in arrival order
        srv.max_in_flight                       # most requests handled at the same time

A *handler* is ``handler(request_json, call_index) -> (status, body, headers)``: ``call_index`` counts POSTs to
``.../chat/completions`` from 0 in arrival order; ``body`` is a dict (sent as JSON) or a str (sent as
text/plain); ``headers`` a dict. The default handler, :func:`echo`, replies with the last user message's
text, which makes order tests easy. Step helpers for :func:`scripted`:

- :func:`reply` — a valid completion with the given content (also use it for malformed JSON content);
- :func:`rate_limited` — 429 with ``Retry-After``;  :func:`server_error` — 500 (or any status);
- :func:`bad_request` — 400 with a text body;  :func:`slow` — sleep, then answer with another step;
- :func:`trickle` — a valid completion sent one byte every ``interval`` seconds (optionally the status line
  and headers too), the server that never trips a per-read timeout.

Fault modes wrapping a handler: :func:`outage` fails the calls a predicate picks (e.g. every other one) with
a 5xx and a message; :func:`closed_port_url` is a URL where nothing listens (connection refused).

The server binds 127.0.0.1 only, uses daemon handler threads, stops when the ``with`` block ends and, as a
safety net, shuts itself down after ``max_lifetime`` seconds. Sleeping handlers wake when it stops.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from local_server import LocalServer, QuietHandler

Response = tuple[int, "dict | str", dict]
Handler = Callable[[dict, int], Response]

_STOPPING = threading.local()


def completion_body(content: str | None, model: str = "test-model", usage: dict | None = None,
                    finish_reason: str = "stop") -> dict:
    """A chat-completions response body whose ``choices[0].message.content`` is ``content``."""
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}],
        "usage": usage if usage is not None else {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def reply(content: str | None, usage: dict | None = None) -> Response:
    """A 200 reply with the given content (any text, e.g. malformed JSON)."""
    return 200, completion_body(content, usage=usage), {}


def rate_limited(retry_after: float | None = 0.2) -> Response:
    """A 429 reply, with ``Retry-After: <seconds>`` unless ``retry_after`` is None."""
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return 429, {"error": {"message": "rate limited", "type": "rate_limit"}}, headers


def server_error(status: int = 500, message: str = "internal error") -> Response:
    """A 5xx (or any status) reply with an OpenAI-style error body."""
    return status, {"error": {"message": message}}, {}


def bad_request(message: str = "bad request: unknown field") -> Response:
    """A 400 reply with a text body (its first line is what the client keeps)."""
    return 400, message, {}


def slow(seconds: float, then: Response | None = None) -> Callable[[dict, int], Response]:
    """A step that sleeps ``seconds`` (waking early if the server stops), then answers with ``then``."""
    def step(req: dict, idx: int) -> Response:
        stop_event = getattr(_STOPPING, "event", None)
        if stop_event is not None:
            stop_event.wait(seconds)
        else:
            time.sleep(seconds)
        return then if then is not None else reply("slow reply")
    return step


class Trickle:
    """A response body the server sends one byte per ``interval`` seconds (``headers_too``: the status line
    and headers as well)."""

    def __init__(self, data: bytes, interval: float, headers_too: bool = False) -> None:
        self.data, self.interval, self.headers_too = data, float(interval), headers_too


def trickle(interval: float = 1.0, content: str = "a reply that arrives very slowly",
            headers_too: bool = False) -> Response:
    """A 200 completion trickled one byte every ``interval`` seconds."""
    return 200, Trickle(json.dumps(completion_body(content)).encode("utf-8"), interval, headers_too), {}


def outage(handler: Handler | None = None, fails: Callable[[dict, int], bool] = lambda req, idx: idx % 2 == 1,
           status: int = 500, message: str = "upstream overloaded") -> Handler:
    """``handler`` (default :func:`echo`) except for the calls ``fails(request_json, call_index)`` picks
    (default: every other call), which get ``status`` with an OpenAI-style error ``message``."""
    inner = handler or echo

    def handle(req: dict, idx: int) -> Response:
        return server_error(status, message) if fails(req, idx) else inner(req, idx)
    return handle


def closed_port_url() -> str:
    """A chat URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def echo(req: dict, idx: int) -> Response:
    """Default handler: reply with the text of the last user message (or ``""``)."""
    text = ""
    for msg in reversed(req.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):  # content parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            text = content if isinstance(content, str) else ""
            break
    return reply(text)


def scripted(*steps: Any, then: Handler | None = None) -> Handler:
    """A handler answering call ``i`` with ``steps[i]``; after the last step, ``then`` (default: repeat the
    last step). A step is a ``(status, body, headers)`` tuple or a callable ``(request_json, call_index)``."""
    if not steps:
        raise ValueError("scripted() needs at least one step")

    def handler(req: dict, idx: int) -> Response:
        if idx < len(steps):
            step = steps[idx]
        elif then is not None:
            return then(req, idx)
        else:
            step = steps[-1]
        return step(req, idx) if callable(step) else step
    return handler


class _RequestHandler(QuietHandler):
    def _reply(self, status: int, body: Any, headers: dict) -> None:
        """``body`` as JSON (dict or list), as text, or trickled (:class:`Trickle`)."""
        if isinstance(body, Trickle):
            self._trickle(status, body, headers)
        elif isinstance(body, (dict, list)):
            self._send(status, json.dumps(body).encode("utf-8"), "application/json", headers)
        else:
            self._send(status, str(body).encode("utf-8"), "text/plain; charset=utf-8", headers)

    def _trickle(self, status: int, body: Trickle, headers: dict) -> None:
        head = (f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body.data)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode("ascii")
        stop = self.server.owner._stop
        try:
            if not body.headers_too:
                self.wfile.write(head)
                self.wfile.flush()
            data = head + body.data if body.headers_too else body.data
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                if stop.wait(body.interval):
                    return
        except OSError:  # the client gave up
            pass

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        idx = owner._enter(dict(self.headers))
        try:
            status, body, headers = self._answer(owner, idx, raw)
        finally:
            # leave before replying: a client that sends its next request as soon as it reads this reply must
            # not find this one still counted in flight
            owner._leave()
        if status is not None and not owner._stop.is_set():
            self._reply(status, body, headers or {})

    def _answer(self, owner: Any, idx: int, raw: bytes) -> tuple[int | None, Any, dict]:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {self.path}"}}, {}
        try:
            req = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return 400, "request body is not JSON", {}
        owner._record(idx, req)
        _STOPPING.event = owner._stop
        try:
            return owner.handler(req, idx)
        except Exception as exc:  # a broken test handler shows up as a 500 with its message
            return 500, f"test handler raised {type(exc).__name__}: {exc}", {}


class ChatServer(LocalServer):
    """A threaded chat-completions server on 127.0.0.1 with an ephemeral port; use it as a context manager.

    Attributes: ``url`` (``http://127.0.0.1:PORT/v1``), ``count`` (POSTs received), ``requests`` (JSON bodies
    of chat-completions calls, arrival order), ``headers`` (request headers, same order), ``max_in_flight``.
    """

    handler_class = _RequestHandler
    thread_name = "chat-server"

    def __init__(self, handler: Handler | None = None, max_lifetime: float = 60.0) -> None:
        self.handler: Handler = handler or echo
        super().__init__(max_lifetime)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    # -- bookkeeping called from handler threads
    def _enter(self, headers: dict) -> int:
        with self._lock:
            idx = self.count
            self.count += 1
            self.headers.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return idx

    def _record(self, idx: int, req: dict) -> None:
        with self._lock:
            self.requests.append(req)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    # -- lifecycle
    @property
    def url(self) -> str:
        """Base URL for the client, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"
