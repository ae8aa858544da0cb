"""The one column vocabulary (#18) on a real build of the embedded sample with ``--outputs all``.

Every output is read back with the library its users read it with (json, ``datasets``, ``webdataset``, pandas)
and every column that carries a vocabulary name is checked for the one meaning that name has everywhere:
``label`` an int index into ``classes.json`` whose name is ``class_name``, ``answer`` the letter at
``answer_index`` (lettered MCQ) or the class name, ``question`` the stem and ``text`` the full prompt, ``index``
the VLMEvalKit row number shared by the MCQ JSONL, ``mcq_hf`` and the TSV, ``category`` the class name (TSV
only). Also: source split ``val`` is written as ``validation`` (``--split-names keep`` keeps ``val``; ``--splits``
takes either name), eval-split rows of the instruction outputs ask the canonical eval question, and a bad
``--split-names`` is one line with exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest
import webdataset as wds
from inprocess import run_main

from builders.config import output_registry
from builders.formats.mcq import MAX_LETTERS, letters
from builders.imagenet_qa import main as build_main
from builders.prompts import PromptRegistry
from imagewikiqa.evaluate import evaluate_files
from vlm_classdata.verification.items import load_items
from vlm_classdata.vocabulary import ClassVocabulary

SPLITS = ("train", "validation")
CANONICAL = PromptRegistry.load().first("open")[1]
TRAINING_QUESTIONS = {text for _, text in PromptRegistry.load().templates("instruct")}
EVAL_KEYS = ("text", "question", "answer", "label", "class_id", "class_name")
MCQ_KEYS = ("options", "answer_index", "index", "option_class_ids", "distractor_mode", "distractor_pool_size",
            "distractor_relations")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vocab") / "out"
    res = run_main(build_main, "--out", str(out), "--outputs", "all", "--quiet")
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def vocab(built) -> ClassVocabulary:
    return ClassVocabulary.load(built / "classes.json")


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def parquet_split(folder: Path, split: str, cache: Path) -> datasets.Dataset:
    return datasets.load_dataset(str(folder), cache_dir=str(cache))[split]


def user_text(row: dict) -> str:
    """The question a training row asks, whichever instruction layout it has (conversations, messages, prompt)."""
    if "conversations" in row:
        return row["conversations"][0]["value"].removeprefix("<image>\n")
    turns = row.get("prompt") or row.get("messages")
    content = next(t["content"] for t in turns if t["role"] == "user")
    if isinstance(content, str):
        return content
    return next(c["text"] for c in content if c.get("type") == "text")


def check_vocabulary(row: dict, vocab: ClassVocabulary, where: str) -> None:
    """Every vocabulary column a row has carries its one meaning."""
    if "label" in row:
        label = row["label"]
        assert type(label) is int and 0 <= label < len(vocab), (where, label)
        assert vocab.by_index(label).name == row["class_name"], where
        assert vocab.by_index(label).class_id == row["class_id"], where
    for key in ("id", "question_id", "class_id", "class_name", "text", "question", "answer"):
        if key in row:
            assert isinstance(row[key], str) and row[key], (where, key)
    if "index" in row:
        assert type(row["index"]) is int, where
    if "images" in row:
        assert len(row["images"]) == 1, where
    for key in ("prompt", "completion", "messages"):
        if key in row:
            assert isinstance(row[key], list) and all("role" in t for t in row[key]), (where, key)
    if "options" in row:
        options, i = row["options"], row["answer_index"]
        assert options[i] == row["class_name"], where
        want = letters(len(options))[i] if len(options) <= MAX_LETTERS else row["class_name"]
        assert row["answer"] == want, where
        assert row["text"].startswith(row["question"] + "\n") and row["question"] not in options, where
        assert all(f"{ch}. {o}" in row["text"] for ch, o in zip(letters(len(options)), options, strict=True))
    elif "answer" in row and "text" in row:  # open-world: the target is the class name, the stem is the text
        assert row["answer"] == row["class_name"] and row["question"] == row["text"], where
    assert "category" not in row, where  # the class name under VLMEvalKit's name: its TSV only


def test_every_output_has_validation_files_and_no_val(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert list(manifest["splits"]) == list(SPLITS) and set(manifest["outputs"]) == set(output_registry())
    for name, info in manifest["outputs"].items():
        stems = {Path(f).name.split(".")[0].split("-")[0] for f in info["files"]}
        assert set(SPLITS) <= stems and "val" not in stems, (name, info["files"])


def test_question_jsonl_and_parquet_columns(built, vocab, tmp_path):
    image_root = Path(json.loads((built / "manifest.json").read_text())["outputs"]["mcq"]["image_root"])
    for split in SPLITS:
        rows = jsonl(built / "eval_open" / f"{split}.jsonl")
        assert [list(r) for r in rows] == [["question_id", "image", *EVAL_KEYS]] * len(rows)
        mcq = jsonl(built / "mcq" / f"{split}.jsonl")
        assert [list(r) for r in mcq] == [["question_id", "image", *EVAL_KEYS, *MCQ_KEYS]] * len(mcq)
        assert [r["index"] for r in mcq] == list(range(len(mcq)))  # unique per split, VLMEvalKit's row number
        for r in rows + mcq:
            check_vocabulary(r, vocab, f"{split} {r['question_id']}")
            assert (image_root / r["image"]).is_file()  # the one image, as a path relative to the image root

        for name, flat in (("open_hf", rows), ("mcq_hf", mcq)):
            ds = parquet_split(built / name, split, tmp_path / name)
            assert isinstance(ds.features["label"], datasets.ClassLabel)
            assert ds.features["label"].names == vocab.names and isinstance(ds.features["image"], datasets.Image)
            got = [dict(r) for r in ds]
            for r, want in zip(got, flat, strict=True):
                assert r.pop("image").size[0] > 0
                check_vocabulary(r, vocab, f"{name} {split}")
                want = {k: v for k, v in want.items() if k not in ("question_id", "image")}
                assert r == {"id": r["id"], **want}


def test_vlmevalkit_tsv_shares_index_and_keeps_its_columns(built, vocab):
    for split in SPLITS:
        tsv = pd.read_csv(built / "vlmevalkit" / f"{split}.tsv", sep="\t")
        assert list(tsv.columns) == ["index", "image", "question", "A", "B", "C", "D", "answer", "category"]
        mcq = {r["index"]: r for r in jsonl(built / "mcq" / f"{split}.jsonl")}
        for row in tsv.to_dict("records"):
            twin = mcq[row["index"]]
            assert row["question"] == twin["question"] and row["answer"] == twin["answer"]
            assert [row[ch] for ch in "ABCD"] == twin["options"]
            assert row["category"] == twin["class_name"]


def test_instruction_outputs_ask_the_canonical_question_on_eval_splits(built, vocab, tmp_path):
    labels = {r["question_id"]: r["label"] for s in SPLITS for r in jsonl(built / "eval_open" / f"{s}.jsonl")}
    for split in SPLITS:
        n = len(jsonl(built / "eval_open" / f"{split}.jsonl"))
        llava = json.loads((built / "llava" / f"{split}.json").read_text())
        hf = [dict(r) for r in parquet_split(built / "hf", split, tmp_path / "hf")]
        shards = sorted(str(p) for p in (built / "wds").glob(f"{split}-*.tar"))
        samples = list(wds.WebDataset(shards, shardshuffle=False))
        assert len(llava) == len(hf) == len(samples) == n > 0
        for r in llava:
            assert r["conversations"][1]["value"] == vocab.by_index(labels[r["id"]]).name
        for r in hf:
            r.pop("image", None)
            check_vocabulary(r, vocab, f"hf {split}")
            if "images" in r:
                assert len(r["images"]) == 1
        wds_rows = []
        for s in samples:
            row = json.loads(s["json"])
            assert int(s["cls"]) == labels[s["__key__"]]
            check_vocabulary(row, vocab, f"wds {split}")
            wds_rows.append(row)
        questions = {user_text(r) for r in [*llava, *hf, *wds_rows]}
        if split == "train":
            assert questions <= TRAINING_QUESTIONS and len(questions) > 1  # seeded paraphrases
        else:
            assert questions == {CANONICAL}
    manifest = json.loads((built / "manifest.json").read_text())
    assert "open-01" in manifest["tasks"]["instruct"]["eval_splits"]


def test_readers_take_answer_and_the_class_index(built, vocab, tmp_path):
    """Item loading reads ``answer`` (the released ImageWikiQA letter ``label`` keeps loading: see
    test_imagewikiqa_evaluate) and an int ``label`` as the class index; scoring the build's own MCQ JSONL with
    its answers is 100 %."""
    path = built / "mcq" / "validation.jsonl"
    rows = jsonl(path)
    items = load_items(path, vocab=vocab).items
    assert [(it.answer, it.answer_index, it.class_id) for it in items] == \
        [(r["answer"], r["answer_index"], r["class_id"]) for r in rows]
    bare = tmp_path / "no_class_id.jsonl"  # a row naming its class by index only
    bare.write_text(json.dumps({k: v for k, v in rows[0].items() if k not in ("class_id", "class_name")}) + "\n")
    (only,) = load_items(bare, vocab=vocab).items
    assert (only.class_id, only.class_name) == (rows[0]["class_id"], rows[0]["class_name"])
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"question_id": r["question_id"], "text": r["answer"]}) + "\n" for r in rows))
    report = evaluate_files(preds, path)
    assert report["accuracy"] == 1.0 and report["n_items"] == len(rows) == 10


def test_split_names_keep_and_either_name_in_splits(tmp_path):
    keep = run_main(build_main, "--out", str(tmp_path / "keep"), "--outputs", "mcq,llava", "--split-names", "keep",
                    "--splits", "val", "--quiet")
    assert keep.returncode == 0, keep.stderr
    assert sorted(p.name for p in (tmp_path / "keep" / "mcq").iterdir()) == ["val.jsonl"]
    assert (tmp_path / "keep" / "llava" / "val.json").is_file()
    by_out = run_main(build_main, "--out", str(tmp_path / "out"), "--outputs", "eval_open", "--splits", "validation",
                      "--quiet")
    by_src = run_main(build_main, "--out", str(tmp_path / "src"), "--outputs", "eval_open", "--splits", "val",
                      "--quiet")
    assert by_out.returncode == by_src.returncode == 0, by_out.stderr + by_src.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "eval_open").iterdir()) == ["validation.jsonl"]
    assert (tmp_path / "out" / "eval_open" / "validation.jsonl").read_bytes() == \
        (tmp_path / "src" / "eval_open" / "validation.jsonl").read_bytes()
    renamed = run_main(build_main, "--out", str(tmp_path / "dev"), "--outputs", "eval_open", "--split-names",
                       "val=dev,train=fit", "--quiet")
    assert renamed.returncode == 0, renamed.stderr
    assert sorted(p.name for p in (tmp_path / "dev" / "eval_open").iterdir()) == ["dev.jsonl", "fit.jsonl"]


@pytest.mark.parametrize(("value", "says"), [
    ("val", "expected keep or SOURCE=OUTPUT"),
    ("val=a,train=a", "maps both 'val' and 'train' to 'a'"),
    ("val=../x", "cannot be used in a file name"),
    ("val=my-split", "not a Hugging Face split name"),
    ("val=validation,val=dev", "named twice"),
    ("val=train", "would both be written as 'train'"),
])
def test_bad_split_names_are_one_line(tmp_path, value, says):
    res = run_main(build_main, "--out", str(tmp_path / "out"), "--outputs", "eval_open", "--split-names", value,
                   "--quiet")
    assert res.returncode == 2 and says in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()
