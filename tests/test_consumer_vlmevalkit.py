"""VLMEvalKit's TSV conventions (builders.writers.vlmevalkit_rules) on real built TSVs, read as VLMEvalKit reads
them (``pandas.read_csv(path, sep="\\t")``): the embedded sample built with ``--outputs vlmevalkit,mcq`` at 4 and
26 choices, and an ImageWikiQA TSV with circular rows from ``imagewikiqa.exports``. The checker is also shown to
catch each broken convention, and the README written beside the TSVs to carry the registration steps."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from inprocess import run_main

from builders.imagenet_qa import main as build_main
from builders.writers.vlmevalkit_rules import (
    TsvCheck,
    check_name,
    check_questions,
    check_table,
    suggested_name,
    vlmevalkit_prompt,
)
from imagewikiqa.assemble import PairedItem, shift_options
from imagewikiqa.exports import TSV_CIRCULAR_OFFSET, write_llava_jsonl, write_vlmevalkit_tsv
from imagewikiqa.records import Question

SAMPLE_VAL = Path(__file__).resolve().parents[1] / "builders" / "sample" / "imagenet" / "val"


def read_like_vlmevalkit(path: Path, decode_images: bool = True) -> TsvCheck:
    """``vlmeval/smp/file.py:load`` for a ``.tsv``, then the rules."""
    frame = pd.read_csv(path, sep="\t")
    return check_table(list(frame.columns), frame.to_dict("records"), decode_images)


def eval_split(folder: Path) -> str:
    """The eval split's file stem (``validation`` after #18's split names, ``val`` before)."""
    return next(p.stem for p in sorted(folder.glob("*.tsv")) if p.stem != "train")


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module", params=[4, 26], ids=["mcq4", "mcq26"])
def built(request, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(f"vk{request.param}") / "imnet_build"
    res = run_main(build_main, "--out", str(out), "--outputs", "vlmevalkit,mcq", "--mcq-choices",
                   str(request.param), "--quiet")
    assert res.returncode == 0, res.stderr
    return out


def iwqa_items(permutations: int) -> list[PairedItem]:
    """Three hand-written questions on two sample images each, in ``permutations`` option orders."""
    images = sorted(SAMPLE_VAL.glob("*.JPEG"))[:2]
    items = []
    for n, (cid, name) in enumerate([("n04485082", "tripod"), ("n03773504", "missile"), ("n02123045", "tabby")]):
        q = Question(qid=f"{cid}-fact-{n}", class_id=cid, class_name=name,
                     question=f"What is true of this object ({n})?", options=[f"fact {c} {n}" for c in "wxyz"],
                     answer_index=n % 4, reference="A sentence.", source="hand", generator="hand", kind="fact")
        for img in images:
            for k in range(permutations):
                options, answer = shift_options(q.options, q.answer_index, k)
                items.append(PairedItem(q, img.stem, img.read_bytes(), "jpg", k, options, answer))
    return items


@pytest.fixture(scope="module")
def iwqa(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("iwqa") / "bench"
    items = iwqa_items(permutations=2)
    write_llava_jsonl(items, out / "llava")
    write_vlmevalkit_tsv(items, out / "vlmevalkit" / "benchmark.tsv")
    return out


def test_built_tsv_follows_vlmevalkit_rules(built):
    split = eval_split(built / "vlmevalkit")
    check = read_like_vlmevalkit(built / "vlmevalkit" / f"{split}.tsv")
    assert check.problems == []
    assert len(check.rows) == 10
    k = int(json.loads((built / "manifest.json").read_text())["config"]["mcq_choices"])
    assert [c for c in check.columns if len(c) == 1] == [chr(65 + i) for i in range(k)]
    # build_prompt's options are exactly our options, the stem is ours, the answer is the letter at answer_index
    assert check_questions(check, jsonl(built / "mcq" / f"{split}.jsonl")) == []
    prompt = vlmevalkit_prompt(check.rows[0])
    assert prompt.startswith(f"Question: {check.rows[0]['question']}\nOptions:\nA. ")
    assert prompt.count("\n") == 2 + k + 1


def test_readme_beside_built_tsvs_has_the_registration_steps(built):
    split = eval_split(built / "vlmevalkit")
    readme = (built / "vlmevalkit" / "README.md").read_text(encoding="utf-8")
    name = suggested_name("vlmcd", split)
    assert name == f"vlmcd_{split}" and check_name(name) == []
    assert f'cp OUT/vlmevalkit/{split}.tsv "$LMUData/{name}.tsv"' in readme
    assert "--model MODEL --judge exact_matching" in readme and f" {name} " in readme
    assert f"MODEL_{name}.xlsx --questions OUT/mcq/{split}.jsonl" in readme


def test_imagewikiqa_tsv_follows_rules_and_circular_index(iwqa):
    check = read_like_vlmevalkit(iwqa / "vlmevalkit" / "benchmark.tsv")
    assert check.problems == []
    assert check_questions(check, jsonl(iwqa / "llava" / "benchmark.jsonl")) == []
    indices = [r["index"] for r in check.rows]
    assert sorted(i % TSV_CIRCULAR_OFFSET for i in indices) == sorted(list(range(6)) * 2)
    assert sum(i >= TSV_CIRCULAR_OFFSET for i in indices) == 6
    readme = (iwqa / "vlmevalkit" / "README.md").read_text(encoding="utf-8")
    assert "containing `circular`" in readme and "--questions OUT/llava/benchmark.jsonl" in readme
    assert 'cp OUT/vlmevalkit/benchmark.tsv "$LMUData/imagewikiqa_benchmark.tsv"' in readme


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """A copy of a built TSV with ``edit(row_number, row)`` applied (csv round trip as TsvWriter writes)."""
    with open(src, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for n, row in enumerate(rows):
        edit(n, row)
    with open(dst, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return dst


BROKEN = {
    "option_read_as_nan": (lambda n, r: r.update(B="None") if n == 0 else None, "not A, B, ... without a gap"),
    "duplicate_index": (lambda n, r: r.update(index="0") if n == 1 else None, "index repeats"),
    "answer_not_an_option": (lambda n, r: r.update(answer="AB") if n == 2 else None, "not one of its option"),
    "options_in_question": (lambda n, r: r.update(question=r["question"] + "\nA. cat\nB. dog") if n == 3 else None,
                            "lettered option line"),
    "truncated_image": (lambda n, r: r.update(image=base64.b64encode(base64.b64decode(r["image"])[:300]).decode())
                        if n == 4 else None, "does not decode"),
    "short_image": (lambda n, r: r.update(image="5") if n == 5 else None, "at most 64 characters"),
    "empty_category": (lambda n, r: r.update(category="") if n == 6 else None, "category is empty"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_checker_catches_each_broken_convention(built, tmp_path, case):
    split = eval_split(built / "vlmevalkit")
    edit, expected = BROKEN[case]
    bad = _rewrite(built / "vlmevalkit" / f"{split}.tsv", tmp_path / "bad.tsv", edit)
    problems = read_like_vlmevalkit(bad).problems
    assert len(problems) == 1 and expected in problems[0], problems


def test_checker_catches_a_question_file_that_disagrees(iwqa):
    check = read_like_vlmevalkit(iwqa / "vlmevalkit" / "benchmark.tsv", decode_images=False)
    rows = jsonl(iwqa / "llava" / "benchmark.jsonl")
    rows[0] = {**rows[0], "options": list(reversed(rows[0]["options"]))}
    rows[1] = {**rows[1], "answer_index": (rows[1]["answer_index"] + 1) % 4}
    problems = check_questions(check, rows)
    assert len(problems) == 2 and "differ" in problems[0] and "answer_index" in problems[1]


def test_dataset_names_that_switch_vlmevalkit_behaviour():
    assert check_name("imagenet_mcq4_validation") == []
    assert any("circular scoring" in p for p in check_name("MMBench_mine"))
    assert any("MMMU" in p for p in check_name("my_mmmu_copy"))
    assert check_name("bad name/x")
    assert check_name(suggested_name("MMBench_circular", "validation")) == []
