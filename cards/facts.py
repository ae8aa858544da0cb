"""The plain facts a dataset card is written from (:func:`cards.collect.collect` gathers them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vlm_classdata.records.audit import AuditSummary
from vlm_classdata.records.build_manifest import (
    BuildConfigInfo,
    FilteredSection,
    OutputInfo,
    Renamed,
    SourceInfo,
    SplitInfo,
    TargetedSection,
    TaskInfo,
    ToolInfo,
)
from vlm_classdata.records.count_meta import CountMeta
from vlm_classdata.records.imagewikiqa import AuditSample, BenchmarkConfigInfo, KeyCheck, QualityReport
from vlm_classdata.records.verification import VerificationSummary


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
class Filtering:
    """A filtered copy: the manifest's ``filtered`` section and, from ``filter_report.json``, the rules as
    given and rows per file before/after."""

    section: FilteredSection
    rules_text: list[str] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Review:
    """A human's key review (``audit/review.json``)."""

    reviewed: int
    wrong_keys: int
    notes: str | None


@dataclass
class CardFacts:
    """Everything a card says (paths are strings)."""

    kind: str                              # builders | filtered | imagewikiqa
    build_dir: str
    hf_dir: str                            # the Hugging Face folder the card describes (default BUILD/hf)
    dataset: str | None                    # class list / source dataset name (e.g. imagenet1k)
    dataset_name: str                      # its display name (e.g. ImageNet-1k)
    source: SourceInfo                     # kind, root, dataset, split, label_source (imagewikiqa: images)
    num_classes: int                       # size of the class vocabulary
    class_names: dict[str, str]            # class id -> display name (the whole vocabulary)
    renamed: dict[str, Renamed]            # class id -> names changed to be unique
    split_counts: dict[str, int]           # rows per split of the publishable folder (its parquet files)
    class_counts: dict[str, int]           # rows per class id over the publishable folder
    outputs: dict[str, OutputInfo]         # output name -> about, task, dir, counts
    hf_task: str | None                    # the task of the rows in the publishable folder
    tasks: dict[str, TaskInfo]             # the manifest's task descriptions
    prompts: list[PromptSet]
    prompt_sources: list[str]
    seed: int | None
    config: BuildConfigInfo | BenchmarkConfigInfo
    tool: ToolInfo
    argv: list[str] | None                 # the recorded command line (argv[0] is the script)
    command: str | None                    # the command rendered as ``python -m module args``
    build_splits: dict[str, SplitInfo] = field(default_factory=dict)       # builders: written/skipped/reasons
    verify: list[VerificationSummary] = field(default_factory=list)        # verification pass summaries
    filtered: Filtering | None = None
    label_audit: AuditSummary | None = None  # builders: verify/audit/summary.json (python -m builders.verify audit)
    questions: int | None = None            # imagewikiqa: final questions
    rejections: dict[str, int] = field(default_factory=dict)  # imagewikiqa: rejected questions by reason
    quality: QualityReport | None = None    # imagewikiqa quality_report.json
    verification: dict[str, Any] | None = None  # imagewikiqa text-only verification summary
    key_check: KeyCheck | None = None       # imagewikiqa: problems and examples of the exported questions
    audit: AuditSample | None = None        # imagewikiqa: the review sample exported to audit/
    review: Review | None = None            # imagewikiqa: audit/review.json
    corpora: list[CorpusCounts] = field(default_factory=list)
    corpora_meta: CountMeta | None = None
    targeted: TargetedSection | None = None  # builders.targeted: mine, download, kept
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

    def name(self, class_id: str) -> str:
        """A class's display name (its id when the vocabulary does not name it)."""
        return self.class_names.get(class_id, class_id)
