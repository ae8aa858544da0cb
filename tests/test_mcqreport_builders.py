"""``python -m imagewikiqa report`` on builders MCQ outputs: real builds (26-way hard, 4-way random) of a
synthetic ImageNet tree and of the embedded sample, a planted second correct option, the mcq_hf folder, and
the released ImageWikiQA file still reported as a question set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from builders import imagenet_qa
from builders.synthetic import make_imagenet_tree
from imagewikiqa.__main__ import main
from imagewikiqa.mcq_report import MCQ_KIND, is_builders_mcq
from vlm_classdata.distractors import RELATIONS
from vlm_classdata.vocabulary import ClassVocabulary

ROOT = Path(__file__).resolve().parents[1]
PROJECTILE, MISSILE, TENCH, GOLDFISH, SYRINGE = "n04008634", "n03773504", "n01440764", "n01443537", "n04376876"


def build(root: Path | None, out: Path, choices: int, mode: str, splits: str = "val") -> Path:
    """A real ``builders.imagenet_qa`` build of MCQ (JSONL + mcq_hf); returns the mcq JSONL of ``splits`` (source
    split ``val`` is written as ``validation``)."""
    argv = ["--out", str(out), "--outputs", "mcq,mcq_hf", "--mcq-choices", str(choices), "--distractors", mode,
            "--splits", splits, "--quiet"]
    assert imagenet_qa.main(argv + (["--root", str(root)] if root else [])) == 0
    return out / "mcq" / f"{'validation' if splits == 'val' else splits}.jsonl"


def report(path: Path, out: Path, *extra: str) -> dict:
    assert main(["report", str(path), "--out", str(out), *extra]) == 0
    return json.loads((out / "quality_report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """40 ImageNet classes, 2 validation images each: 80 items, enough for the learned solvers."""
    root = tmp_path_factory.mktemp("inet")
    make_imagenet_tree(root, ClassVocabulary.bundled("imagenet1k").ids[::25], train_per_class=0, val_per_class=2,
                       size=(16, 16))
    return root


@pytest.mark.parametrize(("choices", "mode"), [(26, "hard"), (4, "random")])
def test_real_build_report(tree, tmp_path, capsys, choices, mode):
    jsonl = build(tree, tmp_path / "build", choices, mode)
    assert is_builders_mcq(jsonl)
    rep = report(jsonl, tmp_path / "rep")
    assert rep["kind"] == MCQ_KIND and rep["n_items"] == 80 and rep["classes"] == 40
    assert rep["options_per_item"] == {str(choices): 80} and rep["distractor_modes"] == {mode: 80}
    assert rep["skipped"] == {"total": 0, "by_reason": {}}
    # the histogram covers every distractor, recomputed against the build's own classes.json
    d = rep["distractors"]
    assert d["class_list"] == str(tmp_path / "build" / "classes.json")
    assert list(d["relations"]) == list(RELATIONS) and sum(d["relations"].values()) == 80 * (choices - 1)
    assert d["items_with_second_correct"] == 0 and d["unknown_options"] == 0 and d["answer_missing"] == 0
    t = rep["targets"]
    assert t["no_second_correct"] == {"value": 0, "target": 0, "pass": True}
    assert t["letters_balanced"]["value"] <= 1 and t["letters_balanced"]["pass"]
    assert sorted(rep["letters"].values())[-1] - sorted(rep["letters"].values())[0] <= 1
    # learned solvers: reported with intervals, on options only (one class-independent stem)
    lb = rep["learned_baselines"]
    assert set(lb["solvers"]) == {"logistic", "boosting"} and lb["n"] == 80 and lb["classes"] == 40
    assert lb["chance"] == pytest.approx(1 / choices, abs=1e-6) and lb["sample"] == "all"
    assert rep["stems"] == {"distinct": 1, "options_only": True} and "options only" in lb["sees"]
    best = max(v["accuracy"] for v in lb["solvers"].values())
    assert t["learned_blind"]["value"] == best and t["learned_blind"]["target"] == pytest.approx(1 / choices + 0.05, abs=1e-6)
    for v in lb["solvers"].values():
        assert 0.0 <= v["ci95"][0] <= v["accuracy"] <= v["ci95"][1] <= 1.0
    assert rep["blind_baselines"]["random"] == pytest.approx(1 / choices, abs=1e-6)
    md = (tmp_path / "rep" / "quality_report.md").read_text(encoding="utf-8")
    assert md.startswith("# Quality report: builders MCQ") and "| sibling |" in md and "| cousin |" in md
    assert "Items with a second correct option: 0;" in md and "| logistic |" in md
    assert md in capsys.readouterr().out


def planted_rows(vocab: ClassVocabulary) -> list[dict]:
    """Three valid-looking 4-way rows; the projectile item offers "missile" (a lemma of projectile.n.01)."""
    def row(i: int, answer: str, ids: list[str]) -> dict:
        options = [vocab[c].name for c in ids]
        index = ids.index(answer)
        return {"question_id": f"q{i}", "image": f"val/{i}.JPEG",
                "text": "What type of object is in the photo?\n" + "\n".join(
                    f"{x}. {o}" for x, o in zip("ABCD", options, strict=True)) + "\nAnswer with the letter.",
                "question": "What type of object is in the photo?", "answer": "ABCD"[index],
                "label": vocab[answer].index, "class_id": answer, "class_name": vocab[answer].name, "options": options, "answer_index": index,
                "option_class_ids": ids, "distractor_mode": "random", "distractor_pool_size": 990,
                "distractor_relations": []}
    return [row(0, PROJECTILE, [TENCH, PROJECTILE, MISSILE, SYRINGE]),
            row(1, TENCH, [SYRINGE, GOLDFISH, TENCH, PROJECTILE]),
            row(2, GOLDFISH, [GOLDFISH, TENCH, SYRINGE, MISSILE])]


def test_planted_second_correct_option_is_counted_and_fails(tmp_path):
    vocab = ClassVocabulary.bundled("imagenet1k")
    rows = planted_rows(vocab)
    broken = dict(rows[1], answer_index=7)
    lines = [json.dumps(r) for r in rows] + [json.dumps(broken), "[1, 2]",
                                             json.dumps(dict(rows[2], answer="D"))]
    path = tmp_path / "mcq.jsonl"  # no classes.json beside it: checked against the bundled imagenet1k
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rep = report(path, tmp_path / "rep")
    d = rep["distractors"]
    assert d["class_list"].startswith("imagenet1k") and rep["n_items"] == 3
    assert d["items_with_second_correct"] == 1 and d["relations"]["shared_form"] == 1
    assert d["examples"] == [{"class_id": PROJECTILE, "option": MISSILE, "reason": "shared_form 'missile'"}]
    assert rep["targets"]["no_second_correct"] == {"value": 1, "target": 0, "pass": False}
    assert rep["targets"]["passes"] is False
    # bad rows are counted by a named reason, never dropped silently
    assert rep["skipped"] == {"total": 3, "by_reason": {"answer_index_not_an_option": 1, "answer_disagrees_with_answer_index": 1,
                                                       "not_an_object": 1}}
    # three items cannot train the solvers: the target is not measured, hence not passed
    assert rep["targets"]["learned_blind"]["value"] is None and not rep["targets"]["learned_blind"]["pass"]
    md = (tmp_path / "rep" / "quality_report.md").read_text(encoding="utf-8")
    assert "| no_second_correct | 1 | = 0 | FAIL |" in md and "shared_form 'missile'" in md
    assert "| learned_blind | not measured |" in md
    # a class list without those classes: nothing can be checked, and the report says so
    other = tmp_path / "classes.txt"
    other.write_text("tench\ngoldfish\n", encoding="utf-8")
    rep = report(path, tmp_path / "rep2", "--classes", str(other))
    assert rep["distractors"]["unknown_options"] > 0 and not rep["targets"]["all_options_checked"]["pass"]


def test_embedded_sample_jsonl_and_mcq_hf_agree(tmp_path):
    jsonl = build(None, tmp_path / "build", 4, "random", splits="train")
    a = report(jsonl, tmp_path / "a")
    b = report(tmp_path / "build" / "mcq_hf", tmp_path / "b", "--split", "train")
    assert a["n_items"] == 20 and a["distractors"]["items_with_second_correct"] == 0
    assert sum(a["distractors"]["relations"].values()) == 20 * 3
    assert "not computed" in (tmp_path / "a" / "quality_report.md").read_text(encoding="utf-8")
    for key in ("n_items", "classes", "letters", "blind_baselines", "distractors", "stems", "targets"):
        assert a[key] == b[key], key


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagewikiqa", "report", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_unusable_inputs_end_in_one_line(tmp_path):
    empty = tmp_path / "mcq.jsonl"
    empty.write_text(json.dumps({"option_class_ids": [], "options": ["x"], "answer_index": 0}) + "\n")
    r = run_cli(str(empty))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no usable MCQ rows" in r.stderr
    assert "fewer_than_2_options 1" in r.stderr
    hf = tmp_path / "mcq_hf" / "data"
    hf.mkdir(parents=True)
    (hf / "val-00000-of-00001.parquet").write_bytes(b"PAR1 truncated")
    r = run_cli(str(hf.parent))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "val-00000-of-00001.parquet" in r.stderr
    r = run_cli(str(hf.parent), "--split", "test")
    assert r.returncode == 2 and "no split 'test'" in r.stderr


def test_released_imagewikiqa_is_still_a_question_set(released_imagewikiqa):
    assert not is_builders_mcq(released_imagewikiqa)


def test_closed_vocabulary_build_is_not_flagged_by_a_split_artefact(tmp_path):
    """Every distractor a class of the build: under class-held-out folds the answer prior would single out
    the held-out class's name (74% blind on 4-way random over 1000 classes); the report leaves it out."""
    vocab = ClassVocabulary.bundled("imagenet1k").subset(ClassVocabulary.bundled("imagenet1k").ids[::16])
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps(vocab.to_json()), encoding="utf-8")
    make_imagenet_tree(tmp_path / "inet", vocab.ids, train_per_class=0, val_per_class=3, size=(16, 16))
    out = tmp_path / "build"
    assert imagenet_qa.main(["--root", str(tmp_path / "inet"), "--classes", str(classes), "--out", str(out),
                             "--outputs", "mcq", "--mcq-choices", "4", "--splits", "val", "--quiet"]) == 0
    rep = report(out / "mcq" / "validation.jsonl", tmp_path / "rep")
    lb, t = rep["learned_baselines"], rep["targets"]
    assert rep["n_items"] == 3 * len(vocab)
    assert t["learned_blind"]["value"] < 0.30 and t["learned_blind"]["pass"] and t["passes"]
    assert lb["answer_prior"].startswith("off")
