"""The issue's reply cases, each from a scripted tiny LLaVA loaded like any checkpoint and asked the build's own
open question by ``builders.verify run``: the verdicts land in the label_check sidecar and its summary.

Images: a generated ImageNet-layout tree with the real wnids of golden retriever and laptop (one validation
photo each). Replies: "golden retriever" (exact), "dog" (more generic, 4 steps up: golden retriever → retriever →
sporting dog → hunting dog → dog), "a cat" (out of vocabulary: cat.n.01 is no ImageNet class and no close relative),
"notebook" (for the laptop: notebook computer, a sibling class of ImageNet; for the dog: another class),
"I can't tell" (refusal), "espresso" (another class), "penguin" (out of vocabulary, a WordNet noun).
"""

from __future__ import annotations

import json

import polars as pl
from inprocess import run_main
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from builders.imagenet_qa import main as build_main
from builders.synthetic import make_imagenet_tree
from builders.verify.__main__ import main as verify_main
from vlm_classdata.vlm.tiny import make_scripted_llava

RETRIEVER, LAPTOP = "n02099601", "n03642806"
NOTEBOOK_COMPUTER, ESPRESSO = "n03832673", "n07920052"
REPLIES = {"golden": "golden retriever", "dog": "dog", "cat": "a cat", "notebook": "notebook",
           "cant": "I can't tell", "espresso": "espresso", "penguin": "penguin"}
# model → class → (verdict, steps, verdict_class_id, verdict_synset)
EXPECTED = {
    "golden": {RETRIEVER: ("exact", None, None, None), LAPTOP: ("other_class", None, RETRIEVER, None)},
    "dog": {RETRIEVER: ("more_generic", 4, None, "dog.n.01"), LAPTOP: ("out_of_vocabulary", None, None, "dog.n.01")},
    "cat": {RETRIEVER: ("out_of_vocabulary", None, None, "cat.n.01"),
            LAPTOP: ("out_of_vocabulary", None, None, "cat.n.01")},
    "notebook": {RETRIEVER: ("other_class", None, NOTEBOOK_COMPUTER, None),
                 LAPTOP: ("sibling", 2, NOTEBOOK_COMPUTER, None)},
    "cant": {RETRIEVER: ("refusal", None, None, None), LAPTOP: ("refusal", None, None, None)},
    "espresso": {RETRIEVER: ("other_class", None, ESPRESSO, None), LAPTOP: ("other_class", None, ESPRESSO, None)},
    "penguin": {RETRIEVER: ("out_of_vocabulary", None, None, "penguin.n.01"),
                LAPTOP: ("out_of_vocabulary", None, None, "penguin.n.01")},
}


def test_the_issue_cases_get_their_verdicts_through_verify_run(tmp_path):
    make_imagenet_tree(tmp_path / "tree", [RETRIEVER, LAPTOP], train_per_class=0, val_per_class=1, size=(40, 32))
    build = tmp_path / "build"
    res = run_main(build_main, "--root", str(tmp_path / "tree"), "--out", str(build), "--outputs", "eval_open",
                   "--quiet")
    assert res.returncode == 0, res.stderr
    args = ["run", "--build", str(build), "--passes", "label_check", "--quiet", "--max-new-tokens", "8"]
    for alias, reply in REPLIES.items():
        args += ["--model", make_scripted_llava(str(tmp_path / alias), reply), "--alias", alias]
    res = run_main(verify_main, *args)
    assert res.returncode == 0, res.stderr
    for alias, by_class in EXPECTED.items():
        side = pl.read_parquet(build / "verify" / f"label_check.{alias}.parquet")
        assert side["reply"].to_list() == [REPLIES[alias]] * 2
        got = {r["class_id"]: (r["verdict"], r["verdict_steps"], r["verdict_class_id"], r["verdict_synset"])
               for r in side.to_dicts()}
        for class_id, (verdict, steps, other, synset) in by_class.items():
            assert got[class_id][0] == verdict, (alias, class_id, got[class_id])
            assert got[class_id][1] == steps and got[class_id][2] == other, (alias, class_id, got[class_id])
            if synset is not None:
                assert got[class_id][3] == synset, (alias, class_id, got[class_id])
        summary = json.loads((build / "verify" / f"label_check.{alias}.json").read_text())
        assert summary["verdicts_by_class"] == {c: {v[0]: 1} for c, v in sorted(by_class.items())}
    golden = json.loads((build / "verify" / "label_check.golden.json").read_text())
    assert golden["accuracy"] == 0.5 and golden["accuracy_credit"] == 0.5
    dog = json.loads((build / "verify" / "label_check.dog.json").read_text())
    assert dog["accuracy"] == 0.0 and dog["accuracy_credit"] == 0.0  # 4 steps up earns no credit (≤ 2 does)
