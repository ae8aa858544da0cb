"""The one way a package's prose templates are loaded: a Jinja2 environment over ``<package>/templates``.

Every environment renders lines as written (``trim_blocks``/``lstrip_blocks`` drop the lines of block tags) and
treats an undefined name as an error, never an empty string; the caller adds its own filters and globals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


def template_environment(package: str, *, keep_trailing_newline: bool = True,
                         autoescape: bool | Callable[[str | None], bool] = False) -> jinja2.Environment:
    """A Jinja2 environment over the templates shipped in ``<package>/templates`` (package data)."""
    import jinja2  # heavy (~20 ms): loaded when prose is rendered, not by every command importing a renderer

    return jinja2.Environment(loader=jinja2.PackageLoader(package, "templates"), autoescape=autoescape,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=keep_trailing_newline)
