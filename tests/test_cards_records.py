"""vlm_classdata.records: the typed records cards read — validated on read, written in their writers' bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlm_classdata.atomic import json_text
from vlm_classdata.errors import UserError
from vlm_classdata.records.build_manifest import BuildManifest, FilteredManifest
from vlm_classdata.records.count_meta import CountMeta
from vlm_classdata.records.imagewikiqa import BenchmarkManifest, QualityReport
from vlm_classdata.records.run_log import RunLogEntry
from vlm_classdata.records.verification import FilterReport, VerificationSummary

MANIFEST = {
    "tool": {"name": "vlm-classdata", "versions": {"python": "3.11"}},
    "config": {"seed": 0, "prompts": None, "outputs": ["hf"], "max_pixels": 89478485, "ratio": 1.0},
    "source": {"kind": "imagenet", "root": "/data/ï", "dataset": "imagenet1k", "num_classes": 1000,
               "label_source": {"train": "class_folders"}, "splits": ["train"]},
    "vocabulary": {"dataset": "imagenet1k", "num_classes": 1000, "file": "classes.json",
                   "renamed": {"n1": {"from": "a", "to": "b", "why": "twice"}}},
    "tasks": {"instruct": {"templates": {"instruct": ["i0", "i1"]}, "paraphrase": True, "seed": 0, "cot": False}},
    "outputs": {"hf": {"about": "parquet", "task": "instruct", "dir": "hf", "counts": {"train": 2},
                       "image_root": None, "files": ["hf/data/train-00000-of-00001.parquet"]}},
    "splits": {"train": {"scanned": 2, "written": 2, "skipped": 0, "skip_reasons": {}, "converted": {"L": 1},
                         "class_counts": {"n1": 2}, "planned": 2}},
    "shards": {"train": [{"shard": 0, "items": 2}]},
    "skipped": [],
}
FILTERED = {**MANIFEST, "filtered": {"from": "/b", "input": 3, "kept": 2,
                                     "rules": [{"rule": "drop:blind", "dropped": 1, "dropped_alone": 1,
                                                "models": ["s"]}]}}
SUMMARY = {"pass": "mcq", "model": "s", "items": 3, "ok": 3, "correct": 1, "accuracy": 0.333333,
           "errors": {}, "complete": True, "settings": {"batch_size": 8, "max_prompt_tokens": None},
           "tool": {"torch": "2"}, "median_rank": 2.0}


@pytest.mark.parametrize(("record", "data", "layout"), [
    (BuildManifest, MANIFEST, json_text),
    (FilteredManifest, FILTERED, lambda d: json.dumps(d, indent=2, sort_keys=True)),
    (VerificationSummary, SUMMARY, lambda d: json.dumps(d, indent=2, sort_keys=True)),
    (FilterReport, {"input": 3, "kept": 2, "rules": [], "rules_text": ["drop:blind"], "dropped": {"x": 1},
                    "files": {"hf/a.parquet": {"rows": 3, "kept": 2}}},
     lambda d: json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + "\n"),
    (CountMeta, {"method": "paper", "lexicon": {"clean_forms": 3, "by_flag": {"short": 1}},
                 "corpora": {"demo": {"documents": 10, "path": "é"}}, "tool": {"x": "1"}}, json_text),
    (BenchmarkManifest, {"status": "failed", "error": "boom", "config": {"classes": "imagenet1k", "seed": 0},
                         "command": None, "requests": {}, "tool": {"name": "vlm-classdata"}}, json_text),
])
def test_write_gives_the_writers_bytes(tmp_path, record, data, layout):
    path = tmp_path / "r.json"
    record.model_validate(data).write(path)
    assert path.read_text(encoding="utf-8") == layout(data)
    assert record.read(path).to_obj() == data  # unknown keys kept, absent ones stay absent, None stays None


def test_quality_report_keeps_the_writers_key_order(tmp_path):
    report = {"n_questions": 2, "distinct_questions": 2, "classes": 1, "letters": {"B": 1, "A": 1},
              "blind_baselines": {"n": 2, "random": 0.25, "longest": 0.5, "shortest": 0, "letter_prior": {}},
              "text_only_llm": None, "meta": {"z": 1, "a": "ü"}, "key_check": {"problems": 0}, "later": 1}
    path = tmp_path / "quality_report.json"
    QualityReport.model_validate(report).write(path)
    assert path.read_text(encoding="utf-8") == json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    assert QualityReport.read(path).blind_baselines.shortest == 0  # an int stays an int


def test_keys_keep_the_order_they_were_given_in(tmp_path):
    """An MCQ items report (``imagewikiqa report``) leads with keys a benchmark's report has not; nested parts
    keep their order too."""
    report = {"kind": "mcq", "n_items": 3, "classes": 2, "stems": {"b": 1, "a": 2},
              "blind_baselines": {"shortest": 0.5, "n": 3, "extra": True}, "letters": {"A": 3}}
    path = tmp_path / "quality_report.json"
    QualityReport.model_validate(report).write(path)
    assert path.read_text(encoding="utf-8") == json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def test_run_log_line_and_last_entry(tmp_path):
    entry = {"finished_at": "2026-01-01T00:00:00", "seconds": 1.5, "executor": "local", "workers": 1,
             "written": 3, "images_per_s": 2.0, "argv": ["x.py", "é"]}
    line = RunLogEntry.model_validate(entry).line()
    assert line == json.dumps(entry, ensure_ascii=False) + "\n"
    log = tmp_path / "run_log.jsonl"
    log.write_text(line + '{"argv": "not a list"}\n{torn\n', encoding="utf-8")
    assert RunLogEntry.last(log).argv == ["x.py", "é"]
    assert RunLogEntry.last(tmp_path / "absent.jsonl") is None


def test_a_file_without_schema_version_is_version_1_and_a_newer_one_is_refused(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(MANIFEST))
    assert BuildManifest.read(path).schema_version == 1
    path.write_text(json.dumps({**MANIFEST, "schema_version": 2}))
    with pytest.raises(UserError, match="schema_version 2 is newer"):
        BuildManifest.read(path)


@pytest.mark.parametrize(("text", "message"), [
    (json.dumps({**MANIFEST, "outputs": {"hf": {"counts": {"train": "two"}}}}),
     r"build manifest .*manifest.json: field 'outputs.hf.counts.train': "),
    (json.dumps([1, 2]), r"build manifest .*manifest.json: not a JSON object"),
    ("{not json", r"build manifest .*manifest.json: not valid JSON"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "manifest.json"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        BuildManifest.read(path)
    assert "\n" not in str(err.value)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        VerificationSummary.read(Path(tmp_path / "absent.json"))
