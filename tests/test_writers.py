"""Writers: multi-shard writes + finalize read back with the real consumers (json, pandas, datasets, webdataset)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import random
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from builders.records import Record
from builders.synthetic import jpeg_bytes
from builders.writers.hf_parquet import HFParquetWriter, verify
from builders.writers.images import ImageFilesWriter
from builders.writers.jsonfiles import JsonArrayWriter, JsonlWriter, TsvWriter
from builders.writers.registry import WRITERS, make_writer
from builders.writers.webdataset import WebDatasetWriter
from vlm_classdata.errors import UserError

CLASSES = [("n01440764", "tench"), ("n01443537", "goldfish"), ("n02012849", "crane")]
CLASS_NAMES = [name for _, name in CLASSES]


def png_bytes(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def make_records(split: str, n: int, seed: int = 0) -> list[Record]:
    """Records with real JPEG bytes (every fifth one a PNG), sizes varying per sample."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = i % len(CLASSES)
        wnid, name = CLASSES[label]
        size = (40 + i, 30 + 2 * i)
        data, ext = (png_bytes(size), "png") if i % 5 == 4 else (jpeg_bytes(rng, size), "jpg")
        key = f"{split}_{wnid}_{1000 + i}"
        out.append(Record(key=key, split=split, class_id=wnid, label=label, class_name=name, image_bytes=data,
                          image_ext=ext, image_path=f"{split}/{wnid}/{key}.{ext}", width=size[0], height=size[1]))
    return out


def llava_row(rec: Record) -> dict:
    return {"id": rec.key, "image": rec.image_path, "conversations": [
        {"from": "human", "value": "<image>\nWhat type of object is in the photo?"},
        {"from": "gpt", "value": rec.class_name}]}


def chat_row(rec: Record) -> dict:
    return {"id": rec.key, "messages": [
        {"role": "user", "content": [{"type": "image", "text": None},
                                     {"type": "text", "text": "What type of object is in the photo? — ünïcode"}]},
        {"role": "assistant", "content": [{"type": "text", "text": rec.class_name}]}],
        "label": rec.label, "class_id": rec.class_id, "class_name": rec.class_name}


def tsv_row(rec: Record, index: int) -> dict:
    question = "Which object is shown?\nAnswer\twith the option's letter, \"quoted\"." if index % 2 else "What is it?"
    return {"index": index, "question": question, "A": rec.class_name, "B": "goldfish", "C": None,
            "answer": "A", "category": rec.class_id}


def write_split(writer, split: str, records: list[Record], rows: list[dict], num_shards: int) -> list[Path]:
    """Write contiguous shards (shard i gets the i-th slice); return the published files."""
    per = -(-len(records) // num_shards) if records else 0
    published = []
    for shard in range(num_shards):
        sw = writer.shard_writer(split, shard, num_shards)
        for rec, row in zip(records[shard * per:(shard + 1) * per], rows[shard * per:(shard + 1) * per],
                            strict=True):
            sw.add(rec, row)
        published += sw.close()
    return published


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if ".tmp" in p.name]


# --- JSON array / JSONL ------------------------------------------------------------------------------

def test_json_array_multi_shard_loads_in_shard_order(tmp_path: Path) -> None:
    train, val = make_records("train", 7), make_records("val", 2, seed=1)
    writer = JsonArrayWriter(tmp_path)
    rows_train, rows_val = [llava_row(r) for r in train], [llava_row(r) for r in val]
    parts = write_split(writer, "train", train, rows_train, 3)
    assert [p.name for p in parts] == ["train-00000.jsonl", "train-00001.jsonl", "train-00002.jsonl"]
    write_split(writer, "val", val, rows_val, 1)
    write_split(writer, "test", [], [], 1)
    assert no_temp_files(tmp_path)
    out = writer.finalize({"train": 3, "val": 1, "test": 1}, {"train": 7, "val": 2, "test": 0})
    assert sorted(p.name for p in out) == ["test.json", "train.json", "val.json"]
    assert json.loads((tmp_path / "train.json").read_text(encoding="utf-8")) == rows_train
    with open(tmp_path / "val.json", encoding="utf-8") as fh:
        assert json.load(fh) == rows_val
    assert (tmp_path / "test.json").read_text() == "[]\n"
    text = (tmp_path / "train.json").read_text()
    assert text.startswith("[\n{") and text.endswith("}\n]\n") and text.count("\n") == 7 + 2
    assert not (tmp_path / ".parts").exists()
    # idempotent: a second finalize (parts gone) keeps the same files
    before = tree_hashes(tmp_path)
    writer.finalize({"train": 3, "val": 1, "test": 1}, {"train": 7, "val": 2, "test": 0})
    assert tree_hashes(tmp_path) == before
    # ... but notices a count that does not match the merged file
    with pytest.raises(RuntimeError, match="expected 8"):
        writer.finalize({"train": 3}, {"train": 8})


def test_jsonl_path_option_and_count_check(tmp_path: Path) -> None:
    recs = make_records("train", 5)
    rows = [chat_row(r) for r in recs]
    writer = make_writer("jsonl", tmp_path, {"path": "chat/{split}_chat.jsonl"})
    assert isinstance(writer, JsonlWriter)
    write_split(writer, "train", recs, rows, 2)
    with pytest.raises(RuntimeError, match="expected 6"):
        writer.finalize({"train": 2}, {"train": 6})
    assert not (tmp_path / "chat" / "train_chat.jsonl").exists() and no_temp_files(tmp_path)
    writer.finalize({"train": 2}, {"train": 5})
    lines = (tmp_path / "chat" / "train_chat.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert "ünïcode" in lines[0]  # UTF-8 kept, not \u-escaped
    assert rows[0]["messages"][0]["content"][0]["text"] is None


def test_json_finalize_missing_parts_raises(tmp_path: Path) -> None:
    recs = make_records("train", 4)
    writer = JsonArrayWriter(tmp_path)
    write_split(writer, "train", recs, [llava_row(r) for r in recs], 2)
    writer.part_path("train", 1).unlink()
    with pytest.raises(RuntimeError, match="missing"):
        writer.finalize({"train": 2}, {"train": 4})


def test_json_shard_rerun_and_stale_parts(tmp_path: Path) -> None:
    recs = make_records("train", 6)
    rows = [llava_row(r) for r in recs]
    a, b = tmp_path / "a", tmp_path / "b"
    writer = JsonArrayWriter(a)
    write_split(writer, "train", recs, rows, 2)
    # a crashed attempt left a temp file and an aborted writer; the shard is then re-run
    sw = writer.shard_writer("train", 1, 2)
    sw.add(recs[0], rows[0])
    sw.abort()
    write_split(writer, "train", recs, rows, 2)
    (writer.parts_dir / "train-00005.jsonl").write_text('{"stale":1}\n')  # from an older build
    (writer.parts_dir / ".train-00000.jsonl.tmp99999").write_text("crash")
    writer.finalize({"train": 2}, {"train": 6})
    other = JsonArrayWriter(b)
    write_split(other, "train", recs, rows, 2)
    other.finalize({"train": 2}, {"train": 6})
    assert tree_hashes(a) == tree_hashes(b) and list(tree_hashes(a)) == ["train.json"]


# --- TSV ------------------------------------------------------------------------------------------------

def test_tsv_round_trip_with_pandas(tmp_path: Path) -> None:
    recs = make_records("val", 6)
    rows = [tsv_row(r, i) for i, r in enumerate(recs)]
    writer = TsvWriter(tmp_path)
    write_split(writer, "val", recs, rows, 2)
    write_split(writer, "empty", [], [], 1)
    out = writer.finalize({"val": 2, "empty": 1}, {"val": 6, "empty": 0})
    assert [p.name for p in out] == ["val.tsv"] and not (tmp_path / "empty.tsv").exists()
    df = pd.read_csv(tmp_path / "val.tsv", sep="\t")
    assert list(df.columns) == ["index", "image", "question", "A", "B", "C", "answer", "category"]
    assert len(df) == 6
    assert df["index"].tolist() == list(range(6))
    assert df["question"].tolist() == [r["question"] for r in rows]
    assert "\n" in df["question"][1] and "\t" in df["question"][1] and '"quoted"' in df["question"][1]
    assert df["A"].tolist() == [r.class_name for r in recs]
    assert df["C"].isna().all()
    for rec, image in zip(recs, df["image"], strict=True):
        assert base64.b64decode(image) == rec.image_bytes
        assert Image.open(io.BytesIO(base64.b64decode(image))).size == (rec.width, rec.height)


def test_tsv_rows_must_share_keys(tmp_path: Path) -> None:
    recs = make_records("val", 4)
    rows = [tsv_row(r, i) for i, r in enumerate(recs)]
    writer = TsvWriter(tmp_path)
    sw = writer.shard_writer("val", 0, 1)
    sw.add(recs[0], rows[0])
    with pytest.raises(ValueError, match="same keys"):
        sw.add(recs[1], {k: v for k, v in rows[1].items() if k != "C"})
    sw.abort()
    # across shards the check happens when merging
    write_split(writer, "val", recs[:2], rows[:2], 1)
    sw = writer.shard_writer("val", 1, 2)
    sw.add(recs[2], {**rows[2], "extra": 1})
    sw.close()
    with pytest.raises(ValueError, match="expected"):
        writer.finalize({"val": 2}, {"val": 3})
    assert not (tmp_path / "val.tsv").exists() and no_temp_files(tmp_path)


# --- HF parquet -----------------------------------------------------------------------------------------

@pytest.fixture
def hf_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    return tmp_path


def write_hf(out: Path, train: list[Record], val: list[Record]) -> HFParquetWriter:
    writer = HFParquetWriter(out, {"class_names": CLASS_NAMES, "row_group_size": 3})
    write_split(writer, "train", train, [chat_row(r) for r in train], 2)
    write_split(writer, "validation", val, [chat_row(r) for r in val], 1)
    write_split(writer, "test", [], [], 1)
    writer.finalize({"train": 2, "validation": 1, "test": 1}, {"train": len(train), "validation": len(val),
                                                             "test": 0})
    return writer


def test_hf_parquet_loads_with_datasets(hf_offline: Path) -> None:
    from datasets import ClassLabel, load_dataset

    out = hf_offline / "hf"
    train, val = make_records("train", 8), make_records("validation", 3, seed=2)
    writer = write_hf(out, train, val)
    files = sorted(p.name for p in (out / "data").iterdir())
    assert files == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet",
                     "validation-00000-of-00001.parquet"]  # the empty split has no file
    assert pq.read_metadata(out / "data" / files[0]).num_row_groups == 2  # 4 rows, row groups of 3
    readme = (out / "README.md").read_text()
    assert readme.startswith("---\nconfigs:\n- config_name: default\n") and "path: data/train-*" in readme
    assert "test" not in readme.split("---")[1]
    ds = load_dataset(str(out))
    assert set(ds) == {"train", "validation"}
    assert ds["train"].num_rows == 8 and ds["validation"].num_rows == 3
    feature = ds["train"].features["label"]
    assert isinstance(feature, ClassLabel) and feature.names == CLASS_NAMES
    for rec, got in zip(train, ds["train"], strict=True):
        assert isinstance(got["image"], Image.Image) and got["image"].size == (rec.width, rec.height)
        assert got["messages"] == chat_row(rec)["messages"]  # nested structs, text=None kept
        assert got["label"] == rec.label and got["id"] == rec.key
    raw = pq.read_table(out / "data" / files[2])
    assert raw.column("image").to_pylist()[0] == {"bytes": val[0].image_bytes, "path": f"{val[0].key}.jpg"}
    verify(out, {"train": 8, "validation": 3, "test": 0})
    with pytest.raises(RuntimeError, match="expected"):
        verify(out, {"train": 9, "validation": 3})
    with pytest.raises(RuntimeError, match="expected 7"):
        writer.finalize({"train": 2, "validation": 1}, {"train": 7, "validation": 3})


def test_hf_parquet_is_byte_identical_and_rerunnable(tmp_path: Path) -> None:
    train, val = make_records("train", 7), make_records("validation", 2, seed=2)
    write_hf(tmp_path / "a", train, val)
    writer = write_hf(tmp_path / "b", train, val)
    # re-run one shard after a "crash" (temp file left behind), and a stale shard of an older 3-shard build
    stale = tmp_path / "b" / "data" / "train-00002-of-00003.parquet"
    stale.write_bytes(b"old")
    (tmp_path / "b" / "data" / ".train-00001-of-00002.parquet.tmp4242").write_bytes(b"partial")
    sw = writer.shard_writer("train", 1, 2)
    for rec in train[4:]:
        sw.add(rec, chat_row(rec))
    assert sw.close() == [tmp_path / "b" / "data" / "train-00001-of-00002.parquet"]
    writer.finalize({"train": 2, "validation": 1, "test": 1}, {"train": 7, "validation": 2, "test": 0})
    assert not stale.exists() and no_temp_files(tmp_path)
    assert tree_hashes(tmp_path / "a") == tree_hashes(tmp_path / "b")


def test_hf_parquet_rejects_bad_label(tmp_path: Path) -> None:
    rec = make_records("train", 1)[0]
    sw = HFParquetWriter(tmp_path, {"class_names": ["only"]}).shard_writer("train", 0, 1)
    with pytest.raises(ValueError, match="label"):
        sw.add(rec, {"id": rec.key, "label": 3})
    sw.abort()
    assert no_temp_files(tmp_path)


_WORKER_SCRIPT = """
import pickle, sys
writer, records, rows = pickle.load(open(sys.argv[1], "rb"))
sw = writer.shard_writer("train", 0, 1)
for rec, row in zip(records, rows):
    sw.add(rec, row)
sw.close()
print("datasets imported:", "datasets" in sys.modules)
"""


def test_hf_parquet_prepared_schema_needs_no_datasets_in_workers(hf_offline: Path) -> None:
    import os
    import pickle
    import subprocess
    import sys

    from datasets import load_dataset

    train = make_records("train", 6)
    rows = [chat_row(r) for r in train]
    plain = HFParquetWriter(hf_offline / "plain", {"class_names": CLASS_NAMES})
    write_split(plain, "train", train, rows, 1)  # works out the schema itself (with datasets)
    prepared = HFParquetWriter(hf_offline / "prepared", {"class_names": CLASS_NAMES})
    probe = dataclasses.replace(train[0], image_bytes=b"")
    prepared.prepare(probe, chat_row(probe))  # as the pipeline does in the parent
    job = hf_offline / "job.pkl"
    job.write_bytes(pickle.dumps((prepared, train, rows)))
    script = hf_offline / "worker.py"
    script.write_text(_WORKER_SCRIPT)
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(script), str(job)], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "datasets imported: False" in done.stdout
    name = "data/train-00000-of-00001.parquet"
    assert (hf_offline / "prepared" / name).read_bytes() == (hf_offline / "plain" / name).read_bytes()
    prepared.finalize({"train": 1}, {"train": 6})
    ds = load_dataset(str(hf_offline / "prepared"), split="train")
    assert ds.features["label"].names == CLASS_NAMES
    assert [im.size for im in ds["image"]] == [(r.width, r.height) for r in train]  # decodes to PIL images
    # rows whose column types differ from the prepared ones still get their own (correct) schema
    other = [{**row, "extra": 1.5} for row in rows]
    assert "extra" in prepared.schema_for([prepared.arrow_row(r, o) for r, o in zip(train, other, strict=True)]).names


def test_hf_rows_to_table_equals_pyarrow_conversion(tmp_path: Path) -> None:
    import pyarrow as pa

    from builders.writers.hf_parquet import rows_to_table

    recs = make_records("train", 9)  # JPEG and PNG bytes of varying sizes
    writer = HFParquetWriter(tmp_path, {"class_names": CLASS_NAMES})
    rows = [writer.arrow_row(r, chat_row(r)) for r in recs]
    rows[2] = {k: v for k, v in rows[2].items() if k != "class_name"}  # a missing field becomes null
    rows[3]["image"]["bytes"] = b""
    schema = writer.schema_for(rows)
    table = rows_to_table(rows, schema)
    assert table.equals(pa.Table.from_pylist(rows, schema=schema)) and table.schema.equals(schema, check_metadata=True)
    assert rows_to_table(rows[:0], schema).equals(pa.Table.from_pylist([], schema=schema))
    # other image column types take pyarrow's own conversion
    large = pa.schema([pa.field("image", pa.struct([("bytes", pa.large_binary()), ("path", pa.string())])),
                       pa.field("id", pa.string())])
    small = [{"image": r["image"], "id": r["id"]} for r in rows]
    assert rows_to_table(small, large).equals(pa.Table.from_pylist(small, schema=large))


# --- WebDataset -----------------------------------------------------------------------------------------

def test_webdataset_read_back_and_rollover_by_count(tmp_path: Path) -> None:
    import webdataset as wds

    recs = make_records("train", 10)
    rows = [llava_row(r) for r in recs]
    writer = WebDatasetWriter(tmp_path, {"max_count": 3})
    published = write_split(writer, "train", recs, rows, 2)  # 5 + 5 → 3 + 2 per shard
    assert [p.name for p in published] == ["train-00000-000.tar", "train-00000-001.tar",
                                           "train-00001-000.tar", "train-00001-001.tar"]
    assert no_temp_files(tmp_path)
    writer.finalize({"train": 2}, {"train": 10})
    index = json.loads((tmp_path / "train.json").read_text())
    assert index["__kind__"] == "wids-shard-index-v1" and index["wids_version"] == 1
    assert [(e["url"], e["nsamples"]) for e in index["shardlist"]] == [
        ("train-00000-000.tar", 3), ("train-00000-001.tar", 2), ("train-00001-000.tar", 3),
        ("train-00001-001.tar", 2)]
    assert all(e["filesize"] == (tmp_path / e["url"]).stat().st_size for e in index["shardlist"])
    assert index["brace_urls"] == "train-{00000..00001}-{000..001}.tar"
    assert index["extensions"] == ["cls", "jpg", "json", "txt"] and index["image_key"] == "jpg"
    assert json.loads((tmp_path / "sizes.json").read_text()) == {e["url"]: e["nsamples"] for e in index["shardlist"]}
    # webdataset expands the brace pattern to the same tars, in order
    samples = list(wds.WebDataset(str(tmp_path / index["brace_urls"]), shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == [r.key for r in recs]
    for rec, row, sample in zip(recs, rows, samples, strict=True):
        assert {k for k in sample if not k.startswith("__")} == {"jpg", "json", "cls", "txt"}
        assert sample["jpg"].startswith(b"\xff\xd8\xff")  # JPEG bytes kept as they are, a PNG re-encoded
        assert (sample["jpg"] == rec.image_bytes) == (rec.image_ext == "jpg")
        assert json.loads(sample["json"]) == row
        assert sample["cls"] == str(rec.label).encode()
        assert sample["txt"] == f"a photo of a {rec.class_name}.".encode()
    decoded = list(wds.WebDataset(str(tmp_path / index["brace_urls"]), shardshuffle=False).decode("pil"))
    for rec, sample in zip(recs, decoded, strict=True):  # the re-encoded PNGs keep their size and colour
        assert sample["jpg"].mode == "RGB" and sample["jpg"].size == (rec.width, rec.height)
        if rec.image_ext == "png":
            assert max(abs(a - b) for a, b in zip(sample["jpg"].getpixel((5, 5)), (10, 200, 30), strict=True)) <= 3
    with tarfile.open(published[0]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members[:4]] == [f"{recs[0].key}.{x}" for x in ("jpg", "json", "cls", "txt")]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o444)}
    with pytest.raises(RuntimeError, match="expected 11"):
        writer.finalize({"train": 2}, {"train": 11})


def test_webdataset_brace_urls_cover_uneven_parts_and_gaps() -> None:
    import braceexpand

    from builders.writers.webdataset import brace_urls

    parts = [(0, 1), (1, 1), (2, 1), (3, 2), (5, 1), (6, 1), (7, 3)]
    pattern = brace_urls("train", parts)
    expected = [f"train-{shard:05d}-{part:03d}.tar" for shard, n in parts for part in range(n)]
    assert list(braceexpand.braceexpand(pattern)) == expected
    assert brace_urls("val", [(0, 1)]) == "val-00000-000.tar"
    assert brace_urls("val", [(0, 1), (1, 1)]) == "val-{00000..00001}-000.tar"
    assert brace_urls("a,b", [(0, 1)]) is None and brace_urls("x", []) is None


def test_webdataset_keep_format_and_no_caption(tmp_path: Path) -> None:
    import webdataset as wds

    recs = make_records("val", 10)
    writer = WebDatasetWriter(tmp_path, {"image_format": "keep", "caption": None})
    write_split(writer, "val", recs, [llava_row(r) for r in recs], 1)
    writer.finalize({"val": 1}, {"val": 10})
    index = json.loads((tmp_path / "val.json").read_text())
    assert index["extensions"] == ["cls", "jpg", "json", "png"] and index["image_key"] == "jpg;png"
    samples = list(wds.WebDataset(str(tmp_path / index["brace_urls"]), shardshuffle=False)
                   .to_tuple("__key__", index["image_key"]))
    assert samples == [(r.key, r.image_bytes) for r in recs]  # every image byte for byte, under its own extension


def test_webdataset_options_are_checked(tmp_path: Path) -> None:
    from builders.writers.webdataset import caption_problem

    assert caption_problem("a photo of a {name}.") is None and caption_problem("{class_id}: {name}") is None
    for bad, why in (("a photo of a {}", "unknown field"), ("{label}", "unknown field"), ("{name!r}", "unknown"),
                     ("{name:>5}", "unknown"), ("a {name", "braces"), ("a photo", "names no field"), ("  ", "non-empty")):
        assert why in caption_problem(bad), bad
        with pytest.raises(UserError, match="caption template"):
            WebDatasetWriter(tmp_path, {"caption": bad})
    with pytest.raises(UserError, match="image_format"):
        WebDatasetWriter(tmp_path, {"image_format": "png"})
    with pytest.raises(UserError, match="sizes.json"):
        WebDatasetWriter(tmp_path, {}).shard_writer("sizes", 0, 1)


def test_webdataset_rollover_by_bytes(tmp_path: Path) -> None:
    recs = make_records("train", 6)
    max_bytes = 8 * 1024
    writer = WebDatasetWriter(tmp_path, {"max_bytes": max_bytes})
    published = write_split(writer, "train", recs, [llava_row(r) for r in recs], 1)
    assert len(published) > 1
    for path in published:  # member bytes (file size less the end-of-archive padding) stay within the limit
        with tarfile.open(path) as tar:
            members = tar.getmembers()
        used = members[-1].offset_data + -(-members[-1].size // 512) * 512
        assert used <= max_bytes or len(members) == 4  # a single sample larger than the limit is allowed
        assert len(members) % 4 == 0
    writer.finalize({"train": 1}, {"train": 6})
    index = json.loads((tmp_path / "train.json").read_text())
    assert sum(e["nsamples"] for e in index["shardlist"]) == 6 and len(index["shardlist"]) == len(published)


def test_webdataset_byte_identical_and_shard_rerun(tmp_path: Path) -> None:
    recs = make_records("train", 9)
    rows = [chat_row(r) for r in recs]
    for name in ("a", "b"):
        writer = WebDatasetWriter(tmp_path / name, {"max_count": 2})
        write_split(writer, "train", recs, rows, 2)
        writer.finalize({"train": 2}, {"train": 9})
    # re-run shard 0 with a larger max_count: fewer parts, the old extra parts of that shard are removed
    writer = WebDatasetWriter(tmp_path / "b", {"max_count": 2})
    (tmp_path / "b" / ".train-00000-000.tar.tmp777").write_bytes(b"partial")
    (tmp_path / "b" / "train-00007-000.tar").write_bytes(b"stale shard of an older build")
    (tmp_path / "b" / "shards.json").write_text("{}")  # the listing of an older version of this writer
    sw = writer.shard_writer("train", 0, 2)
    for rec, row in zip(recs[:5], rows[:5], strict=True):
        sw.add(rec, row)
    sw.close()
    writer.finalize({"train": 2}, {"train": 9})
    assert tree_hashes(tmp_path / "a") == tree_hashes(tmp_path / "b")
    assert no_temp_files(tmp_path)
    # without the shards' index files, finalize reads the tar headers and lists the same thing
    listing = [(tmp_path / "b" / f).read_bytes() for f in ("train.json", "sizes.json")]
    shutil.rmtree(tmp_path / "b" / ".webdataset")
    writer.finalize({"train": 2}, {"train": 9})
    assert [(tmp_path / "b" / f).read_bytes() for f in ("train.json", "sizes.json")] == listing
    bad = dataclasses.replace(recs[0], key="has.dot")
    with pytest.raises(ValueError, match="dots"):
        writer.shard_writer("train", 0, 1).add(bad, rows[0])


def test_webdataset_bytes_equal_tarfile(tmp_path: Path) -> None:
    import webdataset as wds

    from builders.writers.webdataset import sample_members, tar_header, tar_member

    for name in ("a", "k" * 96 + ".jpg", "k" * 97 + ".json", "k" * 150 + ".cls", "ünï" * 30 + ".jpg", "x" * 33):
        for size in (0, 1, 511, 512, 513, 110_000, 8 ** 11 - 1, 8 ** 11):
            assert tar_header(name, size) == tar_member(name, size).tobuf(tarfile.GNU_FORMAT, "utf-8",
                                                                        "surrogateescape"), (name, size)
    recs = make_records("train", 7)
    recs[1] = dataclasses.replace(recs[1], key="long" * 30)  # GNU long-name members
    recs[2] = dataclasses.replace(recs[2], image_bytes=b"\xab" * 1024)  # a multiple of the block size
    recs[3] = dataclasses.replace(recs[3], image_bytes=b"")
    rows = [llava_row(r) for r in recs]
    options = {"image_format": "keep", "caption": "{class_id}: {name} — ünï"}
    writer = WebDatasetWriter(tmp_path / "wds", options)
    (written,) = write_split(writer, "train", recs, rows, 1)
    expected = tmp_path / "tarfile.tar"
    with tarfile.open(expected, "w", format=tarfile.GNU_FORMAT, encoding="utf-8") as tar:
        for rec, row in zip(recs, rows, strict=True):
            for name, data in sample_members(rec, row, options["caption"], "keep"):
                tar.addfile(tar_member(name, len(data)), io.BytesIO(data))
    assert written.read_bytes() == expected.read_bytes()
    samples = list(wds.WebDataset([str(written)], shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == [r.key for r in recs]
    assert [s[r.image_ext] for s, r in zip(samples, recs, strict=True)] == [r.image_bytes for r in recs]
    assert [s["txt"].decode() for s in samples] == [f"{r.class_id}: {r.class_name} — ünï" for r in recs]


# --- image files, registry --------------------------------------------------------------------------------

def test_image_files_writer(tmp_path: Path) -> None:
    recs = make_records("val", 5)
    writer = make_writer("image_files", tmp_path, {})
    published = write_split(writer, "val", recs, [{} for _ in recs], 2)
    assert published == [tmp_path / "images" / "val" / f"{r.key}.{r.image_ext}" for r in recs]
    assert all(p.read_bytes() == r.image_bytes for p, r in zip(published, recs, strict=True))
    mtimes = [p.stat().st_mtime_ns for p in published]
    write_split(writer, "val", recs, [{} for _ in recs], 2)  # identical files are not rewritten
    assert [p.stat().st_mtime_ns for p in published] == mtimes
    published[0].write_bytes(b"corrupt")
    write_split(writer, "val", recs, [{} for _ in recs], 2)
    assert published[0].read_bytes() == recs[0].image_bytes and no_temp_files(tmp_path)
    assert ImageFilesWriter(tmp_path).finalize({"val": 2}, {"val": 5}) == []


def test_registry(tmp_path: Path) -> None:
    assert set(WRITERS) == {"json_array", "jsonl", "tsv", "hf_parquet", "webdataset", "image_files"}
    for name, cls in WRITERS.items():
        writer = make_writer(name, tmp_path, None)
        assert isinstance(writer, cls) and writer.name == name
    assert WRITERS["json_array"].references_paths and not WRITERS["hf_parquet"].references_paths
    with pytest.raises(UserError, match="unknown writer"):
        make_writer("csv", tmp_path, {})
    with pytest.raises(UserError, match="no option"):
        make_writer("webdataset", tmp_path, {"maxcount": 3})
    with pytest.raises(UserError, match="positive integer"):
        make_writer("webdataset", tmp_path, {"max_count": 0})
    with pytest.raises(UserError, match="split"):
        make_writer("json_array", tmp_path, {"path": "all.json"})
