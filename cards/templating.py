"""The card templates (``cards/templates/*.j2``) and the one Jinja2 environment that renders them.

Templates hold the prose; the code works out the values. Lines are rendered as written (``trim_blocks`` and
``lstrip_blocks`` drop the lines of block tags); an undefined name is an error, never an empty string."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from cards import markdown
from vlm_classdata.templates import template_environment

FILTERS = {"cell": markdown.cell, "num": markdown.num, "plural": markdown.plural, "pct": markdown.pct,
           "median": markdown.median, "pairs": markdown.pairs}


def bibtex(name: str) -> str:
    """The BibTeX entry ``templates/bibtex/<name>.bib.j2``."""
    return environment().get_template(f"bibtex/{name}.bib.j2").render()


def has_bibtex(name: str | None) -> bool:
    """Whether a BibTeX entry ``name`` is shipped."""
    return bool(name) and f"bibtex/{name}.bib.j2" in environment().list_templates()


GLOBALS = {"table": markdown.table, "code": markdown.code, "bibtex": bibtex}


@cache
def environment() -> jinja2.Environment:
    """The environment: templates from the ``cards`` package, Markdown filters and globals, no autoescape."""
    env = template_environment("cards", keep_trailing_newline=False)
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


def render(name: str, **context: Any) -> str:
    """Render the template ``name`` (e.g. ``summary.md.j2``) with ``context``."""
    return environment().get_template(name).render(**context)
