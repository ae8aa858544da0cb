"""Row layouts for TRL's ``SFTTrainer`` (conversational vision data); the writer adds the ``images`` column.

- ``trl_prompt_completion`` (output ``hf``): ``prompt`` = the user turn (an image part, then the question),
  ``completion`` = the assistant turn (the answer). TRL (0.22 on) switches ``completion_only_loss`` on by
  itself for a dataset with both columns, so only the completion's tokens carry loss: no prompt or image token.
- ``trl_messages`` (output ``hf_messages``): both turns in one ``messages`` list; TRL trains on the whole
  rendered sequence (``assistant_only_loss`` needs a chat template with generation markers).

Both keep ``id``, ``label``, ``class_id`` and ``class_name`` beside the chat columns (TRL drops columns it does not
read). Every content part is a ``{"type", "text"}`` pair (``"text": None`` on the image part), so a turn's parts
share one Arrow struct type and load back unchanged with ``datasets``.
"""

from __future__ import annotations

from builders.formats.base import Example
from builders.formats.mcq import MCQExample
from builders.records import Record


def user_turn(question: str) -> dict:
    """The user message: one image placeholder, then the question text."""
    return {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": question}]}


def assistant_turn(answer: str) -> dict:
    """The assistant message holding the answer text."""
    return {"role": "assistant", "content": [{"type": "text", "text": answer}]}


def _label_fields(example: Example, record: Record) -> dict:
    """``label``, ``class_id``, ``class_name`` (and an MCQ example's distractor record)."""
    fields = {"label": record.label, "class_id": record.class_id, "class_name": record.class_name}
    if isinstance(example, MCQExample):
        fields.update(example.distractor_fields())
    return fields


def trl_prompt_completion(example: Example, record: Record) -> dict:
    """``{"id", "prompt": [user turn], "completion": [assistant turn], "label", "class_id", "class_name"}``."""
    return {"id": record.key, "prompt": [user_turn(example.question)],
            "completion": [assistant_turn(example.answer)], **_label_fields(example, record)}


def trl_messages(example: Example, record: Record) -> dict:
    """``{"id", "messages": [user turn, assistant turn], "label", "class_id", "class_name"}``."""
    return {"id": record.key, "messages": [user_turn(example.question), assistant_turn(example.answer)],
            **_label_fields(example, record)}
