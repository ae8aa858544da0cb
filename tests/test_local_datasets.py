"""vlm_classdata.local_datasets: every local layout the builders' hf source, the corpus readers and the
ImageWikiQA Wikipedia reader open, written here by ``datasets`` itself, detected and opened to the same rows."""

from __future__ import annotations

import json

import datasets
import pytest

from vlm_classdata.errors import UserError
from vlm_classdata.local_datasets import LocalKind, detect_local_dataset, open_local_dataset, saved_data_files

ROWS = {"text": [f"a photo of class {i}" for i in range(12)], "label": [i % 3 for i in range(12)]}


def rows(ds) -> list[dict]:
    return list(ds)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One of each layout, from the same 12 rows (train) and 4 rows (test)."""
    root = tmp_path_factory.mktemp("local")
    train = datasets.Dataset.from_dict(ROWS)
    test = datasets.Dataset.from_dict({k: v[:4] for k, v in ROWS.items()})
    train.save_to_disk(str(root / "saved"), num_shards=3)
    datasets.Dataset.from_dict(ROWS, split="validation").save_to_disk(str(root / "saved_val"))
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(root / "dict"))
    train.to_parquet(str(root / "one.parquet"))
    (root / "hub" / "data").mkdir(parents=True)
    train.to_parquet(str(root / "hub" / "data" / "train-00000-of-00001.parquet"))
    test.to_parquet(str(root / "hub" / "data" / "test-00000-of-00001.parquet"))
    (root / "jsonl").mkdir()
    (root / "jsonl" / "train.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": c}) + "\n" for t, c in zip(ROWS["text"], ROWS["label"], strict=True)))
    return root, rows(train), rows(test)


def test_detection_names_every_kind(made, tmp_path):
    root, _, _ = made
    arrow = saved_data_files(root / "saved")[0]
    (tmp_path / "info").mkdir()
    (tmp_path / "info" / "dataset_info.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("x")
    assert {name: detect_local_dataset(p) for name, p in {
        "saved": root / "saved", "dict": root / "dict", "arrow": arrow, "parquet": root / "one.parquet",
        "hub": root / "hub", "info": tmp_path / "info", "jsonl": root / "jsonl", "txt": tmp_path / "notes.txt",
        "missing": tmp_path / "nothing"}.items()} == {
        "saved": LocalKind.SAVED_DATASET, "dict": LocalKind.SAVED_DATASET_DICT, "arrow": LocalKind.ARROW_FILE,
        "parquet": LocalKind.PARQUET_FILE, "hub": LocalKind.HUB_FOLDER, "info": LocalKind.HUB_FOLDER,
        "jsonl": LocalKind.DATA_FOLDER, "txt": None, "missing": None}


def test_save_to_disk_folders_open_with_their_splits(made):
    root, train, test = made
    saved = open_local_dataset(root / "saved")
    assert list(saved) == ["train"] and rows(saved["train"]) == train
    assert list(open_local_dataset(root / "saved_val")) == ["validation"]  # a Dataset keeps its own split name
    both = open_local_dataset(root / "dict")
    assert list(both) == ["train", "test"] and rows(both["train"]) == train and rows(both["test"]) == test
    only = open_local_dataset(root / "dict", split="test", streaming=True)  # memory-mapped: streaming n/a
    assert list(only) == ["test"] and isinstance(only["test"], datasets.Dataset)
    with pytest.raises(UserError, match=r"no split 'val'; available: train, test"):
        open_local_dataset(root / "dict", split="val")


def test_saved_data_files_are_the_files_the_dataset_reads(made):
    root, _, _ = made
    files = saved_data_files(root / "saved")
    assert len(files) == 3 and all(f.suffix == ".arrow" and f.is_file() for f in files)
    assert [f["filename"] for f in open_local_dataset(root / "saved")["train"].cache_files] == [str(f) for f in files]
    in_dict = saved_data_files(root / "dict")
    assert [f.parent.name for f in in_dict] == ["train", "test"]


def test_single_files_open_as_train(made):
    root, train, _ = made
    arrow = open_local_dataset(saved_data_files(root / "saved")[0])
    assert list(arrow) == ["train"] and rows(arrow["train"]) == train[:4]
    parquet = open_local_dataset(root / "one.parquet")
    assert list(parquet) == ["train"] and rows(parquet["train"]) == train
    streamed = open_local_dataset(root / "one.parquet", streaming=True)["train"]
    assert isinstance(streamed, datasets.IterableDataset) and rows(streamed) == train


def test_hub_and_data_folders_open_through_load_dataset(made):
    root, train, test = made
    hub = open_local_dataset(root / "hub")
    assert sorted(hub) == ["test", "train"] and rows(hub["train"]) == train and rows(hub["test"]) == test
    streamed = open_local_dataset(root / "hub", streaming=True, split="test")
    assert isinstance(streamed["test"], datasets.IterableDataset) and rows(streamed["test"]) == test
    assert rows(open_local_dataset(root / "jsonl")["train"]) == train


def test_damaged_and_unknown_paths_are_one_user_error_naming_them(made, tmp_path):
    root, _, _ = made
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "state.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad_dict").mkdir()
    (tmp_path / "bad_dict" / "dataset_dict.json").write_text("{not json")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    cases = {tmp_path / "half": "damaged save_to_disk folder .*half.*dataset_info.json",
             tmp_path / "empty": "cannot load Hugging Face dataset .*empty",
             tmp_path / "bad_dict": "cannot load Hugging Face dataset .*bad_dict",
             tmp_path / "notes.txt": "notes.txt: expected a dataset folder, a .parquet or an .arrow file",
             tmp_path / "broken.parquet": "cannot load Hugging Face dataset .*broken.parquet",
             tmp_path / "nothing": "nothing' does not exist"}
    for path, message in cases.items():
        with pytest.raises(UserError, match=message):
            open_local_dataset(path)
    with pytest.raises(UserError, match="dataset_dict.json .*bad_dict.*not valid JSON"):
        saved_data_files(tmp_path / "bad_dict")
