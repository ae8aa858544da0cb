"""What an ImageWikiQA build (``python -m imagewikiqa build``) writes for others to read: its ``manifest.json``
and ``quality_report.json``."""

from __future__ import annotations

from typing import Any, ClassVar

from vlm_classdata.records.base import Layout, Num, Record, Section
from vlm_classdata.records.build_manifest import ToolInfo


class BenchmarkConfigInfo(Section):
    """``config``: the build's settings (every field of its config; cards read these)."""

    classes: str | None = None
    source: str | None = None
    images: str | None = None
    split: str | None = None
    generator: str | None = None
    articles: str | None = None
    seed: int | None = None
    verifier: str | None = None
    verifier_model: str | None = None
    adversarial: bool = True


class KeyProblem(Section):
    """A wrong option WordNet says is, or may be, true of the question's class, with the evidence."""

    qid: str | None = None
    class_name: str | None = None
    option: str | None = None
    evidence: str | None = None


class KeyCheck(Section):
    """``key_check``: how many key problems the exported questions have, and the first few."""

    problems: int = 0
    examples: list[KeyProblem] = []


class AuditSample(Section):
    """``audit``: the seeded sample of exported questions written to ``audit/`` for a human."""

    n: int = 0
    seed: int | None = None
    questions: list[str] = []
    files: list[str] = []


class BenchmarkManifest(Record):
    """An ImageWikiQA build's ``manifest.json`` (``status`` complete, or failed with the error line)."""

    WHAT: ClassVar[str] = "ImageWikiQA build manifest"

    status: str | None = None
    config: BenchmarkConfigInfo = BenchmarkConfigInfo()
    classes: int | None = None
    questions: int | None = None
    exports: Any = None
    rejections: dict[str, int] = {}
    key_check: KeyCheck | None = None
    audit: AuditSample | None = None
    argv: list[str] | None = None
    command: str | None = None
    tool: ToolInfo = ToolInfo()


class BlindBaselines(Section):
    """``blind_baselines``: accuracy of answering without the image (random, longest/shortest option, the
    most frequent letter)."""

    n: int | None = None
    random: Num | None = None
    longest: Num | None = None
    shortest: Num | None = None
    letter_prior: Any = None


class TextOnlyCheck(Section):
    """``text_only_llm``: the text-only verifier's accuracy and its summary."""

    accuracy_without_name: Num | None = None
    summary: dict[str, Any] | None = None


class QualityReport(Record):
    """``quality_report.json`` of an ImageWikiQA build, or of ``imagewikiqa report`` (a benchmark's, or with
    ``kind: mcq`` a multiple-choice file's). Its keys are written in the order the report was built (indent 2,
    non-ASCII kept); the fields are declared in that order for a benchmark's report."""

    WHAT: ClassVar[str] = "quality report"
    LAYOUT: ClassVar[Layout] = "ordered"

    n_questions: int | None = None
    distinct_questions: int | None = None
    classes: int | None = None
    questions_per_class: Any = None
    options_per_question: Any = None
    letters: dict[str, int] = {}
    letters_by_options: Any = None
    blind_baselines: BlindBaselines = BlindBaselines()
    learned_baselines: Any = None
    text_only_llm: TextOnlyCheck | None = None
    leaks: Any = None
    duplicates: Any = None
    leak_check: Any = None
    cross_class_duplicates: Any = None
    rejections: Any = None
    by_generator: Any = None
    by_kind: Any = None
    targets: Any = None
    meta: Any = None
    key_check: Any = None
