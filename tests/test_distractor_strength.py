"""Distractor strength: `builders.verify summary` over a random and a hard build of the same images.

Scripted tiny LLaVAs (saved, then loaded offline through the real path) always answer "A" or "B", so each item's
verdict follows from the answer letter the build wrote; the expected accuracies are counted from the build files.
The hard build uses another seed, so its answer letters (and the gap) differ from the random build's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from builders.imagenet_qa import main as build_main
from builders.synthetic import make_imagenet_tree
from builders.verify.__main__ import main as verify_main
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.verification.distractor_strength import (
    build_mcq_rows,
    distractor_strength,
    strength_sources,
)
from vlm_classdata.vlm.tiny import make_scripted_llava

LETTERS = ("A", "B")


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = run_cli(verify_main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _build(root: Path, out: Path, mode: str, seed: int) -> Path:
    assert build_main(["--root", str(root), "--out", str(out), "--outputs", "mcq", "--quiet",
                       "--distractors", mode, "--seed", str(seed)]) == 0
    return out


def _verify(build: Path, models: dict[str, str], *extra: str) -> None:
    args = ["run", "--build", str(build), "--passes", "mcq,blind", "--quiet", "--max-new-tokens", "4", *extra]
    for alias, path in models.items():
        args += ["--model", path, "--alias", alias]
    assert run_cli(verify_main, args) == 0


def _answers(build: Path) -> dict[str, str]:
    """Sample id → answer letter, read straight from the build's mcq JSONL."""
    rows = [json.loads(x) for f in sorted((build / "mcq").glob("*.jsonl")) for x in f.read_text().splitlines()]
    return {r["question_id"]: r["answer"] for r in rows}


@pytest.fixture(scope="module")
def setup(imagenet_tree, tmp_path_factory):
    """Two builds of the 6-class tree (random seed 0, hard seed 1), each verified by says_A and says_B."""
    root, _ = imagenet_tree
    base = tmp_path_factory.mktemp("strength")
    models = {f"says_{x}": make_scripted_llava(str(base / f"says_{x}"), x) for x in LETTERS}
    rand = _build(root, base / "rand", "random", 0)
    hard = _build(root, base / "hard", "hard", 1)
    for b in (rand, hard):
        _verify(b, models)
    return {"base": base, "models": models, "rand": rand, "hard": hard}


def _expected(rand: Path, hard: Path, ids: set[str] | None = None) -> list[dict]:
    ra, ha = _answers(rand), _answers(hard)
    ids = ids if ids is not None else set(ra)
    n = len(ids)
    out = []
    for pass_name in ("blind", "mcq"):
        for letter in LETTERS:
            r = sum(ra[i] == letter for i in ids)
            h = sum(ha[i] == letter for i in ids)
            out.append({"pass": pass_name, "model": f"says_{letter}", "items": n, "random_correct": r,
                        "hard_correct": h, "random": round(r / n, 6), "hard": round(h / n, 6),
                        "gap": round((r - h) / n, 6)})
    return out


def test_summary_reports_random_vs_hard_per_model(setup, capsys):
    rand, hard = setup["rand"], setup["hard"]
    assert {r.mode for r in build_mcq_rows(rand).values()} == {"random"}
    assert {r.mode for r in build_mcq_rows(hard).values()} == {"hard"}
    expected = _expected(rand, hard)
    assert [e["items"] for e in expected] == [30] * 4
    assert any(e["gap"] != 0 for e in expected)  # the seeds differ: so do the letters
    rows = distractor_strength(strength_sources([str(rand), str(hard)], None))
    assert rows == expected
    code, out, err = _cli(capsys, "summary", "--build", str(rand), "--build", str(hard))
    assert code == 0, err
    assert f"== {rand / 'verify'}" in out and f"== {hard / 'verify'}" in out
    for e in expected:  # one table line per pass × model, with the exact numbers
        line = (f"{e['pass']:<12} {e['model']:<24} {30:>7} {e['random']:>8.3f} {e['hard']:>8.3f} "
                f"{e['gap']:>+8.3f}")
        assert line in out.splitlines(), out
    # one folder: the plain table, as before
    code, out, _ = _cli(capsys, "summary", "--build", str(rand))
    assert code == 0 and "distractor strength" not in out and out.startswith("pass ")


def test_comparison_is_paired_on_images_answered_under_both_modes(setup, tmp_path):
    """A --limit run on the hard build: only those images count, under both modes."""
    rand, hard, models = setup["rand"], setup["hard"], setup["models"]
    out = tmp_path / "hard_limited"
    _verify(hard, models, "--limit", "10", "--out", str(out))
    ids = set(pl.read_parquet(out / "mcq.says_A.parquet")["sample_id"])
    assert len(ids) == 10
    rows = distractor_strength(strength_sources([str(rand), str(hard)], [str(rand / "verify"), str(out)]))
    assert rows == _expected(rand, hard, ids)


def test_build_without_row_modes_falls_back_to_the_manifest(setup, tmp_path):
    rand, hard = setup["rand"], setup["hard"]
    old = tmp_path / "old_hard"
    shutil.copytree(hard, old)
    for f in (old / "mcq").glob("*.jsonl"):
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        f.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "distractor_mode"}) + "\n"
                             for r in rows))
    assert distractor_strength(strength_sources([str(rand), str(old)], None)) == _expected(rand, hard)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["tasks"]["mcq"]["distractors"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="records distractor mode None"):
        distractor_strength(strength_sources([str(rand), str(old)], None))


def test_mismatched_inputs_are_one_line_errors(setup, tmp_path, capsys):
    rand, hard, models = setup["rand"], setup["hard"], setup["models"]
    # says_B answering under the name says_A beside the hard build
    renamed = tmp_path / "renamed"
    _verify(hard, {"says_A": models["says_B"]}, "--out", str(renamed), "--limit", "4")
    # a build of other images (other classes), verified by the same model
    other_root = tmp_path / "other_tree"
    make_imagenet_tree(other_root, ("n01530575", "n01531178"), train_per_class=1, val_per_class=1)
    other = _build(other_root, tmp_path / "other", "hard", 0)
    _verify(other, {"says_A": models["says_A"]})
    # a second verify folder of the random build (mcq only, the first 4 items)
    random_again = tmp_path / "random_again"
    _verify(rand, {"says_A": models["says_A"]}, "--out", str(random_again), "--limit", "4")
    cases = {
        "2 --build but 1 --verify-dir": ["--build", str(rand), "--build", str(hard), "--verify-dir", str(renamed)],
        "is not inside a build": ["--verify-dir", str(renamed), "--verify-dir", str(rand / "verify")],
        "is given twice": ["--build", str(rand), "--build", str(rand)],
        "random distractors in both": ["--build", str(rand), "--build", str(rand), "--verify-dir",
                                       str(rand / "verify"), "--verify-dir", str(random_again)],
        "the build was remade after this sidecar": ["--build", str(rand), "--build", str(rand), "--verify-dir",
                                                    str(rand / "verify"), "--verify-dir", str(hard / "verify")],
        "give each model one --alias": ["--build", str(rand), "--build", str(hard), "--verify-dir",
                                        str(rand / "verify"), "--verify-dir", str(renamed)],
        "share no answered sample": ["--build", str(rand), "--build", str(other)],
        "are not mcq rows of build": ["--build", str(rand), "--build", str(other), "--verify-dir",
                                      str(rand / "verify"), "--verify-dir", str(hard / "verify")],
    }
    capsys.readouterr()  # the set-up's output
    for message, args in cases.items():
        code, out, err = _cli(capsys, "summary", *args)
        assert code == 2, (message, out)
        assert code == 2 and out == "" and err.startswith("error: ") and err.strip().count("\n") == 0, err
        assert message in err, (message, err)
