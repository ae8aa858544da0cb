"""imagewikiqa.records.Question and imagewikiqa.wordnet_questions: WordNet questions on real ImageNet classes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagewikiqa.records import Question
from imagewikiqa.wordnet_answers import KINDS
from imagewikiqa.wordnet_questions import TEMPLATES, coverage, generate_wordnet_questions
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Lexicon, normalize
from vlm_classdata.vocabulary import ClassVocabulary
from vlm_classdata.wordnet import synset_from_wnid

REPO = Path(__file__).resolve().parents[1]
TENCH, GOLDFISH, WHITE_SHARK, TIGER_SHARK, HAMMERHEAD, OSTRICH = (
    "n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01518878")
STRETCHER, SCHOOL_BUS, GARBAGE_TRUCK, CASTLE, CAR_WHEEL, ELECTRIC_LOCO, HAY, LEONBERGER = (
    "n04336792", "n04146614", "n03417042", "n02980441", "n02974003", "n03272562", "n07802026", "n02111129")
WNIDS = [TENCH, GOLDFISH, WHITE_SHARK, TIGER_SHARK, HAMMERHEAD, OSTRICH, STRETCHER, SCHOOL_BUS, GARBAGE_TRUCK,
         CASTLE, CAR_WHEEL, ELECTRIC_LOCO, HAY, LEONBERGER]


@pytest.fixture(scope="module")
def vocab() -> ClassVocabulary:
    return ClassVocabulary.bundled("imagenet1k").subset(WNIDS)


@pytest.fixture(scope="module")
def generated(vocab):
    return generate_wordnet_questions(vocab, per_class=8, seed=0)


def _of(questions: list[Question], class_id: str, kind: str | None = None) -> list[Question]:
    return [q for q in questions if q.class_id == class_id and (kind is None or q.kind == kind)]


def _answers(questions: list[Question], class_id: str, kind: str) -> set[str]:
    return {q.answer for q in _of(questions, class_id, kind)}


def test_known_facts_are_the_correct_options(vocab, generated):
    qs, _ = generated
    # definitions and member groups come before hypernyms now (deliberate change: hypernyms are the most
    # predictable kind for a blind solver), so hypernym facts are checked on a hypernym-only build
    hyper, _ = generate_wordnet_questions(vocab, per_class=8, seed=0, kinds=("hypernym",))
    qs = qs + hyper
    assert "cyprinid" in _answers(qs, TENCH, "hypernym")           # tench.n.01 -> cyprinid.n.01
    # the class's own head words are never answers (deliberate change: "bus" / "truck" leaked the name)
    assert "bus" not in _answers(qs, SCHOOL_BUS, "hypernym") and _answers(qs, SCHOOL_BUS, "hypernym")
    assert "litter" in _answers(qs, STRETCHER, "hypernym")
    assert "truck" not in {normalize(o) for q in _of(qs, GARBAGE_TRUCK) for o in q.options}
    assert "genus Tinca" not in _answers(qs, TENCH, "member_of")   # "Tinca tinca" is a lemma: name word
    assert "motor vehicle" in _answers(qs, CAR_WHEEL, "part_of")   # car wheel is a part of motor vehicle
    assert "electric motor" not in _answers(qs, ELECTRIC_LOCO, "part")  # "electric" names the class
    assert _answers(qs, CASTLE, "part") & {"turret", "keep", "rampart"}
    tench_hyper = next(q for q in _of(qs, TENCH, "hypernym") if q.answer == "cyprinid")
    assert tench_hyper.question in TEMPLATES["hypernym"]
    assert "cyprinid" in tench_hyper.reference and tench_hyper.source == f"wordnet:{TENCH}"
    # distractors are not ancestors of the tench: each wrong option is false
    tench_ancestors = {normalize(lemma) for path in synset_from_wnid(TENCH).hypernym_paths()
                       for s in path for lemma in s.lemma_names()}
    for q in _of(qs, TENCH, "hypernym"):
        wrong = [o for i, o in enumerate(q.options) if i != q.answer_index]
        assert not {normalize(o) for o in wrong} & tench_ancestors, q


def test_gloss_cloze_uses_the_definition_and_relatives_definitions(vocab):
    qs, _ = generate_wordnet_questions(vocab, per_class=1, seed=0, kinds=("gloss_cloze",))
    (q,) = _of(qs, GOLDFISH, "gloss_cloze")
    gloss = synset_from_wnid(GOLDFISH).definition()
    assert normalize(q.answer) == normalize(gloss)
    assert q.question in TEMPLATES["gloss_cloze"]
    # distractors are definitions of WordNet relatives that are no class (deliberate change: another
    # class's definition is that class's key, which a blind solver learns to rule out), used once each
    classes = {normalize(synset_from_wnid(w).definition()) for w in WNIDS}
    wrong = [normalize(o) for i, o in enumerate(q.options) if i != q.answer_index]
    assert not set(wrong) & classes
    ancestors = {normalize(a.definition()) for a in synset_from_wnid(GOLDFISH).closure(lambda x: x.hypernyms())}
    relatives = {normalize(h.definition()) for a in synset_from_wnid(GOLDFISH).closure(lambda x: x.hypernyms())
                 for h in a.closure(lambda x: x.hyponyms(), depth=2)}
    assert set(wrong) <= relatives - ancestors
    distractors = [normalize(o) for q in qs if q.kind == "gloss_cloze"
                   for i, o in enumerate(q.options) if i != q.answer_index]
    assert len(distractors) == len(set(distractors))


def test_every_question_is_well_formed_and_leak_free(vocab, generated):
    qs, _ = generated
    lexicon = Lexicon.build(vocab)
    assert {"tench", "tinca tinca", "tenches"} <= {f.text for f in lexicon.forms_of(TENCH)}
    assert {q.class_id for q in qs} == set(WNIDS)
    assert len({q.qid for q in qs}) == len(qs)
    for q in qs:
        assert "this object" in q.question.lower()
        assert len(q.options) == 4 and len({normalize(o) for o in q.options}) == 4, q
        assert 0 <= q.answer_index < 4
        assert q.generator == "wordnet" and q.kind in KINDS and q.reference
        assert q.qid.startswith(f"{q.class_id}-wordnet-{q.kind}-")
        assert q.class_name == vocab[q.class_id].name
        forms = [f.text for f in lexicon.forms_of(q.class_id)]
        for text in [q.question, *q.options]:
            padded = f" {normalize(text)} "
            assert not [f for f in forms if f" {f} " in padded], (q.class_name, text)
    # questions are de-duplicated within a class (no repeated correct answer)
    for cid in WNIDS:
        answers = [normalize(q.answer) for q in _of(qs, cid)]
        assert len(answers) == len(set(answers)) and len(answers) <= 8


def test_deterministic_for_a_seed_and_varies_with_it(vocab, generated):
    qs, reasons = generated
    again, reasons_again = generate_wordnet_questions(vocab, per_class=8, seed=0)
    assert [q.to_json() for q in again] == [q.to_json() for q in qs]
    assert reasons_again == reasons
    other, _ = generate_wordnet_questions(vocab, per_class=8, seed=1)
    assert [(q.options, q.answer_index) for q in other] != [(q.options, q.answer_index) for q in qs]
    # the correct answers of the direct-hypernym questions do not depend on the seed
    hyper, _ = generate_wordnet_questions(vocab, per_class=8, seed=1, kinds=("hypernym",))
    assert "cyprinid" in _answers(hyper, TENCH, "hypernym")


def test_per_class_kinds_and_reasons(vocab):
    qs, reasons = generate_wordnet_questions(vocab, per_class=2, seed=0)
    per_class = {cid: len(_of(qs, cid)) for cid in WNIDS}
    assert max(per_class.values()) == 2 and min(per_class.values()) >= 1
    # taxonomy/definition questions are capped by the other kinds a class has (at least 2 allowed)
    _, more = generate_wordnet_questions(vocab, per_class=5, seed=0)
    assert more["taxonomy_cap"] > 0
    # kinds in turn: a class with a definition and parts gets one of each before a second taxonomy question
    # (definitions first: deliberate change, they are the kind a blind solver predicts least)
    assert {q.kind for q in _of(qs, CASTLE)} == {"gloss_cloze", "part"}

    only, why = generate_wordnet_questions(vocab, per_class=5, seed=0, kinds=("part_of",))
    assert {q.kind for q in only} == {"part_of"} and {q.class_id for q in only} == {CAR_WHEEL}
    assert why["no_part_of"] == len(WNIDS) - 1
    with pytest.raises(UserError, match="unknown WordNet question kind"):
        generate_wordnet_questions(vocab, kinds=("synonym",))

    summary = coverage(qs, vocab, per_class=2)
    assert summary["questions"] == len(qs) and summary["classes_without_questions"] == 0
    assert sum(summary["per_kind"].values()) == len(qs)
    assert 0.0 <= summary["correct_longest_fraction"] <= 1.0


def test_class_without_synset_is_counted():
    vocab = ClassVocabulary.from_names(["foo bar", "tench"])
    qs, reasons = generate_wordnet_questions(vocab, per_class=3, seed=0, kinds=("hypernym",))
    assert reasons["no_synset"] == 1
    assert {q.class_name for q in qs} <= {"tench"}
    assert not [q for q in qs if q.class_id == "0"]


def test_question_json_round_trip(generated):
    qs, _ = generated
    for q in qs[:10]:
        d = json.loads(json.dumps(q.to_json()))
        back = Question.from_json(d)
        assert back == q and back.answer == q.options[q.answer_index]
    d = qs[0].to_json()
    with pytest.raises(UserError, match="missing field"):
        Question.from_json({k: v for k, v in d.items() if k != "reference"})
    with pytest.raises(UserError, match="answer_index"):
        Question.from_json({**d, "answer_index": 4})


def test_same_output_under_another_hash_seed(vocab, generated):
    """NLTK keeps relation pointers in sets; the output must not depend on PYTHONHASHSEED."""
    qs, _ = generated
    code = ("import json; from vlm_classdata.vocabulary import ClassVocabulary; "
            "from imagewikiqa.wordnet_questions import generate_wordnet_questions; "
            f"v = ClassVocabulary.bundled('imagenet1k').subset({WNIDS!r}); "
            "print(json.dumps([q.to_json() for q in generate_wordnet_questions(v, per_class=8, seed=0)[0]]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(out.stdout) == [q.to_json() for q in qs]
