"""``manifest.json`` of a builders build (``python -m builders.imagenet_qa``, ``builders.targeted``) and of its
filtered copy (``python -m builders.verify filter``)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from vlm_classdata.records.base import Layout, Num, Record, Section


class ToolInfo(Section):
    """``tool``: the program that wrote the file and its package versions."""

    name: str | None = None
    versions: dict[str, str] = {}


class BuildConfigInfo(Section):
    """``config``: the build's settings (every field of the build config; cards read these)."""

    seed: int | None = None
    prompts: str | None = None


class SourceInfo(Section):
    """``source``: what the source reader describes of itself."""

    kind: str | None = None
    root: str | None = None
    dataset: str | None = None
    num_classes: int | None = None
    split: str | None = None
    label_source: dict[str, str | None] | str | None = None  # per split (imagenet), or one for all


class Renamed(Section):
    """A class name changed so that every class has a unique one: from what, to what, and why."""

    from_: str | None = Field(None, alias="from")
    to: str | None = None
    why: str | None = ""


class VocabularyInfo(Section):
    """``vocabulary``: the class list beside the data (``classes.json``)."""

    dataset: str | None = None
    num_classes: int | None = None
    renamed: dict[str, Renamed] = {}  # by class id


class TaskInfo(Section):
    """One of ``tasks``: the prompt template sets it used and whether samples pick among them."""

    templates: dict[str, list[str]] = {}
    paraphrase: bool = False


class OutputInfo(Section):
    """One of ``outputs``: a written format, its folder and rows per split."""

    about: str = ""
    task: str | None = None
    dir: str | None = None
    writer: str | None = None
    layout: str | None = None
    counts: dict[str, int] = {}


class SplitInfo(Section):
    """One of ``splits``: inputs scanned, rows written, inputs skipped (by reason), images converted."""

    scanned: int | None = None
    written: int | None = None
    skipped: int | None = None
    skip_reasons: dict[str, int] = {}
    converted: dict[str, int] = {}
    class_counts: dict[str, int] = {}


class MineRule(Section):
    """The selection rule of a mine (``bottom:20``...) and the counts column it ranks."""

    spec: str | None = None
    kind: str | None = None
    column: str | None = None


class MineCounts(Section):
    """The counts a mine ranked classes by: the corpus and the column."""

    corpus: str | None = None
    column: str | None = None


class MinedClass(Section):
    """One chosen class of a mine: its document frequency and the caption rows that named it."""

    class_id: str | None = None
    doc_freq: Num | None = None
    matched_rows: int | None = None


class MineReport(Section):
    """``mine_report.json`` of ``corpora_stats mine`` as the targeted section records it."""

    rule: MineRule = MineRule()
    counts: MineCounts = MineCounts()
    seed: int | None = None
    per_class: int = 0
    forms: str | None = None
    corpus_files: list[dict[str, Any] | str] = []
    rows_scanned: int = 0
    skipped: dict[str, int] = {}
    duplicate_urls: int = 0
    multi_class_rows: int = 0
    classes: list[MinedClass] = []


class ClassDownload(Section):
    """One class's URLs: mined, downloaded, failed by reason."""

    mined: int = 0
    downloaded: int = 0
    failed: dict[str, int] = {}


class DownloadTotals(Section):
    """URLs mined and downloaded over all classes."""

    mined: int = 0
    downloaded: int = 0


class DownloadAccount(Section):
    """The img2dataset download of the mined URLs: settings, totals, per class."""

    image_size: int | None = None
    resize_mode: str | None = None
    totals: DownloadTotals = DownloadTotals()
    classes: dict[str, ClassDownload] = {}


class TargetedSection(Section):
    """``targeted`` (``builders.targeted``): the mine report, the download account, rows kept per class."""

    mine: MineReport = MineReport()
    download: DownloadAccount = DownloadAccount()
    kept: dict[str, int] = {}


class FilterRuleCount(Section):
    """One rule of a filter: what it dropped after the earlier rules and by itself, and its models."""

    rule: str
    dropped: int = 0
    dropped_alone: int = 0
    models: list[str] = []


class FilteredSection(Section):
    """``filtered``: the build a copy was filtered from, samples in and kept, counts per rule."""

    from_: str = Field("", alias="from")
    input: int = 0
    kept: int = 0
    rules: list[FilterRuleCount] = []


class BuildManifest(Record):
    """A builders build's ``manifest.json``."""

    WHAT: ClassVar[str] = "build manifest"

    tool: ToolInfo = ToolInfo()
    config: BuildConfigInfo = BuildConfigInfo()
    source: SourceInfo = SourceInfo()
    vocabulary: VocabularyInfo = VocabularyInfo()
    tasks: dict[str, TaskInfo] = {}
    outputs: dict[str, OutputInfo] = {}
    splits: dict[str, SplitInfo] = {}
    targeted: TargetedSection | None = None
    filtered: FilteredSection | None = None


class FilteredManifest(BuildManifest):
    """The ``manifest.json`` of a filtered copy: the build's manifest with its kept outputs and ``filtered``.
    Its writer has always used indent 2 and ASCII escapes, unlike the build's."""

    LAYOUT: ClassVar[Layout] = "sorted_ascii"

    filtered: FilteredSection
