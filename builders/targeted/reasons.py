"""Short snake_case reasons for failed img2dataset rows."""

from __future__ import annotations

import re

_REASONS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"HTTP Error (\d{3})"), "http_{0}"),
    (re.compile(r"timed out|timeout", re.I), "timeout"),
    (re.compile(r"decod", re.I), "decode_error"),
    (re.compile(r"connection refused", re.I), "connection_refused"),
    (re.compile(r"connection reset|remote end closed|remotedisconnected|broken pipe|connection aborted", re.I),
     "connection_closed"),
    (re.compile(r"name or service not known|nodename nor servname|name resolution|getaddrinfo|no address "
                r"associated", re.I), "dns_error"),
    (re.compile(r"ssl|certificate", re.I), "ssl_error"),
    (re.compile(r"unknown url type|no host given|invalid url|url can't contain", re.I), "bad_url"),
    (re.compile(r"x-robots-tag", re.I), "disallowed_by_robots"),
    (re.compile(r"hash mismatch", re.I), "hash_mismatch"),
    (re.compile(r"image too small", re.I), "image_too_small"),
    (re.compile(r"image area too large", re.I), "image_too_large"),
    (re.compile(r"aspect ratio too large", re.I), "aspect_ratio_too_large"),
    (re.compile(r"incompleteread|incomplete read", re.I), "incomplete_read"),
]


def failure_reason(status: str | None, error_message: str | None) -> str:
    """A short snake_case reason for a failed img2dataset row (``HTTP Error 404: Not Found`` → ``http_404``,
    ``timed out`` → ``timeout``, ``Image decoding error`` → ``decode_error``, ...); an unknown message gives
    ``download_error`` or ``resize_error`` after img2dataset's status."""
    msg = str(error_message or "")
    for pattern, reason in _REASONS:
        m = pattern.search(msg)
        if m:
            return reason.format(*m.groups())
    if status == "failed_to_download":
        return "download_error"
    if status == "failed_to_resize":
        return "resize_error"
    return re.sub(r"[^a-z0-9]+", "_", str(status or "").lower()).strip("_")[:40] or "unknown_error"
