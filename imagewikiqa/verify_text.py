"""Text-only verification of ImageWikiQA questions.

A question is worth asking about an *image* only when recognising the object is what makes it answerable.
A text-only model is therefore asked every question twice, per option order:

* with the class name substituted ("this object" → "the tench", :func:`substitute_name`): it must answer
  correctly (the question is answerable, and its key is right);
* as-is ("this object"): it must answer incorrectly (the question is not answerable from the text alone).

Option orders: the original, then ``permutations - 1`` distinct seeded permutations
(``builders.records.sample_rng(seed, "perm", qid, str(k))``); a question is kept only when both conditions
hold under every order (a model that always answers "A" fails this consistency). Replies are parsed with
:func:`vlm_classdata.answers.parse_choice` into ``"correct"``, ``"wrong"`` or ``"unknown"`` (nothing parsed, a
refusal, an ambiguous reply, or a failed request). An unknown is never counted as wrong: it rejects.

The model is reached through ONE backend interface, :class:`imagewikiqa.llm_client.ChatBackend`:
``complete_many(list[ChatRequest], progress=False) -> list[ChatResult]`` (the HTTP ``ChatClient`` or the
local transformers ``LocalChatModel``). All requests of a run go in one call, so the
backend batches them and, with a cache, a rerun sends none again.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence

import regex

from builders.formats.mcq import letters
from builders.records import sample_rng
from imagewikiqa.chat import ChatBackend, ChatRequest, ChatResult
from imagewikiqa.records import Question
from vlm_classdata.answers import parse_choice
from vlm_classdata.errors import UserError

REASONS = ("request_failed", "not_answerable_with_name", "unknown_with_name", "answerable_without_name",
           "unknown_without_name")
_THIS_OBJECT = regex.compile(r"(?<![\p{L}\p{N}])(this)(\s+)object(?![\p{L}\p{N}])", regex.IGNORECASE)
_OPENERS = regex.compile(r"[ \t\"'“‘«(\[]+$")
_PERM_TRIES = 1000


def substitute_name(question: str, class_name: str) -> str:
    """Replace every "this object" (any case, whole words; "this object's" → "the {class_name}'s") with
    "the {class_name}". A capitalised "This object" that starts a sentence (the text, or after ``.``, ``!``,
    ``?``, ``:`` or a line break, opening quotes/brackets skipped) keeps its capital: "The tench ..."; a
    capitalised one inside a sentence ("... does THIS OBJECT eat") becomes "the tench"."""
    def repl(m: regex.Match) -> str:
        before = _OPENERS.sub("", question[:m.start()])
        initial = not before or before[-1] in ".!?:\n"
        article = "The" if initial and m.group(1)[0].isupper() else "the"
        return f"{article} {class_name}"
    return _THIS_OBJECT.sub(repl, question)


def option_orders(q: Question, permutations: int, seed: int) -> list[list[int]]:
    """The option orders ``q`` is asked in: the original, then distinct seeded permutations (order ``k``
    from ``sample_rng(seed, "perm", qid, str(k))``), ``min(permutations, len(options)!)`` in all. Each order
    lists original option indices in display order."""
    n = len(q.options)
    wanted = min(int(permutations), math.factorial(n))
    orders = [list(range(n))]
    seen = {tuple(orders[0])}
    for k in range(1, wanted):
        rng = sample_rng(seed, "perm", q.qid, str(k))
        order = list(range(n))
        for _ in range(_PERM_TRIES):
            rng.shuffle(order)
            if tuple(order) not in seen:
                break
        else:  # pragma: no cover - only for absurdly unlucky draws
            order = next(list(p) for p in itertools.permutations(range(n)) if p not in seen)
        seen.add(tuple(order))
        orders.append(order)
    return orders


def _request(text: str, model: str, max_tokens: int) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], model=model, temperature=0.0,
                       max_tokens=int(max_tokens))


def _verdict(result: ChatResult, options: list[str], correct: int) -> str:
    if not result.ok:
        return "unknown"
    parsed = parse_choice(result.text or "", options)
    if parsed.index is None:
        return "unknown"
    return "correct" if parsed.index == correct else "wrong"


def _reason(with_name: list[str], without_name: list[str], failed: bool) -> str | None:
    if failed:
        return "request_failed"
    if "wrong" in with_name:
        return "not_answerable_with_name"
    if "unknown" in with_name:
        return "unknown_with_name"
    if "correct" in without_name:
        return "answerable_without_name"
    if "unknown" in without_name:
        return "unknown_without_name"
    return None


def verify_questions(questions: Sequence[Question], backend: ChatBackend, model: str, permutations: int = 1,
                     seed: int = 0, max_tokens: int = 16,
                     progress: bool = False) -> tuple[list[Question], list[dict], Counter]:
    """Keep the questions a text-only model answers correctly with the class name substituted and
    incorrectly without it, under every option order (see the module docstring).

    ``backend``: a :class:`~imagewikiqa.llm_client.ChatBackend`; identical requests are sent once and every
    request of the run goes in a single ``complete_many`` call (``progress`` is passed on). Returns ``(kept
    questions in input order, one verdict dict per question, Counter of rejection reasons)``. A verdict dict has ``qid``, ``class_id``, ``orders`` (option orders,
    original indices), ``correct_letters`` (per order), ``with_name`` and ``without_name`` (a verdict of
    ``correct``, ``wrong`` or ``unknown`` per order), ``replies`` (``{"with_name": [...], "without_name": [...]}``: reply texts,
    None where the request failed), ``errors`` (the same shape, request errors or None), ``kept`` and
    ``reason`` (None when kept; else one of :data:`REASONS`, first applicable in that order).
    """
    if int(permutations) < 1:
        raise UserError(f"permutations must be >= 1, got {permutations}")
    if int(max_tokens) < 1:
        raise UserError(f"max_tokens must be >= 1, got {max_tokens}")
    if not callable(getattr(backend, "complete_many", None)):
        raise UserError("the verification backend must offer complete_many(list[ChatRequest])")
    questions = list(questions)
    for q in questions:
        if not isinstance(q.answer_index, int) or not 0 <= q.answer_index < len(q.options):
            raise UserError(f"question {q.qid!r}: answer_index {q.answer_index!r} outside its options")

    # plan: per question, per order, (with-name request slot, without-name request slot)
    unique: dict[str, int] = {}
    reqs: list[ChatRequest] = []
    plans: list[tuple[list[list[int]], list[tuple[list[str], int, int, int]]]] = []

    def slot(req: ChatRequest) -> int:
        key = req.key()
        if key not in unique:
            unique[key] = len(reqs)
            reqs.append(req)
        return unique[key]

    for q in questions:
        named = substitute_name(q.question, q.class_name)
        plan = []
        orders = option_orders(q, permutations, seed)
        for order in orders:
            options = [q.options[i] for i in order]
            correct = order.index(q.answer_index)
            with_slot = slot(_request(q.prompt(question=named, options=options), model, max_tokens))
            without_slot = slot(_request(q.prompt(question=q.question, options=options), model, max_tokens))
            plan.append((options, correct, with_slot, without_slot))
        plans.append((orders, plan))

    results: list[ChatResult] = list(backend.complete_many(reqs, progress=progress)) if reqs else []
    if len(results) != len(reqs):
        raise RuntimeError(f"backend returned {len(results)} results for {len(reqs)} requests")

    kept: list[Question] = []
    verdicts: list[dict] = []
    reasons: Counter = Counter()
    for q, (orders, plan) in zip(questions, plans, strict=True):
        side: dict[str, dict[str, list]] = {"with_name": {"v": [], "r": [], "e": []},
                                            "without_name": {"v": [], "r": [], "e": []}}
        letters_ = []
        for options, correct, with_slot, without_slot in plan:
            letters_.append(letters(len(options))[correct])
            for name, s in (("with_name", with_slot), ("without_name", without_slot)):
                res = results[s]
                side[name]["v"].append(_verdict(res, options, correct))
                side[name]["r"].append(res.text if res.ok else None)
                side[name]["e"].append(None if res.ok else (res.error or "no_reply"))
        failed = any(e is not None for d in side.values() for e in d["e"])
        reason = _reason(side["with_name"]["v"], side["without_name"]["v"], failed)
        if reason is None:
            kept.append(q)
        else:
            reasons[reason] += 1
        verdicts.append({
            "qid": q.qid, "class_id": q.class_id, "orders": orders, "correct_letters": letters_,
            "with_name": side["with_name"]["v"], "without_name": side["without_name"]["v"],
            "replies": {"with_name": side["with_name"]["r"], "without_name": side["without_name"]["r"]},
            "errors": {"with_name": side["with_name"]["e"], "without_name": side["without_name"]["e"]},
            "kept": reason is None, "reason": reason,
        })
    return kept, verdicts, reasons


def _accuracy(verdicts: Sequence[dict], name: str, all_orders: bool) -> tuple[float | None, int]:
    """Share of ``correct`` over the answers of side ``name`` whose request did not fail (original order
    only unless ``all_orders``); ``(None, 0)`` when there are none."""
    hits = total = 0
    for v in verdicts:
        marks = v.get(name, [])
        errs = v.get("errors", {}).get(name, [None] * len(marks))
        picks = range(len(marks)) if all_orders else range(min(1, len(marks)))
        for i in picks:
            if i < len(errs) and errs[i] is not None:
                continue
            total += 1
            hits += marks[i] == "correct"
    return (hits / total if total else None), total


def verification_summary(verdicts: Sequence[dict]) -> dict:
    """Counts and baselines of a verification run (JSON-able).

    ``questions``, ``kept``, ``rejected``, ``reasons`` (Counter as a dict), ``checked_without_name`` /
    ``checked_with_name`` (questions whose original-order request succeeded), and the accuracies over those
    (original option order, unknown counts as not correct, before any filtering):
    ``text_only_accuracy_without_name`` (the blind text-only LLM baseline), ``with_name_accuracy``; the same
    over every option order as ``*_all_orders``. Accuracies are None when nothing was checked.
    """
    verdicts = list(verdicts)
    reasons = Counter(v["reason"] for v in verdicts if not v.get("kept") and v.get("reason"))
    blind, n_blind = _accuracy(verdicts, "without_name", all_orders=False)
    named, n_named = _accuracy(verdicts, "with_name", all_orders=False)
    blind_all, _ = _accuracy(verdicts, "without_name", all_orders=True)
    named_all, _ = _accuracy(verdicts, "with_name", all_orders=True)
    kept = sum(1 for v in verdicts if v.get("kept"))
    return {
        "questions": len(verdicts),
        "kept": kept,
        "rejected": len(verdicts) - kept,
        "reasons": dict(sorted(reasons.items())),
        "checked_without_name": n_blind,
        "checked_with_name": n_named,
        "text_only_accuracy_without_name": blind,
        "with_name_accuracy": named,
        "text_only_accuracy_without_name_all_orders": blind_all,
        "with_name_accuracy_all_orders": named_all,
    }
