"""Collect the plain facts a dataset card is written from: the manifests and reports our tools write.

Build kinds (:func:`detect_kind`):

* ``builders`` — ``python -m builders.imagenet_qa``: ``manifest.json`` with ``outputs``/``splits``/``tasks``,
  ``classes.json``, ``run_log.jsonl`` (the exact command), ``verify/*.json`` pass summaries
  (``python -m builders.verify run``);
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cards.metadata import data_info, shard_files
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.vocabulary import ClassVocabulary

KINDS = ("builders", "filtered", "imagewikiqa")

#: display names of the bundled class lists (``--classes``)
DATASET_NAMES = {
    "imagenet1k": "ImageNet-1k", "flowers102": "Oxford Flowers-102", "stanford_cars": "Stanford Cars",
    "caltech101": "Caltech-101", "cub200": "CUB-200-2011", "food101": "Food-101", "objectnet": "ObjectNet",
}
#: the module each tool is run as (``python -m <module>``)
MODULES = {"builders": "builders.imagenet_qa", "filtered": "builders.imagenet_qa", "imagewikiqa": "imagewikiqa"}


@dataclass
class PromptSet:
    """One template set a task used: ids and texts in file order, and whether samples pick among them."""

    task: str
    set_name: str
    templates: list[tuple[str, str]]
    paraphrase: bool

    @property
    def used(self) -> int:
        """How many templates the data can contain (all with paraphrasing, else the canonical first)."""
        return len(self.templates) if self.paraphrase else 1


@dataclass
class CorpusCounts:
    """One corpus of a ``corpora_stats count`` folder."""

    name: str
    documents: int | None
    rows: list[dict[str, Any]]  # class_id, class_name, doc_freq, mentions (ints)


@dataclass
class CardFacts:
    """Everything a card says, as plain values (paths are strings)."""

    kind: str                              # builders | filtered | imagewikiqa
    build_dir: str
    hf_dir: str                            # the Hugging Face folder the card describes (default BUILD/hf)
    dataset: str | None                    # class list / source dataset name (e.g. imagenet1k)
    dataset_name: str                      # its display name (e.g. ImageNet-1k)
    source: dict[str, Any]                 # kind, root, dataset, ... (builders); images, split (imagewikiqa)
    num_classes: int                       # size of the class vocabulary
    class_names: dict[str, str]            # class id -> display name (the whole vocabulary)
    renamed: dict[str, dict]               # class id -> {from, to, why}: names changed to be unique
    split_counts: dict[str, int]           # rows per split of the publishable folder (its parquet files)
    class_counts: dict[str, int]           # rows per class id over the publishable folder
    outputs: dict[str, dict[str, Any]]     # output name -> {about, task, dir, counts}
    hf_task: str | None                    # the task of the rows in the publishable folder
    tasks: dict[str, dict[str, Any]]       # the manifest's task descriptions
    prompts: list[PromptSet]
    prompt_sources: list[str]
    seed: int | None
    config: dict[str, Any]
    tool: dict[str, Any]                   # {"name", "versions"}
    argv: list[str] | None                 # the recorded command line (argv[0] is the script)
    command: str | None                    # the command rendered as ``python -m module args``
    build_splits: dict[str, dict[str, Any]] = field(default_factory=dict)  # builders: written/skipped/reasons
    verify: list[dict[str, Any]] = field(default_factory=list)             # verification pass summaries
    filtered: dict[str, Any] | None = None  # manifest "filtered" + filter_report.json (rules_text, files)
    questions: int | None = None            # imagewikiqa: final questions
    rejections: dict[str, int] = field(default_factory=dict)  # imagewikiqa: rejected questions by reason
    quality: dict[str, Any] | None = None   # imagewikiqa quality_report.json
    verification: dict[str, Any] | None = None  # imagewikiqa text-only verification summary
    key_check: dict[str, Any] | None = None  # imagewikiqa: {"problems", "examples"} of the exported questions
    audit: dict[str, Any] | None = None      # imagewikiqa: {"n", "seed", "questions", "files"} of audit/
    review: dict[str, Any] | None = None     # imagewikiqa: audit/review.json {"reviewed", "wrong_keys", "notes"}
    corpora: list[CorpusCounts] = field(default_factory=list)
    corpora_meta: dict[str, Any] | None = None
    targeted: dict[str, Any] | None = None  # builders.targeted: {"mine", "download", "kept"}
    notes: list[str] = field(default_factory=list)  # things the card should say were not recorded
    #: :func:`cards.metadata.data_info` of ``hf_dir`` (features, splits with their shards, sizes)
    data_info: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def total_rows(self) -> int:
        return sum(self.split_counts.values())

    @property
    def licence_source(self) -> str | None:
        """What the images' terms come from: the web for mined data, else the source dataset."""
        return "web-images" if self.targeted else self.dataset


# ----- reading ---------------------------------------------------------------------------------------------
def _optional_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def detect_kind(manifest: dict) -> str:
    """``filtered``, ``builders`` or ``imagewikiqa`` from a manifest's sections; UserError otherwise."""
    if "filtered" in manifest and "outputs" in manifest:
        return "filtered"
    if "outputs" in manifest and "splits" in manifest:
        return "builders"
    if "questions" in manifest or "exports" in manifest:
        return "imagewikiqa"
    raise UserError("manifest.json is neither a builders, a filtered nor an imagewikiqa build manifest")


def _last_run(build: Path) -> dict | None:
    path = build / "run_log.jsonl"
    if not path.is_file():
        return None
    last = None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            last = json.loads(line)
        except ValueError:
            continue
    return last


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
    """Rows per ``class_id`` over the shards (pyarrow only); empty without a ``class_id`` column."""
    import pyarrow.parquet as pq

    classes: Counter[str] = Counter()
    if "class_id" in info["features"]:
        for paths in files.values():
            for path in paths:
                classes.update(v for v in pq.ParquetFile(path).read(columns=["class_id"]).column(0).to_pylist()
                               if v)
    return dict(sorted(classes.items()))


def _prompts(tasks: dict, prompts_file: str | None) -> tuple[list[PromptSet], list[str], list[str]]:
    """Template ids and texts of every set the tasks used, from builders/prompts.py's loader."""
    from builders.prompts import PromptRegistry

    notes = []
    try:
        registry = PromptRegistry.load(prompts_file)
    except UserError:
        registry = PromptRegistry.load(None)
        notes.append(f"the prompts file {prompts_file} is gone; template texts are the bundled ones")
    out = []
    for task_name, info in sorted(tasks.items()):
        for set_name, ids in (info.get("templates") or {}).items():
            texts = dict(registry.templates(set_name)) if set_name in registry.set_names else {}
            templates = [(tid, texts.get(tid, "(text not recorded)")) for tid in ids]
            # mcq instructions follow the stems' paraphrase setting; instruct always paraphrases
            out.append(PromptSet(task_name, set_name, templates, bool(info.get("paraphrase"))))
    return out, list(registry.sources), notes


def _verify_summaries(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _optional_json(path)
        if isinstance(data, dict) and "pass" in data and "model" in data:
            out.append(data)
    return out


def _read_corpora(folder: str | Path) -> tuple[list[CorpusCounts], dict]:
    """The counts tables and ``count_meta.json`` of a corpora_stats folder
    (:func:`corpora_stats.report.load_counts`), corpora in name order."""
    from corpora_stats.report import load_counts

    tables, meta = load_counts(folder)
    out = []
    for name in sorted(tables):
        rows = [{"class_id": r["class_id"], "class_name": r["class_name"] or r["class_id"],
                 "doc_freq": r["doc_freq"], "mentions": r["mentions"]}
                for r in tables[name].select("class_id", "class_name", "doc_freq", "mentions").iter_rows(named=True)]
        out.append(CorpusCounts(name, (meta["corpora"].get(name) or {}).get("documents"), rows))
    return out, meta


# ----- the facts -------------------------------------------------------------------------------------------
def _builders_facts(build: Path, manifest: dict, kind: str) -> dict[str, Any]:
    notes: list[str] = []
    outputs = {name: {k: info.get(k) for k in ("about", "task", "dir", "counts", "writer", "layout")}
               for name, info in sorted(manifest.get("outputs", {}).items())}
    config = manifest.get("config", {})
    prompts, sources, prompt_notes = _prompts(manifest.get("tasks", {}), config.get("prompts"))
    notes += prompt_notes
    origin = build
    filtered = None
    if kind == "filtered":
        filtered = dict(manifest["filtered"])
        report = _optional_json(build / "filter_report.json")
        if isinstance(report, dict):
            filtered["rules_text"] = report.get("rules_text", [])
            filtered["files"] = report.get("files", {})
            filtered["dropped"] = report.get("dropped")
        origin = Path(filtered.get("from", ""))
        if not (origin / "manifest.json").is_file():
            notes.append("the build this copy was filtered from is not at its recorded path; "
                         "its command and verification summaries are left out")
    run = _last_run(origin) if origin.is_dir() else None
    argv = run.get("argv") if run else None
    if argv is None:
        notes.append("no run_log.jsonl: the exact command was not recorded")
    source = dict(manifest.get("source", {}))
    vocab = manifest.get("vocabulary", {})
    return {
        "dataset": source.get("dataset") or vocab.get("dataset"), "source": source,
        "num_classes": int(vocab.get("num_classes") or source.get("num_classes") or 0),
        "renamed": dict(vocab.get("renamed") or {}), "outputs": outputs,
        "hf_task": (outputs.get("hf") or {}).get("task"), "tasks": manifest.get("tasks", {}),
        "prompts": prompts, "prompt_sources": sources, "seed": config.get("seed"), "config": config,
        "tool": manifest.get("tool", {}), "argv": argv,
        "build_splits": {s: {k: info.get(k) for k in ("scanned", "written", "skipped", "skip_reasons", "converted")}
                         for s, info in manifest.get("splits", {}).items()},
        "verify": _verify_summaries(origin / "verify") if origin.is_dir() else [],
        "filtered": filtered, "notes": notes, "targeted": manifest.get("targeted"),
    }


REVIEW_FILE = "audit/review.json"


def read_review(build: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A human's key review ``BUILD/audit/review.json``: ``({"reviewed", "wrong_keys", "notes"}, None)``,
    ``(None, None)`` when there is none, ``(None, note)`` when the file is not such a record."""
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
    return {"reviewed": reviewed, "wrong_keys": wrong,
            "notes": notes if isinstance(notes, str) and notes.strip() else None}, None


def _imagewikiqa_facts(build: Path, manifest: dict) -> dict[str, Any]:
    config = manifest.get("config", {})
    notes: list[str] = []
    quality = _optional_json(build / "quality_report.json")
    stage = _optional_json(build / "stages" / "verified.done.json")
    verification = None
    if isinstance(stage, dict):
        verification = (stage.get("info") or {}).get("summary")
    if verification is None and isinstance(quality, dict) and quality.get("text_only_llm"):
        verification = quality["text_only_llm"].get("summary")
    argv = manifest.get("argv")
    command = manifest.get("command") if isinstance(manifest.get("command"), str) else None
    if not argv and not command:
        notes.append("the manifest does not record the command line")
    dataset = config.get("classes")
    review, review_note = read_review(build)
    if review_note:
        notes.append(review_note)
    key_check, audit = manifest.get("key_check"), manifest.get("audit")
    return {
        "key_check": key_check if isinstance(key_check, dict) else None,
        "audit": audit if isinstance(audit, dict) else None, "review": review,
        "dataset": dataset, "source": {"kind": config.get("source"), "root": config.get("images"),
                                       "split": config.get("split"), "dataset": dataset,
                                       "generator": config.get("generator"), "articles": config.get("articles")},
        "num_classes": int(manifest.get("classes") or 0), "renamed": {}, "outputs": {},
        "hf_task": "qa", "tasks": {}, "prompts": [], "prompt_sources": [], "seed": config.get("seed"),
        "config": config, "tool": manifest.get("tool", {}), "argv": argv, "command": command,
        "questions": manifest.get("questions"), "rejections": dict(manifest.get("rejections") or {}),
        "quality": quality if isinstance(quality, dict) else None, "verification": verification, "notes": notes,
    }


def collect(build_dir: str | Path, corpora: str | None = None, hf_dir: str | Path | None = None) -> CardFacts:
    """Read a build folder (and optionally a corpora_stats counts folder) into :class:`CardFacts`.

    ``hf_dir``: the Hugging Face folder the card is for (default ``BUILD/hf``); its Parquet shards give the
    split and class counts. UserError (one line) for a folder without ``manifest.json``, an unknown manifest,
    or a Hugging Face folder without ``data/*.parquet``."""
    build = Path(build_dir)
    if not (build / "manifest.json").is_file():
        raise UserError(f"{build} has no manifest.json: give a folder written by builders.imagenet_qa, "
                        f"builders.verify filter or imagewikiqa build")
    try:
        manifest = read_user_json(build / "manifest.json", "build manifest")
    except OSError as exc:  # e.g. no permission to read it
        raise UserError(f"build manifest {build / 'manifest.json'}: cannot be read ({exc})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{build / 'manifest.json'} is not a JSON object")
    kind = detect_kind(manifest)
    hf = build / "hf" if hf_dir is None else Path(hf_dir)
    if not shard_files(hf):
        if hf_dir is not None:
            raise UserError(f"{hf} has no data/*.parquet: give the build's Hugging Face folder (default BUILD/hf)")
        fix = ("rebuild with --images ... --formats hf" if kind == "imagewikiqa"
               else "rebuild with --outputs hf (e.g. --outputs llava,hf,mcq)")
        raise UserError(f"{build} has no publishable Hugging Face folder (hf/data/*.parquet): {fix}")
    info = data_info(hf)
    parts = _imagewikiqa_facts(build, manifest) if kind == "imagewikiqa" else _builders_facts(build, manifest, kind)
    files = split_files(hf, info, list((parts["outputs"].get("hf") or {}).get("counts") or {}))
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
