"""The Markdown body of a dataset card, rendered from :class:`cards.facts.CardFacts`, and its assets.

:func:`render_body` puts the sections together (summary, structure with one real example, creation, targeted
collection, filtering, class coverage, quality report for QA sets, bias/risks/limitations, licence, citation):
their values come from :mod:`cards.sections` and :mod:`cards.assets`, their prose from the templates in
``cards/templates/``. The files the body links to are written under ``repo_folder/assets/``:
``example.<ext>`` (the first row's image bytes, as stored), ``class_counts.png``, ``letters.png`` (QA sets) and
``class_frequency.png`` (with corpora counts); stale ones are removed.
"""

from __future__ import annotations

from pathlib import Path

from cards import assets, sections
from cards.facts import CardFacts
from cards.metadata import data_info
from vlm_classdata.errors import UserError


def default_pretty_name(facts: CardFacts) -> str:
    """A name for the card when none is given, from the build kind and source dataset."""
    if facts.kind == "imagewikiqa":
        return f"ImageWikiQA-style knowledge benchmark ({facts.dataset_name})"
    what = "multiple-choice questions" if facts.hf_task == "mcq" else "instruction data"
    name = f"{facts.dataset_name} classification as VLM {what}"
    if facts.targeted:
        name = f"Web images of under-exposed {facts.dataset_name} classes as VLM {what}"
    return f"{name} (filtered)" if facts.kind == "filtered" else name


def _tidy(sections_text: list[str]) -> str:
    """The sections joined: one blank line between them and between paragraphs, none doubled, no trailing
    spaces, one final newline."""
    text = "\n".join(s.rstrip("\n") for s in sections_text if s)
    out, blank = [], False
    for line in text.replace("\n## ", "\n\n## ").splitlines():
        if line.strip() == "" and blank:
            continue
        blank = line.strip() == ""
        out.append(line.rstrip())
    return "\n".join(out).strip("\n") + "\n"


def render_body(facts: CardFacts, repo_folder: str | Path, assets_dir: str = "assets", *,
                pretty_name: str | None = None,
                licence: tuple[str, str | None] | None = None, info: dict | None = None) -> str:
    """The card's Markdown body (everything after the YAML front matter) for the Hugging Face folder
    ``repo_folder``; writes the example image and plots it links to under ``repo_folder/assets_dir`` and
    removes stale ones. ``licence``: ``(id, name)`` the publisher chose instead of the source dataset's
    (:func:`cards.metadata.license_for`), None to state the source's; ``info``: :func:`cards.metadata.data_info`
    of ``repo_folder`` when already read."""
    repo = Path(repo_folder)
    if "/" in assets_dir.strip("/") or assets_dir in ("", ".", ".."):
        raise UserError(f"assets folder {assets_dir!r} must be one plain folder name")
    name = pretty_name or default_pretty_name(facts)
    structure, written = assets.structure(facts, repo, assets_dir, data_info(repo) if info is None else info)
    coverage, plots = assets.coverage(facts, repo, assets_dir, sections.PAPER_ZHANG)
    quality, letters = assets.quality(facts, repo, assets_dir)
    written += plots + letters
    stale = [p for p in sorted((repo / assets_dir).glob("*")) if p.is_file() and p.name not in written
             and (p.name in assets.ASSET_NAMES or p.name.startswith("example."))]
    for p in stale:
        p.unlink()
    never = len(assets.corpus_rows(facts, facts.corpora[0])[1]) if facts.corpora else 0
    return _tidy([sections.summary(facts, name), structure, sections.creation(facts), sections.targeted(facts),
                  sections.filtering(facts), coverage, quality, sections.bias(facts, never),
                  sections.licence(facts, licence), sections.citation(facts)])
