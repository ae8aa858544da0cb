"""The card's text sections: the values each template (``cards/templates/<section>.md.j2``) needs, worked out
from :class:`cards.facts.CardFacts`, and the rendered Markdown. Sections that also write files (structure,
coverage, quality report) are in :mod:`cards.assets`."""

from __future__ import annotations

from cards.facts import CardFacts
from cards.markdown import num
from cards.metadata import known_source, license_for
from cards.templating import has_bibtex, render
from vlm_classdata.records.imagewikiqa import BenchmarkConfigInfo

PAPER_ZHANG = "https://arxiv.org/abs/2405.18415"
PAPER_LIU = "https://arxiv.org/abs/2412.16418"
#: settings of an ImageWikiQA build shown in the card, in this order (those the manifest records)
QUESTION_SETTINGS = ("generator", "per_class", "articles", "fallback_articles", "llm", "llm_model", "verifier",
                     "verifier_model", "verify_permutations", "max_longest", "images_per_question",
                     "eval_permutations", "split")


def _benchmark_config(facts: CardFacts) -> BenchmarkConfigInfo:
    """An ImageWikiQA build's settings (a builders build has none of these: the defaults)."""
    return facts.config if isinstance(facts.config, BenchmarkConfigInfo) else BenchmarkConfigInfo()


def _uses_wordnet(facts: CardFacts) -> bool:
    return facts.kind == "imagewikiqa" and _benchmark_config(facts).generator == "wordnet"


def summary(facts: CardFacts, pretty_name: str) -> str:
    """Title and summary: what the rows are, how many, where they come from, the papers they follow."""
    config = _benchmark_config(facts)
    quality = facts.quality
    classes = len(facts.class_counts) or facts.num_classes
    targeted = facts.targeted
    split_text = ", ".join(f"{s}: {num(n)}" for s, n in facts.split_counts.items())
    return render(
        "summary.md.j2", pretty_name=pretty_name, kind=facts.kind, dataset_name=facts.dataset_name,
        questions=facts.questions or 0, num_classes=facts.num_classes, classes=classes,
        rows=f"{num(facts.total_rows)} rows ({split_text})",
        distinct_questions=quality.distinct_questions if quality else None,
        generator=config.generator, verifier=config.verifier, adversarial=config.adversarial,
        source=facts.source, paper_zhang=PAPER_ZHANG, paper_liu=PAPER_LIU, task=facts.hf_task,
        targeted=targeted is not None, mined_classes=len(targeted.mine.classes) if targeted else 0,
        rule=(targeted.mine.rule.spec or targeted.mine.rule.kind) if targeted else None,
        downloaded=targeted.download.totals.downloaded if targeted else 0,
        mined=targeted.download.totals.mined if targeted else 0, filtered=facts.filtered,
        rules_list=", ".join(f"`{r}`" for r in facts.filtered.rules_text) if facts.filtered else "",
        others=[f"`{name}` ({info.about})" for name, info in facts.outputs.items() if name != "hf"])


def _prompt_sets(facts: CardFacts) -> list[dict]:
    return [{"task": ps.task, "set_name": ps.set_name, "paraphrase": ps.paraphrase, "n": len(ps.templates),
             "rows": [(f"`{tid}`", text) for tid, text in ps.templates]} for ps in facts.prompts]


def _task_lines(facts: CardFacts) -> list[str]:
    """``- `task`: key = value, ...`` for every task setting but its templates and seed (keys in file order,
    which is name order)."""
    lines = []
    for name, info in sorted(facts.tasks.items()):
        extra = {k: v for k, v in sorted(info.to_obj().items()) if k not in ("templates", "task", "seed")}
        lines.append(f"- `{name}`: " + ", ".join(f"{k} = {v}" for k, v in extra.items()))
    return lines


def creation(facts: CardFacts) -> str:
    """Creation: the source, renamed classes, the question settings or the prompts, how to reproduce."""
    src = facts.source
    labels = src.label_source  # per split (imagenet), or one for every split (imagefolder, manifest sources)
    if isinstance(labels, dict):
        labels = ", ".join(f"{k}: {v}" for k, v in labels.items())
    settings = None
    if facts.kind == "imagewikiqa":
        recorded = facts.config.to_obj()
        settings = [(k, recorded.get(k)) for k in QUESTION_SETTINGS if k in recorded]
    filter_command = None
    if facts.filtered:
        rules = " ".join(f"--rule {r!r}" if " " in r else f"--rule {r}" for r in facts.filtered.rules_text)
        filter_command = (f"python -m builders.verify filter --build {facts.filtered.section.from_} {rules} "
                          f"--out {facts.build_dir}")
    return render(
        "creation.md.j2", dataset=facts.dataset, dataset_name=facts.dataset_name, source=src, labels=labels,
        num_classes=facts.num_classes,
        renamed_rows=[(c, r.from_, r.to, r.why) for c, r in sorted(facts.renamed.items())],
        settings_rows=settings, prompts=_prompt_sets(facts),
        prompt_sources=", ".join(f"`{s}`" for s in facts.prompt_sources), task_lines=_task_lines(facts),
        seed=facts.seed, versions=sorted(facts.tool.versions.items()), command=facts.command,
        filter_command=filter_command, notes=facts.notes)


def targeted(facts: CardFacts) -> str:
    """How the classes were chosen, the mining rule, and rows mined / downloaded / kept per class."""
    t = facts.targeted
    if t is None:
        return ""
    mine, dl = t.mine, t.download
    doc = {c.class_id: c for c in mine.classes}
    rows = []
    for cid, info in dl.classes.items():
        chosen = doc.get(cid)
        rows.append((facts.name(cid), num(chosen.doc_freq or 0 if chosen else 0),
                     num(chosen.matched_rows or 0 if chosen else 0), num(info.mined), num(info.downloaded),
                     num(sum(info.failed.values())),
                     ", ".join(f"{k} {v}" for k, v in sorted(info.failed.items())) or "none",
                     num(t.kept.get(cid, 0))))
    return render(
        "targeted.md.j2", rule=mine.rule.spec or mine.rule.kind, column=mine.counts.column or mine.rule.column,
        corpus=mine.counts.corpus, forms=mine.forms,
        mined_from=", ".join(f"`{f.get('name') or f.get('file')}` ({num(f.get('rows', 0))} rows)"
                             if isinstance(f, dict) else f"`{f}`" for f in mine.corpus_files),
        rows_scanned=mine.rows_scanned, skipped=", ".join(f"{k} {v}" for k, v in mine.skipped.items() if v),
        multi_class_rows=mine.multi_class_rows, duplicate_urls=mine.duplicate_urls, per_class=mine.per_class,
        seed=mine.seed, image_size=dl.image_size, resize_mode=dl.resize_mode, per_class_rows=rows)


def filtering(facts: CardFacts) -> str:
    """Filtering: rejected questions, text-only verification and the key audit (ImageWikiQA); skipped inputs,
    verification passes and filter rules (builders)."""
    config = _benchmark_config(facts)
    rule_rows, alive, hf_files = [], 0, []
    if facts.filtered:
        section = facts.filtered.section
        alive = section.input
        for r in section.rules:
            alive -= r.dropped
            rule_rows.append((f"`{r.rule}`", num(r.dropped), num(alive), num(r.dropped_alone), ", ".join(r.models)))
        hf_files = [(k[3:], num(v.get("rows", 0)), num(v.get("kept", 0)))
                    for k, v in sorted(facts.filtered.files.items()) if k.startswith("hf/")]
    review = facts.review
    return render(
        "filtering.md.j2", kind=facts.kind, rejections=facts.rejections,
        rejection_rows=sorted(facts.rejections.items(), key=lambda kv: (-kv[1], kv[0])),
        verification=facts.verification, verifier_name=config.verifier_model or config.verifier,
        verification_rows=[(k, v) for k, v in sorted((facts.verification or {}).items())
                           if isinstance(v, (int, float, str, bool)) or v is None],
        key_check=facts.key_check, audit=facts.audit, review=review,
        review_notes=" ".join(review.notes.split()).rstrip(".") if review and review.notes else "",
        build_splits=facts.build_splits, verify=facts.verify, filtered=facts.filtered, rule_rows=rule_rows,
        hf_files=hf_files, label_audit=facts.label_audit)


def bias(facts: CardFacts, never_mentioned: int) -> str:
    """Bias, risks and limitations (``never_mentioned``: classes the first corpus never names)."""
    config = _benchmark_config(facts)
    quality = facts.quality
    return render(
        "bias.md.j2", kind=facts.kind, dataset=facts.dataset, dataset_name=facts.dataset_name,
        imagenet=str(facts.dataset or "").startswith("imagenet") or facts.dataset_name.startswith("ImageNet"),
        renamed=len(facts.renamed), renamed_here=len([c for c in facts.class_counts if c in facts.renamed]),
        generator=config.generator, verifier=config.verifier,
        blind=quality.blind_baselines if quality and quality.blind_baselines.to_obj() else None,
        n_templates=sum(ps.used for ps in facts.prompts if ps.task == facts.hf_task),
        targeted=facts.targeted is not None, verified=bool(facts.filtered or facts.verify),
        total_rows=facts.total_rows, never_mentioned=never_mentioned,
        first_corpus=facts.corpora[0].name if facts.corpora else None)


def licence(facts: CardFacts, chosen: tuple[str, str | None] | None) -> str:
    """The licence: the publisher's choice (``chosen``: id, name) or the source's, and the source's terms."""
    source_id, source_name, source_note = license_for(facts.licence_source)
    return render("licence.md.j2", chosen=chosen, source_id=source_id, source_name=source_name,
                  source_note=source_note, wordnet=_uses_wordnet(facts))


def citation(facts: CardFacts) -> str:
    """What to cite: the papers the data follows, the source dataset, WordNet for WordNet questions."""
    source = known_source(facts.dataset)
    return render("citation.md.j2", dataset_name=facts.dataset_name,
                  source_bibtex=source if has_bibtex(source) else None, wordnet=_uses_wordnet(facts))
