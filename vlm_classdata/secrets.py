"""Credentials never reach a file: redaction for everything recorded (commands, URLs, configs, errors).

:func:`redact` hides URL user-info (``http://user:key@host``), secret-looking query parameters and key-like
strings (``sk-…``, ``hf_…``, ``Bearer …``, ``ghp_…``, ``AKIA…``); :func:`find_credentials` reports them,
for checks such as ``cards check``.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "url_userinfo": re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<secret>[^/\s@:]*(?::[^/\s@]*)?)@"),
    "secret_query": re.compile(
        r"(?P<keep>[?&](?:api[_-]?key|access[_-]?token|token|key|secret|password|passwd|pwd|sig|signature)=)"
        r"(?P<secret>[^&#\s\"']+)", re.IGNORECASE),
    "bearer": re.compile(r"(?P<keep>\bBearer\s+)(?P<secret>[A-Za-z0-9._~+/=\-]{8,})", re.IGNORECASE),
    "openai_key": re.compile(r"(?P<keep>)(?P<secret>\bsk-[A-Za-z0-9_\-]{8,})"),
    "hf_token": re.compile(r"(?P<keep>)(?P<secret>\bhf_[A-Za-z0-9]{20,})"),
    "github_token": re.compile(r"(?P<keep>)(?P<secret>\bgh[pousr]_[A-Za-z0-9]{20,})"),
    "aws_key": re.compile(r"(?P<keep>)(?P<secret>\bAKIA[0-9A-Z]{16}\b)"),
}


def redact(text: str) -> str:
    """``text`` with every credential-like part replaced by ``***``."""
    for pattern in _PATTERNS.values():
        text = pattern.sub(lambda m: m.group("keep") + MASK + ("@" if m.group(0).endswith("@") else ""), text)
    return text


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like value with every string passed through :func:`redact`."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k) if isinstance(k, str) else k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj


def find_credentials(text: str) -> list[tuple[str, str]]:
    """``[(kind, shortened match), ...]`` for every credential-like string in ``text`` (masked ones skipped)."""
    found = []
    for kind, pattern in _PATTERNS.items():
        for m in pattern.finditer(text):
            secret = m.group("secret")
            if not secret or secret == MASK or set(secret) <= {"*"}:
                continue
            found.append((kind, secret[:4] + "…"))
    return found
