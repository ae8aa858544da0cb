"""The project's one multiple-choice reply parser: :func:`parse_choice` turns a model's reply to a lettered
multiple-choice question into an option index (:class:`ParsedAnswer`). An unparseable, hedged or refused reply
has ``index=None``: it is "unknown", never "wrong"."""

from __future__ import annotations

import bisect
import functools
import string
from dataclasses import dataclass

import regex

from vlm_classdata.answers.patterns import (
    AFTER_MARKER,
    CLOSE,
    DECIDED,
    DECISION,
    HEDGE,
    HEDGE_WORDS,
    I_FOLLOWERS,
    LETS,
    LETTER_FOLLOWERS,
    LETTER_FORMS,
    MARKER,
    NEWLINE,
    OPTION_LABEL,
    OWNER,
    START_BARE,
    SUBJECT,
    TOKEN,
    UNDECIDED,
    WHOLE,
    WORD_AHEAD,
)
from vlm_classdata.answers.words import ARTICLES, strip_articles
from vlm_classdata.lexicon import normalize

MAX_LETTERED = 26
"""More options than this are listed without letters (see builders.formats.mcq), so only option text counts."""

REFUSALS: tuple[str, ...] = (
    "i cannot", "i can not", "i can't", "i am unable", "i'm unable", "unable to",
    "cannot determine", "can't determine", "cannot tell", "can't tell", "cannot be determined",
    "not possible to tell", "not possible to determine", "impossible to tell", "impossible to determine",
    "no way to tell", "none of the", "not enough information", "insufficient information",
    "i don't know", "i do not know", "i'm sorry", "i am sorry", "as an ai",
)
"""Phrases that make a reply a refusal (matched whole-word on normalised text, outside option texts)."""


@dataclass(frozen=True)
class ParsedAnswer:
    """A parsed multiple-choice reply.

    ``index``/``letter``: the chosen option (0-based, ``"A"``..) or None. ``how``: ``"final_answer"`` (an
    "Answer: B"-style marker, or a last line that is only a letter), ``"letter"`` (one letter in any other
    common form, or after a final decision such as "I'll go with C"), ``"option_text"`` (the reply is, or
    contains exactly one, option's text), ``"refusal"``, ``"ambiguous"`` (two different letters or option
    texts, no final answer, or a final answer that offers two: "the answer is B or C") or ``"unknown"``
    (nothing parseable, or a letter beyond the options).
    """

    index: int | None
    letter: str | None
    how: str


class _Phrases:
    """Token phrases (tuples → id) found leftmost-longest, with one dict lookup per candidate length."""

    def __init__(self, phrases: dict[tuple[str, ...], int]) -> None:
        self.ids = phrases
        lengths: dict[str, set[int]] = {}
        for p in phrases:
            lengths.setdefault(p[0], set()).add(len(p))
        self._lengths = {first: sorted(ls, reverse=True) for first, ls in lengths.items()}

    def at(self, tokens: list[str], i: int, stop: int | None = None) -> tuple[str, ...] | None:
        """The longest phrase starting at ``tokens[i]`` and ending by ``stop``, or None."""
        stop = len(tokens) if stop is None else stop
        for n in self._lengths.get(tokens[i], ()) if i < stop else ():
            if i + n <= stop:
                p = tuple(tokens[i:i + n])
                if p in self.ids:
                    return p
        return None

    def find(self, tokens: list[str]) -> list[tuple[int, int, tuple[str, ...]]]:
        """Leftmost-longest, non-overlapping occurrences: ``[(start, end, phrase)]``."""
        out: list[tuple[int, int, tuple[str, ...]]] = []
        free = 0  # the first token not inside a phrase found already
        for i in [i for i, t in enumerate(tokens) if t in self._lengths]:
            p = self.at(tokens, i) if i >= free else None
            if p is not None:
                out.append((i, i + len(p), p))
                free = i + len(p)
        return out


@functools.lru_cache(maxsize=4096)
def _phrase_regex(tokens: tuple[str, ...]) -> regex.Pattern:
    """A case-insensitive regex finding a normalised phrase in raw text (any separators between words)."""
    body = r"[^\p{L}\p{N}]++".join(regex.escape(t) for t in tokens)
    return regex.compile(r"(?<![\p{L}\p{N}])" + body + r"(?![\p{L}\p{N}])", regex.IGNORECASE)


@functools.lru_cache(maxsize=1)
def _refusal_phrases() -> _Phrases:
    return _Phrases({tuple(normalize(r).split()): i for i, r in enumerate(REFUSALS)})


def _is_letter_here(text: str, end: int, letter: str, after_marker: bool) -> bool:
    """Whether a bare letter ending at ``end`` is an option letter (not "A dog", "I think", "A.I.")."""
    nxt = text[end:end + 1]
    if not nxt or nxt in "\n\r":
        return True
    if nxt.isalnum() or nxt in "'’-_" or (nxt == "." and text[end + 1:end + 2].isalnum()):
        return False
    word = WORD_AHEAD.match(text, end)
    if word is None:  # punctuation follows: "A.", "B,", "C)"
        return True
    follower = word.group(1).lower()
    if letter in "Ii":
        return follower in I_FOLLOWERS
    if letter in "Aa" or not after_marker:
        return follower in LETTER_FOLLOWERS
    return True  # "Answer: B because ..."


def _offset_tokens(text: str) -> tuple[list[str], list[int]]:
    """``normalize(text).split()`` with each token's start offset in ``text`` (tokens never span a line)."""
    low = text.lower()
    if len(low) == len(text):  # one character each: offsets carry over
        found = [(m.group(), m.start()) for m in TOKEN.finditer(low)]
    else:
        found = [(t, m.start()) for m in TOKEN.finditer(text) for t in normalize(m.group()).split()]
    return [t for t, _ in found], [s for _, s in found]


class _Choices:
    """The options of one question, as normalised token phrases, and the verdicts of :func:`parse_choice`."""

    def __init__(self, options: list[str], valid: str) -> None:
        self.valid = valid
        self.repeated: set[tuple[str, ...]] = set()
        ids: dict[tuple[str, ...], int] = {}
        for i, opt in enumerate(options):
            text = str(opt)
            label = OPTION_LABEL.match(text)
            if label and i < len(valid) and label.group(1).upper() == valid[i]:
                text = text[label.end():]
            toks = tuple(strip_articles(normalize(text).split()))
            if toks:
                if toks in ids:
                    self.repeated.add(toks)
                ids.setdefault(toks, i)
        self.phrases = _Phrases(ids)
        self.longest = max((len(p) for p in ids), default=0)

    def pick(self, letter: str, how: str) -> ParsedAnswer:
        letter = letter.upper()
        return ParsedAnswer(self.valid.index(letter), letter, how) if letter in self.valid else _UNKNOWN

    def by_phrase(self, p: tuple[str, ...]) -> ParsedAnswer:
        if p in self.repeated:
            return _AMBIGUOUS
        i = self.phrases.ids[p]
        return ParsedAnswer(i, self.valid[i] if i < len(self.valid) else None, "option_text")

    def whole(self, tokens: list[str]) -> ParsedAnswer | None:
        """The option that ``tokens`` (articles ignored) are, else None."""
        whole = tuple(strip_articles(tokens))
        return self.by_phrase(whole) if whole in self.phrases.ids else None

    def option_in(self, tokens: list[str]) -> ParsedAnswer | None:
        """The option that ``tokens`` are, or the only one they contain; ``ambiguous`` for several; else None."""
        got = self.whole(tokens)
        if got is not None:
            return got
        return self.verdict(self.scan(tokens, 0, len(tokens))[0])

    def scan(self, tokens: list[str], a: int, b: int) -> list[tuple[bool, int | None, bool]]:
        """For every start ``i`` in ``[a, b]``, a summary of the leftmost-longest options in ``tokens[i:b]``:
        ``(a repeated option text, the one option found, several found)``. One right-to-left pass, so the
        verdict for every marker on a line costs O(line) together, not O(line) each."""
        out: list[tuple[bool, int | None, bool]] = [(False, None, False)] * (b - a + 1)
        for i in range(b - 1, a - 1, -1):
            p = self.phrases.at(tokens, i, b)
            if p is None:
                out[i - a] = out[i - a + 1]
                continue
            rep, one, several = out[i - a + len(p)]
            idx = self.phrases.ids[p]
            several = several or (one is not None and one != idx)
            out[i - a] = (rep or p in self.repeated, None if several else idx, several)
        return out

    def verdict(self, summary: tuple[bool, int | None, bool]) -> ParsedAnswer | None:
        rep, one, several = summary
        if rep or several:
            return _AMBIGUOUS
        if one is None:
            return None
        return ParsedAnswer(one, self.valid[one] if one < len(self.valid) else None, "option_text")


_UNKNOWN = ParsedAnswer(None, None, "unknown")
_AMBIGUOUS = ParsedAnswer(None, None, "ambiguous")


# The last this many answer markers and decisions are read (a reply's answer is its last cue that gives one): a
# degenerate reply repeating "I say " 16,000 times then costs what 64 cues cost, not 16,000 failed reads.
MAX_CUES = 64


def _cues(reply: str) -> list[tuple[int, int, bool]]:
    """The last :data:`MAX_CUES` answer markers and final decisions, in reply order: ``[(start, end, is_decision)]``."""
    cues = [(m.start(), m.end(), False) for m in MARKER.finditer(reply)][-MAX_CUES:]
    for m in list(DECISION.finditer(reply))[-MAX_CUES:]:
        start = m.start()
        window = max(0, start - 40)
        if m.group("noun"):
            who = OWNER.search(reply, window, start)
        else:
            who = SUBJECT.search(reply, window, start) or (m.group("go") and LETS.search(reply, window, start))
            if not who and not m.group("bare"):
                continue
        start = who.start() if who else start
        if m.group("noun") and not who or UNDECIDED.search(reply, max(0, start - 40), start):
            continue
        cues.append((start, m.end(), True))
    return sorted(cues)[-MAX_CUES:]


def _hedged(text: str, end: int) -> bool:
    """Whether the letter ending at ``end`` is offered beside another: "B or C", "(B)/(C)", "B and C"."""
    m = HEDGE.match(text, end)
    return m is not None and _is_letter_here(text, m.end(), m.group("l"), after_marker=True)


def parse_choice(reply: str, options: list[str]) -> ParsedAnswer:
    """Parse a reply to a multiple-choice question whose ``options`` are listed in display order (A, B, ...).

    In order: the last answer marker ("Answer: B", "Final answer: (b)", "the answer is C", also followed by
    an option's text) or final decision ("I'll go with C", "I choose (C)", "I'd say C.", "my final choice is
    the dog", "going with C"; not "if I choose C", "instead of going with C", nor "I'd say C is wrong"),
    where one that offers two letters ("the answer is B or C", "I'd say B or C") is ``"ambiguous"``; or, in a
    multi-line reply, a last line that is only a letter; a reply that is exactly
    one option's text (articles ignored); letters in any common form ("(B)", "B.", "B)", "**B**",
    "Option B", "B", lower case where unambiguous; one letter outweighs a refusal phrase: "I can't be sure,
    but B"); a refusal (:data:`REFUSALS`, outside option texts); a reply that contains
    exactly one option's text (whole words, case-insensitive, leftmost-longest). "A" followed by a noun
    ("A dog is shown") is the article, "I" the pronoun. Two different letters or option texts without a
    final answer give ``"ambiguous"``; a letter beyond the options gives ``"unknown"``. More than 26
    options are not lettered (only option text counts). Time is linear in the length of the reply.
    """
    if not isinstance(reply, str) or not reply.strip():
        return _UNKNOWN
    choices = _Choices(options, string.ascii_uppercase[:len(options)] if len(options) <= MAX_LETTERED else "")

    # 1. the last answer marker or final decision that gives a letter or an option text
    got = _read_cues(reply, choices)
    if got is not None:
        return got
    lines = [ln for ln in reply.splitlines() if ln.strip()]
    if len(lines) > 1:
        last = WHOLE.match(lines[-1].strip())
        if last:
            return choices.pick(last.group(1), "final_answer")

    # 2. the reply is exactly one option's text
    tokens = normalize(reply).split()
    got = choices.whole(tokens)
    if got is not None:
        return got

    # 3. letters (outside the places where an option's text is quoted)
    refused = _has_refusal(tokens, choices.phrases)
    if len(options) <= MAX_LETTERED:
        masked = reply
        for toks in choices.phrases.ids:
            if len("".join(toks)) >= 2:
                # a word of the same length: "A dog is ..." stays an article before a word
                masked = _phrase_regex(toks).sub(lambda mm: "x" * len(mm.group(0)), masked)
        letters: list[str] = []
        single = WHOLE.match(masked.strip())
        if single and masked.strip():
            letters.append(single.group(1).upper())
        for pattern in LETTER_FORMS:
            for mm in pattern.finditer(masked):
                # lower-case "a"/"i" only where no word follows ("option a." but not "option a dog")
                if mm.group(1) in "ai" and not _is_letter_here(masked, mm.end(1), mm.group(1), False):
                    continue
                letters.append(mm.group(1).upper())
        start = START_BARE.match(masked)
        if start and _is_letter_here(masked, start.end(1), start.group(1), after_marker=True):
            letters.append(start.group(1))
        distinct = set(letters)
        if len(distinct) == 1:
            return choices.pick(distinct.pop(), "letter")
        if len(distinct) > 1:
            return ParsedAnswer(None, None, "refusal" if refused else "ambiguous")

    # 4. refusal, then a reply containing exactly one option's text
    if refused:
        return ParsedAnswer(None, None, "refusal")
    got = choices.option_in(tokens)
    return got if got is not None else _UNKNOWN


def _read_cues(reply: str, choices: _Choices) -> ParsedAnswer | None:
    """The answer given by the last answer marker or final decision that gives one (see parse_choice)."""
    cues = _cues(reply)
    if not cues:
        return None
    newlines = [m.start() for m in NEWLINE.finditer(reply)]
    tokens: list[str] | None = None
    starts: list[int] = []
    lines: dict[int, tuple[int, int]] = {}  # line number → its tokens' range [a, b)
    summaries: dict[int, list[tuple[bool, int | None, bool]]] = {}  # line number → scan()
    for _, end, decision in reversed(cues):
        after = AFTER_MARKER.match(reply, end)
        if after is not None:
            letter, stop = after.group("l"), after.end()
            if after.group("open"):
                close = CLOSE.match(reply, stop)
                ok, stop = (True, close.end()) if close else (False, stop)
            else:
                ok = _is_letter_here(reply, stop, letter, after_marker=True)
            if ok and _hedged(reply, stop):
                return _AMBIGUOUS
            if ok and not decision:
                return choices.pick(letter, "final_answer")
            if ok and DECIDED.match(reply, stop):
                return choices.pick(letter, "letter")
        # the rest of the line: an option's text
        if tokens is None:
            tokens, starts = _offset_tokens(reply)
        line = bisect.bisect_left(newlines, end)
        if line not in lines:
            line_start = newlines[line - 1] + 1 if line else 0
            line_end = newlines[line] if line < len(newlines) else len(reply)
            lines[line] = (bisect.bisect_left(starts, line_start), bisect.bisect_left(starts, line_end))
        a, b = lines[line]
        j = bisect.bisect_left(starts, end, a, b)
        k = j
        while k < b - 1 and tokens[k] in ARTICLES:
            k += 1
        if decision:  # the option's text right after the decision: "I'll go with the dog"
            p = choices.phrases.at(tokens, k, b)
            if p is not None:
                if k + len(p) < b and tokens[k + len(p)] in HEDGE_WORDS:
                    return _AMBIGUOUS
                got = choices.by_phrase(p)
                if got.index is not None:
                    return got
            continue
        if 0 < b - k <= choices.longest:  # the rest of the line is one option's text
            got = choices.whole(tokens[k:b])
            if got is not None:
                if got.index is not None:
                    return got
                continue
        if line not in summaries:
            summaries[line] = choices.scan(tokens, a, b)
        got = choices.verdict(summaries[line][j - a])
        if got is not None and got.index is not None:
            return got
    return None


def _has_refusal(tokens: list[str], opt_phrases: _Phrases) -> bool:
    """Whether a refusal phrase occurs in ``tokens`` outside the occurrences of option texts."""
    kept = list(tokens)
    for s, e, _ in opt_phrases.find(tokens):
        kept[s:e] = [""] * (e - s)
    return bool(_refusal_phrases().find(kept))
