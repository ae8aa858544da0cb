"""Matching semantics, pinned one by one on a constructed corpus with known counts."""

from __future__ import annotations

import pytest

from corpora_stats.matcher import Matcher
from vlm_classdata.lexicon import Form, normalize

CLASSES = ["tiger", "tiger_shark", "hen", "sloth", "crane_bird", "crane_machine", "goose"]


def forms(*items: tuple[str, str, str, tuple[str, ...]]) -> list[Form]:
    return [Form(text, cid, kind, flags) for text, cid, kind, flags in items]


FORMS = forms(
    ("tiger", "tiger", "name", ()),
    ("tiger shark", "tiger_shark", "name", ()),
    ("tiger sharks", "tiger_shark", "plural", ()),
    ("hen", "hen", "name", ()),
    ("three toed sloth", "sloth", "name", ()),
    ("ai", "sloth", "lemma", ("short",)),
    ("crane", "crane_bird", "lemma", ("shared",)),
    ("crane", "crane_machine", "lemma", ("shared",)),
    ("goose", "goose", "name", ()),
    ("geese", "goose", "plural", ()),
)


def count(texts: list[str], method: str = "wordnet", k: int = 3):
    m = Matcher(FORMS, CLASSES, method=method, snippets=k, seed=0)
    state = m.new_state()
    m.count_batch(state, texts, 0)
    docs = dict(zip(CLASSES, state.class_docs_all.tolist(), strict=True))
    mentions = dict(zip(CLASSES, state.class_mentions_all.tolist(), strict=True))
    clean = dict(zip(CLASSES, state.class_docs_clean.tolist(), strict=True))
    return m, state, docs, mentions, clean


def test_case_insensitive_and_whole_words_only():
    _, _, docs, _, _ = count(["The HEN laid an egg", "then again", "rain in spain", "Hen-house", "chicken"])
    assert docs["hen"] == 2  # "HEN", "Hen-house"; not "then", not "chicken"
    assert docs["sloth"] == 0  # "ai" is not inside "rain"


def test_punctuation_and_hyphens_are_normalised():
    _, _, docs, mentions, _ = count(["a tiger-shark!", "Tiger Shark.", "TIGER_SHARK", "(tiger shark)"])
    assert docs["tiger_shark"] == 4 and mentions["tiger_shark"] == 4
    assert docs["tiger"] == 0


def test_leftmost_longest_and_adjacent_names():
    _, _, docs, mentions, _ = count(["a tiger shark near a tiger", "tiger tiger", "tiger sharks"])
    assert mentions["tiger_shark"] == 2 and docs["tiger_shark"] == 2
    assert mentions["tiger"] == 3 and docs["tiger"] == 2  # two adjacent "tiger"s both count


def test_document_frequency_vs_mentions_and_plurals():
    _, state, docs, mentions, _ = count(["goose geese goose", "no birds", "a Goose"])
    assert docs["goose"] == 2 and mentions["goose"] == 4


def test_flagged_forms_are_counted_separately():
    m, state, docs, _, clean = count(["a crane over the building", "three-toed sloth", "AI is hype"])
    assert docs["crane_bird"] == docs["crane_machine"] == 1  # shared form counts for both in *_all
    assert clean["crane_bird"] == clean["crane_machine"] == 0
    assert docs["sloth"] == 2 and clean["sloth"] == 1
    pid = m.texts.index("crane")
    assert state.pattern_docs[pid] == 1 and state.pattern_mentions[pid] == 1


def test_first_and_last_token_match_and_paper_method_overlaps():
    # the paper's notebook missed names at the first/last word; both methods must count them
    _, _, docs, _, _ = count(["tiger", "hen", "tiger shark"], method="paper")
    assert docs["tiger"] == 2 and docs["hen"] == 1 and docs["tiger_shark"] == 1  # overlap: tiger in tiger shark
    _, _, docs, _, _ = count(["tiger", "hen", "tiger shark"])
    assert docs["tiger"] == 1


def test_unicode_and_the_python_normaliser_agree():
    # the engine cuts and lower-cases text as normalize() does: each text, as a form, is found once in itself
    texts = ["Café-au-lait  tiger’s  SHARK", "  --hen--  ", "naïve Ærø 42-x", "tab\tnew\nline", "STRASSE Straße ÉCOLE"]
    forms = [Form(normalize(t), f"c{i}", "name", ()) for i, t in enumerate(texts)]
    m = Matcher(forms, [f"c{i}" for i in range(len(texts))], snippets=0)
    state = m.new_state()
    m.count_batch(state, texts, 0)
    assert state.class_mentions_all.tolist() == [1] * len(texts)


def test_snippets_show_the_match_in_the_original_text():
    m, state, _, _, _ = count(["xx " * 40 + "a Tiger-Shark swims " + "yy " * 40], k=2)
    (item,) = state.snippets[CLASSES.index("tiger_shark")]
    assert "«Tiger-Shark»" in item[3] and item[3].startswith("…") and item[3].endswith("…")


def test_counts_do_not_depend_on_batching():
    texts = [f"doc {i} tiger shark and a hen" if i % 3 else f"a goose {i}" for i in range(300)]
    m = Matcher(FORMS, CLASSES, snippets=3, seed=1)
    one = m.new_state()
    m.count_batch(one, texts, 0)
    many = m.new_state()
    for lo in range(0, 300, 37):
        m.count_batch(many, texts[lo:lo + 37], lo)
    assert one.class_docs_all.tolist() == many.class_docs_all.tolist()
    assert one.pattern_mentions.tolist() == many.pattern_mentions.tolist()
    assert {c: sorted(v) for c, v in one.snippets.items()} == {c: sorted(v) for c, v in many.snippets.items()}


@pytest.mark.parametrize("text", ["", "   ", "!!!"])
def test_empty_texts(text):
    _, state, docs, _, _ = count([text])
    assert sum(docs.values()) == 0 and state.documents == 1
