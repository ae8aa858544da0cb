"""Rules found by hand-auditing the offline 1000-class WordNet benchmark, pinned on real WordNet."""

from __future__ import annotations

import pytest

from imagewikiqa.audit import content_words
from imagewikiqa.wordnet_answers import answers_of
from imagewikiqa.wordnet_questions import generate_wordnet_questions
from vlm_classdata.vocabulary import ClassVocabulary
from vlm_classdata.wordnet import wordnet

HARP, HOG, SUNGLASS, TURNSTONE, DIAMONDBACK = "n03495258", "n02395406", "n04355933", "n02025239", "n01755581"


@pytest.fixture(scope="module")
def questions():
    # the audited classes among 120 others (every 8th ImageNet class): pools as varied as the full build's
    full = ClassVocabulary.bundled("imagenet1k")
    ids = sorted(set(full.ids[::8]) | {HARP, HOG, SUNGLASS, TURNSTONE, DIAMONDBACK}, key=full.ids.index)
    qs, _ = generate_wordnet_questions(full.subset(ids), per_class=5, seed=0)
    return qs


def test_a_feature_is_the_objects_own_not_a_phrase_about_something_else():
    # a harp's gloss: "... the strings ... are plucked with the fingers": the fingers are no feature of a harp
    harp = wordnet().synset("harp.n.01")
    assert all(not a.text.lower().startswith("the ") for a in answers_of(harp)["feature"])
    assert "the fingers" not in {a.text for a in answers_of(harp)["feature"]}


def test_an_animal_is_not_made_of_its_products():
    hog = wordnet().synset("hog.n.03")
    assert answers_of(hog)["substance"] == ()


def test_questions_follow_the_sense_the_images_show(questions):
    sunglass = [q for q in questions if q.class_id == SUNGLASS]
    assert sunglass and all(q.source == "wordnet:n04356056" for q in sunglass)   # sunglasses.n.01
    assert not any("start a fire" in o for q in sunglass for o in q.options)


def test_definition_distractors_share_at_most_one_content_word_with_the_key(questions):
    for q in questions:
        if q.kind != "gloss_cloze":
            continue
        key = content_words(q.answer.replace("…", " "))
        for i, o in enumerate(q.options):
            if i != q.answer_index:
                assert len(content_words(o.replace("…", " ")) & key) <= 1, (q.class_name, q.answer, o)


def test_feature_distractors_come_from_outside_the_class_group(questions):
    # "quick-acting venom" (another snake's) offered for a rattlesnake would be true of it too
    for q in questions:
        if q.class_id == DIAMONDBACK and q.kind == "feature":
            assert not any("venom" in o for o in q.options)
