"""Row layouts: an Example plus its Record become one output row (a JSON-able dict).

- ``llava_conversation``: LLaVA-1.5 training JSON (``<image>\\n`` leads the first human turn).
- ``chat_messages``: TRL/HF chat ``messages`` with an image placeholder; the writer adds the image column.
- ``llava_eval_question``: LLaVA eval question JSONL (``model_vqa_loader`` style): ``question_id, image`` and the
  flat eval columns.
- ``eval_flat``: the flat eval columns for a parquet dataset (``id`` then ``text, question, answer, label,
  class_id, class_name``; MCQ adds ``options, answer_index, index``); the writer adds the image column.
- ``vlmevalkit``: VLMEvalKit MCQ TSV row (``index, question, A.., answer, category``); the writer adds the
  base64 ``image`` column.

Column meanings are one vocabulary across outputs: ``text`` is the full prompt (MCQ: stem + options +
instruction), ``question`` the stem alone, ``answer`` the target (the letter for lettered MCQ, else the class
name), ``label`` the int class index into ``classes.json``, ``index`` VLMEvalKit's per-split row number (MCQ rows
share it with the TSV), ``category`` the class name (VLMEvalKit only).

Multiple-choice rows of ``llava_eval_question``, ``eval_flat`` and ``chat_messages`` end with the fields that
record how the distractors were chosen (:meth:`builders.formats.mcq.MCQExample.distractor_fields`): ``option_class_ids``,
``distractor_mode``, ``distractor_pool_size``, ``distractor_relations``. VLMEvalKit rows keep its columns.
"""

from __future__ import annotations

from collections.abc import Callable

from builders.formats.base import Example
from builders.formats.mcq import MAX_LETTERS, MCQExample, format_options, letters
from builders.formats.trl import trl_messages, trl_prompt_completion
from builders.records import Record
from vlm_classdata.errors import UserError

IMAGE_TOKEN = "<image>"


def llava_conversation(example: Example, record: Record) -> dict:
    """``{"id", "image", "conversations": [human "<image>\\n" + question, gpt answer]}``."""
    return {
        "id": record.key,
        "image": record.image_path,
        "conversations": [
            {"from": "human", "value": f"{IMAGE_TOKEN}\n{example.question}"},
            {"from": "gpt", "value": example.answer},
        ],
    }


def _distractor_fields(example: Example) -> dict:
    return example.distractor_fields() if isinstance(example, MCQExample) else {}


def chat_messages(example: Example, record: Record) -> dict:
    """TRL-style ``messages`` (image placeholder then text in the user turn) with label columns; an MCQ row
    also records its distractors."""
    return {
        "id": record.key,
        "messages": [
            {"role": "user", "content": [{"type": "image", "text": None},
                                         {"type": "text", "text": example.question}]},
            {"role": "assistant", "content": [{"type": "text", "text": example.answer}]},
        ],
        "label": record.label,
        "class_id": record.class_id,
        "class_name": record.class_name,
        **_distractor_fields(example),
    }


def _eval_columns(example: Example, record: Record) -> dict:
    """The flat eval columns after the key and image: ``text, question, answer, label, class_id, class_name``,
    then for MCQ ``options, answer_index, index`` and the distractor record."""
    row = {
        "text": example.question,
        "question": example.question_stem,
        "answer": example.answer,
        "label": record.label,
        "class_id": record.class_id,
        "class_name": record.class_name,
    }
    if example.task == "mcq":
        if "index" not in record.meta:
            raise ValueError(f"record {record.key!r} has no meta['index'] for an MCQ eval row")
        row["options"] = list(example.options)
        row["answer_index"] = example.answer_index
        row["index"] = int(record.meta["index"])
        row.update(_distractor_fields(example))
    return row


def llava_eval_question(example: Example, record: Record) -> dict:
    """LLaVA eval question row (``question_id, image``, then the flat eval columns, see :func:`eval_flat`)."""
    return {"question_id": record.key, "image": record.image_path, **_eval_columns(example, record)}


def eval_flat(example: Example, record: Record) -> dict:
    """Flat eval row for a parquet dataset: ``id, text, question, answer, label, class_id, class_name`` (+ for
    MCQ ``options, answer_index, index`` and the distractor record); the writer adds the ``image`` column."""
    return {"id": record.key, **_eval_columns(example, record)}


def mcq_stem(example: Example) -> str:
    """The question stem of an MCQ Example (the text before its option block)."""
    if example.stem:
        return example.stem
    block = "\n" + format_options(example.options, lettered=True) + "\n"
    cut = example.question.find(block)
    if cut < 0:
        raise ValueError(f"MCQ question does not contain its option block: {example.question[:80]!r}")
    return example.question[:cut]


def vlmevalkit(example: Example, record: Record) -> dict:
    """VLMEvalKit MCQ row: ``index`` (int), stem-only ``question``, one column per option, ``answer``."""
    if example.task != "mcq":
        raise UserError(f"layout vlmevalkit needs the mcq task (got {example.task!r})")
    if example.answer_letter is None or len(example.options) > MAX_LETTERS:
        raise UserError(f"layout vlmevalkit supports at most {MAX_LETTERS} choices "
                        f"(got {len(example.options)}); use llava_eval_question instead")
    if "index" not in record.meta:
        raise ValueError(f"record {record.key!r} has no meta['index'] for the vlmevalkit layout")
    row: dict = {"index": int(record.meta["index"]), "question": mcq_stem(example)}
    row.update(zip(letters(len(example.options)), example.options, strict=True))
    row["answer"] = example.answer_letter
    row["category"] = record.class_name
    return row


LAYOUTS: dict[str, Callable[[Example, Record], dict]] = {
    "llava_conversation": llava_conversation,
    "chat_messages": chat_messages,
    "llava_eval_question": llava_eval_question,
    "eval_flat": eval_flat,
    "vlmevalkit": vlmevalkit,
    "trl_prompt_completion": trl_prompt_completion,
    "trl_messages": trl_messages,
}


def layout_for(name: str) -> Callable[[Example, Record], dict]:
    """The layout function called ``name``; UserError listing the known layouts otherwise."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UserError(f"unknown layout {name!r}; choose from {', '.join(LAYOUTS)}") from None
