"""vlm_classdata.answers.parse_choice on long and adversarial replies (linear time) and final-decision phrasings.

Timings use CPU time of this process (best of 3), so other processes on the machine do not decide them; the
bound is generous: before the fix a 100,000-character "answer " loop took over a minute.
"""

from __future__ import annotations

import random
import string
import time

import pytest

from vlm_classdata.answers import ParsedAnswer, parse_choice

ANIMALS = ["cat", "dog", "horse", "bird"]
N = 100_000
BOUND_S = 0.3
LOOP = ("Let me reconsider. The animal has pointed ears, so the answer is a cat or a dog. But the tail is "
        "long, so the answer could be the dog or the horse. Looking again at the mane, a horse is possible too.\n")


def _fill(piece: str, n: int = N) -> str:
    return (piece * (n // len(piece) + 1))[:n]


SHAPES = {
    "answer repeated": _fill("answer "),
    "A repeated": _fill("A "),
    "open parens": _fill("("),
    "the answer is repeated": _fill("the answer is "),
    "option texts repeated": _fill("cat dog horse bird "),
    "reasoning loop": _fill(LOOP),
    "one line, no spaces": _fill("x"),
    "many newlines": _fill("\n") + "x",
    "newlines and bullets": _fill("\n- ") + "xyz",
    "option then spaces": "option" + " " * N + "!",
    "letter then spaces": "x" + " " * N + "!y",
    "B then spaces": "B" + " " * N + "x",
    "answer: a repeated": _fill("answer: a "),
    "answer (a repeated": _fill("answer (a"),
    "I repeated": _fill("I "),
    "B) repeated": _fill("B)"),
    "decisions repeated": _fill("I'll go with "),
    "I say repeated": _fill("I say "),
    "hedges repeated": _fill("Answer: B or C "),
    "option text answers": _fill("the answer is the horse or the dog "),
}


def _cpu_seconds(reply: str, options: list[str]) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.process_time()
        parse_choice(reply, options)
        best = min(best, time.process_time() - t)
    return best


@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_long_adversarial_reply_is_parsed_in_linear_time(shape):
    reply = SHAPES[shape]
    assert len(reply) >= N
    assert isinstance(parse_choice(reply, ANIMALS), ParsedAnswer)
    assert _cpu_seconds(reply, ANIMALS) < BOUND_S


def test_long_reasoning_loop_keeps_its_final_answer():
    reply = _fill(LOOP, 33_000) + "\nAnswer: C"
    assert parse_choice(reply, ANIMALS) == ParsedAnswer(2, "C", "final_answer")
    assert _cpu_seconds(reply, ANIMALS) < BOUND_S
    one_line = _fill("answer is maybe ", N) + " Final answer: (D)"
    assert parse_choice(one_line, ANIMALS) == ParsedAnswer(3, "D", "final_answer")


# words with no answer marker, decision, refusal, option text or bare upper-case letter among them
_NOISE_WORDS = ("the", "fur", "looks", "soft", "ears", "tail", "maybe", "long", "short", "hmm", "wait", "so",
                "image", "shows", "an", "animal", "near", "water", "color", "brown", "white", "x", "y", "z")
_NOISE_SEPS = (" ", " ", " ", ", ", ". ", "\n", "\n\n", " - ", "; ", " (", ") ", "**", ": ")


def _noise(rng: random.Random, words: int) -> str:
    return "".join(rng.choice(_NOISE_WORDS) + rng.choice(_NOISE_SEPS) for _ in range(words))


def test_random_noise_then_answer_gives_that_answer():
    rng = random.Random(20240611)
    for _ in range(300):
        letter = rng.choice("ABCD")
        form = rng.choice(("Answer: {}", "Final answer: ({})", "The answer is {}.", "**Answer:** {}"))
        reply = _noise(rng, rng.randint(0, 400)) + "\n" + form.format(letter)
        assert parse_choice(reply, ANIMALS) == ParsedAnswer("ABCD".index(letter), letter, "final_answer"), reply


def test_random_text_never_raises_and_stays_fast():
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " \n\t()[]*–—’ßİΣ"
    pieces = ("answer", "Answer:", "option", "I'd say", "I'll go with", " or ", "(", ")", "A", "B", "cat", "hot dog",
              "\n", "  ", "I", "a", "the", "is", "not", "if")
    for _ in range(200):
        reply = "".join(rng.choice(pieces) if rng.random() < 0.5 else rng.choice(alphabet)
                        for _ in range(rng.randint(0, 3000)))
        got = parse_choice(reply, ["cat", "hot dog", "dog", "A. bird"])
        assert got.how in {"final_answer", "letter", "option_text", "refusal", "ambiguous", "unknown"}
        assert (got.index is None) == (got.how in {"refusal", "ambiguous", "unknown"})
    long_random = "".join(rng.choice(pieces) for _ in range(N // 4))
    assert _cpu_seconds(long_random, ANIMALS) < BOUND_S


# ----- final decisions ----------------------------------------------------------------------------------
DECIDED = [
    ("It could be B or C, but I'll go with C.", 2),
    ("Between C and A, I choose A.", 0),
    ("I will go with C", 2),
    ("I choose C", 2),
    ("I pick C.", 2),
    ("Hmm, B or C... my final choice is C.", 2),
    ("A or C? My choice is C.", 2),
    ("B looks close. I'd say C.", 2),
    ("B looks close, but I would say C", 2),
    ("I'm going with C, because of the mane.", 2),
    ("A or C. Going with C.", 2),
    ("A and C both fit; I'll settle on C.", 2),
    ("A and C both fit; I opt for C.", 2),
    ("A or C? I'll go with (C).", 2),
    ("A or C? I'll go with option C.", 2),
    ("A or C? I am going with **C**.", 2),
    ("A or C? I'll go with the horse.", 2),
    ("Options A and C are close. My final choice is horse.", 2),
    ("Instead of going with A, I'd say B.", 1),
    ("Rather than going with A, I pick B.", 1),
    ("I would not say A; I'd say B.", 1),
    ("A seems right at first. Answer: A\nWait, the tail. Let's go with D.", 3),
]


@pytest.mark.parametrize(("reply", "index"), DECIDED, ids=[r[:40] for r, _ in DECIDED])
def test_final_decision_is_the_answer(reply, index):
    got = parse_choice(reply, ANIMALS)
    assert (got.index, got.letter) == (index, "ABCD"[index])
    assert got.how in ("letter", "option_text")


UNDECIDED = [
    "B or C",
    "It is either B or C.",
    "I'm not sure between B and C.",
    "I'd say B or C.",
    "I'd say B, or maybe C.",
    "I'd say (B)/(C).",
    "I'll go with B and C.",
    "I'd say dog or cat.",
    "The answer is B or C.",                            # before: B
    "Answer: A\nOn reflection, I'd say C or D.",       # before: A
    "If I choose A, the ears would be pointed; B fits better.",
    "I'm not going with A, but B is no better.",
]


@pytest.mark.parametrize("reply", UNDECIDED, ids=[r[:40] for r in UNDECIDED])
def test_hedge_is_no_answer(reply):
    got = parse_choice(reply, ANIMALS)
    assert got.index is None and got.letter is None
    assert got.how in ("ambiguous", "refusal")
