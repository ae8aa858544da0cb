"""One path from model replies to the frequency report: a scripted tiny LLaVA (real loading path) answers the
embedded sample's build through ``builders.verify run``; ``corpora_stats report --accuracy`` then reads the
label_check and mcq sidecars, and a predictions JSONL of the same replies, and must give the per-class accuracy
that the pass summaries' ``per_class`` gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from torch_threads import ONE_THREAD_ENV, one_torch_thread  # noqa: F401  (autouse fixture)

from builders.imagenet_qa import main as build_main
from builders.sample import sample_wnids
from builders.verify.__main__ import main as verify_main
from corpora_stats.__main__ import main as corpora_main
from corpora_stats.accuracy import read_accuracy
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.verification.per_class import class_accuracy
from vlm_classdata.vlm.tiny import make_scripted_llava
from vlm_classdata.vocabulary import ClassVocabulary

VOCAB = ClassVocabulary.bundled("imagenet1k")
CAT = "n04485082"  # tripod: a class of the embedded sample (its name has distinct tokens)
CORPUS = "a tabby cat sleeps\nthe missile and the space shuttle\nespresso with a tabby cat\nmy tripod\nespresso\n"


def cli(main, args: list[str], capsys) -> tuple[int, str, str]:
    code = run_cli(main, args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def verified(tmp_path_factory) -> Path:
    """The embedded sample built (eval_open + mcq), then label_check and mcq by a model that always says
    "tripod" (right for the tripod class only; in mcq it names no letter)."""
    base = tmp_path_factory.mktemp("r19")
    build = base / "build"
    assert build_main(["--out", str(build), "--outputs", "eval_open,mcq", "--quiet"]) == 0
    model = make_scripted_llava(str(base / "says_tripod"), "tripod")
    assert run_cli(verify_main, ["run", "--build", str(build), "--passes", "label_check,mcq", "--model", model,
                                 "--alias", "cat", "--quiet", "--max-new-tokens", "4"]) == 0
    return build


@pytest.fixture(scope="module")
def counts(tmp_path_factory) -> Path:
    """A counts folder over the whole ImageNet-1k class list (the build's list) from a five-line corpus."""
    base = tmp_path_factory.mktemp("r19counts")
    (base / "web.txt").write_text(CORPUS)
    assert run_cli(corpora_main, ["count", "--corpus", f"web={base / 'web.txt'}", "--classes", "imagenet1k",
                                  "--out", str(base / "counts"), "--quiet"]) == 0
    return base / "counts"


def report_accuracy(counts: Path, accuracy: Path, out: Path, capsys, *extra: str) -> dict[str, dict]:
    """``corpora_stats report`` through its CLI; per class with accuracy: ``{n, correct, accuracy}`` read back
    from ``report_classes.csv``."""
    code, _, err = cli(corpora_main, ["report", "--counts", str(counts), "--accuracy", str(accuracy),
                                      "--out", str(out), "--top-k", "3", *extra], capsys)
    assert code == 0, err
    table = pl.read_csv(out / "report_classes.csv", infer_schema_length=None).filter(pl.col("accuracy").is_not_null())
    return {r["class_id"]: {"n": r["n"], "correct": r["correct"], "accuracy": r["accuracy"]}
            for r in table.iter_rows(named=True)}


def test_report_of_a_sidecar_equals_the_summary_per_class(verified, counts, tmp_path, capsys):
    """label_check and mcq (class from the build's rows): report == summary ``per_class``, exactly."""
    summary = json.loads((verified / "verify" / "label_check.cat.json").read_text())
    per_class = summary["per_class"]
    assert set(per_class) == set(sample_wnids())
    assert per_class[CAT]["accuracy"] == 1.0 and per_class[CAT]["n"] > 0
    assert all(v["accuracy"] == 0.0 for k, v in per_class.items() if k != CAT)
    assert sum(v["correct"] for v in per_class.values()) == summary["correct"]
    got = report_accuracy(counts, verified / "verify" / "label_check.cat.parquet", tmp_path / "lc", capsys)
    assert got == per_class
    md = (tmp_path / "lc" / "report.md").read_text()
    assert "(sidecar, 30 rows)" in md and "sidecar's 'correct' column" in md

    mcq = json.loads((verified / "verify" / "mcq.cat.json").read_text())["per_class"]
    assert set(mcq) == set(sample_wnids()) and sum(v["n"] for v in mcq.values()) == 30
    assert report_accuracy(counts, verified / "verify" / "mcq.cat.parquet", tmp_path / "mcq", capsys) == mcq


def test_predictions_jsonl_of_the_same_replies_gives_the_same_numbers(verified, counts, tmp_path, capsys):
    """The JSONL path judges with label_check's judge: the same replies score the same per class."""
    sidecar = pl.read_parquet(verified / "verify" / "label_check.cat.parquet")
    preds = tmp_path / "predictions.jsonl"
    preds.write_text("".join(json.dumps({"label": r["class_id"], "pred": r["reply"]}) + "\n"
                             for r in sidecar.iter_rows(named=True)))
    per_class = json.loads((verified / "verify" / "label_check.cat.json").read_text())["per_class"]
    assert report_accuracy(counts, preds, tmp_path / "jsonl", capsys) == per_class
    assert "one label judge (LabelMatcher" in (tmp_path / "jsonl" / "report.md").read_text()


def test_rows_not_ok_are_skipped_with_their_reason_and_multi_label_adds_a_column(verified, counts, tmp_path,
                                                                                 capsys):
    """Error rows are counted as skipped by reason; ``correct_any`` gives the report a multi-label column."""
    frame = pl.read_parquet(verified / "verify" / "label_check.cat.parquet")
    cat = frame["class_id"] == CAT
    broken = frame.with_columns(
        status=pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("error")).otherwise("status"),
        error=pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("missing_image")).otherwise("error"),
        correct_any=cat | (frame["class_id"] == "n07920052"),  # tripod also accepted for espresso images
        accepted_class_ids=pl.lit([CAT]))
    folder = tmp_path / "verify"
    folder.mkdir()
    broken.write_parquet(folder / "label_check.noisy.parquet")
    acc, info = read_accuracy(folder / "label_check.noisy.parquet", VOCAB)
    assert info["skipped"] == {"missing_image": 2} and info["kind"] == "sidecar" and info["pass"] == "label_check"
    assert int(acc["n"].sum()) == 28
    direct = class_accuracy(broken)
    assert direct.multi_label and direct.skipped == {"missing_image": 2}
    got = dict(zip(acc["class_id"], acc["accuracy_any"], strict=True))
    assert got["n07920052"] == 1.0 and got[CAT] == 1.0 and got["n03773504"] == 0.0
    code, out, err = cli(corpora_main, ["report", "--counts", str(counts), "--accuracy",
                                        str(folder / "label_check.noisy.parquet"), "--out", str(tmp_path / "r")],
                         capsys)
    assert code == 0, err
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Skipped rows: missing_image 2" in md and "Multi-label accuracy (right for any accepted class" in md
    assert "accuracy_any" in pl.read_csv(tmp_path / "r" / "report_classes.csv").columns


def test_sidecar_user_mistakes_are_one_line(verified, counts, tmp_path, capsys):
    """A blind sidecar (no class accuracy), an mcq sidecar away from its build, a parquet that is no sidecar."""
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    shutil.copy(verified / "verify" / "mcq.cat.parquet", elsewhere / "mcq.cat.parquet")
    pl.DataFrame({"sample_id": ["a"], "status": ["ok"], "correct": [True]}).write_parquet(elsewhere / "blind.m.parquet")
    pl.DataFrame({"x": [1]}).write_parquet(elsewhere / "data.parquet")
    for path, says in ((elsewhere / "blind.m.parquet", "no per-class accuracy"), (elsewhere / "mcq.cat.parquet",
                                                                                  "give --build"),
                       (elsewhere / "data.parquet", "<pass>.<alias>.parquet")):
        code, _, err = cli(corpora_main, ["report", "--counts", str(counts), "--accuracy", str(path), "--out",
                                          str(tmp_path / "r")], capsys)
        assert code == 2 and err.strip().count("\n") == 0 and says in err, err
    # with --build the moved mcq sidecar finds its items' classes again
    mcq = json.loads((verified / "verify" / "mcq.cat.json").read_text())["per_class"]
    assert report_accuracy(counts, elsewhere / "mcq.cat.parquet", tmp_path / "b", capsys, "--build",
                           str(verified)) == mcq
    with pytest.raises(UserError, match="not found"):
        read_accuracy(tmp_path / "none.parquet", VOCAB)


def real_file(build: Path, path: Path) -> Path:
    """ImageNet ReaL-format truth for the build's validation photos: each photo's own class, and also tripod
    for the space-shuttle photos (made up: they "also show a tripod")."""
    names = [c["id"] for c in json.loads((build / "classes.json").read_text())["classes"]]
    rows = [json.loads(line) for line in (build / "eval_open" / "validation.jsonl").read_text().splitlines()]
    entries: list[list[int]] = [[] for _ in range(max(int(r["question_id"].rsplit("_", 1)[1]) for r in rows))]
    for r in rows:
        extra = [names.index(CAT)] if r["class_id"] == SHUTTLE else []
        entries[int(r["question_id"].rsplit("_", 1)[1]) - 1] = [names.index(r["class_id"]), *extra]
    path.write_text(json.dumps(entries))
    return path


SHUTTLE = "n04266014"


def test_multi_label_truth_in_the_report_equals_the_pass_with_the_same_truth(verified, counts, tmp_path, capsys):
    """The report rescoring a plain label_check sidecar against ReaL-format truth, a predictions JSONL of the same
    replies, and ``builders.verify run --multi-labels`` itself give the same any-label counts per class."""
    real = real_file(verified, tmp_path / "real.json")
    sidecar = verified / "verify" / "label_check.cat.parquet"
    frame, info = read_accuracy(sidecar, VOCAB, multi_labels=real)
    got = {r["class_id"]: (r["n_any"], r["correct_any"]) for r in frame.iter_rows(named=True)}
    assert got[SHUTTLE] == (2, 2) and got[CAT] == (2, 2)  # "tripod" is accepted for the shuttle photos
    assert all(v == (2, 0) for k, v in got.items() if k not in (SHUTTLE, CAT))  # train items are not in the file
    assert frame["accuracy"].to_list() == read_accuracy(sidecar, VOCAB)[0]["accuracy"].to_list()  # single label kept

    rows = pl.read_parquet(sidecar).to_dicts()
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"question_id": r["sample_id"], "label": r["class_id"], "pred": r["reply"]})
                             + "\n" for r in rows))
    by_jsonl = read_accuracy(preds, VOCAB, multi_labels=real)[0]
    assert {r["class_id"]: (r["n_any"], r["correct_any"]) for r in by_jsonl.iter_rows(named=True)} == got

    out = tmp_path / "verify_real"
    model = make_scripted_llava(str(tmp_path / "says_tripod"), "tripod")
    assert run_cli(verify_main, ["run", "--build", str(verified), "--passes", "label_check", "--model", model,
                                 "--alias", "cat", "--quiet", "--max-new-tokens", "4", "--out", str(out),
                                 "--multi-labels", str(real)]) == 0
    per_class = json.loads((out / "label_check.cat.json").read_text())["per_class"]
    assert {c: (v["n_any"], v["correct_any"]) for c, v in per_class.items()} == got

    report = report_accuracy(counts, sidecar, tmp_path / "rep", capsys, "--multi-labels", str(real))
    assert report == {c: {k: v[k] for k in ("n", "correct", "accuracy")} for c, v in per_class.items()}
    code, _, err = cli(corpora_main, ["report", "--counts", str(counts), "--accuracy",
                                      str(verified / "verify" / "mcq.cat.parquet"), "--out", str(tmp_path / "m"),
                                      "--multi-labels", str(real)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "builders.verify run --multi-labels" in err
