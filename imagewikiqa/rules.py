"""Question rules of ImageWikiQA: what every generated question must satisfy before verification.

A question (:class:`~imagewikiqa.records.Question`) is kept when, checked in this order (the first
violated rule is its drop reason, :data:`REASONS`):

* ``empty_text``            the question and every option have some letter or digit;
* ``no_this_object``        the question refers to the object as "this object" (whole words, any case;
  "this object's" counts);
* ``wrong_option_count``    exactly :data:`N_OPTIONS` (4) options;
* ``bad_answer_index``      ``answer_index`` points at one of them;
* ``duplicate_options``     the options are distinct after :func:`vlm_classdata.lexicon.normalize` (case, spaces
  and punctuation ignored);
* ``name_leak``             no form of the class (:func:`leaks`) occurs in the question or an option;
* ``reference_missing``     the supporting reference is not empty;
* ``reference_not_in_source`` the reference fuzzy-occurs in the source text: rapidfuzz
  ``fuzz.partial_ratio`` of the normalised reference against the normalised text ≥ the threshold, over
  overlapping windows of about 2.5 times the reference's length so long articles stay fast. Skipped when there is no
  source text (no articles for the class), e.g. for WordNet questions, whose reference is a gloss and not a
  sentence of an article.

Whether the answer occurs in the reference is deliberately *not* a rule (too strict: answers are often
paraphrased). :func:`merge_near_duplicates` then drops near-duplicate questions within a class
(``near_duplicate``); :func:`apply_rules` runs both and counts every drop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from rapidfuzz import fuzz, process

from imagewikiqa.records import N_OPTIONS, Article, Question
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Lexicon, normalize, stopwords

REF_THRESHOLD = 90.0
DUP_THRESHOLD = 90.0
REASONS = ("empty_text", "no_this_object", "wrong_option_count", "bad_answer_index", "duplicate_options",
           "name_leak", "reference_missing", "reference_not_in_source", "near_duplicate")
THIS_OBJECT = "this object"
_MIN_WINDOW = 64  # characters; shorter references still get windows this wide


def _padded(text: str) -> str:
    return f" {normalize(text)} "


def leaks(q: Question, lexicon: Lexicon) -> list[str]:
    """The forms of ``q.class_id`` (display name, WordNet lemmas and synonyms, aliases, plurals, from
    :meth:`vlm_classdata.lexicon.Lexicon.forms_of`) that occur whole-word, case-insensitively (both sides
    :func:`vlm_classdata.lexicon.normalize`-d) in the question or any option, in lexicon order.

    Forms flagged ``shared`` ("crane") or ``ambiguous`` ("mouse" of computer mouse) ARE checked: whatever
    sense the text meant, the word gives the class away. Forms flagged ``short`` for being shorter than 3
    characters ("ox", "ai", "rv") are checked too (they are specific words). The only forms skipped are
    those that are a word of the shipped stoplist (:func:`vlm_classdata.lexicon.stopwords`, e.g. "can", "will"):
    they would reject nearly every question for their ordinary meaning. Plurals of such forms ("cans") are
    still checked. A class id not in the lexicon raises :class:`~vlm_classdata.errors.UserError`.
    """
    try:
        forms = lexicon.forms_of(q.class_id)
    except KeyError:
        raise UserError(f"question {q.qid!r}: class id {q.class_id!r} is not in the vocabulary") from None
    stop = stopwords()
    texts = [_padded(q.question), *(_padded(o) for o in q.options)]
    found: list[str] = []
    for f in forms:
        if f.text in stop or f.text in found:
            continue
        needle = f" {f.text} "
        if any(needle in t for t in texts):
            found.append(f.text)
    return found


def refers_to_this_object(question: str) -> bool:
    """Whether ``question`` contains "this object" as whole words (any case; "this object's" counts)."""
    return f" {THIS_OBJECT} " in _padded(question)


def _windows(text: str, size: int) -> list[str]:
    """Overlapping windows of ``size`` characters, step ``size // 2``: every substring of at most
    ``size // 2`` characters lies entirely inside one window."""
    if len(text) <= size:
        return [text]
    step = max(1, size // 2)
    starts = list(range(0, len(text) - size + 1, step))
    if starts[-1] + size < len(text):
        starts.append(len(text) - size)
    return [text[s:s + size] for s in starts]


def _score_normalized(ref: str, text: str, cutoff: float = 0.0) -> float:
    if not ref or not text:
        return 0.0
    if ref in text:
        return 100.0
    # every stretch of up to 1.25x the reference's length (+8: the occurrence may have insertions) lies
    # entirely inside one window
    windows = _windows(text, max(2 * (len(ref) + len(ref) // 4 + 8), _MIN_WINDOW))
    hit = process.extractOne(ref, windows, scorer=fuzz.partial_ratio, score_cutoff=cutoff)
    return float(hit[1]) if hit is not None else 0.0


def _found(ref: str, text: str, threshold: float) -> bool:
    return bool(ref) and _score_normalized(ref, text, cutoff=threshold) >= threshold


def _check(q: Question, lexicon: Lexicon, norm_text: str | None, ref_threshold: float) -> str | None:
    if not normalize(q.question or "") or any(not normalize(o or "") for o in q.options):
        return "empty_text"
    if not refers_to_this_object(q.question):
        return "no_this_object"
    if len(q.options) != N_OPTIONS:
        return "wrong_option_count"
    if not isinstance(q.answer_index, int) or not 0 <= q.answer_index < len(q.options):
        return "bad_answer_index"
    if len({normalize(o) for o in q.options}) != len(q.options):
        return "duplicate_options"
    if leaks(q, lexicon):
        return "name_leak"
    ref = normalize(q.reference or "")
    if not ref:
        return "reference_missing"
    if norm_text is not None and not _found(ref, norm_text, ref_threshold):
        return "reference_not_in_source"
    return None


def merge_near_duplicates(questions: Sequence[Question], threshold: float = DUP_THRESHOLD,
                          same_answer: bool = True) -> tuple[list[Question], int]:
    """Drop near-duplicate questions within each class; keep the first in input order.

    Two questions of one class are near-duplicates when their normalised stems score
    ``fuzz.token_set_ratio`` ≥ ``threshold`` (computed with ``rapidfuzz.process.cdist``) and, with
    ``same_answer`` (default), their correct answers do too (or are equal after normalisation). The answer
    condition keeps template questions that share a stem but ask for different facts (WordNet's
    "This object is a kind of what?" with answers "cyprinid" and "fish"); ``same_answer=False`` compares
    stems only. Each question is compared with the questions kept before it. Returns
    ``(kept questions in input order, number dropped)``.
    """
    questions = list(questions)
    by_class: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        by_class.setdefault(q.class_id, []).append(i)
    dropped: set[int] = set()
    for idx in by_class.values():
        if len(idx) < 2:
            continue
        stems = [normalize(questions[i].question) for i in idx]
        similar = process.cdist(stems, stems, scorer=fuzz.token_set_ratio, score_cutoff=threshold,
                                dtype=np.float32) >= threshold
        if same_answer:
            answers = [normalize(_answer(questions[i])) for i in idx]
            same = process.cdist(answers, answers, scorer=fuzz.token_set_ratio, score_cutoff=threshold,
                                 dtype=np.float32) >= threshold
            equal = np.array([[a == b for b in answers] for a in answers], dtype=bool)
            similar &= same | equal
        kept_local: list[int] = []
        for a in range(len(idx)):
            if any(similar[a, b] for b in kept_local):
                dropped.add(idx[a])
            else:
                kept_local.append(a)
    return [q for i, q in enumerate(questions) if i not in dropped], len(dropped)


def _answer(q: Question) -> str:
    try:
        return q.answer
    except (IndexError, TypeError):
        return ""


def article_texts(articles: dict[str, list[Article]] | None) -> dict[str, str]:
    """``{class_id: the class's article texts joined by blank lines}`` (empty dict for None)."""
    return {cid: "\n\n".join(a.text for a in arts) for cid, arts in (articles or {}).items()}


def apply_rules(questions: Iterable[Question], lexicon: Lexicon, articles: dict[str, list[Article]] | None,
                ref_threshold: float = REF_THRESHOLD,
                dup_threshold: float = DUP_THRESHOLD) -> tuple[list[Question], Counter]:
    """The rules (module docstring, first violated rule wins) for every question, then
    :func:`merge_near_duplicates` on the survivors.

    The source text of a question is the concatenated article text of its class (``articles`` keyed by
    class id); with ``articles=None``, or for a class without articles, the reference check is skipped.
    Returns ``(kept questions in input order, Counter of drop reasons)`` (``near_duplicate`` for merges).
    """
    texts = {cid: normalize(t) for cid, t in article_texts(articles).items()}
    reasons: Counter = Counter()
    survivors: list[Question] = []
    for q in questions:
        text = texts.get(q.class_id) if articles is not None else None
        reason = _check(q, lexicon, text if text else None, float(ref_threshold))
        if reason is None:
            survivors.append(q)
        else:
            reasons[reason] += 1
    kept, dropped = merge_near_duplicates(survivors, threshold=dup_threshold)
    if dropped:
        reasons["near_duplicate"] += dropped
    return kept, reasons
