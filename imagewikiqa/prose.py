"""The wording of what imagewikiqa writes for people to read (quality reports, key-check section, review pages):
Jinja2 templates shipped as package data in ``imagewikiqa/templates/*.j2``, rendered by :func:`render`.

Templates see what the caller passes (data and the helpers that format its cells), plus the filter ``h``
(:func:`html.escape`) and ``chr``. Blocks take their own line (``trim_blocks``/``lstrip_blocks``), a file's
final newline is kept, and an undefined name is an error, never an empty string.
"""

from __future__ import annotations

import html
from typing import Any

from vlm_classdata.templates import template_environment

_ENV = template_environment("imagewikiqa")
_ENV.filters["h"] = html.escape
_ENV.globals["chr"] = chr


def render(template: str, **context: Any) -> str:
    """The text of ``imagewikiqa/templates/<template>`` with ``context``."""
    return _ENV.get_template(template).render(**context)
