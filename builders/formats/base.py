"""Formats turn a Record into an Example (the task's text), and a layout turns an Example into a row.

Tasks: ``instruct`` (training: question → class name), ``open`` (open-world eval question), ``mcq``
(closed-set multiple choice). Layouts: ``llava_conversation``, ``chat_messages``, ``llava_eval_question``,
``eval_flat``, ``vlmevalkit``. Formats never read files; writers never know prompts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from builders.records import Record


@dataclass
class Example:
    """The text side of one sample for one task."""

    task: str
    question: str  # prompt text, without any image token
    answer: str  # target text: the class name, or the letter for lettered MCQ
    template_id: str
    options: list[str] = field(default_factory=list)  # MCQ option texts, in display order
    answer_index: int | None = None  # position of the correct option
    answer_letter: str | None = None  # "A".."Z" when options are lettered
    stem: str = ""  # the question stem alone (MCQ: without options and instruction); "" means ``question``

    @property
    def question_stem(self) -> str:
        """The question stem: ``stem`` when set, else the whole ``question`` (open and instruct tasks)."""
        return self.stem or self.question


class Task(ABC):
    """Makes one Example per Record. Must be picklable and deterministic given (seed, record key)."""

    name: str = "task"
    #: True when the pipeline must give every record a balanced answer position (see ``make``)
    needs_positions: bool = False
    #: number of answer positions to balance over (only when ``needs_positions``)
    num_positions: int = 0

    @abstractmethod
    def make(self, record: Record, position: int | None = None) -> Example:
        """The Example for ``record``; ``position`` is the pre-assigned correct-answer slot for MCQ."""

    def describe(self) -> dict:
        """JSON-able settings for the manifest (templates, options)."""
        return {"task": self.name}
