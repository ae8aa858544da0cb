"""imagewikiqa.rules: name leaks (real WordNet lexicon), each rule and fuzzy references (through apply_rules),
near-duplicate merges."""

from __future__ import annotations

import dataclasses
import time

import pytest

from imagewikiqa.records import Article, Question
from imagewikiqa.rules import REASONS, REF_THRESHOLD, apply_rules, leaks, merge_near_duplicates
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Form, Lexicon
from vlm_classdata.vocabulary import ClassVocabulary

TENCH, TABBY, STRETCHER = "n01440764", "n02123045", "n04336792"
ARTICLE = ("The tench or doctor fish (Tinca tinca) is a fresh- and brackish-water fish of the order "
           "Cypriniformes found throughout Eurasia from Western Europe including Britain and Ireland east into "
           "Asia as far as the Ob and Yenisei Rivers. It is also found in Lake Baikal. It normally inhabits "
           "slow-moving freshwater habitats, particularly lakes and lowland rivers. The tench is most often "
           "found in still waters with a clay or muddy substrate and abundant vegetation.")
REF = "It is also found in Lake Baikal."


@pytest.fixture(scope="module")
def vocab() -> ClassVocabulary:
    return ClassVocabulary.from_wnids([TENCH, TABBY, STRETCHER])


@pytest.fixture(scope="module")
def lex(vocab) -> Lexicon:
    return Lexicon.build(vocab)


def q(question: str = "In which lake is this object also found?",
      options: list[str] | None = None, answer_index: int = 0, reference: str = REF, class_id: str = TENCH,
      qid: str = "q0") -> Question:
    names = {TENCH: "tench", TABBY: "tabby cat", STRETCHER: "stretcher"}
    return Question(qid=qid, class_id=class_id, class_name=names[class_id], question=question,
                    options=["Lake Baikal", "Lake Victoria", "Lake Titicaca", "Lake Superior"]
                    if options is None else options,
                    answer_index=answer_index, reference=reference, source="wiki:Tench", generator="llm",
                    kind="fact")


def verdict(question: Question, lex: Lexicon, article_text: str | None,
            threshold: float = REF_THRESHOLD) -> str | None:
    """Why :func:`apply_rules` drops ``question`` (None: kept) when its class's article is ``article_text``
    (None: no articles, so the reference check is skipped)."""
    articles = (None if article_text is None
                else {question.class_id: [Article(question.class_id, "Tench", article_text, "wiki:Tench")]})
    kept, reasons = apply_rules([question], lex, articles, ref_threshold=threshold)
    return None if kept else next(iter(reasons))


def found(reference: str, text: str, lex: Lexicon, threshold: float = REF_THRESHOLD) -> bool:
    """Whether the rules find ``reference`` in the article ``text`` (a good question citing it is kept)."""
    return verdict(q(reference=reference), lex, text, threshold) is None


# ----- leaks -----------------------------------------------------------------------------------------
def test_lexicon_forms_used_by_the_leak_check(lex):
    assert {f.text for f in lex.forms_of(TENCH)} == {"tench", "tinca tinca", "tenches"}
    assert {f.text for f in lex.forms_of(TABBY)} == {"tabby cat", "tabby", "tabby cats", "tabbies"}


@pytest.mark.parametrize("question, options, expected", [
    ("Where do tenches live, like this object?", None, ["tenches"]),             # plural
    ("Is this object called Tinca tinca?", None, ["tinca tinca"]),               # WordNet lemma, any case
    ("What does this object eat?", ["TENCH food", "hay", "seeds", "grass"], ["tench"]),  # option, case
    ("Does this object swim like a Tench-fish?", None, ["tench"]),               # punctuation is a boundary
    ("What does this object eat?", ["tenchant", "hay", "seeds", "grass"], []),   # not a whole word
    ("Which genus contains this object?", ["genus Tinca", "genus Carassius", "genus Esox", "genus Salmo"],
     []),                                                                         # "tinca" alone is no form
    ("Is this object a tench or a Tinca tinca?", None, ["tench", "tinca tinca"]),
])
def test_leaks_whole_word_case_insensitive(lex, question, options, expected):
    assert leaks(q(question, options), lex) == expected


def test_leaks_of_a_two_word_name_and_its_synonym(lex):
    cat = q("What colour is this object's fur?", ["striped tabby", "black", "white", "ginger"], class_id=TABBY)
    assert leaks(cat, lex) == ["tabby"]
    assert leaks(dataclasses.replace(cat, question="Do tabbies like this object?"), lex) == ["tabby", "tabbies"]
    assert leaks(dataclasses.replace(cat, options=["grey", "black", "white", "ginger"]), lex) == []
    # another class's name is no leak of this class
    assert leaks(q("Does this object eat tabby cats?"), lex) == []


def test_stoplist_forms_are_skipped_but_flagged_ambiguous_ones_are_checked(vocab):
    forms = [Form("tench", TENCH, "name", ()), Form("can", TENCH, "alias", ("short",)),
             Form("cans", TENCH, "plural", ("short",)), Form("doctor fish", TENCH, "alias", ("ambiguous",)),
             Form("ox", TENCH, "alias", ("short",))]
    lex = Lexicon(vocab, forms)
    assert leaks(q("What can this object eat?"), lex) == []                  # "can" the modal verb
    assert leaks(q("Is this object kept in cans?"), lex) == ["cans"]
    assert leaks(q("Is this object a doctor fish?"), lex) == ["doctor fish"]
    assert leaks(q("Is this object an ox?"), lex) == ["ox"]


def test_unknown_class_is_a_user_error(lex):
    with pytest.raises(UserError, match="n99999999"):
        leaks(dataclasses.replace(q(), class_id="n99999999"), lex)


# ----- apply_rules: each reason --------------------------------------------------------------------------------
def test_a_good_question_passes(lex):
    assert verdict(q(), lex, ARTICLE) is None
    assert verdict(q("This object's habitat includes which lake?"), lex, ARTICLE) is None


@pytest.mark.parametrize("change, reason", [
    ({"question": "   "}, "empty_text"),
    ({"options": ["Lake Baikal", "?!", "Lake Titicaca", "Lake Superior"]}, "empty_text"),
    ({"question": "In which lake is it also found?"}, "no_this_object"),
    ({"question": "In which lake are these objects found?"}, "no_this_object"),
    ({"options": ["Lake Baikal", "Lake Victoria", "Lake Titicaca"]}, "wrong_option_count"),
    ({"options": ["Lake Baikal", "Lake Victoria", "Lake Titicaca", "Lake Superior", "Lake Erie"]},
     "wrong_option_count"),
    ({"answer_index": 4}, "bad_answer_index"),
    ({"options": ["Lake Baikal", "lake  baikal!", "Lake Titicaca", "Lake Superior"]}, "duplicate_options"),
    ({"question": "In which lake is this object, the tench, found?"}, "name_leak"),
    ({"options": ["Lake Baikal", "Lake Victoria", "Tenches Lake", "Lake Superior"]}, "name_leak"),
    ({"reference": ""}, "reference_missing"),
    ({"reference": " ... "}, "reference_missing"),
    ({"reference": "It is the national fish of Mongolia and lives in the Gobi desert."},
     "reference_not_in_source"),
])
def test_each_reason(lex, change, reason):
    assert reason in REASONS
    assert verdict(dataclasses.replace(q(), **change), lex, ARTICLE) == reason


def test_first_violated_rule_wins(lex):
    bad = q("What is a tench?", ["a", "a", "b"], reference="")
    assert verdict(bad, lex, ARTICLE) == "no_this_object"
    assert verdict(dataclasses.replace(bad, question="What is this tench object?"), lex,
                          ARTICLE) == "no_this_object"
    assert verdict(dataclasses.replace(bad, question="What is this object?"), lex,
                          ARTICLE) == "wrong_option_count"


def test_reference_check_skipped_without_source_text(lex):
    gloss = q(reference="freshwater dace-like game fish of Europe and western Asia noted for ability to survive "
                        "outside water")
    assert verdict(gloss, lex, None) is None
    assert verdict(gloss, lex, ARTICLE) == "reference_not_in_source"
    assert verdict(dataclasses.replace(gloss, reference=""), lex, None) == "reference_missing"


# ----- fuzzy reference ----------------------------------------------------------------------------------------
def test_reference_fuzzy_found_despite_case_punctuation_and_small_edits(lex):
    assert found(REF, ARTICLE, lex)
    assert found("it is ALSO found in lake baikal", ARTICLE, lex)
    # a paraphrase with a typo and a changed word still matches...
    edited = "It normaly inhabits slow-moving freshwater habitats, especially lakes and lowland rivers."
    assert found(edited, ARTICLE, lex)
    # ...a stricter threshold does not accept it, and an unrelated sentence never does
    assert not found(edited, ARTICLE, lex, threshold=99.0)
    assert found(REF, ARTICLE, lex, threshold=100.0)  # an exact occurrence scores 100
    assert not found("They are popular with anglers in Japan.", ARTICLE, lex)


def test_reference_windows_find_a_sentence_anywhere_in_a_long_text_quickly(lex):
    filler = " ".join(f"Sentence number {i} talks about river fish and ponds." for i in range(6000))
    needle = "The pharyngeal teeth of this species are arranged in a single row of five."
    text = f"{filler} {needle.replace('arranged', 'aranged')} {filler}"
    assert len(text) > 600_000
    start = time.perf_counter()
    assert found(needle, text, lex)
    assert not found("Its scales are golden green and it has small red eyes at dawn.", text, lex)
    assert time.perf_counter() - start < 5.0
    # at the very end and the very start, too
    assert found(needle, filler + " " + needle, lex)
    assert found(needle, needle + " " + filler, lex)


# ----- near-duplicates ---------------------------------------------------------------------------------------
def test_near_duplicates_within_a_class_keep_the_first():
    a = q("What does this object mainly eat?", ["insect larvae", "hay", "seeds", "grass"], qid="a")
    b = q("What does this object eat mainly?", ["insect larvae", "algae", "leaves", "bread"], qid="b")
    c = q("Which lake is this object found in?", qid="c")
    d = q("What does this object mainly eat?", ["mice", "hay", "seeds", "grass"], class_id=TABBY, qid="d")
    e = q("What  does this object mainly EAT?!", ["Insect larvae.", "hay", "seeds", "grass"], qid="e")
    kept, dropped = merge_near_duplicates([a, b, c, d, e])
    assert [x.qid for x in kept] == ["a", "c", "d"] and dropped == 2
    kept, dropped = merge_near_duplicates([b, a, c])
    assert [x.qid for x in kept] == ["b", "c"] and dropped == 1


def test_same_stem_with_different_answers_is_kept_unless_stems_only():
    kinds = [q("This object is a kind of what?", [ans, "bird", "tool", "tree"], qid=ans)
             for ans in ("cyprinid", "fish", "vertebrate")]
    kept, dropped = merge_near_duplicates(kinds)
    assert [x.qid for x in kept] == ["cyprinid", "fish", "vertebrate"] and dropped == 0
    kept, dropped = merge_near_duplicates(kinds, same_answer=False)
    assert [x.qid for x in kept] == ["cyprinid"] and dropped == 2


def test_threshold_controls_merging():
    a = q("What does this object mainly eat in winter?", ["larvae", "hay", "seeds", "grass"], qid="a")
    b = q("What does this object usually eat during summer?", ["larvae", "hay", "seeds", "grass"], qid="b")
    assert merge_near_duplicates([a, b])[1] == 0
    assert merge_near_duplicates([a, b], threshold=50.0)[1] == 1


# ----- apply_rules ----------------------------------------------------------------------------------------------
def test_apply_rules_counts_every_drop(lex):
    articles = {TENCH: [Article(TENCH, "Tench", ARTICLE[:200], "wiki"), Article(TENCH, "Tench 2", ARTICLE[200:],
                                                                                   "wiki")]}
    qs = [
        q(qid="ok"),
        q("In which lake is this object found?", qid="dup"),
        q(reference="The tench is most often found in still waters with a clay or muddy substrate", qid="ok2",
          question="What substrate does this object prefer in still waters?",
          options=["clay or mud", "sand", "rock", "gravel"]),
        q("Name the tench's lake?", qid="nothis"),
        q(qid="leak", options=["Lake Baikal", "tench lake", "Lake Titicaca", "Lake Superior"]),
        q(qid="ref", reference="It is the largest fish of Africa."),
        # a class without articles: the reference check is skipped
        q("What do owners of this object often do?", ["clean it", "feed it", "ride it", "plant it"],
          reference="something not in any article", class_id=STRETCHER, qid="noart"),
    ]
    kept, reasons = apply_rules(qs, lex, articles)
    assert [x.qid for x in kept] == ["ok", "ok2", "noart"]
    assert reasons == {"near_duplicate": 1, "no_this_object": 1, "name_leak": 1, "reference_not_in_source": 1}
    assert sum(reasons.values()) + len(kept) == len(qs)
    # articles=None skips the reference rule for everyone
    # (the "ref" question then passes the checks and is merged as a near-duplicate of "ok")
    kept, reasons = apply_rules(qs, lex, None)
    assert [x.qid for x in kept] == ["ok", "ok2", "noart"]
    assert reasons == {"near_duplicate": 2, "no_this_object": 1, "name_leak": 1}


def test_apply_rules_on_wordnet_questions_keeps_them(vocab, lex):
    from imagewikiqa.wordnet_questions import generate_wordnet_questions

    questions, _ = generate_wordnet_questions(vocab, per_class=5, seed=0)
    assert questions
    kept, reasons = apply_rules(questions, lex, None)
    assert [x.qid for x in kept] == [x.qid for x in questions], reasons
