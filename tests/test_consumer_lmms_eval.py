"""The lmms-eval task folder a build ships runs in the REAL lmms-eval CLI and scores exactly as expected.

Rows are real: the builders' own ``mcq`` / ``open`` tasks make the questions for sample images, and the real
parquet writer writes them with the flat eval columns (``id, image, text, question, answer, answer_index,
options, label, class_id, class_name, index``). A scripted lmms-eval model, registered through lmms-eval's
``lmms_eval.models`` entry-point group from a test-local distribution, answers by row ``id``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from consumers import consumers_python

from builders.eval_packages.lmms_tasks import FOLDER, build_tasks, task_name, write_build_tasks
from builders.formats.layouts import mcq_stem
from builders.formats.mcq import balanced_positions
from builders.formats.tasks import make_task
from builders.records import Record
from builders.sample import SAMPLE_ROOT, sample_wnids
from builders.writers.hf_parquet import HFParquetWriter
from imagewikiqa.assemble import PairedItem
from imagewikiqa.exports import LMMS_TASK, export_all
from imagewikiqa.records import Question
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
SPLIT = "validation"
TIMEOUT_S = 240


def _records(vocab: ClassVocabulary) -> list[Record]:
    out = []
    for wnid in sample_wnids():
        path = sorted((SAMPLE_ROOT / "train" / wnid).iterdir())[0]
        entry = vocab[wnid]
        out.append(Record(key=path.stem, split=SPLIT, class_id=wnid, label=entry.index, class_name=entry.name,
                          image_bytes=path.read_bytes(), image_ext="jpg", image_path=None))
    return out


def _write(out: Path, name: str, rows: list[tuple[Record, dict]], vocab: ClassVocabulary) -> list[str]:
    writer = HFParquetWriter(out / name, {"class_names": vocab.names})
    shard = writer.shard_writer(SPLIT, 0, 1)
    for record, row in rows:
        shard.add(record, row)
    files = [p.relative_to(out).as_posix() for p in shard.close()]
    writer.finalize({SPLIT: 1}, {SPLIT: len(rows)})
    return files


def make_build(out: Path) -> tuple[dict, dict[str, list[dict]]]:
    """A build folder with ``classes.json``, ``mcq_hf`` and ``open_hf`` parquet of the 5 sample classes;
    returns a manifest naming them and the rows of each kind in file order."""
    vocab = ClassVocabulary.bundled("imagenet1k").subset(sample_wnids())
    records = _records(vocab)
    vocab.save(out / "classes.json")
    mcq, opened = make_task("mcq", vocab, 0, num_choices=4), make_task("open", vocab, 0)
    positions = balanced_positions(len(records), 4, 0, SPLIT)
    mcq_rows, open_rows = [], []
    for i, (record, position) in enumerate(zip(records, positions, strict=True)):
        ex = mcq.make(record, position)
        base = {"label": record.label, "class_id": record.class_id, "class_name": record.class_name}
        mcq_rows.append((record, {"id": record.key, "text": ex.question, "question": mcq_stem(ex),
                                  "options": ex.options, "answer": ex.answer, "answer_index": ex.answer_index,
                                  **base, "index": i}))
        ex = opened.make(record)
        open_rows.append((record, {"id": record.key, "text": ex.question, "question": ex.question,
                                   "answer": ex.answer, **base}))
    outputs = {
        "mcq_hf": {"task": "mcq", "writer": "hf_parquet", "files": _write(out, "mcq_hf", mcq_rows, vocab)},
        "open_hf": {"task": "open", "writer": "hf_parquet", "files": _write(out, "open_hf", open_rows, vocab)},
        "mcq": {"task": "mcq", "writer": "jsonl", "files": ["mcq/validation.jsonl"]},
    }
    manifest = {"vocabulary": {"dataset": vocab.dataset}, "config": {"mcq_choices": 4}, "outputs": outputs}
    return manifest, {"mcq": [r for _, r in mcq_rows], "open": [r for _, r in open_rows]}


def make_imagewikiqa(out: Path, records: list[Record]) -> list[PairedItem]:
    """An ImageWikiQA export (``hf`` + its lmms-eval task) of one 4-option question per sample image."""
    items = []
    for n, record in enumerate(records):
        options = [f"fact {c} about object {n}" for c in "wxyz"]
        q = Question(qid=f"{record.class_id}-hand-fact-{n}", class_id=record.class_id,
                     class_name=record.class_name, question=f"Which fact number {n} is true of this object?",
                     options=options, answer_index=n % 4, reference="A sentence.", generator="hand", kind="fact")
        items.append(PairedItem(question=q, image_key=record.key, image_bytes=record.image_bytes, image_ext="jpg",
                                permutation=0, options=options, answer_index=n % 4))
    export_all(items, out, formats=("hf",))
    return items


def _plugin(where: Path) -> Path:
    """A distribution on ``where`` whose ``lmms_eval.models`` entry point names the scripted model."""
    info = where / "vlmcd_scripted_model-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vlmcd-scripted-model\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lmms_eval.models]\nvlmcd_scripted = lmms_scripted_model:MANIFEST\n")
    return where


OPEN_REPLIES = {"n02123045": "It looks like a tabby.", "n03773504": "missile", "n04266014": "tripod",
                "n04485082": "no idea", "n07920052": "espressso"}
"""Open-world replies by class: a WordNet synonym in a sentence, the name, another class, junk, a typo (3/5)."""


def _scripts(rows: dict[str, list[dict]]) -> tuple[dict[str, str], dict[str, str]]:
    """Replies by row id: MCQ right 3 ways, a wrong letter, an unparseable reply (3/5); open: OPEN_REPLIES."""
    mcq = rows["mcq"]
    letter = [chr(65 + r["answer_index"]) for r in mcq]
    mcq_script = {mcq[0]["id"]: letter[0], mcq[1]["id"]: f"The answer is ({letter[1]}).",
                  mcq[2]["id"]: mcq[2]["options"][mcq[2]["answer_index"]],
                  mcq[3]["id"]: chr(65 + (mcq[3]["answer_index"] + 1) % 4), mcq[4]["id"]: "I cannot tell."}
    open_script = {r["id"]: OPEN_REPLIES[r["class_id"]] for r in rows["open"]}
    return mcq_script, open_script


def test_lmms_eval_runs_the_shipped_tasks_and_scores_exactly(tmp_path: Path) -> None:
    python = consumers_python()
    out = tmp_path / "build"
    manifest, rows = make_build(out)
    files = write_build_tasks(out, manifest)
    runs = tmp_path / "runs"  # lmms-eval walks --include_path: one run registers both task folders
    iwqa = make_imagewikiqa(runs / "iwqa", _records(ClassVocabulary.load(out / "classes.json")))
    iwqa_script = {f"{it.question.qid}-{it.image_key}": "ABCD"[it.answer_index if i < 2 else (it.answer_index + 1) % 4]
                   for i, it in enumerate(iwqa)}  # 2 of 5 right
    mcq_task, open_task = (task_name("imagenet1k", "mcq", SPLIT, 4), task_name("imagenet1k", "open", SPLIT))
    assert mcq_task == "vlmcd_imagenet1k_mcq4_validation" and open_task == "vlmcd_imagenet1k_open_validation"
    assert sorted(p.name for p in files) == ["README.md", "utils.py", f"{mcq_task}.yaml", f"{open_task}.yaml"]
    yaml_text = (out / FOLDER / f"{mcq_task}.yaml").read_text()
    assert '- "../mcq_hf/data/validation-00000-of-00001.parquet"' in yaml_text and str(tmp_path) not in yaml_text

    # the build is moved: the task folder still finds its parquet (relative paths, resolved by lmms-eval)
    moved = runs / "moved"
    out.rename(moved)
    mcq_script, open_script = _scripts(rows)
    script = tmp_path / "script.json"
    script.write_text(json.dumps({mcq_task: mcq_script, open_task: open_script, LMMS_TASK: iwqa_script}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf_home"), "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets"),
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"), str(_plugin(tmp_path / "plugin"))])}
    results = tmp_path / "results"
    cmd = [python, "-m", "lmms_eval", "--model", "vlmcd_scripted", "--model_args", f"script={script}",
           "--include_path", str(runs), "--tasks", f"{mcq_task},{open_task},{LMMS_TASK}", "--batch_size", "1",
           "--log_samples", "--output_path", str(results), "--verbosity", "WARNING"]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    [summary] = list(results.rglob("*_results.json"))
    scores = json.loads(summary.read_text())["results"]
    assert scores[mcq_task]["accuracy,none"] == pytest.approx(0.6, abs=1e-12)
    assert scores[open_task]["accuracy,none"] == pytest.approx(0.6, abs=1e-12)
    assert scores[LMMS_TASK]["accuracy,none"] == pytest.approx(0.4, abs=1e-12)

    # the per-row log other tools read back (lmms-eval 0.7.3 drops the doc): doc_id = row position in the split
    for task, kind, script in ((mcq_task, "mcq", mcq_script), (open_task, "open", open_script)):
        [log] = list(results.rglob(f"*_samples_{task}.jsonl"))
        logged = sorted((json.loads(line) for line in log.read_text().splitlines()), key=lambda r: r["doc_id"])
        assert [r["doc_id"] for r in logged] == list(range(5))
        for r, row in zip(logged, rows[kind], strict=True):
            assert r["target"] == row["answer"] and r["input"] == row["text"]
            assert r["filtered_resps"] == script[row["id"]] and "doc" not in r
        assert sum(r["accuracy"] for r in logged) == 3


def test_task_folder_is_deterministic_and_rewritten(tmp_path: Path) -> None:
    out = tmp_path / "build"
    manifest, _ = make_build(out)
    first = {p.name: p.read_bytes() for p in write_build_tasks(out, manifest)}
    again = {p.name: p.read_bytes() for p in write_build_tasks(out, manifest)}
    assert first == again and not [p for p in (out / FOLDER).iterdir() if p.name not in first]
    assert b"!function utils.process_open" in first["vlmcd_imagenet1k_open_validation.yaml"]
    # a later build without open_hf: its task goes; one without parquet eval outputs: the folder goes
    del manifest["outputs"]["open_hf"]
    assert sorted(p.name for p in (out / FOLDER).iterdir()) == sorted(first)
    write_build_tasks(out, manifest)
    assert sorted(p.name for p in (out / FOLDER).iterdir()) == sorted(
        n for n in first if n != "vlmcd_imagenet1k_open_validation.yaml")
    del manifest["outputs"]["mcq_hf"]
    assert write_build_tasks(out, manifest) == [] and not (out / FOLDER).exists()


def test_parquet_without_the_flat_columns_gets_no_task(tmp_path: Path) -> None:
    out = tmp_path / "build"
    manifest, _ = make_build(out)
    spec = manifest["outputs"]["mcq_hf"]
    vocab = ClassVocabulary.load(out / "classes.json")
    record = _records(vocab)[0]
    spec["files"] = _write(out, "old_mcq_hf", [(record, {"id": record.key, "label": record.label})], vocab)
    assert [t.name for t in build_tasks(out, manifest)] == ["vlmcd_imagenet1k_open_validation"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
