"""The wording of what imagewikiqa writes for people to read (quality reports, key-check section, review pages):
Jinja2 templates shipped as package data in ``imagewikiqa/templates/*.j2``, rendered by :func:`render`.

Templates see what the caller passes (data and the helpers that format its cells), plus the filter ``h``
(:func:`html.escape`) and ``chr``. Blocks take their own line (``trim_blocks``/``lstrip_blocks``), a file's
final newline is kept, and an undefined name is an error, never an empty string.
"""

from __future__ import annotations

import html
from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("imagewikiqa", "templates"), autoescape=False, trim_blocks=True,
    lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
_ENV.filters["h"] = html.escape
_ENV.globals["chr"] = chr


def render(template: str, **context: Any) -> str:
    """The text of ``imagewikiqa/templates/<template>`` with ``context``."""
    return _ENV.get_template(template).render(**context)
