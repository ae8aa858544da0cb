"""Pages for human review of a question set's keys: :func:`write_audit` exports a seeded sample of N questions
as one self-contained Markdown page and one self-contained HTML page (``audit.md``, ``audit.html``): question,
options with the key marked, the class's synset and definition, the key's evidence (:mod:`imagewikiqa.audit`)
and for each distractor why it is false; an image per class (a path or bytes) is embedded as a data URI. The
pages' wording lives in the Jinja2 templates ``imagewikiqa/templates/audit.{md,html}.j2``.
"""

from __future__ import annotations

import base64
import io
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from builders.records import sample_rng
from imagewikiqa.audit import ClassFacts, class_synset, key_evidence, senses, why_true
from imagewikiqa.prose import render
from imagewikiqa.records import Question
from vlm_classdata.atomic import write_text_atomic
from vlm_classdata.errors import UserError


def _data_uri(image: str | Path | bytes) -> str:
    """A ``data:`` URI of an image file or bytes (type from the file name, else sniffed with Pillow)."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserError(f"{path}: cannot read the audit image ({exc.strerror or exc})") from None
        mime = mimetypes.guess_type(path.name)[0]
    else:
        data, mime = bytes(image), None
    if not mime or not mime.startswith("image/"):
        try:
            with Image.open(io.BytesIO(data)) as im:
                mime = Image.MIME.get(im.format or "", "application/octet-stream")
        except (UnidentifiedImageError, OSError):
            raise UserError(f"audit image {str(image)[:80] if not isinstance(image, bytes) else '<bytes>'}: "
                            f"not an image") from None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass
class AuditItem:
    """One question of the review pages with what WordNet says about its key and distractors."""

    q: Question
    synset: str
    definition: str
    key: str
    distractors: list[tuple[str, str]]
    image: str | None


def _explain(q: Question, image: str | None) -> AuditItem:
    s = class_synset(q)
    if s is None:
        return AuditItem(q, "(no WordNet synset)", "", q.reference or "(no reference)",
                     [(o, "not checked: no WordNet synset") for i, o in enumerate(q.options) if i != q.answer_index],
                     image)
    facts = ClassFacts.of(s)
    rows = []
    for i, o in enumerate(q.options):
        if i == q.answer_index:
            continue
        why = why_true(facts, o, gloss_match=q.kind != "gloss_cloze")
        if why:
            rows.append((o, f"POSSIBLY TRUE: {why}"))
        else:
            named = ", ".join(c.name() for c in senses(o)[:3])
            rows.append((o, f"false per WordNet: {'senses ' + named if named else 'no synset'} not an ancestor, "
                            f"descendant, part, whole, group, substance or domain of {s.name()}; words not in "
                            f"its glosses"))
    return AuditItem(q, s.name(), s.definition(), key_evidence(facts, q.kind, q.answer), rows, image)


def audit_sample(questions: list[Question], n: int, seed: int) -> list[Question]:
    """``n`` questions drawn with a seeded generator (all when fewer), in their original order."""
    if n < 1:
        raise UserError(f"audit size must be at least 1, got {n}")
    idx = sorted(sample_rng(seed, "audit").sample(range(len(questions)), min(n, len(questions))))
    return [questions[i] for i in idx]


def render_markdown(items: list[AuditItem]) -> str:
    """The Markdown review page."""
    return render("audit.md.j2", items=items)


def render_html(items: list[AuditItem]) -> str:
    """The HTML review page (one ``<section class="item">`` per question; no external resources)."""
    return render("audit.html.j2", items=items)


def write_audit(questions: list[Question], out_dir: str | Path, n: int, seed: int,
                images: Mapping[str, str | Path | bytes] | None = None) -> tuple[Path, Path]:
    """Write ``audit.md`` and ``audit.html`` into ``out_dir`` (created) for a seeded sample of ``n``
    questions (:func:`audit_sample`). ``images``: class id or qid → image path or bytes, embedded as a data
    URI. Returns the two paths. Files are written atomically."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: audit output exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for q in audit_sample(list(questions), n, seed):
        img = None
        if images is not None:
            src = images.get(q.qid, images.get(q.class_id))
            img = _data_uri(src) if src is not None else None
        items.append(_explain(q, img))
    md, page = out / "audit.md", out / "audit.html"
    write_text_atomic(md, render_markdown(items))
    write_text_atomic(page, render_html(items))
    return md, page
