"""imagewikiqa.debias, imagewikiqa.quality and imagewikiqa.report: blind baselines, length control, letter balance,
quality report."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from imagewikiqa.debias import (
    balance_letters,
    blind_longest_accuracy,
    blind_shortest_accuracy,
    control_length_bias,
    debias,
    tidy_options,
)
from imagewikiqa.quality import blind_baselines, quality_report, questions_from_benchmark
from imagewikiqa.records import Question
from imagewikiqa.report import report_markdown, write_report


def q(qid: str, options: list[str], answer: int, cls: str = "c1", stem: str | None = None, **kw) -> Question:
    return Question(qid=qid, class_id=cls, class_name=f"name of {cls}", question=stem or f"What is {qid}?",
                    options=list(options), answer_index=answer, reference="ref", source="test", **kw)


LONG = ["aaaa", "bb", "cc", "dd"]        # option 0 strictly longest
TIE2 = ["aaaa", "bbbb", "cc", "dd"]      # options 0 and 1 tied longest
FLAT = ["aa", "bb", "cc", "dd"]          # all four tied (longest and shortest)


def counts(questions: list[Question]) -> Counter:
    return Counter(x.letter for x in questions)


# ----- blind baselines -------------------------------------------------------------------------------------
def test_blind_longest_and_shortest_with_ties():
    assert blind_longest_accuracy([q("a", LONG, 0)]) == 1.0
    assert blind_longest_accuracy([q("a", LONG, 1)]) == 0.0
    assert blind_longest_accuracy([q("a", TIE2, 1)]) == 0.5
    assert blind_longest_accuracy([q("a", FLAT, 3)]) == 0.25
    # mean over questions: (1 + 0.5 + 0) / 3
    assert blind_longest_accuracy([q("a", LONG, 0), q("b", TIE2, 0), q("c", LONG, 2)]) == pytest.approx(0.5)
    # shortest: options 1, 2, 3 of LONG are tied shortest
    assert blind_shortest_accuracy([q("a", LONG, 2)]) == pytest.approx(1 / 3)
    assert blind_shortest_accuracy([q("a", LONG, 0)]) == 0.0
    assert blind_shortest_accuracy([q("a", ["xxx", "y", "zz"], 1)]) == 1.0   # k = 3
    # length is of the stripped text: padding does not make an option longer
    assert blind_longest_accuracy([q("a", ["  bb  ", "ccc"], 0)]) == 0.0
    assert blind_longest_accuracy([]) == 0.0 and blind_shortest_accuracy([]) == 0.0


# ----- length control --------------------------------------------------------------------------------------
def test_control_length_bias_no_drop_under_target_and_no_mutation():
    qs = [q("a", LONG, 0), q("b", LONG, 1), q("c", LONG, 2), q("d", LONG, 3)]  # longest accuracy 0.25
    before = copy.deepcopy(qs)
    out, reasons = control_length_bias(qs, max_longest=0.30)
    assert out == qs and reasons == Counter()
    assert all(a is not b and a.options is not b.options for a, b in zip(out, qs, strict=True))
    assert qs == before


def test_control_length_bias_drops_strict_first_then_biggest_class():
    # 10 questions: 4 strictly-longest correct (classes big x3, small x1), 2 tied (0.5), 4 not longest
    qs = [q("s1", LONG, 0, "big"), q("s2", LONG, 0, "big"), q("s3", LONG, 0, "big"), q("s4", LONG, 0, "small"),
          q("t1", TIE2, 0, "big"), q("t2", TIE2, 1, "small"),
          q("n1", LONG, 1, "big"), q("n2", LONG, 2, "big"), q("n3", LONG, 3, "small"), q("n4", LONG, 1, "other")]
    before = copy.deepcopy(qs)
    assert blind_longest_accuracy(qs) == pytest.approx(0.5)
    out, reasons = control_length_bias(qs, max_longest=0.30, seed=0)
    # (5 - d) / (10 - d) <= 0.3 -> d >= 2.86: three strictly-longest drops, all from the biggest class
    assert reasons == Counter({"length_bias": 3})
    assert blind_longest_accuracy(out) == pytest.approx(2 / 7) and 2 / 7 <= 0.30
    dropped = {x.qid for x in qs} - {x.qid for x in out}
    # "big" has 6 questions; after two drops it still has 4 > "small"'s 3
    assert dropped == {"s1", "s2", "s3"}
    assert [x.qid for x in out] == [x.qid for x in qs if x.qid not in dropped]   # input order kept
    assert qs == before
    # a lower target needs more drops; the small class's strict question goes before any tied one
    out2, reasons2 = control_length_bias(qs, max_longest=0.2)
    assert "s4" not in {x.qid for x in out2} and {"t1", "t2"} <= {x.qid for x in out2}
    assert reasons2["length_bias"] == 4 and blind_longest_accuracy(out2) <= 0.2


def test_control_length_bias_seeded_and_deterministic():
    qs = [q(f"s{i}", LONG, 0, "c") for i in range(6)] + [q(f"n{i}", LONG, 1, "c") for i in range(6)]
    runs = {s: control_length_bias(qs, max_longest=0.30, seed=s) for s in range(6)}
    for s, (out, reasons) in runs.items():
        assert control_length_bias(qs, max_longest=0.30, seed=s) == (out, reasons)  # same seed, same result
        # (6 - d) / (12 - d) <= 0.3 -> d >= 3.43
        assert reasons == Counter({"length_bias": 4}) and len(out) == 8
    kept = {tuple(x.qid for x in out) for out, _ in runs.values()}
    assert len(kept) > 1                                               # the seed picks which ones go
    # order of the input does not change which questions go
    out_rev, _ = control_length_bias(list(reversed(qs)), max_longest=0.30, seed=0)
    assert {x.qid for x in out_rev} == {x.qid for x in runs[0][0]}


def test_control_length_bias_fixes_before_dropping():
    # the correct option is longest only by a stray trailing period
    fixable = q("f", ["Red fur.", "Tan fur", "Dun fur"], 0)
    assert tidy_options(fixable).options == ["Red fur", "Tan fur", "Dun fur"]
    assert tidy_options(q("x", ["a  b.", "c."], 0)).options == ["a b.", "c."]   # all dotted: kept
    qs = [fixable, q("n1", LONG, 1), q("n2", LONG, 2)]
    out, reasons = control_length_bias(qs, max_longest=0.30)
    assert reasons == Counter() and len(out) == 3
    assert out[0].options == ["Red fur", "Tan fur", "Dun fur"] and out[0].answer == "Red fur"
    assert qs[0].options == ["Red fur.", "Tan fur", "Dun fur"]            # input untouched
    assert blind_longest_accuracy(out) == pytest.approx(1 / 9)            # now a three-way tie
    # a fix that would raise the score is not applied (the dot is on a tied distractor)
    keep = q("k", ["Red furs", "Tan fur.", "Dun fu"], 0)
    assert blind_longest_accuracy([keep]) == 0.5 and blind_longest_accuracy([tidy_options(keep)]) == 1.0
    out, reasons = control_length_bias([keep], max_longest=0.30)
    assert out[0].options == keep.options and reasons == Counter()


def test_control_length_bias_stops_when_no_drop_helps():
    qs = [q(f"t{i}", TIE2, 0) for i in range(4)]        # every question scores 0.5
    out, reasons = control_length_bias(qs, max_longest=0.30)
    assert len(out) == 4 and reasons == Counter()


# ----- letter balance --------------------------------------------------------------------------------------
def test_balance_letters_moves_answer_keeps_distractor_order():
    qs = [q(f"q{i}", [f"right{i}", "d1", "d2", "d3"], 0) for i in range(9)]
    before = copy.deepcopy(qs)
    out = balance_letters(qs, seed=0)
    assert sorted(counts(out).values()) == [2, 2, 2, 3]
    for old, new in zip(qs, out, strict=True):
        assert new.answer == old.answer and new.qid == old.qid
        assert [o for o in new.options if o != new.answer] == ["d1", "d2", "d3"]
    assert qs == before
    assert balance_letters(qs, seed=0) == out                        # deterministic for a seed
    assert any(balance_letters(qs, seed=s) != out for s in range(1, 6))
    # lengths per position carry no signal: the long correct option now sits at every position
    assert {x.answer_index for x in out} == {0, 1, 2, 3}


def test_balance_letters_already_balanced_unchanged():
    qs = [q(f"q{i}", LONG, i % 4) for i in range(10)]           # 3, 3, 2, 2
    out = balance_letters(qs, seed=3)
    assert out == qs and all(a is not b for a, b in zip(out, qs, strict=True))


def test_balance_letters_per_option_count():
    threes = [q(f"t{i}", ["x", "yy", "zzz"], 2) for i in range(7)]
    fours = [q(f"f{i}", FLAT, 1) for i in range(4)]
    twos = [q(f"w{i}", ["x", "y"], 0) for i in range(2)]
    single = q("one", ["only"], 0)
    out = balance_letters(threes + fours + twos + [single])
    by_k = {k: Counter(x.letter for x in out if len(x.options) == k) for k in (1, 2, 3, 4)}
    assert sorted(by_k[3].values()) == [2, 2, 3] and set(by_k[3]) == {"A", "B", "C"}
    assert by_k[4] == Counter({"A": 1, "B": 1, "C": 1, "D": 1})
    assert by_k[2] == Counter({"A": 1, "B": 1}) and by_k[1] == Counter({"A": 1})


def test_debias_length_first_then_letters():
    # 20 questions, all answered A; 10 with the correct option strictly longest
    qs = [q(f"s{i}", LONG, 0, f"c{i % 3}") for i in range(10)] + [q(f"n{i}", FLAT, 0, "c9") for i in range(10)]
    out, reasons = debias(qs, max_longest=0.30, seed=1)
    # (10 + 2.5 - d) / (20 - d) <= 0.3 -> d >= 9.29
    assert reasons == Counter({"length_bias": 10}) and len(out) == 10
    assert max(counts(out).values()) - min(counts(out).values()) <= 1 and len(counts(out)) == 4
    assert blind_longest_accuracy(out) <= 0.30
    assert debias(qs, max_longest=0.30, seed=1) == (out, reasons)


# ----- the report ------------------------------------------------------------------------------------------
def test_blind_baselines_values():
    qs = [q("a", LONG, 0), q("b", LONG, 0), q("c", TIE2, 1), q("d", ["x", "yy", "zzz"], 2)]
    b = blind_baselines(qs)
    assert b["random"] == pytest.approx((0.25 * 3 + 1 / 3) / 4, abs=1e-6)
    assert b["longest"] == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    assert b["shortest"] == 0.0
    assert b["letter_prior"] == {"letter": "A", "accuracy": 0.5}
    # tie between letters: the earliest one
    assert blind_baselines([q("a", LONG, 1), q("b", LONG, 0)])["letter_prior"] == {"letter": "A", "accuracy": 0.5}


def sample_set() -> list[Question]:
    return [
        q("a1", LONG, 0, "cat", stem="Which part does this object have?", generator="wordnet", kind="part"),
        q("a2", LONG, 1, "cat", stem="which  part does this object have ?", generator="wordnet", kind="part"),
        q("a3", LONG, 2, "cat", stem="What does this object eat?", generator="llm", kind="diet"),
        q("b1", ["eeee", "ff", "gg", "hh"], 3, "dog", stem="Which part does this object have?", generator="llm",
          kind="part"),
    ]


def test_quality_report_contents_and_targets():
    qs = sample_set()
    verification = {"text_only_accuracy_without_name": 0.31, "kept": 4, "per_question": [1, 2]}
    rep = quality_report(qs, rejections=Counter({"leak": 3, "duplicate": 5, "bad_reference": 3}),
                         verification=verification, leaks=0, duplicates=0, meta={"seed": 7})
    # a1 and a2 share a (normalised) stem but not the answer: two distinct questions
    assert rep["n_questions"] == 4 and rep["distinct_questions"] == 4 and rep["classes"] == 2
    same = dataclasses.replace(qs[0], qid="a1-again", question="which  part does this object have ?")
    assert quality_report([*qs, same])["distinct_questions"] == 4
    assert rep["questions_per_class"] == {"min": 1, "median": 2.0, "max": 3}
    assert rep["letters"] == {"A": 1, "B": 1, "C": 1, "D": 1}
    assert rep["blind_baselines"]["longest"] == 0.25
    assert rep["text_only_llm"]["accuracy_without_name"] == 0.31
    assert "per_question" not in rep["text_only_llm"]["summary"]
    assert rep["rejections"] == {"total": 11, "by_reason": {"duplicate": 5, "bad_reference": 3, "leak": 3}}
    assert list(rep["rejections"]["by_reason"]) == ["duplicate", "bad_reference", "leak"]
    assert rep["by_generator"] == {"llm": 2, "wordnet": 2} and rep["by_kind"] == {"part": 3, "diet": 1}
    t = rep["targets"]
    assert t["letters_balanced"] == {"value": 0, "target": 1, "pass": True}
    assert t["longest"] == {"value": 0.25, "target": 0.30, "pass": True}
    assert t["no_leaks"]["pass"] and t["no_duplicates"]["pass"] and t["passes"] is True
    assert rep["meta"] == {"seed": 7}
    json.dumps(rep)                                                    # JSON-able

    # failing targets: letters unbalanced, longest too high, a leak left
    bad = [q(f"x{i}", LONG, 0) for i in range(3)] + [q("y", LONG, 1)]
    rep = quality_report(bad, leaks=2)
    assert rep["targets"]["letters_balanced"] == {"value": 3, "target": 1, "pass": False}
    assert rep["targets"]["longest"]["value"] == 0.75 and not rep["targets"]["longest"]["pass"]
    assert rep["targets"]["no_leaks"] == {"value": 2, "target": 0, "pass": False}
    # cross-class repeats are always counted now (none here), so the target is always there
    assert rep["targets"]["no_duplicates"] == {"value": 0, "target": 0, "pass": True}
    assert rep["targets"]["passes"] is False
    assert rep["text_only_llm"] is None and rep["rejections"] == {"total": 0, "by_reason": {}}
    # targets can be loosened
    loose = quality_report(bad, targets={"max_longest": 0.8, "max_letter_spread": 3})
    assert loose["targets"]["passes"] is True and loose["targets"]["longest"]["target"] == 0.8
    assert quality_report([])["targets"]["passes"] is True


def test_report_markdown_and_write(tmp_path):
    rep = quality_report(sample_set(), rejections=Counter({"leak": 2}), leaks=1, meta={"sources": ["wordnet"]})
    md = report_markdown(rep)
    assert md.startswith("# Quality report")
    assert "## Targets: FAIL" in md and "| no_leaks | 1 | = 0 | FAIL |" in md
    assert "| longest | 25.0% | ≤ 30.0% | pass |" in md
    assert "| A | 1 | 25.0% |" in md and "| leak | 2 |" in md and '["wordnet"]' in md
    json_path, md_path = write_report(rep, tmp_path / "out")
    assert json_path == tmp_path / "out" / "quality_report.json" and md_path.name == "quality_report.md"
    assert json.loads(json_path.read_text(encoding="utf-8")) == rep
    assert md_path.read_text(encoding="utf-8") == md
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["quality_report.json", "quality_report.md"]
    write_report(rep, tmp_path / "out")                                # overwrite in place, no leftovers
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_questions_from_benchmark_our_rows(tmp_path):
    def row(qid, image, options, answer, **extra):
        block = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(options))
        return {"question_id": f"{qid}-{image}", "image": f"images/{image}.jpg",
                "text": f"What does this object eat?\n{block}\nChoose A, B, C, or D.", "label": "ABCD"[answer],
                "options": options, "answer_index": answer, "class_id": "n02123045", "classname": "tabby",
                "qid": qid, "question_key": qid, **extra}

    opts = ["mice", "grass", "plankton", "rocks"]
    rows = [row("q1", "i1", opts, 0, reference="Cats eat mice.", generator="llm", kind="diet"),
            row("q1", "i2", opts, 0, reference="Cats eat mice.", generator="llm", kind="diet"),
            row("q2", "i1", ["a", "b", "c", "d"], 3)]
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    got = questions_from_benchmark(path)
    assert [x.qid for x in got] == ["q1", "q2"]
    first = got[0]
    assert (first.class_id, first.class_name, first.question) == ("n02123045", "tabby", "What does this object eat?")
    assert first.options == opts and first.answer == "mice" and first.reference == "Cats eat mice."
    assert (first.generator, first.kind, first.source) == ("llm", "diet", "benchmark:bench.jsonl")
    assert got[1].letter == "D"


# ----- the released ImageWikiQA file -----------------------------------------------------------------------
def test_released_imagewikiqa_report_and_debias(released_imagewikiqa, tmp_path):
    qs = questions_from_benchmark(released_imagewikiqa)
    assert len(qs) == 771
    assert qs[0].class_name == "stretcher" and qs[0].answer == "Trendelenburg position"
    assert qs[0].reference.startswith("The feet can be raised")
    rep = quality_report(qs)
    assert rep["distinct_questions"] == 771 and rep["classes"] == 527
    b = rep["blind_baselines"]
    # 284 questions with the correct option strictly longest, 97 tied with one other: 320.5 / 771
    assert blind_longest_accuracy(qs) == pytest.approx(320.5 / 771)
    assert b["longest"] == 0.415694 and b["shortest"] == 0.187635 and b["random"] == 0.25
    # over the 771 distinct questions B is the most frequent correct letter (A leads over the 2000 rows)
    assert rep["letters"] == {"A": 193, "B": 199, "C": 183, "D": 196}
    assert b["letter_prior"] == {"letter": "B", "accuracy": round(199 / 771, 6)}
    assert rep["targets"]["passes"] is False
    assert not rep["targets"]["longest"]["pass"] and rep["targets"]["letters_balanced"]["value"] == 16

    out, reasons = debias(qs, seed=0)
    assert reasons == Counter({"length_bias": 128}) and len(out) == 643   # the fewest drops possible
    after = quality_report(out, rejections=reasons)
    # length control alone no longer meets the targets: learned blind solvers still read the answer from
    # the options on held-out classes, and 32 questions name their class (21 by the head word only)
    assert rep["leak_check"]["questions"] == 32 and rep["leak_check"]["head_word"] == 21
    assert {"qid": "row000005", "class_name": "toy store", "found": ["store"]} in rep["leak_check"]["examples"]
    assert rep["cross_class_duplicates"]["questions"] == 0
    for r in (rep, after):
        assert r["targets"]["learned_blind"]["value"] > 0.35 and not r["targets"]["learned_blind"]["pass"]
    assert after["targets"]["passes"] is False
    assert [k for k, c in after["targets"].items() if k != "passes" and not c["pass"]] == ["learned_blind", "no_leaks"]
    assert after["blind_baselines"]["longest"] == 0.299378
    assert after["classes"] == 527                                     # every class keeps a question
    assert sorted(after["letters"].values()) == [160, 161, 161, 161]
    json_path, md_path = write_report(after, tmp_path)
    assert "## Targets: FAIL" in md_path.read_text(encoding="utf-8")
    assert "## Learned blind solvers (question and options only, held-out classes)" in md_path.read_text()
    assert json.loads(json_path.read_text(encoding="utf-8"))["n_questions"] == 643
    assert Path(released_imagewikiqa).is_file()
