"""imagewikiqa.evaluate: scoring replies to ImageWikiQA-style multiple-choice benchmarks (real files)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl

from imagewikiqa.__main__ import main
from imagewikiqa.evaluate import (
    evaluate_files,
    load_benchmark,
    load_predictions,
    score_items,
    summary_text,
    write_report,
)
from vlm_classdata.errors import run_cli

REPO = Path(__file__).resolve().parents[1]
ANIMALS = ["cat", "dog", "horse", "bird"]
NO_DOG = ["cat", "horse", "bird", "fish"]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def mcq_row(qid: str, options: list[str], answer: int, stem: str = "Which animal is this?", **extra) -> dict:
    block = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(options))
    return {"question_id": qid, "image": f"images/{qid}.jpg", "text": f"{stem}\n{block}\nChoose A, B, C, or D.",
            "label": "ABCD"[answer], "classname": extra.pop("classname", "tabby cat"), "wiki": "...",
            "options": options, "answer_index": answer, **extra}


# (reply, options, gold index, parsed index, how)
PARSE_CASES = [
    ("(B)", ANIMALS, 1, 1, "letter"),
    ("B.", ANIMALS, 1, 1, "letter"),
    ("Answer: B", ANIMALS, 1, 1, "final_answer"),
    ("the answer is B", ANIMALS, 1, 1, "final_answer"),
    ("dog", ANIMALS, 1, 1, "option_text"),
    ("A dog is shown in the image.", ANIMALS, 0, 1, "option_text"),  # the article, not option A
    ("A dog is shown in the image.", NO_DOG, 0, None, "unknown"),
    ("I cannot tell from the image.", ANIMALS, 1, None, "refusal"),
    ("I'm sorry, I can't determine that.", ANIMALS, 1, None, "refusal"),
    ("b", ANIMALS, 1, 1, "letter"),
    ("**C**", ANIMALS, 2, 2, "letter"),
    ("A or B", ANIMALS, 1, None, "ambiguous"),
    ("Z", ANIMALS, 1, None, "unknown"),
    ("D", ANIMALS, 1, 3, "letter"),  # answered, wrong
]


def test_reply_parsing_cases_through_the_evaluator(tmp_path):
    bench = write_jsonl(tmp_path / "bench.jsonl",
                        [mcq_row(f"q{i}", opts, gold) for i, (_, opts, gold, _, _) in enumerate(PARSE_CASES)])
    preds = write_jsonl(tmp_path / "preds.jsonl",
                        [{"question_id": f"q{i}", "prediction": c[0]} for i, c in enumerate(PARSE_CASES)])
    items, _ = load_benchmark(bench)
    results = score_items(items, load_predictions(preds))
    assert [(r.index, r.how) for r in results] == [(c[3], c[4]) for c in PARSE_CASES]
    assert [r.correct for r in results] == [c[2] == c[3] for c in PARSE_CASES]

    rep = evaluate_files(preds, bench)
    n_correct = sum(c[2] == c[3] for c in PARSE_CASES)
    n_answered = sum(c[3] is not None for c in PARSE_CASES)
    assert (rep["n_items"], rep["correct"], rep["answered"]) == (len(PARSE_CASES), n_correct, n_answered)
    assert rep["accuracy"] == round(n_correct / len(PARSE_CASES), 6)
    assert rep["accuracy_answered"] == round(n_correct / n_answered, 6)
    assert rep["no_answer"]["by_how"] == {"refusal": 2, "ambiguous": 1, "unknown": 2, "error": 0}
    assert rep["no_answer"]["count"] == 5 and rep["missing"] == 0
    # the "A dog" replies never count as letter A
    assert rep["letters"]["predicted"]["A"] == 0


def test_missing_unmatched_duplicate_and_error_rows(tmp_path):
    bench = write_jsonl(tmp_path / "bench.jsonl", [mcq_row(f"q{i}", ANIMALS, i % 4) for i in range(5)])
    preds = write_jsonl(tmp_path / "preds.jsonl", [
        {"id": "q0", "response": "A"},            # correct
        {"id": "q1", "output": "C"},              # wrong
        {"id": "q1", "output": "B"},              # duplicate: the first row counts
        {"index": "q2", "answer": None},          # no reply → error
        {"question_id": "zzz", "text": "A"},      # not in the benchmark
    ])  # q3, q4 missing
    rep = evaluate_files(preds, bench)
    assert rep["unmatched_predictions"] == 1 and rep["duplicate_predictions"] == 1
    assert rep["missing"] == 2 and rep["predicted"] == 3 and rep["missing_rate"] == 0.4
    assert rep["no_answer"]["by_how"]["error"] == 1
    assert rep["accuracy"] == 0.2                     # strict: 1 / 5
    assert rep["accuracy_predicted"] == round(1 / 3, 6)
    assert rep["accuracy_answered"] == 0.5            # 1 of 2 parsed answers
    assert rep["parse_how"] == {"error": 1, "letter": 2, "missing": 2}
    lo, hi = rep["accuracy_ci95"]
    assert 0.0 <= lo <= rep["accuracy"] <= hi <= 1.0


# ----- the released ImageWikiQA file ----------------------------------------------------------------------
def _released_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _options(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^[A-D]\. (.*)$", text, flags=re.M)]


def test_released_file_blind_baselines_by_position(tmp_path, released_imagewikiqa):
    rows = _released_rows(released_imagewikiqa)
    assert len(rows) == 2000
    gold = [r["label"] for r in rows]
    longest = []
    for r in rows:
        opts = _options(r["text"])
        assert len(opts) == 4
        longest.append("ABCD"[max(range(4), key=lambda i: (len(opts[i]), -i))])

    def run(name: str, replies: list) -> dict:
        path = write_jsonl(tmp_path / f"{name}.jsonl", replies)  # no ids: matched by line position
        return evaluate_files(path, released_imagewikiqa)

    always_a = run("a", [{"text": "A"} for _ in rows])
    assert always_a["matched_predictions"] == 2000 and always_a["missing"] == 0
    assert always_a["accuracy"] == round(gold.count("A") / 2000, 6)
    assert always_a["letters"]["gold"] == dict(sorted(Counter(gold).items()))
    assert always_a["letters"]["predicted"] == {"A": 2000, "B": 0, "C": 0, "D": 0}

    gold_rep = run("gold", [{"prediction": g} for g in gold])
    assert gold_rep["accuracy"] == 1.0 and gold_rep["distinct_questions"]["macro_accuracy"] == 1.0

    long_rep = run("longest", [f"({x})" for x in longest])  # bare JSON strings work too
    expected = sum(x == g for x, g in zip(longest, gold, strict=True)) / 2000
    assert long_rep["accuracy"] == round(expected, 6)
    assert 0.40 < long_rep["accuracy"] < 0.44

    stems = {(r["classname"], r["text"].split("\nA. ")[0]) for r in rows}
    assert always_a["distinct_questions"]["count"] == len(stems) == 771
    assert sum(q["n"] for q in always_a["per_question"]) == 2000
    assert always_a["circular"] is None


# ----- our format: question_key, permutations, circular evaluation ---------------------------------------
def _perm(options: list[str], shift: int) -> list[str]:
    return options[shift:] + options[:shift]


def test_circular_evaluation_hand_computed(tmp_path):
    base = ["tench", "goldfish", "shark", "ray"]  # correct: goldfish
    rows, replies = [], []

    def add(qid: str, key: str, image: str, shift: int, reply: str | None, stem: str) -> None:
        opts = _perm(base, shift)
        rows.append(mcq_row(qid, opts, opts.index("goldfish"), stem=stem, question_key=key, permutation=shift,
                            classname="goldfish", image=image))
        if reply is not None:
            # LLaVA model_vqa answer rows
            replies.append({"question_id": qid, "prompt": "...", "text": reply, "answer_id": "x", "model_id": "m"})

    # q1 on img1: 3 permutations all correct → group correct, consistent
    for s in range(3):
        add(f"q1_i1_p{s}", "q1", "img1.jpg", s, "goldfish", "What is this fish?")
    # q1 on img2: permutation 1 answered "tench" → group wrong, inconsistent
    add("q1_i2_p0", "q1", "img2.jpg", 0, "B", "What is this fish?")
    add("q1_i2_p1", "q1", "img2.jpg", 1, "tench", "What is this fish?")
    # q2 on img3: permutation 1 missing → group wrong
    add("q2_i3_p0", "q2", "img3.jpg", 0, "Answer: B", "Which fish is kept in ponds?")
    add("q2_i3_p1", "q2", "img3.jpg", 1, None, "Which fish is kept in ponds?")
    bench = write_jsonl(tmp_path / "bench.jsonl", rows)
    preds = write_jsonl(tmp_path / "preds.jsonl", replies)

    rep = evaluate_files(preds, bench)
    assert rep["n_items"] == 7 and rep["correct"] == 5 and rep["missing"] == 1
    c = rep["circular"]
    assert (c["n_groups"], c["correct"], c["accuracy"]) == (3, 1, round(1 / 3, 6))
    assert c["consistent"] == 1
    assert c["group_sizes"] == {"2": 2, "3": 1}
    assert c["accuracy_permutation0"] == 1.0        # q1_i1_p0, q1_i2_p0, q2_i3_p0 all right
    dq = rep["distinct_questions"]
    assert dq["count"] == 2                          # by question_key
    per_q = {q["key"]: (q["n"], q["correct"]) for q in rep["per_question"]}
    assert per_q == {"q1": (5, 4), "q2": (2, 1)}
    assert dq["macro_accuracy"] == round((4 / 5 + 1 / 2) / 2, 6)
    assert rep["per_class"]["goldfish"]["n"] == 7
    assert "circular: 1/3 groups" in summary_text(rep)


def test_circular_group_field_overrides_grouping(tmp_path):
    rows = [mcq_row("a", ANIMALS, 1, circular_group="g1"), mcq_row("b", _perm(ANIMALS, 1), 0, circular_group="g1"),
            mcq_row("c", ANIMALS, 1, circular_group="g2")]
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prediction": "B"}, {"id": "b", "prediction": "A"},
                                              {"id": "c", "prediction": "A"}])
    rep = evaluate_files(preds, write_jsonl(tmp_path / "b.jsonl", rows))
    assert rep["circular"]["n_groups"] == 2 and rep["circular"]["correct"] == 1
    # no question_key: a distinct question is classname + stem, the same here for all three rows
    assert rep["distinct_questions"]["count"] == 1


# ----- sidecar parquet -----------------------------------------------------------------------------------
def test_verify_sidecar_parquet_as_predictions(tmp_path):
    bench = write_jsonl(tmp_path / "bench.jsonl", [mcq_row(f"q{i}", ANIMALS, i % 4) for i in range(4)])
    side = tmp_path / "mcq.llava.parquet"
    pl.DataFrame({"sample_id": ["q0", "q1", "q2", "q3"], "status": ["ok", "ok", "error", "ok"],
                  "error": [None, None, "image_unreadable", None],
                  "reply": ["(A)", "The answer is B.", None, "A"]}).write_parquet(side)
    rep = evaluate_files(side, bench)
    assert (rep["correct"], rep["answered"], rep["predicted"]) == (2, 3, 4)
    assert rep["no_answer"]["by_how"]["error"] == 1 and rep["accuracy"] == 0.5

    bad = tmp_path / "noreply.parquet"
    pl.DataFrame({"sample_id": ["q0"], "status": ["ok"]}).write_parquet(bad)
    assert run_cli(main, ["evaluate", str(bad), "--questions", str(bench)]) == 2


# ----- CLI -----------------------------------------------------------------------------------------------
def test_cli_evaluate_writes_deterministic_report(tmp_path, capsys):
    bench = write_jsonl(tmp_path / "bench.jsonl",
                        [mcq_row(f"q{i}", ANIMALS, i % 4, classname=f"class{i % 3}") for i in range(9)])
    preds = write_jsonl(tmp_path / "preds.jsonl", [{"question_id": f"q{i}", "text": "B"} for i in range(8)])
    out, out2, per_class = tmp_path / "r.json", tmp_path / "r2.json", tmp_path / "c.csv"
    argv = ["evaluate", str(preds), "--questions", str(bench), "--out", str(out), "--per-class-csv", str(per_class)]
    assert run_cli(main, argv) == 0
    text = capsys.readouterr().out
    assert "items 9: accuracy 22.22%" in text and "distinct questions 3" in text and "worst classes:" in text
    report = json.loads(out.read_text())
    assert report["correct"] == 2 and report["missing"] == 1
    assert list(report) == sorted(report)
    write_report(evaluate_files(preds, bench) | {"files": report["files"]}, out2)
    assert out.read_bytes() == out2.read_bytes()
    with open(per_class, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["classname"] for r in table] == ["class0", "class1", "class2"]
    assert sum(int(r["n"]) for r in table) == 9


def test_cli_module_entry_point(tmp_path):
    bench = write_jsonl(tmp_path / "bench.jsonl", [mcq_row("q0", ANIMALS, 2)])
    preds = write_jsonl(tmp_path / "preds.jsonl", [{"question_id": "q0", "text": "C"}])
    ok = subprocess.run([sys.executable, "-m", "imagewikiqa", "evaluate", str(preds), "--questions", str(bench)],
                        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "accuracy 100.00%" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "imagewikiqa", "evaluate", str(tmp_path / "nope.jsonl"),
                          "--questions", str(bench)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not found" in bad.stderr


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    bench = write_jsonl(tmp_path / "bench.jsonl", [mcq_row(f"q{i}", ANIMALS, 0) for i in range(3)])
    good = write_jsonl(tmp_path / "good.jsonl", [{"question_id": "q0", "text": "A"}])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question_id": "q0", "text": "A"}\n{not json\n', encoding="utf-8")
    by_position = write_jsonl(tmp_path / "pos.jsonl", [{"text": "A"}])  # row000000 ≠ q0
    broken_bench = tmp_path / "broken_bench.jsonl"
    broken_bench.write_text("[1, 2]\n", encoding="utf-8")
    cases = [
        ([str(tmp_path / "missing.jsonl"), "--questions", str(bench)], "not found"),
        ([str(good), "--questions", str(tmp_path / "nobench.jsonl")], "not found"),
        ([str(broken), "--questions", str(bench)], "broken.jsonl:2: not valid JSON"),
        ([str(by_position), "--questions", str(bench)], "no prediction id matches"),
        ([str(good), "--questions", str(broken_bench)], "expected a JSON object"),
    ]
    for args, message in cases:
        assert run_cli(main, ["evaluate", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, (args, err)
