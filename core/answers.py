"""The project's one multiple-choice answer parser and one synonym-aware label matcher.

* :func:`parse_choice` turns a model's reply to a lettered multiple-choice question into an option index
  (``ParsedAnswer``). An unparseable, hedged or refused reply has ``index=None``: it is "unknown", never
  "wrong".
* :class:`LabelMatcher` decides whether an open-ended reply names a class, using every form of the class
  in a :class:`~core.lexicon.Lexicon` (display name, WordNet lemmas, plurals, aliases), whole-word
  leftmost-longest matching against the forms of *all* classes (so "a tiger shark" does not count as
  "tiger"), and rapidfuzz ``fuzz.ratio`` ≥ :data:`FUZZY_THRESHOLD` (0-100) for typos.

Both work on text normalised with :func:`core.lexicon.normalize`.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass

import regex
from rapidfuzz import fuzz, process

from core.lexicon import Lexicon, normalize
from core.wordnet import WordNetMissingError, wordnet

__all__ = ["FUZZY_THRESHOLD", "REFUSALS", "LabelMatch", "LabelMatcher", "ParsedAnswer", "parse_choice"]

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

# answer markers: "Answer:", "Final answer:", "the answer is", "the correct option is", ...
_MARKER = regex.compile(
    r"(?i)\b(?:final\s+answer|(?:correct|right|best)\s+(?:answer|option|choice)|answer)\b"
    r"(?:\s*(?:is|would\s+be|should\s+be|will\s+be|must\s+be|seems\s+to\s+be|appears\s+to\s+be)\b)?")
_AFTER_MARKER = regex.compile(
    r"[\s:=*#\-–—]*(?:(?i:option|choice|letter)\b\s*[:#]?\s*)?(?P<open>[\(\[]\s*)?(?P<l>[A-Za-z])")
_WORD_AHEAD = regex.compile(r"\s+([\p{L}\p{N}]+)")

# letter forms outside answer markers; each has one group, the letter
_WHOLE = regex.compile(r"^[\W_]*(?:(?i:option|choice|letter)\b\s*[:#]?\s*)?[\(\[]?\s*([A-Za-z])\s*[\)\]]?[\W_]*$")
_LETTER_FORMS = (
    # "(B)", "[b]"
    regex.compile(r"(?<![\p{L}\p{N}])[\(\[]\s*([A-Za-z])\s*[\)\]]"),
    # "**B**", "**B.**"
    regex.compile(r"\*\*\s*([A-Za-z])\s*[.):]?\s*\*\*"),
    # "Option B", "choice (c)", "letter D"
    regex.compile(r"(?i:\b(?:option|choice|letter)\b)\s*[:#]?\s*[\(\[]?\s*([A-Za-z])" + _NOT_WORD),
    # "B) ...", "b. ...", "C: ...", "D - ..." at the start of a line
    regex.compile(r"(?m)^[\s>*#\-]*([A-Za-z])\s*(?:[).:]|\s[-–—]\s)(?![\p{L}\p{N}])"),
    # "... B) ..." anywhere (upper case)
    regex.compile(r"(?<![\p{L}\p{N}(\[])([A-Z])\)"),
    # a standalone upper-case letter before punctuation, the end, or a verb: "go with C.", "B is correct"
    regex.compile(r"(?<![\p{L}\p{N}'’\-.])([A-HJ-Z])(?=\s*$|\s*[,;:!?\"”’')\]](?![\p{L}\p{N}])"
                  r"|\.(?![\p{L}\p{N}])|\s+(?:" + _FOLLOWERS_RE + r")\b|\s+[-–—]\s)"),
    # "I" only where it cannot be the pronoun
    regex.compile(r"(?<![\p{L}\p{N}'’\-.])(I)(?=\s*$|\s*[)\]]|\.(?![\p{L}\p{N}]))"),
)
# the reply starts with a bare upper-case letter and a word: "B The dog ...", "A is right" (not "A dog")
_START_BARE = regex.compile(r"^[\s*>#]*([A-Z])\s+([\p{L}\p{N}]+)")
_OPTION_LABEL = regex.compile(r"^\s*[\(\[]?\s*([A-Za-z])\s*(?:[\)\]]|[.:])\s+")


@dataclass(frozen=True)
class ParsedAnswer:
    """A parsed multiple-choice reply.

    ``index``/``letter``: the chosen option (0-based, ``"A"``..) or None. ``how``: ``"final_answer"`` (an
    "Answer: B"-style marker, or a last line that is only a letter), ``"letter"`` (one letter in any other
    common form), ``"option_text"`` (the reply is, or contains exactly one, option's text), ``"refusal"``,
    ``"ambiguous"`` (two different letters or option texts, no final answer) or ``"unknown"`` (nothing
    parseable, or a letter beyond the options).
    """

    index: int | None
    letter: str | None
    how: str


def _strip_articles(tokens: list[str]) -> list[str]:
    i = 0
    while i < len(tokens) - 1 and tokens[i] in ARTICLES:
        i += 1
    return tokens[i:]


def _find_token_spans(tokens: list[str], phrases: dict[tuple[str, ...], int]) -> list[tuple[int, int, int]]:
    """Leftmost-longest, non-overlapping occurrences of ``phrases`` (token tuples → id) in ``tokens``:
    ``[(start, end, id)]``."""
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for p in sorted(phrases, key=len, reverse=True):
        by_first.setdefault(p[0], []).append(p)
    out, i = [], 0
    while i < len(tokens):
        for p in by_first.get(tokens[i], ()):
            if tuple(tokens[i:i + len(p)]) == p:
                out.append((i, i + len(p), phrases[p]))
                i += len(p)
                break
        else:
            i += 1
    return out


@functools.lru_cache(maxsize=4096)
def _phrase_regex(tokens: tuple[str, ...]) -> regex.Pattern:
    """A case-insensitive regex finding a normalised phrase in raw text (any separators between words)."""
    body = r"[^\p{L}\p{N}]+".join(regex.escape(t) for t in tokens)
    return regex.compile(r"(?<![\p{L}\p{N}])" + body + r"(?![\p{L}\p{N}])", regex.IGNORECASE)


@functools.lru_cache(maxsize=1)
def _refusal_phrases() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(normalize(r).split()) for r in REFUSALS)


def _is_letter_here(text: str, end: int, letter: str, after_marker: bool) -> bool:
    """Whether a bare letter ending at ``end`` is an option letter (not "A dog", "I think", "A.I.")."""
    rest = text[end:]
    if not rest or rest[0] in "\n\r":
        return True
    if rest[0].isalnum() or rest[0] in "'’-_" or (rest[0] == "." and rest[1:2].isalnum()):
        return False
    word = _WORD_AHEAD.match(rest)
    if word is None:  # punctuation follows: "A.", "B,", "C)"
        return True
    follower = word.group(1).lower()
    if letter in "Ii":
        return follower in _I_FOLLOWERS
    if letter in "Aa" or not after_marker:
        return follower in _LETTER_FOLLOWERS
    return True  # "Answer: B because ..."


def parse_choice(reply: str, options: list[str]) -> ParsedAnswer:
    """Parse a reply to a multiple-choice question whose ``options`` are listed in display order (A, B, ...).

    In order: the last answer marker ("Answer: B", "Final answer: (b)", "the answer is C", also followed by
    an option's text) or, in a multi-line reply, a last line that is only a letter; a reply that is exactly
    one option's text (articles ignored); letters in any common form ("(B)", "B.", "B)", "**B**",
    "Option B", "B", lower case where unambiguous; one letter outweighs a refusal phrase: "I can't be sure,
    but B"); a refusal (:data:`REFUSALS`, outside option texts); a reply that contains
    exactly one option's text (whole words, case-insensitive, leftmost-longest). "A" followed by a noun
    ("A dog is shown") is the article, "I" the pronoun. Two different letters or option texts without a
    final answer give ``"ambiguous"``; a letter beyond the options gives ``"unknown"``. More than 26
    options are not lettered (only option text counts).
    """
    unknown = ParsedAnswer(None, None, "unknown")
    if not isinstance(reply, str) or not reply.strip():
        return unknown
    valid = string.ascii_uppercase[:len(options)] if len(options) <= MAX_LETTERED else ""

    def pick(letter: str, how: str) -> ParsedAnswer:
        letter = letter.upper()
        return ParsedAnswer(valid.index(letter), letter, how) if letter in valid else unknown

    def by_index(i: int, how: str = "option_text") -> ParsedAnswer:
        return ParsedAnswer(i, valid[i] if i < len(valid) else None, how)

    # option texts, normalised, without a leading article or a leading "B." label that repeats its letter
    opt_tokens: dict[tuple[str, ...], int] = {}
    repeated: set[tuple[str, ...]] = set()
    for i, opt in enumerate(options):
        text = str(opt)
        label = _OPTION_LABEL.match(text)
        if label and i < len(valid) and label.group(1).upper() == valid[i]:
            text = text[label.end():]
        toks = tuple(_strip_articles(normalize(text).split()))
        if toks:
            if toks in opt_tokens:
                repeated.add(toks)
            opt_tokens.setdefault(toks, i)

    def option_in(text: str) -> ParsedAnswer | None:
        """The option that ``text`` is, or the only one it contains; ``ambiguous`` for several; else None."""
        tokens = normalize(text).split()
        whole = tuple(_strip_articles(tokens))
        if whole in opt_tokens:
            return ParsedAnswer(None, None, "ambiguous") if whole in repeated else by_index(opt_tokens[whole])
        spans = [tuple(tokens[s:e]) for s, e, _ in _find_token_spans(tokens, opt_tokens)]
        if any(p in repeated for p in spans):
            return ParsedAnswer(None, None, "ambiguous")
        found = {opt_tokens[p] for p in spans}
        if len(found) == 1:
            return by_index(found.pop())
        return ParsedAnswer(None, None, "ambiguous") if found else None

    # 1. the last answer marker that gives a letter or an option text
    for m in reversed(list(_MARKER.finditer(reply))):
        after = _AFTER_MARKER.match(reply, m.end())
        if after is not None:
            end = after.end()
            if after.group("open"):
                close = regex.match(r"\s*[\)\]]", reply[end:])
                if close:
                    return pick(after.group("l"), "final_answer")
            elif _is_letter_here(reply, end, after.group("l"), after_marker=True):
                return pick(after.group("l"), "final_answer")
        line = reply[m.end():].split("\n", 1)[0]
        got = option_in(line)
        if got is not None and got.index is not None:
            return got
    lines = [ln for ln in reply.splitlines() if ln.strip()]
    if len(lines) > 1:
        last = _WHOLE.match(lines[-1].strip())
        if last:
            return pick(last.group(1), "final_answer")

    # 2. the reply is exactly one option's text
    tokens = normalize(reply).split()
    whole = tuple(_strip_articles(tokens))
    if whole in opt_tokens:
        return ParsedAnswer(None, None, "ambiguous") if whole in repeated else by_index(opt_tokens[whole])

    # 3. letters (outside the places where an option's text is quoted)
    refused = _has_refusal(tokens, opt_tokens)
    if len(options) <= MAX_LETTERED:
        masked = reply
        for toks in opt_tokens:
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
            return pick(distinct.pop(), "letter")
        if len(distinct) > 1:
            return ParsedAnswer(None, None, "refusal" if refused else "ambiguous")

    # 4. refusal, then a reply containing exactly one option's text
    if refused:
        return ParsedAnswer(None, None, "refusal")
    got = option_in(reply)
    return got if got is not None else unknown


def _has_refusal(tokens: list[str], opt_tokens: dict[tuple[str, ...], int]) -> bool:
    """Whether a refusal phrase occurs in ``tokens`` outside the occurrences of option texts."""
    kept = list(tokens)
    for s, e, _ in _find_token_spans(tokens, opt_tokens):
        kept[s:e] = [""] * (e - s)
    refusals = {p: i for i, p in enumerate(_refusal_phrases())}
    return bool(_find_token_spans(kept, refusals))


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
    """Matches open-ended replies against the forms of a :class:`~core.lexicon.Lexicon`.

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
