"""vlm_classdata.answers: multiple-choice reply parsing and synonym-aware label matching (real ImageNet lexicon)."""

from __future__ import annotations

import pytest

from vlm_classdata.answers import (
    FUZZY_THRESHOLD,
    REFUSALS,
    LabelMatch,
    LabelMatcher,
    ParsedAnswer,
    parse_choice,
)
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.vocabulary import ClassVocabulary

ANIMALS = ["cat", "dog", "horse", "bird"]
NO_DOG = ["cat", "horse", "bird", "fish"]
HOT_DOG = ["dog", "hot dog", "cat", "bird"]
VITAMINS = ["vitamin A", "vitamin C", "vitamin D"]
NONE_OPTION = ["cat", "dog", "none of the above"]
FIVE = ["cat", "dog", "horse", "bird", "fish"]
NINE = [f"thing {i}" for i in range(9)]
LABELLED = ["A. cat", "B. dog", "C. horse"]

# (reply, options, expected index, expected how)
MCQ_CASES = [
    # letters in common forms
    ("(B)", ANIMALS, 1, "letter"),
    ("B.", ANIMALS, 1, "letter"),
    ("B", ANIMALS, 1, "letter"),
    ("B)", ANIMALS, 1, "letter"),
    ("B) dog", ANIMALS, 1, "letter"),
    ("B) It is a cat.", ANIMALS, 1, "letter"),          # an explicit letter beats option text
    ("**B**", ANIMALS, 1, "letter"),
    ("Option B", ANIMALS, 1, "letter"),
    ("Choice (c)", ANIMALS, 2, "letter"),
    ("option c.", ANIMALS, 2, "letter"),
    ("b", ANIMALS, 1, "letter"),                        # lower case, alone
    ("(b)", ANIMALS, 1, "letter"),
    ("d.", ANIMALS, 3, "letter"),
    ("B The image shows a dog.", ANIMALS, 1, "letter"),
    ("I think it's C, because of the mane.", ANIMALS, 2, "letter"),
    ("I think B.", ANIMALS, 1, "letter"),               # "I" is the pronoun, not option I
    ("I, however, would pick B.", ANIMALS, 1, "letter"),
    ("I would choose option (d).", ANIMALS, 3, "letter"),
    ("Answer: I would say B", ANIMALS, 1, "letter"),     # "I" after a marker is still the pronoun
    ("The dog (B) is sitting on a sofa.", ANIMALS, 1, "letter"),
    ("B is the best answer.", ANIMALS, 1, "letter"),
    # "A" as a choice
    ("A", ANIMALS, 0, "letter"),
    ("A.", ANIMALS, 0, "letter"),
    ("(A)", ANIMALS, 0, "letter"),
    ("A)", ANIMALS, 0, "letter"),
    ("a", ANIMALS, 0, "letter"),
    ("A is correct.", ANIMALS, 0, "letter"),
    ("I'd go with A.", ANIMALS, 0, "letter"),
    ("Answer: A", ANIMALS, 0, "final_answer"),
    # "A" as the article
    ("A dog is on the grass.", NO_DOG, None, "unknown"),
    ("A dog is on the grass.", ANIMALS, 1, "option_text"),
    ("The answer is a dog.", NO_DOG, None, "unknown"),
    ("Answer: A cat", ["dog", "cat"], 1, "option_text"),
    # answer markers and chain-of-thought
    ("Answer: B", ANIMALS, 1, "final_answer"),
    ("answer: b", ANIMALS, 1, "final_answer"),
    ("The answer is B", ANIMALS, 1, "final_answer"),
    ("The answer is (C).", ANIMALS, 2, "final_answer"),
    ("Final answer: **D**", ANIMALS, 3, "final_answer"),
    ("**Answer:** D", ANIMALS, 3, "final_answer"),
    ("The correct option is c", ANIMALS, 2, "final_answer"),
    ("I think the answer is B, not A.", ANIMALS, 1, "final_answer"),
    ("Let me look. (A) shows a cat, which does not fit.\nAnswer: B\n", ANIMALS, 1, "final_answer"),
    ("A is a cat, B is a dog and C is a horse.\nThe ears are pointed.\nAnswer: C", ANIMALS, 2, "final_answer"),
    ("Answer: A\nWait, the tail is too long.\nAnswer: D", ANIMALS, 3, "final_answer"),
    ("Option A is a cat and option B is a dog.\nThe animal barks.\n(B)", ANIMALS, 1, "final_answer"),
    ("Answer: bird", ANIMALS, 3, "option_text"),
    # option text
    ("dog", ANIMALS, 1, "option_text"),
    ("Dog.", ANIMALS, 1, "option_text"),
    ("A horse.", ANIMALS, 2, "option_text"),
    ("It is a dog.", ANIMALS, 1, "option_text"),
    ("The picture shows a HORSE running in a field.", ANIMALS, 2, "option_text"),
    ("hot dog", HOT_DOG, 1, "option_text"),
    ("I see a hot dog on a plate.", HOT_DOG, 1, "option_text"),   # leftmost-longest: not "dog"
    ("It's vitamin C.", VITAMINS, 1, "option_text"),             # the "C" inside an option is no letter
    ("dog", LABELLED, 1, "option_text"),                         # "B. dog" label stripped
    ("None of the above.", NONE_OPTION, 2, "option_text"),
    ("horses", ANIMALS, None, "unknown"),                        # whole words only
    # out-of-range letters
    ("E", ANIMALS, None, "unknown"),
    ("(E)", ANIMALS, None, "unknown"),
    ("Answer: E", ANIMALS, None, "unknown"),
    ("E", FIVE, 4, "letter"),
    ("I", ANIMALS, None, "unknown"),
    ("(I)", NINE, 8, "letter"),
    # two answers without a final one
    ("A or B", ANIMALS, None, "ambiguous"),
    ("Option A shows a cat and option B shows a dog.", ANIMALS, None, "ambiguous"),
    ("It could be a cat or a dog.", ANIMALS, None, "ambiguous"),
    # refusals
    ("I cannot tell from the image.", ANIMALS, None, "refusal"),
    ("I can't determine which animal this is.", ANIMALS, None, "refusal"),
    ("It is not possible to tell.", ANIMALS, None, "refusal"),
    ("I'm unable to say whether it is A or B.", ANIMALS, None, "refusal"),
    ("None of the above.", ANIMALS, None, "refusal"),
    ("Sorry, I don't know.", ANIMALS, None, "refusal"),
    # nothing parseable
    ("", ANIMALS, None, "unknown"),
    ("   \n ", ANIMALS, None, "unknown"),
    ("The U.S. flag is visible.", ANIMALS, None, "unknown"),
    ("Let me answer the question step by step.", ANIMALS, None, "unknown"),
]


@pytest.mark.parametrize(("reply", "options", "index", "how"), MCQ_CASES, ids=[repr(c[0])[:40] for c in MCQ_CASES])
def test_parse_choice_table(reply, options, index, how):
    got = parse_choice(reply, options)
    assert isinstance(got, ParsedAnswer)
    assert (got.index, got.how) == (index, how)
    assert got.letter == (None if index is None else "ABCDEFGHI"[index])


def test_case_table_is_large_and_covers_every_outcome():
    assert len(MCQ_CASES) >= 40
    assert {c[3] for c in MCQ_CASES} == {"letter", "final_answer", "option_text", "refusal", "unknown", "ambiguous"}


def test_refusal_phrases_are_refusals():
    assert len(REFUSALS) >= 5
    for phrase in ("I cannot", "I can't determine", "unable to", "not possible to tell", "none of the", *REFUSALS):
        assert parse_choice(f"Well, {phrase} options here fit.", ANIMALS) == ParsedAnswer(None, None, "refusal")


def test_more_than_26_options_are_not_lettered():
    options = [f"class {i}" for i in range(30)]
    assert parse_choice("B", options) == ParsedAnswer(None, None, "unknown")
    assert parse_choice("It is class 27.", options) == ParsedAnswer(27, None, "option_text")
    assert parse_choice("class 1", options) == ParsedAnswer(1, None, "option_text")


def test_non_text_reply_is_unknown():
    assert parse_choice(None, ANIMALS) == ParsedAnswer(None, None, "unknown")  # type: ignore[arg-type]
    assert parse_choice("B", []) == ParsedAnswer(None, None, "unknown")


# ----- label matching with the real ImageNet lexicon -------------------------------------------------------
@pytest.fixture(scope="module")
def inet() -> ClassVocabulary:
    return ClassVocabulary.bundled("imagenet1k")


@pytest.fixture(scope="module")
def lex(inet) -> Lexicon:
    return Lexicon.build(inet)


@pytest.fixture(scope="module")
def matcher(lex) -> LabelMatcher:
    return LabelMatcher(lex)


# (class display name, reply, correct, how, matched form)
LABEL_CASES = [
    ("tench", "tench", True, "exact", "tench"),
    ("tench", "A tench.", True, "exact", "tench"),
    ("tench", "Tinca tinca", True, "exact", "tinca tinca"),
    ("tench", "tenches", True, "exact", "tenches"),
    ("tench", "This is a photo of a tench.", True, "contains", "tench"),
    ("tench", "a tench in the light", True, "contains", "tench"),        # "light" (lighter) is ambiguous
    ("tench", "goldfish", False, "other_class", "goldfish"),
    ("tench", "I think it is a tench or a goldfish.", False, "other_class", "goldfish"),
    ("tench", "", False, "none", None),
    ("tench", "a bench", False, "none", None),
    ("tiger", "tiger", True, "exact", "tiger"),
    ("tiger", "a tiger shark", False, "other_class", "tiger shark"),     # the longer form covers "tiger"
    ("tiger", "Tigers resting in tall grass.", True, "contains", "tigers"),
    ("tiger shark", "a tiger shark swimming", True, "contains", "tiger shark"),
    ("beagle", "an eagle", False, "none", None),                         # a real word, not a typo
]


@pytest.mark.parametrize(("name", "reply", "correct", "how", "form"), LABEL_CASES,
                         ids=[f"{c[0]}:{c[1]!r}" for c in LABEL_CASES])
def test_label_matcher_table(matcher, inet, name, reply, correct, how, form):
    got = matcher.match(inet.by_name(name).class_id, reply)
    assert isinstance(got, LabelMatch)
    assert (got.correct, got.how, got.matched_form) == (correct, how, form)
    if how in ("exact", "contains", "other_class"):
        assert got.score == 100.0


def test_fuzzy_typo_states_its_score(matcher, inet):
    tench = inet.by_name("tench").class_id
    got = matcher.match(tench, "tenche")
    assert (got.correct, got.how) == (True, "fuzzy")
    assert got.matched_form in ("tench", "tenches")
    assert FUZZY_THRESHOLD <= got.score < 100.0
    assert matcher.match(tench, "This is a photo of a tenche.").how == "fuzzy"


def test_fuzzy_threshold_is_90_and_decides(lex, inet, matcher):
    assert FUZZY_THRESHOLD == 90.0 and matcher.fuzzy_threshold == 90.0
    chihuahua = inet.by_name("Chihuahua").class_id
    below = matcher.match(chihuahua, "chihuahwa")       # one substitution in 9 letters: 88.9
    assert (below.correct, below.how) == (False, "none")
    assert 88.0 < below.score < FUZZY_THRESHOLD
    loose = LabelMatcher(lex, fuzzy_threshold=85.0).match(chihuahua, "chihuahwa")
    assert (loose.correct, loose.how, loose.matched_form) == (True, "fuzzy", "chihuahua")


def test_fuzzy_match_closer_to_another_class_is_other_class(lex, inet):
    loose = LabelMatcher(lex, fuzzy_threshold=85.0)
    got = loose.match(inet.by_name("goldfinch").class_id, "goldfisch")   # 88.9 to goldfinch, 94.1 to goldfish
    assert (got.correct, got.how, got.matched_form) == (False, "other_class", "goldfish")
    assert loose.match(inet.by_name("goldfish").class_id, "goldfisch").how == "fuzzy"


def test_flagged_forms(lex, inet, matcher):
    crane_bird = inet.by_name("crane bird").class_id
    mouse = inet.by_name("computer mouse").class_id
    strict = LabelMatcher(lex, include_flagged=False)
    assert matcher.match(crane_bird, "crane").correct                    # shared form credited by default
    assert strict.match(crane_bird, "crane") == LabelMatch(False, "other_class", "crane", 100.0)
    assert matcher.match(mouse, "a mouse").how == "exact"
    assert (strict.match(mouse, "a mouse").correct, strict.match(mouse, "a mouse").how) == (False, "none")
    assert strict.match(mouse, "a computer mouse").how == "exact"


def test_bad_inputs(matcher):
    assert matcher.match("n01440764", None) == LabelMatch(False, "none", None, 0.0)  # type: ignore[arg-type]
    assert matcher.match("n01440764", "?!").how == "none"
    with pytest.raises(KeyError):
        matcher.match("n99999999", "tench")
