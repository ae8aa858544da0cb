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
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from imagewikiqa.build_config import GENERATORS, BuildConfig, select_vocabulary, validate
from imagewikiqa.build_stages import (
    BuildContext,
    audit_stage,
    debias_stage,
    export_stage,
    generate_stage,
    knowledge_stage,
    pair_stage,
    questions_of,
    report_stage,
    rules_stage,
    verify_stage,
)
from imagewikiqa.stage_runner import StageRunner
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.provenance import TOOL_NAME, package_versions
from vlm_classdata.records.imagewikiqa import BenchmarkManifest
from vlm_classdata.secrets import redact, redact_obj
from vlm_classdata.stages import fingerprint, open_out
from vlm_classdata.vocabulary import ClassVocabulary

__all__ = ["GENERATORS", "BuildConfig", "build", "summary_line"]

TOOL_PACKAGES = ("datasets", "pyarrow", "nltk", "rapidfuzz", "transformers", "torch", "httpx")


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
    """The stages of :func:`build`, in order, and the manifest."""
    ctx = BuildContext(config, vocab, out, stages, log, Lexicon.build(vocab))
    t_start = time.perf_counter()
    log(f"building an ImageWikiQA-style benchmark for {len(vocab)} classes of {config.classes!r} → {out}")
    fp, articles = knowledge_stage(ctx, fingerprint(config.classes, vocab.ids, config.seed))
    fp, rows = generate_stage(ctx, fp, articles)
    fp, rows = rules_stage(ctx, fp, rows, articles)
    fp, rows, verification, verifier_model = verify_stage(ctx, fp, rows)
    rows, adversarial = debias_stage(ctx, fp, rows)
    candidates, items, pairing = pair_stage(ctx, questions_of(rows))
    final, items, exports = export_stage(ctx, candidates, items)
    exported = (f"{len(final)} questions paired with images ({', '.join(exports)})" if items
                else f"{len(final)} questions (questions.jsonl; no images)")
    report = report_stage(ctx, final, exported, verification, verifier_model, adversarial)
    audit = audit_stage(ctx, final, items)
    manifest = {
        "status": "complete", "config": redact_obj(asdict(config)), "classes": len(vocab), "questions": len(final),
        "pairing": pairing, "exports": exports,
        "rejections": {k: v for k, v in sorted(ctx.rejections.items()) if v},
        "adversarial": adversarial, "key_check": report["key_check"], "audit": audit,
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
