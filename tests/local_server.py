"""The lifecycle every local test server shares: bind 127.0.0.1 on an ephemeral port, serve in a daemon thread,
stop when the ``with`` block ends or, as a safety net, after ``max_lifetime`` seconds.

A server subclasses :class:`LocalServer`, sets ``handler_class`` (a :class:`QuietHandler`; it reaches the
server object as ``self.server.owner``) and ``thread_name``, and calls ``super().__init__(max_lifetime)``.
Handlers that sleep should wait on ``owner._stop`` so that stopping wakes them.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers with :meth:`_send`."""

    server: Any  # _Server; .owner is the test server object

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def _send(self, status: int, data: bytes, ctype: str, headers: dict | None = None) -> None:
        """Reply ``status`` with body ``data`` of type ``ctype`` and extra ``headers``; a client that gave up
        (its timeout fired, it closed the connection) is ignored."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, str(value))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # bursts of concurrent clients (thread pools, img2dataset)

    owner: Any


class LocalServer:
    """Start/stop plumbing for the test servers (see the module docstring)."""

    handler_class: type[BaseHTTPRequestHandler]
    thread_name = "local-server"

    def __init__(self, max_lifetime: float) -> None:
        self.max_lifetime = float(max_lifetime)
        self._stop = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def start(self) -> Any:
        """Bind 127.0.0.1:0 and serve in a daemon thread; a timer stops it after ``max_lifetime`` seconds."""
        self._httpd = _Server(("127.0.0.1", 0), self.handler_class)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent, bounded): wakes sleeping handlers and closes the socket."""
        self._stop.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        httpd = self._httpd
        if httpd is not None and self._thread is not None and self._thread.is_alive():
            httpd.shutdown()
            self._thread.join(timeout=5)
        if httpd is not None:
            httpd.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
