"""An independent, deliberately naive reference for what ``corpora_stats`` counts (tests only).

It shares no code with the package: documents are tokenised in pure Python and forms are looked up token by
token, so any engine (today's polars Aho-Corasick, a compiled byte scanner) can be checked against it.

Semantics:

* a text is ``text.lower()``; its tokens are the maximal runs of Unicode letters/numbers (``[\\p{L}\\p{N}]+``);
  a form (a normalised text such as ``"tiger shark"``) is the token sequence ``text.split()``;
* ``method="wordnet"``: scan the tokens left to right; at each position take the form with the most tokens
  that matches there, count it and continue after it; where none matches, move on one token;
* ``method="paper"``: every (start position, form) occurrence counts, overlapping ones too;
* per form text: documents containing it and mentions; per class, over all its forms (``_all``) and over its
  unflagged forms (``_clean``): documents and mentions. A form text several classes have counts for each.

Snippets: per class, the ``k`` matched documents of highest seeded priority (a seeded 64-bit hash of the
document's UTF-8 text, ties broken by shard then position, higher first); the snippet names the class's longest form found in that document (most characters,
then alphabetical) and shows ±60 characters of the document around the form.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import regex

TOKEN = regex.compile(r"[\p{L}\p{N}]+")
MASK64 = (1 << 64) - 1


def tokens(text: str) -> list[str]:
    """The tokens of a document: runs of Unicode letters/numbers of its lower-cased text."""
    return TOKEN.findall(text.lower())


@dataclass(frozen=True)
class OracleForm:
    """One form of one class, as the oracle needs it."""

    text: str
    class_id: str
    flagged: bool


def oracle_forms(forms: Iterable) -> list[OracleForm]:
    """Oracle forms from anything with ``text``, ``class_id`` and ``flags`` (lexicon forms, table rows)."""
    return [OracleForm(f.text, f.class_id, bool(f.flags)) for f in forms if f.text]


def occurrences(toks: Sequence[str], form_tokens: dict[tuple[str, ...], str], method: str) -> list[str]:
    """The form texts counted in one tokenised document, one entry per mention."""
    longest = max((len(t) for t in form_tokens), default=0)
    found: list[str] = []
    n = len(toks)
    if method == "paper":
        for i in range(n):
            for k in range(1, min(longest, n - i) + 1):
                text = form_tokens.get(tuple(toks[i:i + k]))
                if text is not None:
                    found.append(text)
        return found
    if method != "wordnet":
        raise ValueError(f"unknown method {method!r}")
    i = 0
    while i < n:
        for k in range(min(longest, n - i), 0, -1):
            text = form_tokens.get(tuple(toks[i:i + k]))
            if text is not None:
                found.append(text)
                i += k
                break
        else:
            i += 1
    return found


@dataclass
class Expected:
    """What a correct count of some documents gives (keys: form texts and class ids; absent means 0)."""

    documents: int = 0
    form_docs: Counter[str] = field(default_factory=Counter)
    form_mentions: Counter[str] = field(default_factory=Counter)
    class_docs_all: Counter[str] = field(default_factory=Counter)
    class_mentions_all: Counter[str] = field(default_factory=Counter)
    class_docs_clean: Counter[str] = field(default_factory=Counter)
    class_mentions_clean: Counter[str] = field(default_factory=Counter)
    # per document index: the form texts found there, with mentions
    found: list[Counter[str]] = field(default_factory=list)


def expected_counts(texts: Iterable[str], forms: Sequence[OracleForm], method: str) -> Expected:
    """Count ``texts`` (documents 0, 1, …) the naive way."""
    form_tokens = {tuple(f.text.split()): f.text for f in forms}
    owners: dict[str, list[OracleForm]] = {}
    for f in forms:
        owners.setdefault(f.text, []).append(f)
    out = Expected()
    for text in texts:
        out.documents += 1
        here = Counter(occurrences(tokens(text), form_tokens, method))
        out.found.append(here)
        docs_all: set[str] = set()
        docs_clean: set[str] = set()
        for form_text, n in here.items():
            out.form_docs[form_text] += 1
            out.form_mentions[form_text] += n
            for f in owners[form_text]:
                out.class_mentions_all[f.class_id] += n
                docs_all.add(f.class_id)
                if not f.flagged:
                    out.class_mentions_clean[f.class_id] += n
                    docs_clean.add(f.class_id)
        for c in docs_all:
            out.class_docs_all[c] += 1
        for c in docs_clean:
            out.class_docs_clean[c] += 1
    return out


def _mix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


def priority(seed: int, text: str) -> int:
    """The seeded snippet priority of a document: a hash of its UTF-8 bytes, eight at a time (top 63 bits)."""
    data = text.encode("utf-8")
    h = ((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK64) ^ ((len(data) * 0x9E3779B97F4A7C15) & MASK64)
    for i in range(0, len(data), 8):
        word = int.from_bytes(data[i:i + 8], "little")
        h = _mix64(((h ^ word) * 0xFF51AFD7ED558CCD) & MASK64)
    return h >> 1


def snippet_choice(expected: Expected, forms: Sequence[OracleForm], k: int, seed: int, documents: Sequence[str],
                   shard_of: Sequence[tuple[int, int]] | None = None) -> dict[str, list[tuple[int, str]]]:
    """Per class: ``(document index, form text)`` of the snippets a correct count keeps, highest priority first.

    ``shard_of[d]`` is ``(shard, index within the shard)`` of document ``d`` (default: shard 0, index ``d``).
    """
    by_class: dict[str, set[str]] = {}
    for f in forms:
        by_class.setdefault(f.class_id, set()).add(f.text)
    chosen: dict[str, list[tuple[int, str]]] = {}
    for cls, texts in by_class.items():
        ranked = []
        for d, here in enumerate(expected.found):
            present = [t for t in texts if t in here]
            if present:
                shard, local = shard_of[d] if shard_of is not None else (0, d)
                form = min(present, key=lambda t: (-len(t), t))
                ranked.append((priority(seed, documents[d]), shard, local, d, form))
        ranked.sort(reverse=True)
        if ranked and k:
            chosen[cls] = [(d, form) for _p, _s, _l, d, form in ranked[:k]]
    return chosen


SNIPPET_CONTEXT = 60
# Letters that Python's ``re.IGNORECASE`` (today's snippet search) takes for another letter although their lower
# cases differ (``re._casefix``): the count keeps them apart ("ſhark" is not "shark"), but a snippet may mark
# such a spelling where it comes first in the document. Only the marked text of a snippet is compared through it.
RE_IGNORECASE_TWINS = str.maketrans({
    "ı": "i", "ſ": "s", "µ": "μ", "\u1fbe": "ι", "\u1fd3": "\u0390", "\u1fe3": "\u03b0", "ϐ": "β", "ϵ": "ε",
    "ϑ": "θ", "ϰ": "κ", "ϖ": "π", "ϱ": "ρ", "ς": "σ", "ϕ": "φ", "ᲀ": "в", "ᲁ": "д", "ᲂ": "о", "ᲃ": "с",
    "ᲄ": "т", "ᲅ": "т", "ᲆ": "ъ", "ᲇ": "ѣ", "ᲈ": "ꙋ", "ẛ": "ṡ", "ﬅ": "ﬆ",
})


def snippet_tokens(text: str) -> list[str]:
    """Tokens of a snippet's marked text, with :data:`RE_IGNORECASE_TWINS` made equal."""
    return [t.translate(RE_IGNORECASE_TWINS) for t in tokens(text)]


def snippet_problem(snippet: str, doc: str, form: str) -> str | None:
    """None when ``snippet`` shows ``doc`` around a whole-word occurrence of ``form`` (the occurrence in «»,
    the first one today, counted or not, its letters compared as :func:`snippet_tokens` does;
    up to 60 characters either side, "…" where the document goes on, newlines as spaces), or when the
    engine found no such occurrence and shows the first 120 characters unmarked (today: where the form's
    characters do not match the document's under ``re.IGNORECASE``, as "i" in "İstanbul"); else what is wrong.
    Documents given here must not contain « or »."""
    text = doc.replace("\n", " ")
    if "«" not in snippet:  # today's fallback keeps the newlines of the document's start; either is accepted
        start = doc[:2 * SNIPPET_CONTEXT]
        return None if snippet in (start, start.replace("\n", " ")) else "unmarked snippet is not the document's start"
    lo_s = snippet.index("«")
    hi_s = snippet.index("»", lo_s)
    prefix, marked, suffix = snippet[:lo_s], snippet[lo_s + 1:hi_s], snippet[hi_s + 1:]
    if snippet_tokens(marked) != snippet_tokens(form):
        return f"marked text {marked!r} is not the form {form!r}"
    lo = text.find(marked)
    while lo >= 0:
        hi = lo + len(marked)
        if (prefix == ("…" if lo > SNIPPET_CONTEXT else "") + text[max(0, lo - SNIPPET_CONTEXT):lo]
                and suffix == text[hi:hi + SNIPPET_CONTEXT] + ("…" if hi + SNIPPET_CONTEXT < len(text) else "")):
            if TOKEN.match(text[lo - 1:lo]) or TOKEN.match(text[hi:hi + 1]):
                return f"marked text {marked!r} is part of a longer word"
            return None
        lo = text.find(marked, lo + 1)
    return "snippet is not a window of the document"


def txt_documents(data: bytes, max_doc_bytes: int) -> tuple[list[str], Counter[str]]:
    """The documents of a plain-text corpus file, and its skipped lines by reason.

    Lines are split on ``\\n`` (a final newline ends the last line, it does not start another); one ``\\r``
    at a line's end is dropped; a line of more than ``max_doc_bytes`` bytes is ``too_long``, one that is not
    UTF-8 ``non_utf8``, an empty or whitespace-only one (``str.isspace``) ``empty``; skipped lines take no
    document index.
    """
    skipped: Counter[str] = Counter()
    docs: list[str] = []
    lines = data.split(b"\n") if data else []
    if data.endswith(b"\n"):
        lines.pop()
    for raw in lines:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > max_doc_bytes:
            skipped["too_long"] += 1
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped["non_utf8"] += 1
            continue
        if not text or text.isspace():
            skipped["empty"] += 1
        else:
            docs.append(text)
    return docs, skipped
