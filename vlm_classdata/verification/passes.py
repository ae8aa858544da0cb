"""The verification passes: what each asks a model and how its answer is judged.

* ``label_check`` — the open question with the image; correct when the reply names the label or one of its
  WordNet synonyms/plurals (:class:`vlm_classdata.answers.LabelMatcher`; rapidfuzz ``fuzz.ratio`` ≥
  :data:`vlm_classdata.answers.FUZZY_THRESHOLD` = 90 for near matches); the hierarchical verdict of
  :class:`vlm_classdata.answers.VerdictJudge` in ``verdict``/``verdict_steps``/``verdict_class_id``/
  ``verdict_synset`` (``correct`` is ``verdict == "exact"``).
* ``mcq`` — the multiple-choice item with the image; the reply's letter is read by
  :func:`vlm_classdata.answers.parse_choice` (the same parser as the ImageWikiQA evaluator).
* ``blind`` — the same multiple-choice item without the image; a correct answer flags the item as
  answerable blind.
* ``rank`` — the log-likelihood of every class name as the answer to the open question (shared-prefix
  scoring); the rank of the true class by summed and by mean token log-probability.

``label_check``, ``mcq`` and ``rank`` also judge against multi-label truth (``--multi-labels``,
:mod:`vlm_classdata.verification.multilabels`): :meth:`Pass.correct_for_any` says whether an answer is right for any
accepted class (reply names one / chosen option's class / top-1 class), filled in as ``correct_any`` when the sidecar
is assembled; ``correct`` stays single-label.

A pass turns a list of :class:`~vlm_classdata.verification.items.Item` into one row per item with the columns of
:data:`COMMON_COLUMNS` plus its own (``columns``). Unusable items (no image, unreadable image, prompt too
long, no options/class) become rows with ``status="error"`` and a reason, never exceptions.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import polars as pl
from PIL import Image, UnidentifiedImageError

from vlm_classdata.answers import LabelMatcher, parse_choice
from vlm_classdata.answers.verdicts import VerdictJudge
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.verification.items import Item
from vlm_classdata.vlm import VLM, GenerationConfig
from vlm_classdata.vocabulary import ClassVocabulary

COMMON_COLUMNS: dict[str, pl.DataType] = {
    "sample_id": pl.String, "split": pl.String, "pass": pl.String, "model": pl.String,
    "prompt_sha": pl.String, "status": pl.String, "error": pl.String, "correct": pl.Boolean,
}
MULTI_LABEL_COLUMNS: dict[str, pl.DataType] = {"correct_any": pl.Boolean, "accepted_class_ids": pl.List(pl.String)}
"""Columns of passes with ``multi_label``: right for any accepted class (null without a multi-label file, for an
empty accepted set and for errors), and the accepted class ids (null when the file does not name the item)."""


@dataclass(frozen=True)
class PassSettings:
    """What shapes a pass's prompts and answers (part of every cache key)."""

    max_new_tokens: int = 32
    batch_size: int = 8
    score_batch_size: int = 128
    max_prompt_tokens: int | None = None  # None: the model's context length minus max_new_tokens


def load_image(path: str | None) -> tuple[Image.Image | None, str | None]:
    """``(RGB image, None)`` or ``(None, reason)``: ``no_image``, ``missing_image`` or ``unreadable_image``."""
    if not path:
        return None, "no_image"
    try:
        with Image.open(path) as im:
            return im.convert("RGB"), None
    except FileNotFoundError:
        return None, "missing_image"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None, "unreadable_image"


class Pass(ABC):
    """One kind of question put to a model, and how its reply is judged."""

    name: str = "pass"
    uses_image: bool = True
    multi_label: bool = False  # has MULTI_LABEL_COLUMNS and judges correct_for_any
    columns: dict[str, pl.DataType] = {}

    def __init__(self, settings: PassSettings, vocab: ClassVocabulary | None = None) -> None:
        self.settings = settings
        self.vocab = vocab

    def prompt(self, item: Item) -> str:
        """The question text the model sees (without the chat template)."""
        return item.question

    def unsuitable(self, item: Item) -> str | None:
        """Why ``item`` cannot be asked in this pass (an error reason), or None."""
        return None

    def cache_parts(self) -> dict[str, Any]:
        """Settings beside the prompt that change the answer (hashed into the cache key)."""
        return {"max_new_tokens": self.settings.max_new_tokens}

    def prompt_sha(self, item: Item) -> str:
        """Cache key part: hash of the pass, the prompt text, image use and :meth:`cache_parts`."""
        blob = json.dumps([self.name, self.prompt(item), self.uses_image, self.cache_parts()], sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def schema(self) -> dict[str, pl.DataType]:
        """All columns of this pass's sidecar, in order."""
        return {**COMMON_COLUMNS, **self.columns, **(MULTI_LABEL_COLUMNS if self.multi_label else {})}

    def correct_for_any(self, item: Item, row: dict, accepted: tuple[str, ...]) -> bool | None:
        """Whether the answered ``row`` of ``item`` is right for any of the ``accepted`` class ids (None: this
        pass cannot tell)."""
        return None

    def run(self, vlm: VLM, items: list[Item], model: str) -> list[dict]:
        """One row per item, in input order (errors included); ``model`` is the alias in the ``model`` column."""
        rows: list[dict | None] = [None] * len(items)
        ready: list[tuple[int, Image.Image | None]] = []
        limit = self._prompt_limit(vlm)
        for i, item in enumerate(items):
            reason = self.unsuitable(item)
            image = None
            if reason is None and self.uses_image:
                image, reason = load_image(item.image)
            if reason is None and limit is not None:
                n = vlm.prompt_tokens(self.prompt(item), image is not None)
                if n > limit:
                    reason = "prompt_too_long"
            if reason is not None:
                rows[i] = self._row(item, model, "error", reason)
            else:
                ready.append((i, image))
        if ready:
            answers = self._answer(vlm, [items[i] for i, _ in ready], [im for _, im in ready])
            for (i, _), extra in zip(ready, answers, strict=True):
                status = "error" if extra.get("error") else "ok"
                rows[i] = self._row(items[i], model, status, extra.pop("error", None), **extra)
        return [r for r in rows if r is not None]

    def _prompt_limit(self, vlm: VLM) -> int | None:
        if self.settings.max_prompt_tokens is not None:
            return self.settings.max_prompt_tokens
        context = vlm.context_length()
        return None if context is None else context - self.settings.max_new_tokens

    def _row(self, item: Item, model: str, status: str, error: str | None, **extra: Any) -> dict:
        row = {name: None for name in self.schema()}
        row.update(sample_id=item.sample_id, split=item.split, model=model, status=status, error=error,
                   prompt_sha=self.prompt_sha(item))
        row["pass"] = self.name
        row.update(extra)
        return row

    @abstractmethod
    def _answer(self, vlm: VLM, items: list[Item], images: list[Image.Image | None]) -> list[dict]:
        """Pass-specific columns for each ready item (``correct`` included; ``error`` for a failed item)."""


class _GenerationPass(Pass):
    """Passes that generate a reply and judge it."""

    def _answer(self, vlm: VLM, items: list[Item], images: list[Image.Image | None]) -> list[dict]:
        config = GenerationConfig(max_new_tokens=self.settings.max_new_tokens, batch_size=self.settings.batch_size)
        asked = [(im if self.uses_image else None, self.prompt(it)) for it, im in zip(items, images, strict=True)]
        replies = vlm.generate_each(asked, config)
        out = []
        for item, reply in zip(items, replies, strict=True):
            if isinstance(reply, BaseException):
                out.append({"error": f"model_error: {type(reply).__name__}"})
            else:
                out.append({"reply": reply, **self.judge(item, reply)})
        return out

    @abstractmethod
    def judge(self, item: Item, reply: str) -> dict:
        """Columns describing the reply (``correct`` included)."""


class LabelCheckPass(_GenerationPass):
    """The open question; correct when the reply names the class (synonyms, plurals, near matches)."""

    name = "label_check"
    multi_label = True
    columns = {"class_id": pl.String, "label": pl.String, "reply": pl.String, "match_how": pl.String,
               "matched_form": pl.String, "match_score": pl.Float64, "verdict": pl.String,
               "verdict_steps": pl.Int64, "verdict_class_id": pl.String, "verdict_synset": pl.String}

    def __init__(self, settings: PassSettings, vocab: ClassVocabulary | None = None) -> None:
        if vocab is None:
            raise UserError("label_check needs the build's class vocabulary")
        super().__init__(settings, vocab)
        self._matcher: LabelMatcher | None = None
        self._judge: VerdictJudge | None = None

    def unsuitable(self, item: Item) -> str | None:
        return None if item.class_id else "no_class"

    def matcher(self) -> LabelMatcher:
        """The label judge (built on first use: the WordNet forms of every class take a while)."""
        if self._matcher is None:
            self._matcher = LabelMatcher(Lexicon.build(self.vocab))
        return self._matcher

    def correct_for_any(self, item: Item, row: dict, accepted: tuple[str, ...]) -> bool | None:
        """The reply names any accepted class (the same judge as ``correct``)."""
        return self.matcher().names_any(accepted, row["reply"] or "")

    def judge(self, item: Item, reply: str) -> dict:
        matcher = self.matcher()
        if self._judge is None:
            self._judge = VerdictJudge(self.vocab, matcher.lexicon, matcher)
        m = matcher.match(item.class_id, reply)
        v = self._judge.judge(item.class_id, reply)
        return {"class_id": item.class_id, "label": self.vocab[item.class_id].name, "correct": m.correct,
                "match_how": m.how, "matched_form": m.matched_form, "match_score": float(m.score),
                "verdict": v.kind, "verdict_steps": v.steps, "verdict_class_id": v.class_id,
                "verdict_synset": v.synset}


class McqPass(_GenerationPass):
    """The multiple-choice item with its image; the letter is parsed from the reply."""

    name = "mcq"
    multi_label = True
    columns = {"reply": pl.String, "pred_index": pl.Int64, "pred_letter": pl.String, "parse_how": pl.String,
               "answer_index": pl.Int64}

    def unsuitable(self, item: Item) -> str | None:
        if len(item.options) < 2 or item.answer_index is None:
            return "no_options"
        return None

    def judge(self, item: Item, reply: str) -> dict:
        parsed = parse_choice(reply, list(item.options))
        return {"pred_index": parsed.index, "pred_letter": parsed.letter, "parse_how": parsed.how,
                "answer_index": item.answer_index, "correct": parsed.index == item.answer_index}

    def correct_for_any(self, item: Item, row: dict, accepted: tuple[str, ...]) -> bool | None:
        """The chosen option's class (the item's ``option_class_ids``, else the option text as a class name) is
        accepted; no parsed choice is wrong; None when the option's class is unknown."""
        index = row["pred_index"]
        if index is None or not 0 <= index < len(item.options):
            return False
        if len(item.option_class_ids) == len(item.options):
            return item.option_class_ids[index] in accepted
        entry = self.vocab.by_name(item.options[index]) if self.vocab is not None else None
        return None if entry is None else entry.class_id in accepted


class BlindPass(McqPass):
    """The multiple-choice item without its image: a correct answer means it is answerable blind."""

    name = "blind"
    uses_image = False
    multi_label = False


class RankPass(Pass):
    """Rank of the true class among all class names by answer log-likelihood (shared-prefix scoring)."""

    name = "rank"
    multi_label = True
    columns = {"class_id": pl.String, "rank": pl.Int64, "rank_mean": pl.Int64, "logprob_sum": pl.Float64,
               "logprob_mean": pl.Float64, "top1_class_id": pl.String, "top5": pl.List(pl.String),
               "in_top5": pl.Boolean, "n_candidates": pl.Int64}

    def __init__(self, settings: PassSettings, vocab: ClassVocabulary | None = None) -> None:
        if vocab is None:
            raise UserError("rank needs the build's class vocabulary")
        super().__init__(settings, vocab)
        self._ids = vocab.ids
        self._names = vocab.names

    def unsuitable(self, item: Item) -> str | None:
        return None if item.class_id in self.vocab else "no_class"

    def correct_for_any(self, item: Item, row: dict, accepted: tuple[str, ...]) -> bool | None:
        """The top-1 class by summed log-probability is accepted."""
        return row["top1_class_id"] in accepted

    def cache_parts(self) -> dict[str, Any]:
        names = hashlib.sha1("\n".join(self._names).encode()).hexdigest()[:12]
        return {"candidates": names, "n": len(self._names)}

    def _prompt_limit(self, vlm: VLM) -> int | None:
        if self.settings.max_prompt_tokens is not None:
            return self.settings.max_prompt_tokens
        context = vlm.context_length()
        longest = max(len(ids) for ids in vlm.tokenizer(self._names, add_special_tokens=False)["input_ids"])
        return None if context is None else context - longest - 1

    def _answer(self, vlm: VLM, items: list[Item], images: list[Image.Image | None]) -> list[dict]:
        out = []
        for item, image in zip(items, images, strict=True):
            scores = vlm.score(image, self.prompt(item), self._names, batch_size=self.settings.score_batch_size)
            sums = [s for s, _ in scores]
            means = [m for _, m in scores]
            t = self._ids.index(item.class_id)
            by_sum = sorted(range(len(sums)), key=lambda j: (-sums[j], j))
            out.append({
                "class_id": item.class_id,
                "rank": 1 + sum(1 for s in sums if s > sums[t]),
                "rank_mean": 1 + sum(1 for m in means if m > means[t]),
                "logprob_sum": sums[t], "logprob_mean": means[t],
                "top1_class_id": self._ids[by_sum[0]], "top5": [self._ids[j] for j in by_sum[:5]],
                "n_candidates": len(sums),
            })
            out[-1]["correct"] = out[-1]["rank"] == 1
            out[-1]["in_top5"] = out[-1]["rank"] <= 5
        return out


PASSES: dict[str, type[Pass]] = {p.name: p for p in (LabelCheckPass, McqPass, BlindPass, RankPass)}
DEFAULT_OUTPUT = {"label_check": "eval_open", "rank": "eval_open", "mcq": "mcq", "blind": "mcq"}


def make_pass(name: str, settings: PassSettings, vocab: ClassVocabulary | None = None) -> Pass:
    """The pass called ``name``; UserError listing the known passes otherwise."""
    if name not in PASSES:
        raise UserError(f"unknown pass {name!r}; choose from {', '.join(PASSES)}")
    return PASSES[name](settings, vocab)
