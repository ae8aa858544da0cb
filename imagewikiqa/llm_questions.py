"""ImageWikiQA questions written by an LLM from one knowledge article per class.

One chat request per class (:func:`build_request`): the class's article (several articles are concatenated,
everything cut to ``max_chars`` at a sentence boundary), the class name and its synonyms to avoid, and the
instructions of the ImageWikiQA paper: ``n`` multiple-choice questions answerable only by someone who knows
what the object is, the object called only "this object", four plausible options of similar length and style
with exactly one correct, and a supporting sentence copied verbatim as ``reference``. Prompts are data
(:data:`PROMPTS`).

All requests go out in ONE ``backend.complete_json_many(requests, QUESTION_SCHEMA, ...)`` call, so the
backend (:class:`imagewikiqa.llm_client.ChatClient` or a local transformers model offering the same method)
batches, parallelises, caches and runs the repair round. A reply that is still not valid JSON of
:data:`QUESTION_SCHEMA` after the repair round rejects the class ("llm_invalid_json"); a request that could
not be sent rejects it as "llm_request_failed".

:data:`QUESTION_SCHEMA` checks the *structure* of a reply only (an object with a non-empty ``questions``
list of objects with a string ``question``, a list of string ``options`` and an integer ``answer``; a
``reference`` string). The content rules are checked here item by item, because the schema check rejects a
whole reply while one bad item should cost only that item: exactly 4 options ("wrong_option_count"), no
empty option ("empty_option"), no two equal options ignoring case and spacing ("duplicate_options"),
``answer`` the 0-based index of the correct option in 0..3 ("answer_out_of_range"), a non-empty question
("no_question") and reference ("no_reference"). ``answer`` is an INDEX, never the option text.

Valid items become :class:`~imagewikiqa.records.Question` objects (``generator="llm:<model>"``,
``kind="article"``, qid ``f"{class_id}-llm-{i}"`` with ``i`` the item's position in the reply) whose options
are re-shuffled with ``sample_rng(seed, "llm", qid)`` so the model's own answer-position habit does not
survive. At most ``per_class`` per class ("over_per_class" for the rest). The other question rules (name
leaks, reference-in-text, near-duplicates) belong to a later stage and are not applied here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from builders.records import sample_rng
from imagewikiqa.chat import ChatRequest
from imagewikiqa.records import N_OPTIONS, Article, Question
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

GENERATOR = "llm"
KIND = "article"
MAX_CHARS = 6000
TOKENS_PER_QUESTION = 220   # reply budget: question + 4 options + reference, with JSON overhead
TOKENS_BASE = 64
ARTICLE_SEPARATOR = "\n\n"

QUESTION_SCHEMA: dict = {
    "type": "object",
    "required": ["questions"],
    "properties": {
        "questions": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["question", "options", "answer"],
                "properties": {
                    "question": {"type": "string"},
                    # exactly 4 distinct option texts: checked per item (reason "wrong_option_count", ...)
                    "options": {"type": "array", "items": {"type": "string"}},
                    # 0-based index of the correct option (0..3): checked per item ("answer_out_of_range")
                    "answer": {"type": "integer"},
                    # a sentence copied verbatim from the article; missing/empty: "no_reference"
                    "reference": {"type": "string"},
                },
            },
        },
    },
}

PROMPTS: dict[str, str] = {
    "system": (
        "You write multiple-choice questions for a visual knowledge benchmark. Each question is shown next "
        "to a photo of an object: to answer it, a reader must first recognise what the object is and then "
        "know a fact about it. You always reply with a single JSON object and nothing else."
    ),
    "user": (
        "Here is an article about {name}{also_clause}.\n"
        "\n"
        "Write {n} multiple-choice questions about the object described by the article. Rules:\n"
        "1. Each question can only be answered by someone who knows what the object is: ask about a fact "
        "stated in the article (its use, origin, history, habitat, behaviour, parts, materials, ...), not "
        "about what can be seen in a photo of it.\n"
        "2. Refer to the object only as \"this object\" (for example \"Where does this object live?\"). "
        "Never use its name or any of its other names ({avoid}) in the question or in the options, not even "
        "inside another word.\n"
        "3. Give exactly four options: all plausible, of similar length and style, and exactly one of them "
        "correct according to the article. Never use \"all of the above\" or \"none of the above\".\n"
        "4. \"answer\" is the position of the correct option: 0, 1, 2 or 3.\n"
        "5. \"reference\" is one sentence copied word for word from the article that supports the correct "
        "answer.\n"
        "6. Every question asks about a different fact.\n"
        "\n"
        "Reply with JSON only, in exactly this form:\n"
        "{{\"questions\": [{{\"question\": \"...\", \"options\": [\"...\", \"...\", \"...\", \"...\"], "
        "\"answer\": 0, \"reference\": \"...\"}}]}}\n"
        "\n"
        "Article title: {title}\n"
        "Article:\n"
        "\"\"\"\n"
        "{text}\n"
        "\"\"\""
    ),
}

# a sentence ends at . ! ? (plus closing quotes/brackets) before whitespace or the end, or at a line break
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s|$)|\n")


def cut_text(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters at the last sentence end (or line break) that fits;
    failing that at the last space, failing that hard. Text within the budget is returned whole (stripped)."""
    if max_chars < 1:
        raise UserError(f"max_chars must be at least 1, got {max_chars}")
    text = text.strip()
    if len(text) <= max_chars:
        return text
    best = 0
    for m in _SENTENCE_END.finditer(text, 0, max_chars + 1):
        if m.end() <= max_chars:
            best = m.end()
    if best == 0 or not text[:best].strip():
        space = text.rfind(" ", 0, max_chars + 1)
        best = space if space > 0 else max_chars
    return text[:best].rstrip()


def build_request(article: Article, class_name: str, n: int, model: str, seed: int,
                  max_chars: int = MAX_CHARS, synonyms: Sequence[str] = (),
                  json_mode: bool = True) -> ChatRequest:
    """The chat request asking ``model`` for ``n`` questions about the object of ``article`` (system + user
    messages from :data:`PROMPTS`; the article text cut to ``max_chars`` at a sentence boundary; temperature
    0 and ``seed``). ``synonyms`` are other names of the class the model must avoid too; ``json_mode`` adds
    ``response_format={"type": "json_object"}`` (turn it off for servers that reject it)."""
    if n < 1:
        raise UserError(f"number of questions per request must be at least 1, got {n}")
    others = [s for s in dict.fromkeys(s.strip() for s in synonyms) if s and s.lower() != class_name.lower()]
    avoid = ", ".join(f"\"{s}\"" for s in [class_name, *others])
    also = f" (also called {', '.join(others)})" if others else ""
    user = PROMPTS["user"].format(name=class_name, also_clause=also, n=n, avoid=avoid,
                                  title=article.title, text=cut_text(article.text, max_chars))
    return ChatRequest(
        messages=[{"role": "system", "content": PROMPTS["system"]}, {"role": "user", "content": user}],
        model=model, temperature=0.0, max_tokens=TOKENS_BASE + TOKENS_PER_QUESTION * n,
        response_format={"type": "json_object"} if json_mode else None, seed=seed)


def _merge(articles: Sequence[Article], max_chars: int) -> tuple[Article, list[Article]]:
    """One article made of the class's articles in order, stopping once the budget is used; also returns
    the articles that contributed."""
    used: list[Article] = []
    length = 0
    for a in articles:
        if used and length + len(ARTICLE_SEPARATOR) >= max_chars:
            break
        used.append(a)
        length += len(a.text.strip()) + (len(ARTICLE_SEPARATOR) if len(used) > 1 else 0)
    if len(used) == 1:
        return used[0], used
    text = ARTICLE_SEPARATOR.join(a.text.strip() for a in used)
    return Article(used[0].class_id, used[0].title, text, used[0].source), used


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def _source_title(reference: str, used: list[Article]) -> str:
    """The title of the article the reference was copied from (exact match ignoring case and spacing),
    else of the first article."""
    if len(used) > 1:
        ref = _squash(reference)
        for a in used:
            if ref and ref in _squash(a.text):
                return a.title
    return used[0].title


def _error_reason(error: str | None) -> str:
    return "llm_request_failed" if error is None or "request_failed" in error else "llm_invalid_json"


def _check_item(item: dict) -> tuple[str | None, str, list[str], int, str]:
    """``(reason or None, question, options, answer, reference)`` for one schema-valid reply item."""
    question = item["question"].strip()
    options = [o.strip() for o in item["options"]]
    answer = int(item["answer"])
    reference = item.get("reference")
    reference = reference.strip() if isinstance(reference, str) else ""
    if not question:
        return "no_question", question, options, answer, reference
    if len(options) != N_OPTIONS:
        return "wrong_option_count", question, options, answer, reference
    if not all(options):
        return "empty_option", question, options, answer, reference
    if len({_squash(o) for o in options}) != N_OPTIONS:
        return "duplicate_options", question, options, answer, reference
    if not 0 <= answer < N_OPTIONS:
        return "answer_out_of_range", question, options, answer, reference
    if not reference:
        return "no_reference", question, options, answer, reference
    return None, question, options, answer, reference


def generate_llm_questions(backend: Any, articles: dict[str, list[Article]], vocab: ClassVocabulary,
                           model: str, per_class: int = 5, seed: int = 0, max_chars: int = MAX_CHARS,
                           progress: bool = False, json_mode: bool = True) -> tuple[list[Question], Counter]:
    """Up to ``per_class`` LLM-written questions per class of ``vocab`` that has articles (vocabulary order),
    and a Counter of rejection reasons (see the module docstring; also "no_article", "unknown_class" for
    article keys outside ``vocab``, and "class_below_per_class").

    ``backend`` offers ``complete_json_many(requests, schema, repair=True, progress=False)`` (a
    :class:`~imagewikiqa.llm_client.ChatClient` or a local model); it is called exactly once. Deterministic
    for a seed given deterministic replies (requests use temperature 0 and ``seed``).
    """
    if per_class < 1:
        raise UserError(f"per_class must be at least 1, got {per_class}")
    if max_chars < 1:
        raise UserError(f"max_chars must be at least 1, got {max_chars}")
    if not model:
        raise UserError("a model name is needed for LLM questions")
    reasons: Counter = Counter()
    reasons["unknown_class"] += sum(1 for cid in articles if cid not in vocab)

    jobs: list[tuple[str, str, list[Article]]] = []   # (class_id, class_name, articles used)
    requests: list[ChatRequest] = []
    for entry in vocab:
        arts = [a for a in articles.get(entry.class_id) or [] if a.text.strip()]
        if not arts:
            reasons["no_article"] += 1
            continue
        merged, used = _merge(arts, max_chars)
        requests.append(build_request(merged, entry.name, per_class, model, seed, max_chars=max_chars,
                                      synonyms=entry.synonyms, json_mode=json_mode))
        jobs.append((entry.class_id, entry.name, used))
    if not requests:
        return [], reasons

    results = backend.complete_json_many(requests, QUESTION_SCHEMA, repair=True, progress=progress)
    if len(results) != len(requests):
        raise RuntimeError(f"backend returned {len(results)} results for {len(requests)} requests")

    generator = f"{GENERATOR}:{model}"
    questions: list[Question] = []
    for (cid, name, used), res in zip(jobs, results, strict=True):
        if res is None or not res.ok:
            reasons[_error_reason(None if res is None else res.error)] += 1
            reasons["class_below_per_class"] += 1
            continue
        kept = 0
        for i, item in enumerate(res.value["questions"]):
            reason, question, options, answer, reference = _check_item(item)
            if reason is None and kept >= per_class:
                reason = "over_per_class"
            if reason is not None:
                reasons[reason] += 1
                continue
            qid = f"{cid}-{GENERATOR}-{i}"
            order = list(range(N_OPTIONS))
            sample_rng(seed, GENERATOR, qid).shuffle(order)
            questions.append(Question(
                qid=qid, class_id=cid, class_name=name, question=question,
                options=[options[j] for j in order], answer_index=order.index(answer), reference=reference,
                source=_source_title(reference, used), generator=generator, kind=KIND))
            kept += 1
        if kept < per_class:
            reasons["class_below_per_class"] += 1
    return questions, reasons
