"""The regular expressions :mod:`vlm_classdata.answers.choices` reads multiple-choice replies with.

Every pattern runs in time linear in the reply: quantifiers that meet a character class they overlap are
possessive (``*+``), so a long run of spaces, newlines or brackets is scanned once, not once per start.
"""

from __future__ import annotations

import regex

# words after a bare "A"/"I" that make it an option letter ("A is correct") rather than an article/pronoun
LETTER_FOLLOWERS = ("is", "was", "would", "seems", "seem", "appears", "appear", "looks", "fits", "matches",
                    "describes", "because", "since", "and", "or", "best", "correctly", "which")
# after "I" only verb forms the pronoun cannot take ("I is right", not "I would", "I was")
I_FOLLOWERS = ("is", "seems", "appears", "looks", "fits", "matches", "describes")
FOLLOWERS_RE = "|".join(LETTER_FOLLOWERS)
NOT_WORD = r"(?![\p{L}\p{N}])"

# answer markers: "Answer:", "Final answer:", "the answer is", "the correct option is", ...
MARKER = regex.compile(
    r"(?i)\b(?:final\s++answer|(?:correct|right|best)\s++(?:answer|option|choice)|answer)\b"
    r"(?:\s*+(?:is|would\s++be|should\s++be|will\s++be|must\s++be|seems\s++to\s++be|appears\s++to\s++be)\b)?")
# final decisions: "I'll go with", "I choose", "I'd say", "my final choice is", "going with", "opt for", ...
# found by their verb (or "choice is"), then the words before it are read: a subject, "my", "let's", or none
# (those patterns end in "$" and search backwards, ``(?r)``: one attempt at the verb, not one per character)
DECISION = regex.compile(
    r"(?i)(?<![\p{L}\p{N}'’])(?:(?P<noun>choice|pick|selection|decision)[^\S\n]++(?:is|would[^\S\n]++be|"
    r"will[^\S\n]++be)|(?P<bare>going[^\S\n]++with|settle[^\S\n]++on|settling[^\S\n]++on|opt[^\S\n]++for|"
    r"opting[^\S\n]++for)|(?P<go>go[^\S\n]++with)|choose|pick|select|say)(?![\p{L}\p{N}])")
SUBJECT = regex.compile(
    r"(?ri)(?<![\p{L}\p{N}'’])(?:i|we)(?:[^\S\n]*+['’][^\S\n]*+(?:ll|d|m|re)|[^\S\n]++(?:will|would|shall|am|are))?"
    r"[^\S\n]++(?:(?:now|finally|ultimately|therefore|then|still|just|definitely)[^\S\n]++)?$")
OWNER = regex.compile(r"(?ri)(?<![\p{L}\p{N}'’])my[^\S\n]++(?:final[^\S\n]++)?$")
LETS = regex.compile(r"(?ri)(?<![\p{L}\p{N}'’])let(?:['’]s|[^\S\n]++us)[^\S\n]++$")
# words just before a decision that make it no decision: "if I choose A", "instead of going with A"
UNDECIDED = regex.compile(
    r"(?ri)\b(?:if|when|whether|unless|before|than|of|not|never|to|could|might|avoid|against|without|"
    r"don['’]t|won['’]t|wouldn['’]t|can['’]t|cannot|shouldn['’]t)[^\S\n]*+,?[^\S\n]*+$")
AFTER_MARKER = regex.compile(
    r"[\s:=*#\-–—]*+(?:(?i:option|choice|letter)\b\s*+[:#]?\s*+)?(?P<open>[\(\[]\s*+)?(?P<l>[A-Za-z])")
CLOSE = regex.compile(r"\s*+[\)\]]")
WORD_AHEAD = regex.compile(r"\s++([\p{L}\p{N}]+)")
# after a decided letter: the end, a line break, punctuation, or a word that gives a reason ("C because ...")
DECIDED = regex.compile(
    r"(?i)[\)\]*]*+[^\S\n]*+(?:$|\n|[.,;:!?\"”’'*\-–—]|(?:because|since|as|for|over|here|instead|rather|"
    r"based|given|due|then|now|finally)(?![\p{L}\p{N}]))")
# a second letter offered beside the first: "B or C", "(B) / (C)", "B, or maybe C", "B and C"
HEDGE = regex.compile(
    r"(?i)[\)\]*]*+[^\S\n]*+[,;]?[^\S\n]*+(?:/|(?:or|and|vs|versus)(?![\p{L}\p{N}])\.?)[^\S\n]*+"
    r"(?:(?:maybe|perhaps|possibly|probably|even|also)[^\S\n]++)?(?:(?:option|choice|letter)[^\S\n]*+)?"
    r"[\(\[*]*+[^\S\n]*+(?P<l>[A-Za-z])(?![\p{L}\p{N}'’\-_])")
HEDGE_WORDS = frozenset({"or", "vs", "versus"})
TOKEN = regex.compile(r"[\p{L}\p{N}]+")
NEWLINE = regex.compile(r"\n")

# letter forms outside answer markers; each has one group, the letter
WHOLE = regex.compile(
    r"^[\W_]*+(?:(?i:option|choice|letter)\b\s*+[:#]?\s*+[\(\[]?\s*+)?([A-Za-z])[\W_]*+$")
LETTER_FORMS = (
    # "(B)", "[b]"
    regex.compile(r"(?<![\p{L}\p{N}])[\(\[]\s*+([A-Za-z])\s*+[\)\]]"),
    # "**B**", "**B.**"
    regex.compile(r"\*\*\s*+([A-Za-z])\s*+[.):]?\s*+\*\*"),
    # "Option B", "choice (c)", "letter D"
    regex.compile(r"(?i:\b(?:option|choice|letter)\b)\s*+[:#]?\s*+[\(\[]?\s*+([A-Za-z])" + NOT_WORD),
    # "B) ...", "b. ...", "C: ...", "D - ..." at the start of a line (after blank lines, quotes, bullets)
    regex.compile(r"(?m)(?<=^[\s>*#\-]*)([A-Za-z])(?:\s*+[).:]|\s++[-–—]\s)(?![\p{L}\p{N}])"),
    # "... B) ..." anywhere (upper case)
    regex.compile(r"(?<![\p{L}\p{N}(\[])([A-Z])\)"),
    # a standalone upper-case letter before punctuation, the end, or a verb: "go with C.", "B is correct"
    regex.compile(r"(?<![\p{L}\p{N}'’\-.])([A-HJ-Z])(?=\s*+$|\s*+[,;:!?\"”’')\]](?![\p{L}\p{N}])"
                  r"|\.(?![\p{L}\p{N}])|\s++(?:" + FOLLOWERS_RE + r")\b|\s++[-–—]\s)"),
    # "I" only where it cannot be the pronoun
    regex.compile(r"(?<![\p{L}\p{N}'’\-.])(I)(?=\s*+$|\s*+[)\]]|\.(?![\p{L}\p{N}]))"),
)
# the reply starts with a bare upper-case letter and a word: "B The dog ...", "A is right" (not "A dog")
START_BARE = regex.compile(r"^[\s*>#]*+([A-Z])\s++([\p{L}\p{N}]+)")
OPTION_LABEL = regex.compile(r"^\s*+[\(\[]?\s*+([A-Za-z])\s*+(?:[\)\]]|[.:])\s+")
