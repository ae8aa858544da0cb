"""Hierarchical verdicts: the judge on known ImageNet cases (real WordNet 3.0), and label_check end to end with
scripted tiny LLaVAs loaded through the real path (``python -m builders.verify run`` in-process)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from builders.imagenet_qa import main as build_main
from builders.verify.__main__ import main as verify_main
from vlm_classdata.answers import LabelMatcher
from vlm_classdata.answers.verdicts import VERDICT_KINDS, Verdict, VerdictJudge
from vlm_classdata.errors import run_cli
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.verification.summary import CREDIT_SCHEME, verdict_credit
from vlm_classdata.vlm.tiny import make_scripted_llava
from vlm_classdata.vocabulary import ClassVocabulary

GOLDEN = "n02099601"
TABBY, MISSILE, SHUTTLE, TRIPOD, ESPRESSO = "n02123045", "n03773504", "n04266014", "n04485082", "n07920052"
LAPTOP, NOTEBOOK = "n03642806", "n03832673"


@pytest.fixture(scope="module")
def imagenet() -> ClassVocabulary:
    return ClassVocabulary.bundled("imagenet1k")


@pytest.fixture(scope="module")
def judge(imagenet) -> VerdictJudge:
    return VerdictJudge(imagenet, Lexicon.build(imagenet))


@pytest.mark.parametrize(("class_id", "reply", "expected"), [
    (GOLDEN, "golden retriever", Verdict("exact")),
    (GOLDEN, "Golden retrievers!", Verdict("exact")),
    (GOLDEN, "dog", Verdict("more_generic", 4, None, "dog.n.01", "dog")),  # retriever, sporting dog, hunting dog, dog
    (GOLDEN, "retriever", Verdict("more_generic", 1, None, "retriever.n.01", "retriever")),
    (TABBY, "cat", Verdict("more_generic", 2, None, "cat.n.01", "cat")),  # domestic cat, cat
    (GOLDEN, "a cat", Verdict("out_of_vocabulary", None, None, "cat.n.01", "cat")),  # carnivore: 6 hops up
    (GOLDEN, "tabby cat", Verdict("other_class", None, TABBY, "tabby.n.01", "tabby cat")),
    (GOLDEN, "Labrador retriever", Verdict("sibling", 2, "n02099712", "labrador_retriever.n.01",
                                           "labrador retriever")),
    (LAPTOP, "notebook", Verdict("sibling", 2, NOTEBOOK, "notebook.n.02", "notebook")),  # the lexicon: own class
    (SHUTTLE, "spaceship", Verdict("sibling", 2, None, "starship.n.01", "spaceship")),  # both spacecraft
    (GOLDEN, "spaceship", Verdict("out_of_vocabulary", None, None, "starship.n.01", "spaceship")),
    (GOLDEN, "zyzzyva", Verdict("out_of_vocabulary", None, None, None, "zyzzyva")),  # not in WordNet 3.0
    (GOLDEN, "I can't tell", Verdict("refusal")),
    (GOLDEN, "I'm sorry, I can't see the image", Verdict("refusal")),  # a refusal outranks an unrelated noun
    (GOLDEN, "I cannot tell the breed, but it is a dog", Verdict("more_generic", 4, None, "dog.n.01", "dog")),
    (GOLDEN, "The image shows a dog sitting on the grass", Verdict("more_generic", 4, None, "dog.n.01", "dog")),
    (GOLDEN, "a golden retriever or a tabby cat", Verdict("other_class", None, TABBY, "tabby.n.01", "tabby cat")),
    (TRIPOD, "dog", Verdict("out_of_vocabulary", None, None, "dog.n.01", "dog")),  # "dog" as andiron: rare sense
    (GOLDEN, "blurry", Verdict("none")),
    (GOLDEN, "", Verdict("none")),
])
def test_known_cases(judge, class_id, reply, expected):
    assert judge.judge(class_id, reply) == expected


def test_exact_is_labelmatcher_correct_and_verdicts_are_cached(judge, imagenet):
    matcher = LabelMatcher(judge.lexicon)
    for reply in ("golden retriver", "goldens", "a dog", "tabby", "Golden Retriever."):
        assert (judge.judge(GOLDEN, reply).kind == "exact") == matcher.match(GOLDEN, reply).correct
    assert judge.judge(GOLDEN, "a dog") is judge.judge(GOLDEN, "a dog")
    with pytest.raises(KeyError):
        judge.judge("n00000000", "dog")


def test_an_alias_makes_notebook_exact_for_laptop(imagenet):
    lexicon = Lexicon.build(imagenet, aliases={LAPTOP: ["notebook"]})
    assert VerdictJudge(imagenet, lexicon).judge(LAPTOP, "notebook") == Verdict("exact")


def test_vocabulary_without_wordnet_ids_has_no_hierarchy():
    vocab = ClassVocabulary.from_names(["golden retriever", "tabby cat"], ids=["c0", "c1"])
    j = VerdictJudge(vocab, Lexicon.build(vocab))
    assert j.judge("c0", "golden retriever").kind == "exact"
    assert j.judge("c0", "tabby cat") == Verdict("other_class", None, "c1", "tabby.n.01", "tabby cat")
    assert j.judge("c0", "dog") == Verdict("out_of_vocabulary", None, None, "dog.n.01", "dog")
    assert j.judge("c0", "I can't tell").kind == "refusal"


def test_credit_scheme():
    assert [verdict_credit(k, s) for k, s in [("exact", None), ("more_specific", 3), ("more_generic", 2),
                                              ("more_generic", 3), ("sibling", 1), ("other_class", None),
                                              ("refusal", None), (None, None)]] == [1, 1, 0.5, 0, 0, 0, 0, 0]
    assert "more_generic 0.5" in CREDIT_SCHEME["description"]


# ----- end to end: scripted models through python -m builders.verify run ---------------------------------
REPLIES = {"cat": "cat", "tripod": "tripod", "cant": "I can't tell", "ship": "spaceship"}
# class → (verdict, steps, class id) per model; every class of the embedded sample has 6 items
EXPECTED = {
    "cat": {TABBY: ("more_generic", 2, None), MISSILE: ("out_of_vocabulary", None, None),
            SHUTTLE: ("out_of_vocabulary", None, None), TRIPOD: ("out_of_vocabulary", None, None),
            ESPRESSO: ("out_of_vocabulary", None, None)},
    "tripod": {TABBY: ("other_class", None, TRIPOD), MISSILE: ("other_class", None, TRIPOD),
               SHUTTLE: ("other_class", None, TRIPOD), TRIPOD: ("exact", None, None),
               ESPRESSO: ("other_class", None, TRIPOD)},
    "cant": {c: ("refusal", None, None) for c in (TABBY, MISSILE, SHUTTLE, TRIPOD, ESPRESSO)},
    "ship": {TABBY: ("out_of_vocabulary", None, None), MISSILE: ("out_of_vocabulary", None, None),
             SHUTTLE: ("sibling", 2, None), TRIPOD: ("out_of_vocabulary", None, None),
             ESPRESSO: ("out_of_vocabulary", None, None)},
}


def test_label_check_writes_verdicts_and_the_summary_rates(tmp_path, capsys):
    build = tmp_path / "build"
    assert build_main(["--out", str(build), "--outputs", "eval_open", "--quiet"]) == 0
    args = ["run", "--build", str(build), "--passes", "label_check", "--quiet", "--max-new-tokens", "10"]
    for alias, reply in REPLIES.items():
        args += ["--model", make_scripted_llava(str(tmp_path / alias), reply), "--alias", alias]
    capsys.readouterr()
    assert run_cli(verify_main, args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "label_check[cat]: 30 items, 30 ok, accuracy 0.000 (credit 0.100)" in out  # 6 of 30 more_generic ×0.5
    for alias, by_class in EXPECTED.items():
        side = pl.read_parquet(build / "verify" / f"label_check.{alias}.parquet")
        assert side["reply"].unique().to_list() == [REPLIES[alias]]
        got = {(r["class_id"], r["verdict"], r["verdict_steps"], r["verdict_class_id"]) for r in side.to_dicts()}
        assert got == {(c, *v) for c, v in by_class.items()}
        assert side["correct"].to_list() == [v == "exact" for v in side["verdict"].to_list()]
        summary = json.loads((build / "verify" / f"label_check.{alias}.json").read_text())
        assert set(summary["verdicts"]) == set(VERDICT_KINDS)
        rates = {k: v for k, v in summary["verdicts"].items() if v}
        kinds = [v[0] for v in by_class.values()]
        assert rates == {k: round(kinds.count(k) / 5, 6) for k in set(kinds)}
        assert summary["verdicts_by_class"] == {c: {v[0]: 6} for c, v in sorted(by_class.items())}
        assert summary["credit_scheme"] == CREDIT_SCHEME
    ship = json.loads((build / "verify" / "label_check.ship.json").read_text())
    assert ship["verdicts"]["sibling"] == 0.2 and ship["accuracy"] == 0.0 and ship["accuracy_credit"] == 0.0
    tripod = json.loads((build / "verify" / "label_check.tripod.json").read_text())
    assert tripod["accuracy"] == tripod["accuracy_credit"] == 0.2
    assert run_cli(verify_main, ["summary", "--build", str(build)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["pass", "model", "items", "ok", "accuracy", "credit", "errors"]
    assert [line.split()[:6] for line in table[1:]] == [
        ["label_check", "cant", "30", "30", "0.000", "0.000"], ["label_check", "cat", "30", "30", "0.000", "0.100"],
        ["label_check", "ship", "30", "30", "0.000", "0.000"], ["label_check", "tripod", "30", "30", "0.200", "0.200"]]

    # the audit reads these real verdicts: "tripod" names another class for the 24 items of the other 4 classes
    assert run_cli(verify_main, ["audit", "--build", str(build), "--rule", "any_other_class"]) == 0
    audit = build / "verify" / "audit"
    suggestions = [json.loads(line) for line in (audit / "relabel_suggestions.jsonl").read_text().splitlines()]
    assert len(suggestions) == 24 and all(s["suggested_class_ids"] == [TRIPOD] for s in suggestions)
    assert {s["class_id"] for s in suggestions} == {TABBY, MISSILE, SHUTTLE, ESPRESSO}
    assert "tripod" in (audit / "gallery.html").read_text(encoding="utf-8")


def test_summary_of_old_sidecars_shows_no_credit(tmp_path, capsys):
    folder = tmp_path / "verify"
    folder.mkdir()
    (folder / "mcq.m.json").write_text(json.dumps({"pass": "mcq", "model": "m", "items": 3, "ok": 3,
                                                   "accuracy": 1.0, "errors": {}}))
    assert run_cli(verify_main, ["summary", "--verify-dir", str(folder)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[4:6] == ["1.000", "-"]
