"""The offline WordNet benchmark on an 80-class ImageNet subset: every class keeps a question through the
whole chain (generator → length control → adversarial filter → letters), with no second correct option,
no name leak and no cross-class repeat; classes whose definition names them get a masked definition."""

from __future__ import annotations

from collections import Counter

import pytest

from imagewikiqa.audit import MASK, key_check
from imagewikiqa.debias import balance_letters, control_length_bias, filter_predictable
from imagewikiqa.quality import cross_class_duplicates, leak_check
from imagewikiqa.wordnet_answers import class_name_words, leaks_name
from imagewikiqa.wordnet_questions import generate_wordnet_questions
from vlm_classdata.hierarchy import entry_synset
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.vocabulary import ClassVocabulary

# the classes the generator left without a question: every near ancestor and the definition name them
LENS_CAP, VELVET, STREET_SIGN = "n03657121", "n04525038", "n06794110"


@pytest.fixture(scope="module")
def chain():
    imagenet = ClassVocabulary.bundled("imagenet1k")
    ids = [e.class_id for e in imagenet]
    vocab = imagenet.subset(sorted(set(ids[::13] + [LENS_CAP, VELVET, STREET_SIGN]), key=ids.index))
    lexicon = Lexicon.build(vocab)
    qs, reasons = generate_wordnet_questions(vocab, per_class=5, seed=0, lexicon=lexicon)
    # debias(adversarial=True) with one seeded fold split per filter round instead of two (60% less CPU): what
    # is asserted here is what the filter leaves, which its drop order decides (a class's last question goes
    # last); the default filter is proven on the released file (test_blind_released) and in the build
    kept, dropped = control_length_bias(qs, seed=0)
    filtered, more, _ = filter_predictable(kept, seed=0, repeats=1)
    final = balance_letters(filtered, seed=0)
    return vocab, lexicon, qs, final, dropped + more


def test_every_class_has_two_questions_and_keeps_one_after_the_filter(chain):
    vocab, _, qs, final, dropped = chain
    assert 75 <= len(vocab) <= 100
    before = Counter(q.class_id for q in qs)
    assert set(before) == {e.class_id for e in vocab}
    assert sum(c >= 2 for c in before.values()) >= 0.95 * len(vocab)   # room for the filter
    assert dropped["blind_predictable"] > 0                              # the filter did work ...
    assert {q.class_id for q in final} == {e.class_id for e in vocab}    # ... and every class is still in


def test_no_second_correct_option_leak_or_repeat_after_the_filter(chain):
    _, lexicon, qs, final, _ = chain
    assert key_check(qs) == [] and key_check(final) == []
    leaks = leak_check(final, lexicon)
    assert leaks["questions"] == 0, leaks["examples"]
    assert cross_class_duplicates(final)["questions"] == 0


def test_a_definition_naming_the_class_is_asked_masked(chain):
    vocab, lexicon, qs, _, _ = chain
    (lens,) = [q for q in qs if q.class_id == LENS_CAP and q.kind == "gloss_cloze"]
    assert lens.answer == f"{MASK} used to keep {MASK} free of dust when not in use"
    assert all(MASK in o for o in lens.options)          # every option masked: the mask tells nothing
    assert len(set(lens.options)) == 4
    synsets = {e.class_id: entry_synset(e) for e in vocab}
    for cid in (LENS_CAP, VELVET):
        names = class_name_words(frozenset(f.text for f in lexicon.forms_of(cid)), synsets[cid])
        mine = [q for q in qs if q.class_id == cid]
        assert mine
        assert not any(leaks_name(t, names) for q in mine for t in [q.question, *q.options])
