"""vlm_classdata.blind: learned blind solvers find a planted answer shortcut, adversarial filtering removes it, and a
set without signal stays at chance."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from imagewikiqa.records import Question
from vlm_classdata.blind import MCQ, SOLVERS, adversarial_filter, blind_accuracy, chance, mcq_items
from vlm_classdata.errors import UserError

LETTERS = "bcdfghjklmnprstvz"
VOWELS = "aeiou"


def word(rng: random.Random) -> str:
    """A pronounceable nonsense word of 2-4 syllables (lengths vary at random: no length signal)."""
    return "".join(rng.choice(LETTERS) + rng.choice(VOWELS) for _ in range(rng.randint(2, 4)))


def phrase(rng: random.Random) -> str:
    return " ".join(word(rng) for _ in range(rng.randint(1, 3)))


def shortcut_set(n_classes: int = 50, per_class: int = 4, planted_per_class: int = 2,
                 seed: int = 0) -> tuple[list[MCQ], set[int]]:
    """Items where ``planted_per_class`` questions of every class carry a shortcut: the correct option is the
    only one that shares a word (a rare nonsense word) with the question; in the other questions no option
    does, and nothing tells the answer. Returns the items and the indices of the planted ones."""
    rng = random.Random(seed)
    items, planted = [], set()
    for c in range(n_classes):
        for n in range(per_class):
            options = [phrase(rng) for _ in range(4)]
            answer = rng.randrange(4)
            cue = word(rng)
            if n < planted_per_class:
                options[answer] = f"{options[answer]} {cue}"
                planted.add(len(items))
            items.append(MCQ(f"Which of these goes with {cue} for this object?", tuple(options), answer, f"c{c}"))
    return items, planted


def cue_rule_accuracy(items: list[MCQ]) -> float:
    """Expected accuracy of the planted shortcut itself: answer the option sharing a word with the question,
    else guess."""
    hits = 0.0
    for it in items:
        cue = it.question.split()[5]
        sharing = [cue in o.split() for o in it.options]
        hits += sharing.index(True) == it.answer_index if any(sharing) else 1 / len(it.options)
    return hits / len(items)


def random_set(n_classes: int = 50, per_class: int = 4, seed: int = 1) -> list[MCQ]:
    """Options and question without any relation to which option is correct."""
    rng = random.Random(seed)
    return [MCQ(f"What does this object {word(rng)}?", tuple(phrase(rng) for _ in range(4)), rng.randrange(4),
                f"c{c}") for c in range(n_classes) for _ in range(per_class)]


def test_planted_shortcut_found_then_filtered_out():
    items, planted = shortcut_set()
    before = blind_accuracy(items, seed=0)
    assert before["n"] == 200 and before["classes"] == 50 and before["chance"] == 0.25 and before["folds"] == 5
    for s in SOLVERS:   # the solvers find the shortcut on classes they never saw: ≈ 0.5·1 + 0.5·0.25
        acc = before["solvers"][s]
        assert acc["accuracy"] >= 0.5, (s, acc)
        assert acc["ci95"][0] < acc["accuracy"] < acc["ci95"][1] and acc["ci95"][0] > 0.35

    t0 = time.perf_counter()
    result = adversarial_filter(items, seed=0)
    assert time.perf_counter() - t0 < 15
    assert result.target_met and result.stop == "target_met" and result.target == pytest.approx(0.30)
    assert result.rounds[0]["accuracy"]["logistic"] >= 0.5
    for s in SOLVERS:
        assert result.final["solvers"][s]["accuracy"] <= 0.30, result.rounds
    dropped = set(result.dropped)
    kept = [items[i] for i in result.kept]
    # the shortcut no longer pays: the planted rule itself is at chance on the kept set
    assert cue_rule_accuracy(items) == 0.625 and cue_rule_accuracy(kept) <= 0.30
    assert len(dropped & planted) >= 0.9 * len(planted)              # the planted questions went
    assert len(dropped & planted) >= 0.7 * len(dropped)              # and mostly they
    assert sorted(dropped | set(result.kept)) == list(range(len(items)))
    assert {result.dropped_round[i] for i in dropped} <= set(range(len(result.rounds)))
    # every class keeps a question (each has two without the shortcut)
    assert len({items[i].group for i in result.kept}) == 50

    # a fresh measurement on the kept set, with other fold splits, agrees
    again = blind_accuracy(kept, seed=5)
    for s in SOLVERS:
        assert again["solvers"][s]["accuracy"] <= 0.35, again
    # deterministic for a seed
    assert adversarial_filter(items, seed=0).kept == result.kept


def test_random_labels_stay_at_chance():
    items = random_set()
    report = blind_accuracy(items, repeats=2, seed=3)
    assert report["repeats"] == 2
    for s in SOLVERS:
        assert abs(report["solvers"][s]["accuracy"] - 0.25) <= 0.08, report
    result = adversarial_filter(items, seed=3)
    assert result.target_met
    assert len(result.kept) >= 0.8 * len(items)                      # nothing much to remove


def test_question_objects_and_errors():
    rng = random.Random(2)
    qs = [Question(qid=f"q{i}", class_id=f"n{i % 7}", class_name="x", question="What is this object?",
                   options=[phrase(rng) for _ in range(4)], answer_index=i % 4) for i in range(28)]
    items = mcq_items(qs)
    assert items[5] == MCQ("What is this object?", tuple(qs[5].options), 1, "n5")
    assert chance(items) == 0.25 and chance([]) == 0.0
    assert blind_accuracy(qs, seed=0)["classes"] == 7
    with pytest.raises(UserError, match="at least 2 classes"):
        blind_accuracy([MCQ("q", ("a", "b"), 0, "one")] * 5)
    with pytest.raises(UserError, match="item 1: .*2 options"):
        mcq_items([qs[0], Question(qid="bad", class_id="n", class_name="x", question="q", options=["a"])])
    with pytest.raises(UserError, match="unknown blind solver"):
        blind_accuracy(qs, solvers=("forest",))


def test_last_question_of_a_class_kept_when_avoidable():
    # 24 classes with one planted question and 3 plain ones, 8 classes with a single (planted) question
    items, _ = shortcut_set(n_classes=24, per_class=4, planted_per_class=1, seed=4)
    singles, _ = shortcut_set(n_classes=8, per_class=1, planted_per_class=1, seed=5)
    items += [MCQ(x.question, x.options, x.answer_index, f"single-{x.group}") for x in singles]
    result = adversarial_filter(items, seed=0, max_batch=0.1, repeats=1)
    size = Counter(x.group for x in items)
    by_round: dict[int, list[bool]] = {}
    for i in result.dropped:            # was the item the last one of its class when it was dropped?
        r = result.dropped_round[i]
        gone_before = sum(1 for j in result.dropped
                          if items[j].group == items[i].group and result.dropped_round[j] < r)
        by_round.setdefault(r, []).append(size[items[i].group] - gone_before == 1)
    # a round drops last questions of classes only when it has no other candidate
    assert all(all(lasts) or not any(lasts) for lasts in by_round.values()), by_round
    assert any(not any(lasts) for lasts in by_round.values())
    kept_classes = {items[i].group for i in result.kept}
    assert {f"c{c}" for c in range(24)} <= kept_classes               # no big class ever emptied
