"""Collect the facts a dataset card is written from: the records our tools write, read through
:mod:`vlm_classdata.records`.

Build kinds (:func:`detect_kind`):

* ``builders`` — ``python -m builders.imagenet_qa``: ``manifest.json`` with ``outputs``/``splits``/``tasks``,
  ``classes.json``, ``run_log.jsonl`` (the exact command), ``verify/*.json`` pass summaries
  (``python -m builders.verify run``), the label-noise audit's ``verify/audit/summary.json``
  (``python -m builders.verify audit``);
* ``filtered`` — ``python -m builders.verify filter``: a builders manifest with a ``filtered`` section,
  ``filter_report.json``; the pass summaries and the command are read from the build it was filtered from;
* ``imagewikiqa`` — ``python -m imagewikiqa build``: ``manifest.json`` with ``questions``/``exports`` (and the
  WordNet ``key_check`` and ``audit`` sample it recorded), ``quality_report.json``, the text-only verification
  summary (``stages/verified.done.json``) and a human's key review ``audit/review.json`` when one was saved
  (``{"reviewed": n, "wrong_keys": k, "notes": ...}``).

Class-name frequencies come from a ``corpora_stats count`` folder (``counts_<corpus>.parquet|csv`` +
``count_meta.json``) when one is given. Everything is read, nothing is written.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyarrow.parquet as pq

from builders.prompts import PromptRegistry
from cards.facts import CardFacts, CorpusCounts, Filtering, PromptSet, Review
from cards.metadata import data_info, shard_files
from corpora_stats.report import load_counts
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.records.audit import AuditSummary
from vlm_classdata.records.base import Record
from vlm_classdata.records.build_manifest import BuildManifest, FilteredManifest, SourceInfo, TaskInfo
from vlm_classdata.records.count_meta import CountMeta
from vlm_classdata.records.imagewikiqa import BenchmarkManifest, QualityReport
from vlm_classdata.records.run_log import RunLogEntry
from vlm_classdata.records.verification import FilterReport, VerificationSummary
from vlm_classdata.vocabulary import ClassVocabulary

#: display names of the bundled class lists (``--classes``)
DATASET_NAMES = {
    "imagenet1k": "ImageNet-1k", "flowers102": "Oxford Flowers-102", "stanford_cars": "Stanford Cars",
    "caltech101": "Caltech-101", "cub200": "CUB-200-2011", "food101": "Food-101", "objectnet": "ObjectNet",
}
#: the module each tool is run as (``python -m <module>``)
MODULES = {"builders": "builders.imagenet_qa", "filtered": "builders.imagenet_qa", "imagewikiqa": "imagewikiqa"}
REVIEW_FILE = "audit/review.json"
LABEL_AUDIT_FILE = "verify/audit/summary.json"

R = TypeVar("R", bound=Record)


# ----- reading ---------------------------------------------------------------------------------------------
def _optional_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _optional_record(cls: type[R], path: Path) -> R | None:
    """The record at ``path``; None when the file is missing or not a JSON object (UserError for a JSON
    object of the wrong shape)."""
    data = _optional_json(path)
    return cls.from_obj(data, path) if isinstance(data, dict) else None


def detect_kind(manifest: dict) -> str:
    """``filtered``, ``builders`` or ``imagewikiqa`` from a manifest's sections; UserError otherwise."""
    if "filtered" in manifest and "outputs" in manifest:
        return "filtered"
    if "outputs" in manifest and "splits" in manifest:
        return "builders"
    if "questions" in manifest or "exports" in manifest:
        return "imagewikiqa"
    raise UserError("manifest.json is neither a builders, a filtered nor an imagewikiqa build manifest")


def render_command(argv: list[str] | None, kind: str) -> str | None:
    """``python -m <module> <args>`` for an argv recorded by one of our CLIs; None for any other program
    (a build started from Python records that program's argv, which is not a command that rebuilds it)."""
    if not argv:
        return None
    script = Path(argv[0])
    if script.name == "imagenet_qa.py":
        module = "builders.imagenet_qa"
    elif script.name == "__main__.py":
        module = script.parent.name or MODULES[kind]
    else:
        return None
    return shlex.join(["python", "-m", module, *argv[1:]])


def _vocabulary(build: Path) -> dict[str, str]:
    """Class id -> display name from the build's ``classes.json``; empty when it is missing or malformed."""
    data = _optional_json(build / "classes.json")
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        return {}
    try:
        vocab = ClassVocabulary.from_json(data)
    except (KeyError, TypeError, AttributeError, UserError):
        return {}
    return {e.class_id: e.name for e in vocab}


def split_files(folder: str | Path, info: dict, split_order: Sequence[str] = ()) -> dict[str, list[Path]]:
    """The shards :func:`cards.metadata.data_info` listed for ``folder``, by split: splits in ``split_order``
    first, then by name; files in name order."""
    splits = info["splits"]
    order = [s for s in split_order if s in splits] + sorted(s for s in splits if s not in split_order)
    return {s: [Path(folder) / f for f in splits[s]["files"]] for s in order}


def _class_counts(files: dict[str, list[Path]], info: dict) -> dict[str, int]:
    """Rows per ``class_id`` over the shards; empty without a ``class_id`` column."""
    classes: Counter[str] = Counter()
    if "class_id" in info["features"]:
        for paths in files.values():
            for path in paths:
                classes.update(v for v in pq.ParquetFile(path).read(columns=["class_id"]).column(0).to_pylist()
                               if v)
    return dict(sorted(classes.items()))


def _prompts(tasks: dict[str, TaskInfo], prompts_file: str | None) -> tuple[list[PromptSet], list[str], list[str]]:
    """Template ids and texts of every set the tasks used, from builders/prompts.py's loader."""
    notes = []
    try:
        registry = PromptRegistry.load(prompts_file)
    except UserError:
        registry = PromptRegistry.load(None)
        notes.append(f"the prompts file {prompts_file} is gone; template texts are the bundled ones")
    out = []
    for task_name, info in sorted(tasks.items()):
        for set_name, ids in info.templates.items():
            texts = dict(registry.templates(set_name)) if set_name in registry.set_names else {}
            templates = [(tid, texts.get(tid, "(text not recorded)")) for tid in ids]
            # mcq instructions follow the stems' paraphrase setting; instruct always paraphrases
            out.append(PromptSet(task_name, set_name, templates, info.paraphrase))
    return out, list(registry.sources), notes


def _verify_summaries(folder: Path) -> list[VerificationSummary]:
    """The pass summaries in a build's ``verify/`` (other JSON files there are not summaries)."""
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _optional_json(path)
        if isinstance(data, dict) and "pass" in data and "model" in data:
            out.append(VerificationSummary.from_obj(data, path))
    return out


def _read_corpora(folder: str | Path) -> tuple[list[CorpusCounts], CountMeta]:
    """The counts tables and ``count_meta.json`` of a corpora_stats folder
    (:func:`corpora_stats.report.load_counts`), corpora in name order."""
    tables, raw = load_counts(folder)
    meta = CountMeta.from_obj(raw, Path(folder) / "count_meta.json")
    out = []
    for name in sorted(tables):
        rows = [{"class_id": r["class_id"], "class_name": r["class_name"] or r["class_id"],
                 "doc_freq": r["doc_freq"], "mentions": r["mentions"]}
                for r in tables[name].select("class_id", "class_name", "doc_freq", "mentions").iter_rows(named=True)]
        corpus = meta.corpora.get(name)
        out.append(CorpusCounts(name, corpus.documents if corpus else None, rows))
    return out, meta


# ----- the facts -------------------------------------------------------------------------------------------
def _filtering(build: Path, manifest: FilteredManifest) -> Filtering:
    """The ``filtered`` section with the rules and per-file counts of ``filter_report.json``."""
    filtering = Filtering(manifest.filtered)
    report = _optional_record(FilterReport, build / "filter_report.json")
    if report is not None:
        filtering.rules_text, filtering.files = report.rules_text, report.files
    return filtering


def _builders_facts(build: Path, manifest: BuildManifest) -> dict[str, Any]:
    notes: list[str] = []
    prompts, sources, prompt_notes = _prompts(manifest.tasks, manifest.config.prompts)
    notes += prompt_notes
    origin = build
    filtered = None
    if isinstance(manifest, FilteredManifest):
        filtered = _filtering(build, manifest)
        origin = Path(manifest.filtered.from_)
        if not (origin / "manifest.json").is_file():
            notes.append("the build this copy was filtered from is not at its recorded path; "
                         "its command and verification summaries are left out")
    run = RunLogEntry.last(origin / "run_log.jsonl") if origin.is_dir() else None
    argv = run.argv if run else None
    if argv is None:
        notes.append("no run_log.jsonl: the exact command was not recorded")
    source, vocab = manifest.source, manifest.vocabulary
    outputs = dict(sorted(manifest.outputs.items()))
    return {
        "dataset": source.dataset or vocab.dataset, "source": source,
        "num_classes": int(vocab.num_classes or source.num_classes or 0),
        "renamed": dict(vocab.renamed), "outputs": outputs,
        "hf_task": outputs["hf"].task if "hf" in outputs else None, "tasks": manifest.tasks,
        "prompts": prompts, "prompt_sources": sources, "seed": manifest.config.seed, "config": manifest.config,
        "tool": manifest.tool, "argv": argv, "build_splits": manifest.splits,
        "verify": _verify_summaries(origin / "verify") if origin.is_dir() else [],
        "label_audit": _optional_record(AuditSummary, origin / LABEL_AUDIT_FILE) if origin.is_dir() else None,
        "filtered": filtered, "notes": notes, "targeted": manifest.targeted,
    }


def read_review(build: Path) -> tuple[Review | None, str | None]:
    """A human's key review ``BUILD/audit/review.json``: ``(Review, None)``, ``(None, None)`` when there is
    none, ``(None, note)`` when the file is not such a record."""
    path = build / REVIEW_FILE
    if not path.exists():
        return None, None
    data = _optional_json(path)
    if not isinstance(data, dict):
        return None, f"{REVIEW_FILE} is not a JSON object; the human review is left out"
    reviewed, wrong = data.get("reviewed"), data.get("wrong_keys")
    counts = (reviewed, wrong)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts) or wrong > reviewed:
        return None, (f"{REVIEW_FILE} needs whole numbers reviewed >= wrong_keys >= 0 (got reviewed={reviewed!r}, "
                      f"wrong_keys={wrong!r}); the human review is left out")
    notes = data.get("notes")
    return Review(reviewed, wrong, notes if isinstance(notes, str) and notes.strip() else None), None


def _text_only_summary(build: Path, quality: QualityReport | None) -> dict[str, Any] | None:
    """The text-only verification summary: from the verify stage's marker, else from the quality report."""
    stage = _optional_json(build / "stages" / "verified.done.json")
    verification = None
    if isinstance(stage, dict):
        verification = (stage.get("info") or {}).get("summary")
    if verification is None and quality is not None and quality.text_only_llm:
        verification = quality.text_only_llm.summary
    return verification


def _imagewikiqa_facts(build: Path, manifest: BenchmarkManifest) -> dict[str, Any]:
    config = manifest.config
    notes: list[str] = []
    quality = _optional_record(QualityReport, build / "quality_report.json")
    if not manifest.argv and not manifest.command:
        notes.append("the manifest does not record the command line")
    review, review_note = read_review(build)
    if review_note:
        notes.append(review_note)
    source = SourceInfo(kind=config.source, root=config.images, split=config.split, dataset=config.classes)
    return {
        "key_check": manifest.key_check, "audit": manifest.audit, "review": review,
        "dataset": config.classes, "source": source,
        "num_classes": int(manifest.classes or 0), "renamed": {}, "outputs": {},
        "hf_task": "qa", "tasks": {}, "prompts": [], "prompt_sources": [], "seed": config.seed,
        "config": config, "tool": manifest.tool, "argv": manifest.argv, "command": manifest.command,
        "questions": manifest.questions, "rejections": dict(manifest.rejections),
        "quality": quality, "verification": _text_only_summary(build, quality), "notes": notes,
    }


def read_manifest(build: Path) -> BuildManifest | BenchmarkManifest:
    """The build's ``manifest.json`` as the record of its kind (:func:`detect_kind`)."""
    path = build / "manifest.json"
    if not path.is_file():
        raise UserError(f"{build} has no manifest.json: give a folder written by builders.imagenet_qa, "
                        f"builders.verify filter or imagewikiqa build")
    try:
        data = read_user_json(path, "build manifest")
    except OSError as exc:  # e.g. no permission to read it
        raise UserError(f"build manifest {path}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a JSON object")
    record = {"filtered": FilteredManifest, "builders": BuildManifest,
              "imagewikiqa": BenchmarkManifest}[detect_kind(data)]
    return record.from_obj(data, path)


def collect(build_dir: str | Path, corpora: str | None = None, hf_dir: str | Path | None = None) -> CardFacts:
    """Read a build folder (and optionally a corpora_stats counts folder) into :class:`CardFacts`.

    ``hf_dir``: the Hugging Face folder the card is for (default ``BUILD/hf``); its Parquet shards give the
    split and class counts. UserError (one line) for a folder without ``manifest.json``, an unknown or
    malformed manifest, or a Hugging Face folder without ``data/*.parquet``."""
    build = Path(build_dir)
    manifest = read_manifest(build)
    kind = ("imagewikiqa" if isinstance(manifest, BenchmarkManifest)
            else "filtered" if isinstance(manifest, FilteredManifest) else "builders")
    hf = build / "hf" if hf_dir is None else Path(hf_dir)
    if not shard_files(hf):
        if hf_dir is not None:
            raise UserError(f"{hf} has no data/*.parquet: give the build's Hugging Face folder (default BUILD/hf)")
        fix = ("rebuild with --images ... --formats hf" if kind == "imagewikiqa"
               else "rebuild with --outputs hf (e.g. --outputs llava,hf,mcq)")
        raise UserError(f"{build} has no publishable Hugging Face folder (hf/data/*.parquet): {fix}")
    info = data_info(hf)
    parts = (_imagewikiqa_facts(build, manifest) if isinstance(manifest, BenchmarkManifest)
             else _builders_facts(build, manifest))
    hf_output = parts["outputs"].get("hf")
    files = split_files(hf, info, list(hf_output.counts) if hf_output else [])
    split_counts = {s: info["splits"][s]["num_examples"] for s in files}
    class_counts = _class_counts(files, info)
    names = _vocabulary(build)
    dataset = parts["dataset"]
    command = parts.pop("command", None) or render_command(parts["argv"], kind)
    if parts["argv"] and command is None:
        parts["notes"].append(f"the build was started from Python (by {shlex.join(parts['argv'][:1])}), "
                              f"not from the command line, so no exact command was recorded")
    facts = CardFacts(
        kind=kind, build_dir=str(build), hf_dir=str(hf), dataset=dataset,
        dataset_name=DATASET_NAMES.get(str(dataset), str(dataset or "a classification dataset")),
        class_names=names, split_counts=split_counts, class_counts=class_counts,
        command=command, data_info=info,
        **{k: v for k, v in parts.items() if k != "dataset"})
    if not facts.num_classes:
        facts.num_classes = len(names)
    if corpora is not None:
        facts.corpora, facts.corpora_meta = _read_corpora(corpora)
    return facts
