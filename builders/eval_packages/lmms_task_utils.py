"""lmms-eval task functions for vlm-classdata evaluation sets (shipped as ``utils.py`` beside the task YAMLs).

The tasks read this project's flat parquet columns (``image``, ``text``, ``answer``, ``answer_index``,
``options``, ``class_id``) and score replies with its one answer parser and its one label judge, so a score
here equals the score :mod:`imagewikiqa.evaluate` / the verification passes give the same replies:

* multiple choice: :func:`vlm_classdata.answers.parse_choice` against the row's ``options``; a reply is
  correct iff the parsed option index equals ``answer_index`` (an unparseable or refused reply is wrong);
* open world: :class:`vlm_classdata.answers.LabelMatcher` (class name, WordNet synonyms, plurals, aliases,
  typos) on the row's ``class_id``, over the build's ``classes.json`` (the folder above this one).

The environment that runs lmms-eval needs this package (``pip install vlm-classdata``) and, for open-world
tasks, WordNet (fetched once by the package into its cache).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from vlm_classdata.answers import LabelMatcher, parse_choice
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.vocabulary import ClassVocabulary

VOCABULARY_FILE = Path(__file__).resolve().parent.parent / "classes.json"
"""The class list open-world replies are judged against: the build's own ``classes.json``."""


def doc_to_visual(doc: dict) -> list[Any]:
    """The row's one image, as an RGB PIL image (lmms-eval passes a list of visuals to the model)."""
    return [doc["image"].convert("RGB")]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The full prompt shown to the model (``text``: stem, options and instruction), with the optional
    ``pre_prompt`` / ``post_prompt`` of the task's ``lmms_eval_specific_kwargs``."""
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['text']}{kwargs.get('post_prompt', '')}"


def _reply(results: list) -> str:
    """The model's reply (lmms-eval passes the filtered generations as a list)."""
    reply = results[0] if results else ""
    return reply if isinstance(reply, str) else str(reply)


def process_mcq(doc: dict, results: list) -> dict[str, float]:
    """``accuracy`` 1.0 when the reply parses to the correct option, else 0.0 (unknown counts as wrong)."""
    parsed = parse_choice(_reply(results), list(doc["options"]))
    return {"accuracy": float(parsed.index is not None and parsed.index == int(doc["answer_index"]))}


@functools.lru_cache(maxsize=1)
def _judge() -> LabelMatcher:
    """The label judge over the build's vocabulary (built once per process)."""
    if not VOCABULARY_FILE.is_file():
        raise FileNotFoundError(f"open-world scoring needs the build's class list at {VOCABULARY_FILE}; keep the "
                                "lmms_eval folder inside its build folder")
    return LabelMatcher(Lexicon.build(ClassVocabulary.load(VOCABULARY_FILE)))


def process_open(doc: dict, results: list) -> dict[str, float]:
    """``accuracy`` 1.0 when the reply names the row's class (any of its forms), else 0.0."""
    return {"accuracy": float(_judge().match(str(doc["class_id"]), _reply(results)).correct)}
