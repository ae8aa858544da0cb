"""English plurals of a class's forms (WordNet's noun exception list, then the English rules), and the test
for scientific names, which get none."""

from __future__ import annotations

from typing import TYPE_CHECKING

import regex

from vlm_classdata.lexicon.text import normalize
from vlm_classdata.lexicon.wordnet_senses import in_wordnet, is_noun, noun_bases, noun_exceptions

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

# "X of Y" forms pluralise X ("bird of prey" -> "birds of prey", "hen-of-the-woods" -> "hens-of-the-woods"); a
# hyphenated "X-of-Y" before another word is a modifier of that word ("coat-of-mail shell" -> "... shells")
_OF_WORDS = frozenset({"of", "de", "des", "du"})
_WORD_GAPS = regex.compile(r"[\s_]+")  # between the words of a form as written (a hyphenated compound is one)
# Latin-looking word endings (a genus or species epithet not known to WordNet: "Lycaon pictus")
_LATIN_END = regex.compile(r"(?:us|um|a|ae|i|is|es|ii|or|ix|ex|ax|on|ensis|oides)$")


def _rule_plural(word: str) -> str:
    """English rules: s/x/z/ch/sh → +es; consonant + y → ies; otherwise +s."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _true_irregular(singular: str, plural: str) -> bool:
    """Whether ``plural`` is the only plural (goose/geese, wolf/wolves, ox/oxen), so that the regular
    rule would be wrong; else it is a listed alternative (camera/camerae) and the rule plural is kept."""
    if singular.endswith(("f", "fe")) and plural.endswith("ves"):
        return True
    if plural.endswith("en") and not singular.endswith("en"):
        return True
    if singular.endswith("ouse") and plural.endswith("ice"):
        return True
    return len(plural) == len(singular) and plural != singular and plural[0] == singular[0]


def _word_plurals(word: str, use_wordnet: bool) -> list[str]:
    if use_wordnet:
        inverse, _ = noun_exceptions()
        listed = list(inverse.get(word, ()))
        if listed:
            if any(_true_irregular(word, p) for p in listed):
                return listed
            # a learned alternative (camerae, busses, taxies): the regular plural first, except -o → -oes
            rule = [_rule_plural(word)]
            return list(dict.fromkeys(listed + rule if word.endswith("o") else rule + listed))
    return [_rule_plural(word)]


def _looks_plural(word: str, use_wordnet: bool) -> bool:
    """A head word that is (probably) already plural or invariant, so it gets no plural."""
    if use_wordnet and word in noun_exceptions()[1] and word not in noun_exceptions()[0]:
        return True
    if not word.endswith("s") or word.endswith(("ss", "us", "is", "as")):
        return False
    if word.endswith("es") or not use_wordnet:
        return True  # species, cerastes, Pyrenees; without WordNet: trunks, longlegs
    # "lens" is a singular WordNet noun; "trunks" reduces to trunk; unknown words ("longlegs") are skipped
    bases = noun_bases(word)
    return not bases or any(b != word for b in bases)


def is_binomial(raw: str, synset: Synset | None, use_wordnet: bool) -> bool:
    """Scientific (bi/tri)nomial like "Tinca tinca", "Carassius auratus", "Canis lupus tundrarum"."""
    words = raw.split()
    if not 2 <= len(words) <= 3:
        return False
    genus, rest = words[0], words[1:]
    if not (genus[:1].isupper() and genus[1:].islower() and genus.isalpha()):
        return False
    if not all(w.isalpha() and w.islower() for w in rest):
        return False
    if genus.lower() == rest[0]:
        return True  # tautonym: Tinca tinca, Constrictor constrictor
    if not use_wordnet:
        return bool(_LATIN_END.search(genus.lower()) and _LATIN_END.search(rest[-1]))
    if is_noun(f"genus_{genus.lower()}"):
        return True
    if synset is not None:
        holonyms = {n.lower() for h in synset.member_holonyms() for n in h.lemma_names()}
        if genus.lower() in holonyms or f"genus_{genus.lower()}" in holonyms:
            return True
    # a genus WordNet does not know, with a Latin-looking epithet: "Holocanthus tricolor", "Lycaon pictus"
    return not in_wordnet(genus.lower()) and bool(_LATIN_END.search(rest[-1]))


def pluralize(text: str, *, use_wordnet: bool = True) -> list[str]:
    """Plurals of a normalised form, most likely first; ``[]`` when it gets none.

    The whole form, then its head word (see :func:`_head`: "bird of prey" → "birds of prey", "hen-of-the-woods"
    → "hens of the woods", "coat-of-mail shell" → "coat of mail shells"), is looked up in WordNet's noun exception list ("goose" → "geese", "wolf" →
    "wolves"); where that list gives only an alternative learned plural ("camera" → "camerae") the regular
    plural is added. Otherwise English rules apply (s/x/z/ch/sh → +es, consonant + y → ies, else +s).
    Heads that already look plural ("trunks", "potatoes", "species") or are not a word of letters get none.
    """
    if not normalize(text):
        return []
    if use_wordnet:
        inverse, _ = noun_exceptions()
        whole = normalize(text)
        if len(whole.split()) > 1 and whole in inverse:
            return list(inverse[whole])
    tokens, at, part = _head(text)
    parts = tokens[at].split("-")
    *before, head = normalize(parts[part]).split() or [""]  # a part like "pj's" is two words: "s" is the head
    if len(head) < 2 or not head.isalpha() or _looks_plural(head, use_wordnet):
        return []
    plurals = []
    for p in _word_plurals(head, use_wordnet):
        written = [*tokens[:at], "-".join([*parts[:part], " ".join([*before, p]), *parts[part + 1:]]),
                   *tokens[at + 1:]]
        plurals.append(normalize(" ".join(written)))
    return plurals


def _head(text: str) -> tuple[list[str], int, int]:
    """Where the head noun of a form stands: its words as written (split at spaces and underscores), the index of
    the word holding the head, and the index of the head among that word's hyphen-separated parts.

    The head is the word before a separate "of"/"de"/"des"/"du" ("bird of prey"), else the last word; inside a
    hyphenated last word it is the part before an inner "of" ("hen-of-the-woods"), else its last part. So a
    hyphenated "X-of-Y" followed by another word modifies that word: "coat-of-mail shell" → "shell"."""
    tokens = [t for t in _WORD_GAPS.split(text.strip()) if t]
    at = len(tokens) - 1
    for i, token in enumerate(tokens[1:-1], start=1):
        if normalize(token) in _OF_WORDS:
            at = i - 1
            break
    parts = tokens[at].split("-")
    inner_of = next((j for j, q in enumerate(parts[1:-1], start=1) if normalize(q) in _OF_WORDS), None)
    return tokens, at, (inner_of - 1 if inner_of is not None else len(parts) - 1)


