"""A local image server for download tests (img2dataset and friends), on 127.0.0.1 with an ephemeral port.

    with ImageServer(slow_seconds=3) as srv:
        srv.url("good/tench_1.jpg")      # "http://127.0.0.1:<port>/good/tench_1.jpg"
        ...
        srv.hits("good/tench_1.jpg")     # GET requests received for that path
        srv.paths                        # every requested path (no leading "/"), in arrival order

Routes (the first path segment chooses the behaviour; the rest is a free name):

- ``good/<name>.jpg`` / ``good/<name>.png`` — 200 with a generated image (JPEG or PNG by the extension),
  deterministic per name (colour and size come from a sha256 of the name);
- ``broken/<name>`` — 200, ``Content-Type: image/jpeg``, bytes that are no image (a JPEG header + junk);
- ``missing/<name>`` — 404;  ``error/<name>`` — 500;
- ``slow/<name>.jpg`` — sleeps ``slow_seconds`` (longer than the client's timeout), then the image;
  it wakes early when the server stops;
- anything else — 404.

The server uses daemon handler threads, stops when the ``with`` block ends and, as a safety net, after
``max_lifetime`` seconds.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import Counter
from functools import lru_cache

from local_server import LocalServer, QuietHandler

BROKEN_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"this is not really a jpeg" * 8


@lru_cache(maxsize=512)
def image_bytes(name: str, fmt: str = "jpg") -> bytes:
    """A small deterministic RGB image for ``name``: a gradient in a colour derived from its sha256."""
    from PIL import Image

    digest = hashlib.sha256(name.encode("utf-8")).digest()
    width, height = 40 + digest[3] % 40, 32 + digest[4] % 40
    base = digest[:3]
    img = Image.new("RGB", (width, height))
    img.putdata([((base[0] + x * 3) % 256, (base[1] + y * 3) % 256, (base[2] + x + y) % 256)
                 for y in range(height) for x in range(width)])
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG")
    else:
        img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class _Handler(QuietHandler):
    def _image(self, name: str) -> None:
        fmt = "png" if name.lower().endswith(".png") else "jpg"
        self._send(200, image_bytes(name, fmt), "image/png" if fmt == "png" else "image/jpeg")

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        owner = self.server.owner
        path = self.path.split("?", 1)[0].lstrip("/")
        owner._record(path)
        kind, _, name = path.partition("/")
        if not name:
            self._send(404, b"not found", "text/plain")
        elif kind == "good":
            self._image(name)
        elif kind == "broken":
            self._send(200, BROKEN_BYTES, "image/jpeg")
        elif kind == "missing":
            self._send(404, b"not found", "text/plain")
        elif kind == "error":
            self._send(500, b"internal error", "text/plain")
        elif kind == "slow":
            owner._stop.wait(owner.slow_seconds)
            if not owner._stop.is_set():
                self._image(name)
        else:
            self._send(404, b"no such route", "text/plain")


class ImageServer(LocalServer):
    """A threaded image server on 127.0.0.1 (see the module docstring); use it as a context manager."""

    handler_class = _Handler
    thread_name = "image-server"

    def __init__(self, slow_seconds: float = 3.0, max_lifetime: float = 120.0) -> None:
        self.slow_seconds = float(slow_seconds)
        super().__init__(max_lifetime)
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def _record(self, path: str) -> None:
        with self._lock:
            self.paths.append(path)

    def hits(self, path: str) -> int:
        """How many GET requests asked for ``path`` (with or without the leading ``/``)."""
        path = path.lstrip("/")
        with self._lock:
            return sum(1 for p in self.paths if p == path)

    def counts(self) -> Counter:
        """Requests per path so far (a copy)."""
        with self._lock:
            return Counter(self.paths)

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"
