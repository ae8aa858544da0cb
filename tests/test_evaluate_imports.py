"""``imagewikiqa evaluate`` on results written by VLMEvalKit and lmms-eval for real built benchmarks.

VLMEvalKit result files are made as its ``infer_data_job`` + ``dump`` make them: the TSV read with
``pandas.read_csv(sep="\\t")``, ``image`` dropped, a ``prediction`` column added, written as ``.xlsx`` (xlsxwriter,
``strings_to_formulas`` off), ``.tsv``/``.csv`` (every cell quoted) or ``.json`` (records, indented). lmms-eval
samples files are written by lmms-eval's own ``EvaluationTracker.save_results_samples`` (the consumers
environment: ``$VLMCD_CONSUMERS_PYTHON``, default /work/cvenv/bin/python) from rows shaped as its evaluator logs
them. Replies are scripted so the expected accuracy is known; every reply goes through parse_choice."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from consumers import consumers_python
from inprocess import run_main
from test_consumer_vlmevalkit import eval_split, iwqa_items, jsonl

from builders.imagenet_qa import main as build_main
from imagewikiqa.__main__ import main
from imagewikiqa.evaluate import evaluate_files
from imagewikiqa.exports import write_llava_jsonl, write_vlmevalkit_tsv

LMMS_WRITER = """
import json, sys
from lmms_eval.loggers.evaluation_tracker import EvaluationTracker
out, task, rows = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
tracker = EvaluationTracker(output_path=out)
tracker.general_config_tracker.model_name_sanitized = "scripted"
tracker.date_id = "2026-01-01T00-00-00"
tracker.save_results_samples(task_name=task, samples=rows)
"""


def scripted_reply(n: int, options: list[str], answer: int) -> str:
    """Row ``n``: the letter (n % 3 == 0), the option text in a sentence (1), a wrong letter (2)."""
    if n % 3 == 0:
        return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[answer]
    if n % 3 == 1:
        return f"The answer is {options[answer]}."
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(answer + 1) % len(options)]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """A 4-way sample build: (eval TSV, its mcq JSONL with ``index``)."""
    out = tmp_path_factory.mktemp("ev") / "build"
    res = run_main(build_main, "--out", str(out), "--outputs", "vlmevalkit,mcq", "--mcq-choices", "4", "--quiet")
    assert res.returncode == 0, res.stderr
    split = eval_split(out / "vlmevalkit")
    tsv, questions = out / "vlmevalkit" / f"{split}.tsv", out / "mcq" / f"{split}.jsonl"
    rows = jsonl(questions)
    assert "index" in rows[0]
    return tsv, questions


def vlmevalkit_result(tsv: Path, replies: dict[int, str]) -> pd.DataFrame:
    """What VLMEvalKit's inference leaves: the TSV without ``image`` plus ``prediction`` (rows reversed: matching
    must go by index, not order)."""
    data = pd.read_csv(tsv, sep="\t")
    data.pop("image")
    data["prediction"] = [replies[i] for i in data["index"]]
    return data.iloc[::-1]


def dump_like_vlmevalkit(data: pd.DataFrame, path: Path) -> Path:
    """``vlmeval/smp/file.py:dump`` for the suffix of ``path``."""
    if path.suffix == ".xlsx":
        pytest.importorskip("xlsxwriter", reason="VLMEvalKit writes .xlsx with xlsxwriter")
        with pd.ExcelWriter(path, engine="xlsxwriter",
                            engine_kwargs={"options": {"strings_to_formulas": False}}) as writer:
            data.to_excel(writer, index=False)
    elif path.suffix == ".json":
        path.write_text(json.dumps(data.to_dict("records"), indent=4, ensure_ascii=False), encoding="utf-8")
    else:
        data.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False, encoding="utf-8",
                    quoting=csv.QUOTE_ALL)
    return path


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".json", ".xlsx"])
def test_vlmevalkit_results_of_a_builders_mcq_build(built, tmp_path, suffix):
    if suffix == ".xlsx":
        pytest.importorskip("openpyxl", reason="reading .xlsx needs openpyxl")
    tsv, questions = built
    rows = jsonl(questions)
    replies = {r["index"]: scripted_reply(n, r["options"], r["answer_index"]) for n, r in enumerate(rows)}
    pred = dump_like_vlmevalkit(vlmevalkit_result(tsv, replies), tmp_path / f"MODEL_imnet{suffix}")
    report = evaluate_files(pred, questions)
    assert report["predictions_kind"] == ("json" if suffix == ".json" else "vlmevalkit")
    assert (report["n_items"], report["matched_predictions"], report["missing"]) == (10, 10, 0)
    assert report["correct"] == 7 and report["accuracy"] == 0.7  # rows 0,1,3,4,6,7,9
    assert report["parse_how"]["letter"] == 7


@pytest.fixture(scope="module")
def iwqa(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("iwqa_ev") / "bench"
    items = iwqa_items(permutations=2)
    bench = write_llava_jsonl(items, out / "llava")
    return write_vlmevalkit_tsv(items, out / "vlmevalkit" / "benchmark.tsv"), bench


@pytest.mark.parametrize("keep_question_id", [True, False], ids=["by_question_id", "by_index"])
def test_vlmevalkit_results_of_an_imagewikiqa_circular_tsv(iwqa, tmp_path, keep_question_id):
    tsv, bench = iwqa
    table = pd.read_csv(tsv, sep="\t")
    letters = dict(zip(table["index"], table["answer"], strict=True))
    wrong = int(table["index"].iloc[-1])  # one permutation of one (question, image) pair answered wrong
    replies = {i: ("A" if a != "A" else "B") if i == wrong else a for i, a in letters.items()}
    data = vlmevalkit_result(tsv, replies)
    if not keep_question_id:
        data.pop("question_id")
    report = evaluate_files(dump_like_vlmevalkit(data, tmp_path / "MODEL_iwqa.tsv"), bench)
    assert (report["n_items"], report["matched_predictions"], report["correct"]) == (12, 12, 11)
    assert (report["circular"]["n_groups"], report["circular"]["correct"]) == (6, 5)


def lmms_samples(tmp_path: Path, rows: list[dict], task: str) -> Path:
    """lmms-eval's own writer turns evaluator-shaped rows into ``<date>_samples_<task>.jsonl``."""
    spec = tmp_path / "rows.json"
    spec.write_text(json.dumps(rows), encoding="utf-8")
    res = subprocess.run([consumers_python(), "-c", LMMS_WRITER, str(tmp_path / "lmms"), task, str(spec)],
                         capture_output=True, text=True, timeout=120, env={k: v for k, v in os.environ.items()
                                                                           if k != "PYTHONPATH"})
    assert res.returncode == 0, res.stderr[-2000:]
    (path,) = (tmp_path / "lmms" / "scripted").glob(f"*_samples_{task}.jsonl")
    return path


def test_lmms_eval_samples_matched_by_doc_id(built, tmp_path):
    _, questions = built
    rows = jsonl(questions)
    logged = []
    for n, r in enumerate(rows):
        reply = scripted_reply(n, r["options"], r["answer_index"])
        # lmms-eval/evaluator.py: one generate_until request per doc; the doc itself is dropped when saved
        logged.append({"doc_id": n, "doc": {"question": r["text"]}, "target": "ABCD"[r["answer_index"]],
                       "arguments": [r["text"], {"max_new_tokens": 16}], "resps": [[reply]],
                       "filtered_resps": [reply], "token_counts": [None], "doc_hash": f"h{n}", "exact_match": 0.0})
    path = lmms_samples(tmp_path, logged, "vlmcd_imagenet_mcq")
    saved = jsonl(path)
    assert "doc" not in saved[0] and isinstance(saved[0]["filtered_resps"], str)  # the shape 0.7 writes
    report = evaluate_files(path, questions)
    assert report["predictions_kind"] == "lmms-eval"
    assert (report["matched_predictions"], report["correct"], report["accuracy"]) == (10, 7, 0.7)


def test_lmms_eval_samples_with_docs_matched_by_the_docs_ids(built, tmp_path):
    """Writers that keep ``doc`` (lmms-eval before 0.7, lm-eval): rows out of order, matched by the doc's key."""
    _, questions = built
    rows = jsonl(questions)
    lines = [{"doc_id": 99 - n, "doc": {"id": r["question_id"], "index": r["index"]}, "target": "x",
              "filtered_resps": [[scripted_reply(n, r["options"], r["answer_index"])]]}
             for n, r in enumerate(rows)][::-1]
    path = tmp_path / "samples_vlmcd.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    report = evaluate_files(path, questions)
    assert (report["matched_predictions"], report["correct"]) == (10, 7)


def test_cli_scores_a_vlmevalkit_tsv_result(built, tmp_path):
    tsv, questions = built
    replies = {r["index"]: "ABCD"[r["answer_index"]] for r in jsonl(questions)}
    pred = dump_like_vlmevalkit(vlmevalkit_result(tsv, replies), tmp_path / "MODEL_imnet.tsv")
    res = run_main(main, "evaluate", str(pred), "--questions", str(questions), "--out", str(tmp_path / "r.json"))
    assert res.returncode == 0, res.stderr
    assert "items 10: accuracy 100.00%" in res.stdout
    assert json.loads((tmp_path / "r.json").read_text())["predictions_kind"] == "vlmevalkit"


def _one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    for needle in needles:
        assert needle in res.stderr, res.stderr


def test_bad_prediction_files_are_one_line_errors(built, tmp_path, monkeypatch):
    _, questions = built
    no_pred = tmp_path / "MODEL_x.tsv"
    no_pred.write_text('"index"\t"question"\n"0"\t"q"\n', encoding="utf-8")
    _one_line_error(run_main(main, "evaluate", str(no_pred), "--questions", str(questions)), "'prediction'")
    not_list = tmp_path / "MODEL_x.json"
    not_list.write_text('{"index": 0}', encoding="utf-8")
    _one_line_error(run_main(main, "evaluate", str(not_list), "--questions", str(questions)), "JSON list")
    bad_doc = tmp_path / "samples_t.jsonl"
    bad_doc.write_text('{"doc_id": "zero", "filtered_resps": "A"}\n', encoding="utf-8")
    _one_line_error(run_main(main, "evaluate", str(bad_doc), "--questions", str(questions)), "doc_id")
    xlsx = tmp_path / "MODEL_x.xlsx"
    xlsx.write_bytes(b"not a zip file")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # as where openpyxl is not installed
    _one_line_error(run_main(main, "evaluate", str(xlsx), "--questions", str(questions)), "pip install openpyxl")


def test_unreadable_xlsx_is_a_one_line_error(built, tmp_path):
    pytest.importorskip("openpyxl", reason="reading .xlsx needs openpyxl")
    _, questions = built
    xlsx = tmp_path / "MODEL_x.xlsx"
    xlsx.write_bytes(b"not a zip file")
    _one_line_error(run_main(main, "evaluate", str(xlsx), "--questions", str(questions)), "not a readable xlsx")
