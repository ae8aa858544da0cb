"""Label-noise audit: rules over the ``label_check`` verdicts of several models flag items whose label may be
wrong, and a review set is written for a human.

Rules (``--rule``; default ``agree_other_class:2``), over each model's ``ok`` rows of ``label_check``:

* ``agree_other_class:N`` — at least ``N`` models give verdict ``other_class`` naming the SAME class;
* ``any_other_class`` — at least one model names another class of the vocabulary;
* ``all_wrong`` — every model that answered is wrong (``correct`` false; at least one answered).

An item is flagged when any rule flags it. Its suggested classes are the other classes the models named, most
named first. The review set (:func:`write_audit`) is ``gallery.html`` (self-contained: images as ``data:`` URIs,
at most :data:`THUMB_PX` px), ``relabel_suggestions.jsonl`` and ``summary.json``
(:class:`vlm_classdata.records.audit.AuditSummary`), with the counts of a human's ``--decisions`` JSONL
(``{"sample_id", "decision": keep|relabel|drop, "class_id"}``) when one is given.
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from vlm_classdata.atomic import dumps_compact, write_text_atomic
from vlm_classdata.errors import UserError, user_jsonl_objects
from vlm_classdata.records.audit import AuditResolved, AuditSummary
from vlm_classdata.templates import template_environment
from vlm_classdata.verification.items import Item, build_vocabulary, load_build
from vlm_classdata.verification.passes import load_image
from vlm_classdata.verification.sidecars import load_sidecars
from vlm_classdata.vocabulary import ClassVocabulary

PASS = "label_check"
VERDICT_COLUMNS = ("verdict", "verdict_class_id")
DEFAULT_RULE = "agree_other_class:2"
RULE_KINDS = ("agree_other_class", "any_other_class", "all_wrong")
DECISIONS = ("keep", "relabel", "drop")
THUMB_PX = 256
GALLERY, SUGGESTIONS, SUMMARY = "gallery.html", "relabel_suggestions.jsonl", "summary.json"
_RULE = re.compile(r"(?P<kind>[a-z_]+)(?::(?P<n>[0-9]+))?")


@dataclass(frozen=True)
class AuditRule:
    """One rule: ``kind`` of :data:`RULE_KINDS`; ``min_models`` for ``agree_other_class``."""

    kind: str
    min_models: int = 2

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.min_models}" if self.kind == "agree_other_class" else self.kind


def parse_rule(text: str) -> AuditRule:
    """``agree_other_class[:N]`` (N ≥ 1, default 2), ``any_other_class`` or ``all_wrong``; UserError else."""
    m = _RULE.fullmatch(text.strip())
    if m is None or m["kind"] not in RULE_KINDS:
        raise UserError(f"audit rule {text!r}: use agree_other_class[:N], any_other_class or all_wrong")
    if m["n"] is not None and m["kind"] != "agree_other_class":
        raise UserError(f"audit rule {text!r}: only agree_other_class takes a number")
    n = 2 if m["n"] is None else int(m["n"])
    if n < 1:
        raise UserError(f"audit rule {text!r}: N must be at least 1")
    return AuditRule(m["kind"], n)


@dataclass(frozen=True)
class Vote:
    """One model's answer for one item."""

    model: str
    reply: str | None
    verdict: str | None
    verdict_class_id: str | None
    correct: bool


@dataclass
class Flagged:
    """An item a rule flagged, with its label, the models' votes and the classes they suggest."""

    sample_id: str
    class_id: str | None
    label: str | None
    votes: list[Vote]
    rules: list[str]
    suggested: list[str] = field(default_factory=list)


def label_check_sidecars(verify_dir: str | Path) -> dict[str, pl.DataFrame]:
    """Model alias → label_check sidecar (``label_check.<alias>.parquet``) of a verify folder; UserError when
    there are none or one lacks the verdict columns."""
    sidecars = load_sidecars(verify_dir).get(PASS, {})
    if not sidecars:
        raise UserError(f"no {PASS} sidecars ({PASS}.<alias>.parquet) in {verify_dir}: run "
                        f"python -m builders.verify run --passes {PASS} first")
    for alias, frame in sidecars.items():
        missing = [c for c in (*VERDICT_COLUMNS, "correct") if c not in frame.columns]
        if missing:
            raise UserError(f"sidecar {PASS}.{alias}.parquet has no {missing[0]!r} column: rerun "
                            f"label_check with a version that records verdicts")
    return dict(sorted(sidecars.items()))


def read_votes(sidecars: dict[str, pl.DataFrame]) -> dict[str, list[Vote]]:
    """Sample id → the ``ok`` votes of every model (models in alias order)."""
    votes: dict[str, list[Vote]] = {}
    for alias, frame in sidecars.items():
        ok = frame.filter(pl.col("status") == "ok")
        replies = ok["reply"] if "reply" in ok.columns else [None] * ok.height
        for sid, reply, verdict, cid, correct in zip(ok["sample_id"], replies, ok["verdict"],
                                                     ok["verdict_class_id"], ok["correct"], strict=True):
            votes.setdefault(sid, []).append(Vote(alias, reply, verdict, cid, bool(correct)))
    return votes


def _labels(sidecars: dict[str, pl.DataFrame]) -> dict[str, tuple[str | None, str | None]]:
    """Sample id → (class id, label name) as the label_check sidecars recorded them."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for frame in sidecars.values():
        if {"class_id", "label"} <= set(frame.columns):
            for sid, cid, name in frame.select("sample_id", "class_id", "label").iter_rows():
                if cid is not None:
                    out.setdefault(sid, (cid, name))
    return out


def _other_classes(votes: list[Vote]) -> Counter[str]:
    return Counter(v.verdict_class_id for v in votes if v.verdict == "other_class" and v.verdict_class_id)


def rule_flags(rule: AuditRule, votes: list[Vote]) -> bool:
    """Whether ``rule`` flags an item with these (ok) votes."""
    if rule.kind == "agree_other_class":
        named = _other_classes(votes)
        return bool(named) and max(named.values()) >= rule.min_models
    if rule.kind == "any_other_class":
        return bool(_other_classes(votes))
    return bool(votes) and not any(v.correct for v in votes)


def flag_items(sidecars: dict[str, pl.DataFrame], rules: list[AuditRule]) -> tuple[int, list[str], list[Flagged]]:
    """``(items checked, models, flagged items in sample-id order)`` for ``rules`` over label_check sidecars
    (:func:`label_check_sidecars`); an item is checked when at least one model answered it."""
    votes = read_votes(sidecars)
    labels = _labels(sidecars)
    models = sorted({v.model for vs in votes.values() for v in vs})
    flagged = []
    for sid in sorted(votes):
        hit = [r.text for r in rules if rule_flags(r, votes[sid])]
        if hit:
            named = _other_classes(votes[sid])
            suggested = sorted(named, key=lambda c: (-named[c], c))
            cid, label = labels.get(sid, (None, None))
            flagged.append(Flagged(sid, cid, label, votes[sid], hit, suggested))
    return len(votes), models, flagged


def read_decisions(path: str | Path, vocab: ClassVocabulary | None = None) -> dict[str, dict]:
    """Sample id → decision row from a JSONL of ``{"sample_id", "decision", "class_id"}``; UserError (naming
    the line) for a bad line, an unknown decision, a relabel without a class of the vocabulary, a repeated id."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"decisions file {str(path)!r} not found")
    out: dict[str, dict] = {}
    for where, row in user_jsonl_objects(p.read_text(encoding="utf-8", errors="replace"), f"decisions file {p}"):
        if row.get("sample_id") in (None, ""):
            raise UserError(f"{where}: needs a sample_id")
        sid, decision, cid = str(row["sample_id"]), row.get("decision"), row.get("class_id")
        if decision not in DECISIONS:
            raise UserError(f"{where}: decision {decision!r} is not one of {', '.join(DECISIONS)}")
        if decision == "relabel" and (not cid or (vocab is not None and str(cid) not in vocab)):
            raise UserError(f"{where}: relabel needs the class_id of a class of the vocabulary (got {cid!r})")
        if sid in out:
            raise UserError(f"{where}: sample {sid!r} already has a decision")
        out[sid] = {"decision": decision, "class_id": None if cid is None else str(cid)}
    return out


def resolved_counts(flagged: list[Flagged], decisions: dict[str, dict]) -> AuditResolved:
    """How many flagged items a decision covers, by decision, and decisions about unflagged items."""
    ids = {f.sample_id for f in flagged}
    by = Counter(d["decision"] for sid, d in decisions.items() if sid in ids)
    return AuditResolved(items=sum(by.values()), keep=by["keep"], relabel=by["relabel"], drop=by["drop"],
                         unflagged=sum(1 for sid in decisions if sid not in ids))


def thumbnail_uri(path: str | None) -> str | None:
    """The image at ``path`` downscaled to at most :data:`THUMB_PX` px as a JPEG ``data:`` URI; None when it
    is missing or unreadable."""
    image, _ = load_image(path)
    if image is None:
        return None
    image.thumbnail((THUMB_PX, THUMB_PX))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def suggestion_rows(flagged: list[Flagged]) -> list[dict]:
    """``relabel_suggestions.jsonl`` rows: sample id, label class id, suggested class ids, evidence."""
    return [{"sample_id": f.sample_id, "class_id": f.class_id, "label": f.label, "suggested_class_ids": f.suggested,
             "rules": f.rules,
             "evidence": [{"model": v.model, "reply": v.reply, "verdict": v.verdict,
                           "verdict_class_id": v.verdict_class_id} for v in f.votes]}
            for f in flagged]


def render_gallery(flagged: list[Flagged], items: dict[str, Item], vocab: ClassVocabulary | None,
                   summary: AuditSummary) -> str:
    """The self-contained HTML review page (autoescaped: replies are untrusted model text)."""
    def name(cid: str | None) -> str:
        return vocab[cid].name if cid and vocab is not None and cid in vocab else (cid or "?")

    cards = []
    for f in flagged:
        item = items.get(f.sample_id)
        cards.append({"sample_id": f.sample_id, "class_id": f.class_id, "label": f.label or name(f.class_id),
                      "image": thumbnail_uri(item.image if item else None), "rules": f.rules,
                      "suggested": [(c, name(c)) for c in f.suggested],
                      "votes": [{"model": v.model, "reply": v.reply, "verdict": v.verdict,
                                 "class": name(v.verdict_class_id) if v.verdict_class_id else None}
                                for v in f.votes]})
    env = template_environment("vlm_classdata.verification", autoescape=True)
    return env.get_template("audit_gallery.html.j2").render(items=cards, summary=summary)


def write_audit(sidecars: dict[str, pl.DataFrame], out: str | Path, rules: list[AuditRule], items: dict[str, Item],
                vocab: ClassVocabulary | None, decisions: dict[str, dict] | None = None) -> AuditSummary:
    """Flag items by ``rules`` and write the review set into ``out`` (each file atomically)."""
    checked, models, flagged = flag_items(sidecars, rules)
    summary = AuditSummary(
        models=models, items_checked=checked, flagged=len(flagged), rules=[r.text for r in rules],
        flagged_by_rule={r.text: sum(1 for f in flagged if r.text in f.rules) for r in rules},
        resolved=None if decisions is None else resolved_counts(flagged, decisions))
    out = Path(out)
    write_text_atomic(out / SUGGESTIONS, "".join(dumps_compact(r) + "\n" for r in suggestion_rows(flagged)))
    write_text_atomic(out / GALLERY, render_gallery(flagged, items, vocab, summary))
    summary.write(out / SUMMARY)
    return summary


def run_audit(build: str | Path, rules: list[str] | None = None, verify_dir: str | Path | None = None,
              out: str | Path | None = None, decisions: str | Path | None = None,
              output: str = "eval_open") -> tuple[AuditSummary, Path]:
    """The ``verify audit`` command: settings checked first (rules, decisions, sidecars), then the build's
    ``output`` items give the images, and the review set goes to ``out`` (default ``VERIFY_DIR/audit``)."""
    parsed = [parse_rule(r) for r in (rules or [DEFAULT_RULE])]
    if len({r.text for r in parsed}) < len(parsed):
        raise UserError("an audit rule is given twice")
    build = Path(build)
    if not (build / "manifest.json").is_file():
        raise UserError(f"{build} has no manifest.json: give a build folder from python -m builders.imagenet_qa")
    folder = Path(verify_dir) if verify_dir else build / "verify"
    vocab = build_vocabulary(build)
    chosen = None if decisions is None else read_decisions(decisions, vocab)
    sidecars = label_check_sidecars(folder)
    items = {it.sample_id: it for it in load_build(build, output, vocab=vocab).items}
    target = Path(out) if out else folder / "audit"
    return write_audit(sidecars, target, parsed, items, vocab, chosen), target
