"""The records of ImageWikiQA: the articles questions are written from, and the questions themselves.

A question is about an object the model has to recognise from the image; the text refers to it only as
"this object" (never by the class name), with several options of which exactly one is correct.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from builders.formats.mcq import format_options, letters
from vlm_classdata.errors import UserError

N_OPTIONS = 4  # options per ImageWikiQA question (the released format and every generator here)


def mcq_text(question: str, options: list[str]) -> str:
    """``question``, then ``A. ...`` lines, then "Choose A, B, C, or D." (the one place this layout is made)."""
    ls = letters(len(options))
    choose = ", ".join(ls[:-1]) + f", or {ls[-1]}" if len(ls) > 1 else ls[0]
    return f"{question}\n{format_options(options, lettered=True)}\nChoose {choose}."


FIELDS = ("qid", "class_id", "class_name", "question", "options", "answer_index", "reference", "source",
          "generator", "kind")


@dataclass
class Question:
    """One multiple-choice knowledge question about the object shown in an image of one class."""

    qid: str                 # stable and unique within a set: f"{class_id}-{generator}-{kind}-{n}"
    class_id: str
    class_name: str
    question: str            # refers to the object as "this object"; never names the class
    options: list[str] = field(default_factory=list)  # distinct option texts
    answer_index: int = 0    # position of the correct option in ``options``
    reference: str = ""      # the supporting fact, so every question is checkable
    source: str = ""         # "wordnet:n01440764", an article title, ...
    generator: str = ""      # "wordnet", "llm", ...
    kind: str = ""           # template kind: "hypernym", "part", "gloss_cloze", ...

    @property
    def answer(self) -> str:
        """The text of the correct option."""
        return self.options[self.answer_index]

    @property
    def letter(self) -> str:
        """The letter of the correct option (``"A"``...)."""
        return letters(len(self.options))[self.answer_index]

    def prompt(self, question: str | None = None, options: list[str] | None = None) -> str:
        """The multiple-choice text a model sees: question, lettered options, instruction (the released
        ImageWikiQA layout). ``question``/``options`` override the stored ones (name substituted, options
        permuted)."""
        return mcq_text(self.question if question is None else question,
                        self.options if options is None else options)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict with exactly the fields of :data:`FIELDS`."""
        d = asdict(self)
        d["options"] = list(self.options)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Question:
        """Inverse of :meth:`to_json`; a missing field or an answer index outside the options raises
        :class:`~vlm_classdata.errors.UserError`."""
        if not isinstance(d, dict):
            raise UserError(f"question record: expected an object, got {type(d).__name__}")
        missing = [f for f in FIELDS if f not in d]
        if missing:
            raise UserError(f"question record {d.get('qid', '?')!r}: missing field(s) {', '.join(missing)}")
        options = d["options"]
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise UserError(f"question record {d['qid']!r}: options must be a list of strings")
        index = d["answer_index"]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(options):
            raise UserError(f"question record {d['qid']!r}: answer_index {index!r} outside the options")
        return cls(**{f: (list(options) if f == "options" else d[f]) for f in FIELDS})


@dataclass(frozen=True)
class Article:
    """One knowledge text about a class: a Wikipedia article, a WordNet gloss, a package description.

    Generators write questions from ``text``; question rules check that each question's reference sentence
    really occurs in it. ``source`` says where it came from (``"imagenet-wiki:file.csv"``, ``"wordnet"``,
    ``"jsonl:articles.jsonl"``, ...).
    """

    class_id: str
    title: str
    text: str
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (class_id, title, text, source)."""
        return asdict(self)
