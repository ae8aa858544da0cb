"""Multi-label truth (``builders.verify run --multi-labels FILE``) on the embedded sample's 10 validation images.

Scripted tiny LLaVAs (always one known reply) go through the real loading path; a small ReaL-format JSON gives two
images two accepted classes (espresso + cup, tabby + tiger cat), one image none, and relabels an espresso image as a
cup and a tabby as a tiger cat (as ReaL does), so ``correct_any`` differs from ``correct`` in both directions and
every value is known in advance.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from builders.imagenet_qa import main as build_main
from builders.verify.__main__ import main as verify_main
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.verification.items import build_vocabulary
from vlm_classdata.verification.multilabels import load_multi_labels
from vlm_classdata.vlm.tiny import make_scripted_llava

MISSILE, TRIPOD, TABBY, ESPRESSO, CUP = "n03773504", "n04485082", "n02123045", "n07920052", "n07930864"
# the sample's validation images (ILSVRC2012_val_%08d) → accepted class indices into classes.json
# (812 space shuttle, 657 missile, 872 tripod, 281 tabby cat, 282 tiger cat, 967 espresso, 968 tea cup "cup")
REAL = {59: [872], 103: [], 559: [812], 700: [657], 1341: [282], 1525: [657], 1795: [812], 2823: [281, 282],
        2934: [967, 968], 5417: [968]}
VAL = [f"ILSVRC2012_val_{n:08d}" for n in REAL]
SCORED = [v for v, n in zip(VAL, REAL, strict=True) if REAL[n]]  # 103 has no valid label


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The embedded sample built with eval_open and mcq, a ReaL JSON covering val 1..5417, scripted models."""
    base = tmp_path_factory.mktemp("ml")
    build = base / "build"
    assert build_main(["--out", str(build), "--outputs", "eval_open,mcq", "--quiet"]) == 0
    real = [REAL.get(i + 1, [0]) for i in range(5417)]  # images outside the sample: tench, never an item
    (base / "real.json").write_text(json.dumps(real))
    models = {name: make_scripted_llava(str(base / name), reply)
              for name, reply in (("espresso", "espresso"), ("cup", "cup"), ("says_c", "C"))}
    return build, base / "real.json", models


def verify(build: Path, out: Path, passes: str, model: str, alias: str, *extra: str) -> int:
    return run_cli(verify_main, ["run", "--build", str(build), "--passes", passes, "--model", model,
                                 "--alias", alias, "--out", str(out), "--max-new-tokens", "6", "--quiet",
                                 "--splits", "validation", *extra])


def sidecar(out: Path, stem: str) -> tuple[pl.DataFrame, dict]:
    frame = pl.read_parquet(out / f"{stem}.parquet")
    assert frame["sample_id"].to_list() == VAL
    return frame, json.loads((out / f"{stem}.json").read_text())


def test_label_check_mcq_rank_score_any_accepted_class(sample, tmp_path, capsys):
    build, real, models = sample
    out = tmp_path / "v"
    assert verify(build, out, "label_check,rank", models["espresso"], "espresso", "--multi-labels", str(real)) == 0
    err = capsys.readouterr().err
    assert ("multi-labels " + str(real) + ": 9 of 10 eval_open items have accepted classes (1 with none, "
            "0 not in the file); 5407 file entries match no item") in err

    vocab = build_vocabulary(build)
    accepted = [[vocab.by_index(i).class_id for i in REAL[n]] for n in REAL]
    # label_check "espresso": right for both espresso images, right for any only where espresso is accepted
    frame, summary = sidecar(out, "label_check.espresso")
    assert frame["accepted_class_ids"].to_list() == accepted
    assert frame["correct"].to_list() == [False] * 8 + [True, True]
    assert frame["correct_any"].to_list() == [False, None, *[False] * 6, True, False]
    assert (summary["accuracy"], summary["accuracy_any"]) == (0.2, round(1 / 9, 6))
    assert (summary["multi_label_items"], summary["correct_any"]) == (9, 1)

    # rank: the scripted model puts "espresso" first for every image; top-1 judged against the accepted set
    frame, summary = sidecar(out, "rank.espresso")
    assert set(frame["top1_class_id"]) == {ESPRESSO}
    assert frame["correct_any"].to_list() == [False, None, *[False] * 6, True, False]
    assert (summary["accuracy"], summary["accuracy_any"], summary["multi_label_items"]) == (0.2, round(1 / 9, 6), 9)

    # label_check "cup" (a synonym of tea cup): wrong for every single label, right for both cup images
    assert verify(build, out, "label_check", models["cup"], "cup", "--multi-labels", str(real)) == 0
    frame, summary = sidecar(out, "label_check.cup")
    assert frame["correct"].to_list() == [False] * 10
    assert frame["correct_any"].to_list() == [False, None, *[False] * 6, True, True]
    assert (summary["accuracy"], summary["accuracy_any"]) == (0.0, round(2 / 9, 6))

    # mcq "C": the option shown third; right for any when its class (option_class_ids) is accepted
    assert verify(build, out, "mcq", models["says_c"], "says_c", "--multi-labels", str(real)) == 0
    rows = {r["question_id"]: r for r in map(json.loads, (build / "mcq" / "validation.jsonl").read_text().splitlines())}
    third = [rows[v]["option_class_ids"][2] for v in VAL]
    frame, summary = sidecar(out, "mcq.says_c")
    assert set(frame["pred_index"]) == {2}
    assert frame["correct"].to_list() == [rows[v]["answer"] == "C" for v in VAL]
    expected = [None if not a else c in a for c, a in zip(third, accepted, strict=True)]
    assert frame["correct_any"].to_list() == expected
    # this build's third options: the missile of val 700 (accepted), the tabby of val 1341 (relabelled tiger cat)
    assert third[VAL.index("ILSVRC2012_val_00000700")] == MISSILE and third[VAL.index("ILSVRC2012_val_00001341")] == TABBY
    assert frame["correct"].to_list()[3:5] == [True, True]
    assert expected == [False, None, False, True, *[False] * 6]
    assert summary["accuracy_any"] == round(1 / 9, 6) and summary["multi_label_items"] == 9


def test_jsonl_truth_rescores_cached_answers_and_no_file_leaves_nulls(sample, tmp_path, capsys):
    """JSONL with class ids or indices; a run with another truth file re-scores the cached answers (nothing is
    asked again); without a file the columns are null and the summary has no accuracy_any."""
    build, _, models = sample
    truth = tmp_path / "truth.jsonl"
    truth.write_text("\n".join(json.dumps(r) for r in [
        {"id": "ILSVRC2012_val_00000059", "class_ids": [TRIPOD, ESPRESSO]},
        {"id": "ILSVRC2012_val_00000700", "labels": [657]},
        {"id": "ILSVRC2012_val_00001341", "class_ids": []},
        {"id": "no_such_image", "labels": [1]},
    ]) + "\n")
    out = tmp_path / "v"
    assert verify(build, out, "label_check", models["espresso"], "espresso") == 0
    frame, summary = sidecar(out, "label_check.espresso")
    assert frame["correct_any"].null_count() == 10 and frame["accepted_class_ids"].null_count() == 10
    assert "accuracy_any" not in summary and "multi_label_items" not in summary
    capsys.readouterr()

    assert verify(build, out, "label_check", models["espresso"], "espresso", "--multi-labels", str(truth)) == 0
    captured = capsys.readouterr()
    assert "2 of 10 eval_open items have accepted classes (1 with none, 7 not in the file); 1 file entries" in captured.err
    assert "answered now 0, from cache 10" in captured.out and "any-label accuracy 0.500 over 2 items" in captured.out
    frame, summary = sidecar(out, "label_check.espresso")
    assert frame["accepted_class_ids"].to_list()[:6] == [[TRIPOD, ESPRESSO], None, None, [MISSILE], [], None]
    assert frame["correct_any"].to_list() == [True, None, None, False, None, None, None, None, None, None]
    assert (summary["accuracy_any"], summary["multi_label_items"], summary["accuracy"]) == (0.5, 2, 0.2)


@pytest.mark.parametrize(("content", "message"), [
    ("[[1], [1000]]", "entry 1: class index 1000 is outside the 1000 classes"),
    ('[[1], ["n01440764"]]', "entry 1: class index 'n01440764' is not an integer"),
    ('{"ILSVRC2012_val_00000059": [1]}', ":1: expected {\"id\""),
    ('{"id": "a", "class_ids": ["n99999999"]}', ":1: unknown class id 'n99999999'"),
    ('{"id": "a", "class_ids": ["n01440764"], "labels": [0]}', ":1: give exactly one of class_ids and labels"),
    ('{"id": "a", "labels": [0]}\n{"id": "a", "labels": [1]}', ":2: id 'a' repeated"),
    ('[[1]', "not valid JSON"),
    ("  \n", "empty file"),
    ('{"id": "not_an_item", "labels": [0]}', "names none of the 10 eval_open items"),
])
def test_bad_multi_label_files_are_one_line_exit_2(sample, tmp_path, capsys, content, message):
    build, _, models = sample
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert verify(build, tmp_path / "v", "label_check", models["espresso"], "espresso", "--multi-labels", str(bad)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.strip().count("\n") == 0 and message in err, err


def test_options_that_cannot_use_multi_labels(sample, tmp_path, capsys):
    build, real, models = sample
    assert verify(build, tmp_path / "v", "blind", models["says_c"], "c", "--multi-labels", str(real)) == 2
    assert "--multi-labels applies to label_check, mcq, rank; none of them is in --passes" in capsys.readouterr().err
    assert verify(build, tmp_path / "v", "label_check", models["says_c"], "c", "--multi-labels",
                  str(tmp_path / "nope.json")) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(UserError, match="outside"):  # the reader for other tools checks the same way
        load_multi_labels(real, build_vocabulary(build).subset([CUP, ESPRESSO]))
