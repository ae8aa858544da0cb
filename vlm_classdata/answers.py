"""The project's one multiple-choice answer parser and one synonym-aware label matcher.

* :func:`parse_choice` turns a model's reply to a lettered multiple-choice question into an option index
  (``ParsedAnswer``). An unparseable, hedged or refused reply has ``index=None``: it is "unknown", never
  "wrong".
* :class:`LabelMatcher` decides whether an open-ended reply names a class, using every form of the class
  in a :class:`~vlm_classdata.lexicon.Lexicon` (display name, WordNet lemmas, plurals, aliases), whole-word
  leftmost-longest matching against the forms of *all* classes (so "a tiger shark" does not count as
  "tiger"), and rapidfuzz ``fuzz.ratio`` ≥ :data:`FUZZY_THRESHOLD` (0-100) for typos.

Both work on text normalised with :func:`vlm_classdata.lexicon.normalize`.
"""

from __future__ import annotations

import bisect
import functools
import re
import string
from dataclasses import dataclass

import regex
from rapidfuzz import fuzz, process

from vlm_classdata.lexicon import Lexicon, normalize
from vlm_classdata.wordnet import WordNetMissingError, wordnet

__all__ = ["FUZZY_THRESHOLD", "REFUSALS", "LabelMatch", "LabelMatcher", "ParsedAnswer", "parse_choice",
           "parse_options"]

FUZZY_THRESHOLD = 90.0
"""Minimum rapidfuzz ``fuzz.ratio`` (0-100, Indel similarity) for a near match ("tenche" → tench: 90.9;
"chihuahwa" → chihuahua: 88.9, a one-letter substitution in a 9-letter word, is below it)."""

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

ARTICLES = frozenset({"a", "an", "the"})
# words after a bare "A"/"I" that make it an option letter ("A is correct") rather than an article/pronoun
_LETTER_FOLLOWERS = ("is", "was", "would", "seems", "seem", "appears", "appear", "looks", "fits", "matches",
                     "describes", "because", "since", "and", "or", "best", "correctly", "which")
# after "I" only verb forms the pronoun cannot take ("I is right", not "I would", "I was")
_I_FOLLOWERS = ("is", "seems", "appears", "looks", "fits", "matches", "describes")
_FOLLOWERS_RE = "|".join(_LETTER_FOLLOWERS)
_NOT_WORD = r"(?![\p{L}\p{N}])"
# Every pattern below runs in time linear in the reply: quantifiers that meet a character class they overlap
# are possessive (``*+``), so a long run of spaces, newlines or brackets is scanned once, not once per start.

# answer markers: "Answer:", "Final answer:", "the answer is", "the correct option is", ...
_MARKER = regex.compile(
    r"(?i)\b(?:final\s++answer|(?:correct|right|best)\s++(?:answer|option|choice)|answer)\b"
    r"(?:\s*+(?:is|would\s++be|should\s++be|will\s++be|must\s++be|seems\s++to\s++be|appears\s++to\s++be)\b)?")
# final decisions: "I'll go with", "I choose", "I'd say", "my final choice is", "going with", "opt for", ...
# found by their verb (or "choice is"), then the words before it are read: a subject, "my", "let's", or none
# (those patterns end in "$" and search backwards, ``(?r)``: one attempt at the verb, not one per character)
_DECISION = regex.compile(
    r"(?i)(?<![\p{L}\p{N}'’])(?:(?P<noun>choice|pick|selection|decision)[^\S\n]++(?:is|would[^\S\n]++be|"
    r"will[^\S\n]++be)|(?P<bare>going[^\S\n]++with|settle[^\S\n]++on|settling[^\S\n]++on|opt[^\S\n]++for|"
    r"opting[^\S\n]++for)|(?P<go>go[^\S\n]++with)|choose|pick|select|say)(?![\p{L}\p{N}])")
_SUBJECT = regex.compile(
    r"(?ri)(?<![\p{L}\p{N}'’])(?:i|we)(?:[^\S\n]*+['’][^\S\n]*+(?:ll|d|m|re)|[^\S\n]++(?:will|would|shall|am|are))?"
    r"[^\S\n]++(?:(?:now|finally|ultimately|therefore|then|still|just|definitely)[^\S\n]++)?$")
_OWNER = regex.compile(r"(?ri)(?<![\p{L}\p{N}'’])my[^\S\n]++(?:final[^\S\n]++)?$")
_LETS = regex.compile(r"(?ri)(?<![\p{L}\p{N}'’])let(?:['’]s|[^\S\n]++us)[^\S\n]++$")
# words just before a decision that make it no decision: "if I choose A", "instead of going with A"
_UNDECIDED = regex.compile(
    r"(?ri)\b(?:if|when|whether|unless|before|than|of|not|never|to|could|might|avoid|against|without|"
    r"don['’]t|won['’]t|wouldn['’]t|can['’]t|cannot|shouldn['’]t)[^\S\n]*+,?[^\S\n]*+$")
_AFTER_MARKER = regex.compile(
    r"[\s:=*#\-–—]*+(?:(?i:option|choice|letter)\b\s*+[:#]?\s*+)?(?P<open>[\(\[]\s*+)?(?P<l>[A-Za-z])")
_CLOSE = regex.compile(r"\s*+[\)\]]")
_WORD_AHEAD = regex.compile(r"\s++([\p{L}\p{N}]+)")
# after a decided letter: the end, a line break, punctuation, or a word that gives a reason ("C because ...")
_DECIDED = regex.compile(
    r"(?i)[\)\]*]*+[^\S\n]*+(?:$|\n|[.,;:!?\"”’'*\-–—]|(?:because|since|as|for|over|here|instead|rather|"
    r"based|given|due|then|now|finally)(?![\p{L}\p{N}]))")
# a second letter offered beside the first: "B or C", "(B) / (C)", "B, or maybe C", "B and C"
_HEDGE = regex.compile(
    r"(?i)[\)\]*]*+[^\S\n]*+[,;]?[^\S\n]*+(?:/|(?:or|and|vs|versus)(?![\p{L}\p{N}])\.?)[^\S\n]*+"
    r"(?:(?:maybe|perhaps|possibly|probably|even|also)[^\S\n]++)?(?:(?:option|choice|letter)[^\S\n]*+)?"
    r"[\(\[*]*+[^\S\n]*+(?P<l>[A-Za-z])(?![\p{L}\p{N}'’\-_])")
_HEDGE_WORDS = frozenset({"or", "vs", "versus"})
_TOKEN = regex.compile(r"[\p{L}\p{N}]+")
_NEWLINE = regex.compile(r"\n")

# letter forms outside answer markers; each has one group, the letter
_WHOLE = regex.compile(
    r"^[\W_]*+(?:(?i:option|choice|letter)\b\s*+[:#]?\s*+[\(\[]?\s*+)?([A-Za-z])[\W_]*+$")
_LETTER_FORMS = (
    # "(B)", "[b]"
    regex.compile(r"(?<![\p{L}\p{N}])[\(\[]\s*+([A-Za-z])\s*+[\)\]]"),
    # "**B**", "**B.**"
    regex.compile(r"\*\*\s*+([A-Za-z])\s*+[.):]?\s*+\*\*"),
    # "Option B", "choice (c)", "letter D"
    regex.compile(r"(?i:\b(?:option|choice|letter)\b)\s*+[:#]?\s*+[\(\[]?\s*+([A-Za-z])" + _NOT_WORD),
    # "B) ...", "b. ...", "C: ...", "D - ..." at the start of a line (after blank lines, quotes, bullets)
    regex.compile(r"(?m)(?<=^[\s>*#\-]*)([A-Za-z])(?:\s*+[).:]|\s++[-–—]\s)(?![\p{L}\p{N}])"),
    # "... B) ..." anywhere (upper case)
    regex.compile(r"(?<![\p{L}\p{N}(\[])([A-Z])\)"),
    # a standalone upper-case letter before punctuation, the end, or a verb: "go with C.", "B is correct"
    regex.compile(r"(?<![\p{L}\p{N}'’\-.])([A-HJ-Z])(?=\s*+$|\s*+[,;:!?\"”’')\]](?![\p{L}\p{N}])"
                  r"|\.(?![\p{L}\p{N}])|\s++(?:" + _FOLLOWERS_RE + r")\b|\s++[-–—]\s)"),
    # "I" only where it cannot be the pronoun
    regex.compile(r"(?<![\p{L}\p{N}'’\-.])(I)(?=\s*+$|\s*+[)\]]|\.(?![\p{L}\p{N}]))"),
)
# the reply starts with a bare upper-case letter and a word: "B The dog ...", "A is right" (not "A dog")
_START_BARE = regex.compile(r"^[\s*>#]*+([A-Z])\s++([\p{L}\p{N}]+)")
_OPTION_LABEL = regex.compile(r"^\s*+[\(\[]?\s*+([A-Za-z])\s*+(?:[\)\]]|[.:])\s+")


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


def _strip_articles(tokens: list[str]) -> list[str]:
    i = 0
    while i < len(tokens) - 1 and tokens[i] in ARTICLES:
        i += 1
    return tokens[i:]


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
    word = _WORD_AHEAD.match(text, end)
    if word is None:  # punctuation follows: "A.", "B,", "C)"
        return True
    follower = word.group(1).lower()
    if letter in "Ii":
        return follower in _I_FOLLOWERS
    if letter in "Aa" or not after_marker:
        return follower in _LETTER_FOLLOWERS
    return True  # "Answer: B because ..."


def _offset_tokens(text: str) -> tuple[list[str], list[int]]:
    """``normalize(text).split()`` with each token's start offset in ``text`` (tokens never span a line)."""
    low = text.lower()
    if len(low) == len(text):  # one character each: offsets carry over
        found = [(m.group(), m.start()) for m in _TOKEN.finditer(low)]
    else:
        found = [(t, m.start()) for m in _TOKEN.finditer(text) for t in normalize(m.group()).split()]
    return [t for t, _ in found], [s for _, s in found]


class _Choices:
    """The options of one question, as normalised token phrases, and the verdicts of :func:`parse_choice`."""

    def __init__(self, options: list[str], valid: str) -> None:
        self.valid = valid
        self.repeated: set[tuple[str, ...]] = set()
        ids: dict[tuple[str, ...], int] = {}
        for i, opt in enumerate(options):
            text = str(opt)
            label = _OPTION_LABEL.match(text)
            if label and i < len(valid) and label.group(1).upper() == valid[i]:
                text = text[label.end():]
            toks = tuple(_strip_articles(normalize(text).split()))
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
        whole = tuple(_strip_articles(tokens))
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
    cues = [(m.start(), m.end(), False) for m in _MARKER.finditer(reply)][-MAX_CUES:]
    for m in list(_DECISION.finditer(reply))[-MAX_CUES:]:
        start = m.start()
        window = max(0, start - 40)
        if m.group("noun"):
            who = _OWNER.search(reply, window, start)
        else:
            who = _SUBJECT.search(reply, window, start) or (m.group("go") and _LETS.search(reply, window, start))
            if not who and not m.group("bare"):
                continue
        start = who.start() if who else start
        if m.group("noun") and not who or _UNDECIDED.search(reply, max(0, start - 40), start):
            continue
        cues.append((start, m.end(), True))
    return sorted(cues)[-MAX_CUES:]


def _hedged(text: str, end: int) -> bool:
    """Whether the letter ending at ``end`` is offered beside another: "B or C", "(B)/(C)", "B and C"."""
    m = _HEDGE.match(text, end)
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
        last = _WHOLE.match(lines[-1].strip())
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
        single = _WHOLE.match(masked.strip())
        if single and masked.strip():
            letters.append(single.group(1).upper())
        for pattern in _LETTER_FORMS:
            for mm in pattern.finditer(masked):
                # lower-case "a"/"i" only where no word follows ("option a." but not "option a dog")
                if mm.group(1) in "ai" and not _is_letter_here(masked, mm.end(1), mm.group(1), False):
                    continue
                letters.append(mm.group(1).upper())
        start = _START_BARE.match(masked)
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
    newlines = [m.start() for m in _NEWLINE.finditer(reply)]
    tokens: list[str] | None = None
    starts: list[int] = []
    lines: dict[int, tuple[int, int]] = {}  # line number → its tokens' range [a, b)
    summaries: dict[int, list[tuple[bool, int | None, bool]]] = {}  # line number → scan()
    for _, end, decision in reversed(cues):
        after = _AFTER_MARKER.match(reply, end)
        if after is not None:
            letter, stop = after.group("l"), after.end()
            if after.group("open"):
                close = _CLOSE.match(reply, stop)
                ok, stop = (True, close.end()) if close else (False, stop)
            else:
                ok = _is_letter_here(reply, stop, letter, after_marker=True)
            if ok and _hedged(reply, stop):
                return _AMBIGUOUS
            if ok and not decision:
                return choices.pick(letter, "final_answer")
            if ok and _DECIDED.match(reply, stop):
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
                if k + len(p) < b and tokens[k + len(p)] in _HEDGE_WORDS:
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


# ----- open answers against class labels -----------------------------------------------------------------
@dataclass(frozen=True)
class LabelMatch:
    """Whether an open-ended reply names a class.

    ``how``: ``"exact"`` (the reply, articles stripped, is a form of the class), ``"contains"`` (a form of
    the class occurs whole-word and no other class is named elsewhere), ``"fuzzy"`` (rapidfuzz
    ``fuzz.ratio`` ≥ the threshold), ``"other_class"`` (the reply names a different class at a place not
    covered by this class's own match, with or without naming this one), ``"none"``. ``matched_form``: the
    form found (this class's, or the other class's for ``other_class``). ``score``: 0-100 on the same scale
    as :data:`FUZZY_THRESHOLD`: 100 for exact/contains/other_class by words, else the best ``fuzz.ratio``.
    """

    correct: bool
    how: str
    matched_form: str | None
    score: float


@functools.lru_cache(maxsize=65536)
def _dictionary_word(word: str) -> bool | None:
    """Whether WordNet knows ``word`` (any part of speech, with morphology); None without WordNet."""
    try:
        return bool(wordnet().synsets(word))
    except WordNetMissingError:
        return None


class LabelMatcher:
    """Matches open-ended replies against the forms of a :class:`~vlm_classdata.lexicon.Lexicon`.

    ``include_flagged=False`` gives no credit for forms flagged shared/ambiguous/short ("crane", "mouse").
    A form of another class counts as naming that class unless it is flagged ``ambiguous`` or ``short``
    (words whose usual sense is something else: "light" of lighter, "chain" of chain mail, "ox"), so
    "a tench in the light" is still a tench; ``shared`` forms do count ("crane" for crane bird is
    ``other_class`` when ``include_flagged=False``: it also names the crane machine). The per-vocabulary
    index is built once here.
    """

    def __init__(self, lexicon: Lexicon, fuzzy_threshold: float = FUZZY_THRESHOLD,
                 include_flagged: bool = True) -> None:
        self.lexicon = lexicon
        self.fuzzy_threshold = float(fuzzy_threshold)
        self.include_flagged = include_flagged
        self._credited: dict[str, set[str]] = {}
        self._owners: dict[str, set[str]] = {}
        self._naming: dict[str, set[str]] = {}  # text -> classes it names when it occurs in a reply
        for f in lexicon.forms:
            self._owners.setdefault(f.text, set()).add(f.class_id)
            names = self._naming.setdefault(f.text, set())
            if "ambiguous" not in f.flags and "short" not in f.flags:
                names.add(f.class_id)
            if include_flagged or not f.flags:
                self._credited.setdefault(f.class_id, set()).add(f.text)
        self._texts = list(self._owners)
        self._phrases = {tuple(t.split()): i for i, t in enumerate(self._texts)}
        by_first: dict[str, list[tuple[str, ...]]] = {}
        for p in sorted(self._phrases, key=len, reverse=True):
            by_first.setdefault(p[0], []).append(p)
        self._by_first = by_first

    def _spans(self, tokens: list[str]) -> list[str]:
        """Leftmost-longest whole-word occurrences of any form (over all classes), as form texts."""
        out, i = [], 0
        while i < len(tokens):
            for p in self._by_first.get(tokens[i], ()):
                if tuple(tokens[i:i + len(p)]) == p:
                    out.append(self._texts[self._phrases[p]])
                    i += len(p)
                    break
            else:
                i += 1
        return out

    def match(self, class_id: str, reply: str) -> LabelMatch:
        """Whether ``reply`` names class ``class_id`` (KeyError for a class id not in the vocabulary).

        Tried in order: exact form, whole-word form with no other class named elsewhere (leftmost-longest
        over all classes' forms, so "a tiger shark" names tiger shark, not tiger; another class's forms
        flagged ambiguous/short name nothing), another class named (``other_class``), then ``fuzz.ratio`` ≥ the threshold between the best form of the class and the
        normalised reply, the reply without leading articles, or the words after its last article; a fuzzy
        candidate made only of dictionary words ("an eagle" vs beagle) is not a typo and is skipped, and a
        candidate closer to another class's form is ``other_class``.
        """
        if class_id not in self.lexicon.vocab:
            raise KeyError(f"class id {class_id!r} not in vocabulary {self.lexicon.vocab.dataset!r}")
        own = self._credited.get(class_id, set())
        tokens = normalize(reply).split() if isinstance(reply, str) else []
        if not tokens:
            return LabelMatch(False, "none", None, 0.0)
        stripped = _strip_articles(tokens)
        for cand in (" ".join(stripped), " ".join(tokens)):
            if cand in own:
                return LabelMatch(True, "exact", cand, 100.0)

        mine: list[str] = []
        others: list[str] = []
        for text in self._spans(tokens):
            if text in own:
                mine.append(text)
            elif self._naming[text] - {class_id}:
                others.append(text)
        if others:
            return LabelMatch(False, "other_class", others[0], 100.0)
        if mine:
            return LabelMatch(True, "contains", mine[0], 100.0)

        candidates = [" ".join(stripped), " ".join(tokens)]
        last_article = max((i for i, t in enumerate(tokens) if t in ARTICLES), default=None)
        if last_article is not None and last_article + 1 < len(tokens):
            candidates.append(" ".join(tokens[last_article + 1:]))
        best: tuple[float, str, str] = (0.0, "", "")
        own_list = sorted(own)
        for cand in dict.fromkeys(candidates):
            hit = process.extractOne(cand, own_list, scorer=fuzz.ratio) if own_list else None
            if hit is not None and hit[1] > best[0]:
                best = (float(hit[1]), hit[0], cand)
        score, form, cand = best
        if score < self.fuzzy_threshold or not self._may_be_typo(cand):
            return LabelMatch(False, "none", None, score)
        rival = process.extractOne(cand, self._texts, scorer=fuzz.ratio, score_cutoff=score)
        if rival is not None and rival[1] > score and class_id not in self._owners[rival[0]]:
            return LabelMatch(False, "other_class", rival[0], float(rival[1]))
        return LabelMatch(True, "fuzzy", form, score)

    @staticmethod
    def _may_be_typo(candidate: str) -> bool:
        """False when every word of ``candidate`` is a dictionary word (a real word, not a misspelling)."""
        return not all(_dictionary_word(w) is True for w in candidate.split())


_OPTION_LINE = re.compile(r"^([A-Z])[.)]\s+(.*\S)\s*$")


def parse_options(text: str) -> tuple[str, list[str]]:
    """Split a lettered multiple-choice question into its stem and option texts (the inverse of the lettered
    option block the builders write): the first run of lines ``A. …``, ``B. …`` (or ``A) …``) in letter order.

    Text after the block (an instruction such as "Choose A, B, C, or D.") is not an option. Returns
    ``(text, [])`` when there is no such block."""
    lines = text.split("\n")
    for start, line in enumerate(lines):
        m = _OPTION_LINE.match(line)
        if not m or m.group(1) != "A":
            continue
        options = []
        for follow in lines[start:]:
            m = _OPTION_LINE.match(follow)
            if not m or m.group(1) != string.ascii_uppercase[len(options)]:
                break
            options.append(m.group(2))
        if len(options) >= 2:
            return "\n".join(lines[:start]).rstrip(), options
    return text, []
