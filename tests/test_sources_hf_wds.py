"""HFSource (parquet folder, save_to_disk) and WebDatasetSource (TarWriter shards, img2dataset output)."""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import pickle
import random
import tarfile
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value
from PIL import Image as PILImage

from builders.records import SampleRef
from builders.sources.hf import HFSource
from builders.sources.wds import WebDatasetSource
from builders.synthetic import jpeg_bytes, make_imagenet_tree
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

WNIDS = ["n01440764", "n01443537", "n02012849", "n02085620"]  # tench, goldfish, crane bird, Chihuahua


@pytest.fixture(scope="module")
def vocab() -> ClassVocabulary:
    return ClassVocabulary.bundled("imagenet1k").subset(WNIDS)


def png_bytes(seed: int) -> bytes:
    rng = random.Random(seed)
    img = PILImage.new("RGB", (12, 10), tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def jpg(seed: int) -> bytes:
    return jpeg_bytes(random.Random(seed), (20, 16))


def read_all(source, refs) -> dict[str, tuple[bytes | None, str | None]]:
    return {ref.key: (data, reason) for ref, data, reason in source.read(refs)}


def _read_in_worker(source, refs):
    """Run in a spawned process: proves the source pickles and reopens its data lazily."""
    return [(ref.key, data, reason) for ref, data, reason in source.read(refs)]


# ----- Hugging Face ---------------------------------------------------------------------------------
PNG_MAGIC = b"\x89PNG"
CL_NAMES = ["tench", "n01443537", "Chihuahua", "crane bird", "unicorn"]


@pytest.fixture
def hf_env(tmp_path, monkeypatch):
    """Offline Hugging Face settings with every cache under tmp_path."""
    cache = tmp_path / "hf_home" / "datasets"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)  # read at import; patch the value too
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    return cache


@pytest.fixture
def hf_data(tmp_path):
    """Train/val datasets with ClassLabel labels and embedded PNG/JPEG bytes; returns (train, val, images)."""
    path_only = tmp_path / "loose" / "path_only.png"
    path_only.parent.mkdir()
    path_only.write_bytes(png_bytes(7))
    images = [png_bytes(0), jpg(1), None, jpg(3), jpg(4), None, jpg(6), png_bytes(8)]
    cells = [{"bytes": b, "path": f"img{i}.{'png' if b.startswith(PNG_MAGIC) else 'jpg'}"}
             if b is not None else None for i, b in enumerate(images)]
    cells[2] = {"bytes": None, "path": str(path_only)}  # path only: read from the file
    images[2] = path_only.read_bytes()
    #        tench  id   Chihuahua no-label unicorn  (no image) crane  -1
    labels = [0, 1, 2, None, 4, 0, 3, -1]
    features = Features({"image": Image(), "label": ClassLabel(names=CL_NAMES), "file": Value("string")})
    train = Dataset.from_dict({"image": cells, "label": labels, "file": [f"img{i}.x" for i in range(8)]},
                              features=features)
    val_images = [jpg(10), png_bytes(11), jpg(12)]
    val = Dataset.from_dict({"image": [{"bytes": b, "path": f"v{i}"} for i, b in enumerate(val_images)],
                             "label": [3, 0, 2], "file": ["v0", "v1", "v2"]}, features=features)
    return train, val, {"train": images, "val": val_images}


TRAIN_SKIPS = [None, None, None, "no_label", None, "no_image", None, "no_label"]


def _check_hf(src: HFSource, val_split: str, images: dict, vocab_given: bool) -> None:
    refs = list(src.scan("train"))
    assert [r.key for r in refs] == [f"train_{i:08d}" for i in range(8)]
    assert [r.locator for r in refs] == [f"train#{i}" for i in range(8)]
    skips = list(TRAIN_SKIPS)
    if vocab_given:
        skips[4] = "unknown_class"
        assert [r.class_id for r in refs] == ["n01440764", "n01443537", "n02085620", None, None, None,
                                              "n02012849", None]
        assert "unicorn" in refs[4].detail
    else:
        assert [r.class_id for r in refs] == ["0", "1", "2", None, "4", None, "3", None]
    assert [r.skip for r in refs] == skips
    # read in reverse order, skipped refs included: order kept, bytes exact (PNG and JPEG)
    out = list(src.read(refs[::-1]))
    assert [r.key for r, _, _ in out] == [r.key for r in refs[::-1]]
    for ref, data, reason in out:
        row = int(ref.locator.split("#")[1])
        if ref.skip:
            assert (data, reason) == (None, ref.skip)
        else:
            assert reason is None and data == images["train"][row]
    assert out[-1][1][:4] == b"\x89PNG" and out[-2][1][:3] == b"\xff\xd8\xff"
    vrefs = list(src.scan(val_split))
    assert len(vrefs) == 3 and all(r.skip is None for r in vrefs)
    assert [r.key for r in vrefs] == [f"{val_split}_{i:08d}" for i in range(3)]
    assert [d for _, d, _ in src.read(vrefs)] == images["val"]
    # a pickled copy reopens lazily and reads the same bytes; the pickle holds no image data
    blob = pickle.dumps(src)
    assert images["train"][1] not in blob and images["val"][0] not in blob
    copy = pickle.loads(blob)
    assert read_all(copy, refs) == read_all(src, refs)
    assert copy.describe() == src.describe()
    json.dumps(src.describe())


def test_hf_parquet_folder(hf_env, hf_data, tmp_path, vocab):
    train, val, images = hf_data
    root = tmp_path / "pq"
    train.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    val.to_parquet(str(root / "data" / "val-00000-of-00001.parquet"))
    src = HFSource(str(root))
    assert src.splits() == ["train", "val"]
    assert src.vocabulary.names == CL_NAMES and src.vocabulary.ids == ["0", "1", "2", "3", "4"]
    assert src.describe()["num_rows"] == {"train": 8, "val": 3}
    assert src.image_path(next(src.scan("train"))) is None and src.image_root() is None
    _check_hf(src, "val", images, vocab_given=False)
    assert any(hf_env.rglob("*.arrow")), "load_dataset must cache under the patched HF_DATASETS_CACHE"
    src_v = HFSource(str(root), vocabulary=vocab, splits=["val"])
    assert src_v.splits() == ["val"]
    assert [r.class_id for r in src_v.scan("val")] == ["n02012849", "n01440764", "n02085620"]
    _check_hf(HFSource(str(root), vocabulary=vocab), "val", images, vocab_given=True)


def test_hf_save_to_disk(hf_env, hf_data, tmp_path, vocab):
    train, val, images = hf_data
    DatasetDict({"train": train, "validation": val}).save_to_disk(str(tmp_path / "dd"))
    src = HFSource(str(tmp_path / "dd"), vocabulary=vocab)
    assert src.splits() == ["train", "validation"] and src.describe()["loader"] == "load_from_disk"
    _check_hf(src, "validation", images, vocab_given=True)
    # a single saved Dataset is one split
    val.save_to_disk(str(tmp_path / "single"))
    one = HFSource(str(tmp_path / "single"), vocabulary=vocab)
    assert one.splits() == ["train"]
    assert [d for _, d, _ in one.read(list(one.scan("train")))] == images["val"]


def test_hf_worker_process_reads_same_bytes(hf_env, hf_data, tmp_path):
    train, _, images = hf_data
    train.save_to_disk(str(tmp_path / "t"))
    src = HFSource(str(tmp_path / "t"))
    refs = [r for r in src.scan("train") if r.skip is None]
    with mp.get_context("spawn").Pool(1) as pool:
        got = pool.apply(_read_in_worker, (src, refs))
    assert got == [(r.key, d, why) for r, d, why in src.read(refs)]
    assert [d for _, d, _ in got] == [images["train"][int(r.locator.split("#")[1])] for r in refs]


def test_hf_int_and_string_labels(hf_env, tmp_path, vocab):
    img = {"bytes": jpg(1), "path": None}
    ints = Dataset.from_dict({"image": [img] * 5, "label": [0, 3, 99, -1, None]},
                             features=Features({"image": Image(), "label": Value("int64")}))
    ints.save_to_disk(str(tmp_path / "ints"))
    refs = list(HFSource(str(tmp_path / "ints"), vocabulary=vocab).scan("train"))
    assert [(r.class_id, r.skip) for r in refs] == [
        ("n01440764", None), ("n02085620", None), (None, "unknown_class"), (None, "no_label"), (None, "no_label")]
    with pytest.raises(UserError, match="class list"):
        HFSource(str(tmp_path / "ints"))

    strs = Dataset.from_dict({"image": [img] * 6,
                              "label": ["n01443537", "tench", "Tinca tinca", "zebra", "", None]},
                             features=Features({"image": Image(), "label": Value("string")}))
    strs.save_to_disk(str(tmp_path / "strs"))
    refs = list(HFSource(str(tmp_path / "strs"), vocabulary=vocab).scan("train"))
    assert [(r.class_id, r.skip) for r in refs] == [
        ("n01443537", None), ("n01440764", None), ("n01440764", None), (None, "unknown_class"),
        (None, "no_label"), (None, "no_label")]
    own = HFSource(str(tmp_path / "strs"))
    assert own.vocabulary.ids == ["Tinca tinca", "n01443537", "tench", "zebra"]
    assert [r.class_id for r in own.scan("train")][:4] == ["n01443537", "tench", "Tinca tinca", "zebra"]


def test_hf_key_column_and_bad_refs(hf_env, hf_data, tmp_path):
    train, _, images = hf_data
    train = train.map(lambda row, i: {"file": "same.jpg" if i in (1, 6) else row["file"]}, with_indices=True)
    train.save_to_disk(str(tmp_path / "k"))
    src = HFSource(str(tmp_path / "k"), key_column="file")
    refs = list(src.scan("train"))
    keys = [r.key for r in refs]
    assert keys[0] == "img0_x" and keys[1] == "same_jpg" and keys[6] == "same_jpg__00000006"
    assert len(set(keys)) == len(keys) and all("." not in k for k in keys)
    assert "repeated" in refs[6].detail
    bad = [SampleRef("x", "train", "0", "train#999"), SampleRef("y", "train", "0", "nosuch#1"),
           SampleRef("z", "train", "0", "garbage"), refs[6]]
    assert [(d, why) for _, d, why in src.read(bad)] == [
        (None, "bad_locator"), (None, "bad_locator"), (None, "bad_locator"), (images["train"][6], None)]


def test_hf_imagefolder_with_wnid_folders(hf_env, tmp_path):
    truth = make_imagenet_tree(tmp_path / "tree", WNIDS[:2], train_per_class=2, val_per_class=0)
    src = HFSource(str(tmp_path / "tree"))  # load_dataset's imagefolder builder; images kept as paths
    assert src.splits() == ["train"]
    assert src.vocabulary.ids == WNIDS[:2] and src.vocabulary.names == ["tench", "goldfish"]
    refs = list(src.scan("train"))
    got = sorted((r.class_id, data) for r, data, _ in src.read(refs))
    assert got == sorted((w, (tmp_path / "tree" / rel).read_bytes()) for rel, w in truth["train"].items())


def test_hf_user_errors(hf_env, hf_data, tmp_path):
    train, _, _ = hf_data
    train.save_to_disk(str(tmp_path / "ok"))
    with pytest.raises(UserError, match="does not exist"):
        HFSource(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cannot load"):
        HFSource(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="no image column 'picture'"):
        HFSource(str(tmp_path / "ok"), image_column="picture")
    with pytest.raises(UserError, match="no label column 'cls'"):
        HFSource(str(tmp_path / "ok"), label_column="cls")
    with pytest.raises(UserError, match="no split 'test'"):
        HFSource(str(tmp_path / "ok"), splits=["test"])
    with pytest.raises(UserError, match="no split 'val'"):
        list(HFSource(str(tmp_path / "ok")).scan("val"))


# ----- WebDataset -----------------------------------------------------------------------------------
def write_shards(root: Path) -> dict[str, bytes]:
    """Two TarWriter shards; returns {sample key: image bytes}."""
    root.mkdir(parents=True)
    imgs: dict[str, bytes] = {}
    with webdataset.TarWriter(str(root / "shard-00000.tar")) as w:
        for key, ext, img, cls in [("s0", "jpg", jpg(20), "0"), ("s1", "jpg", jpg(21), "n01443537"),
                                   ("s2", "png", png_bytes(22), "Chihuahua"), ("s3", None, None, "1"),
                                   ("s4", "jpg", jpg(24), "999"), ("s5", "jpg", jpg(25), "n99999999"),
                                   ("s6", "jpeg", jpg(26), " crane bird\n")]:
            sample = {"__key__": key, "cls": cls.encode()}
            if img is not None:
                sample[ext] = img
                imgs[key] = img
            w.write(sample)
    with webdataset.TarWriter(str(root / "shard-00001.tar")) as w:
        for key, meta, cls in [("t0", {"class_id": "n02012849"}, None), ("t1", {"class_id": "goldfish"}, None),
                               ("t2", {"label": 2}, None), ("t3", {"class_id": "n01440764"}, b"1")]:
            sample = {"__key__": key, "jpg": jpg(100 + int(key[1:])), "json": json.dumps(meta).encode()}
            if cls is not None:
                sample["cls"] = cls
            imgs[key] = sample["jpg"]
            w.write(sample)
    return imgs


def test_wds_cls_and_json_labels(tmp_path, vocab):
    imgs = write_shards(tmp_path / "wds")
    src = WebDatasetSource(str(tmp_path / "wds"), vocab)
    assert src.splits() == ["train"] and src.describe()["num_shards"] == 2
    refs = list(src.scan("train"))
    got = {r.key: (r.class_id, r.skip) for r in refs}
    assert got == {
        "shard-00000_s0": ("n01440764", None), "shard-00000_s1": ("n01443537", None),
        "shard-00000_s2": ("n02085620", None), "shard-00000_s3": (None, "no_image"),
        "shard-00000_s4": (None, "unknown_class"), "shard-00000_s5": (None, "unknown_class"),
        "shard-00000_s6": ("n02012849", None),
        "shard-00001_t0": (None, "no_label"), "shard-00001_t1": (None, "no_label"),
        "shard-00001_t2": (None, "no_label"), "shard-00001_t3": ("n01443537", None)}
    assert [r.key for r in refs] == list(got)  # shard order, then tar order
    assert refs[0].locator == "shard-00000.tar#s0"

    js = WebDatasetSource(str(tmp_path / "wds"), vocab, label_field="json:class_id")
    jrefs = list(js.scan("train"))
    assert {r.key: r.class_id for r in jrefs if r.key.startswith("shard-00001")} == {
        "shard-00001_t0": "n02012849", "shard-00001_t1": "n01443537", "shard-00001_t2": None,
        "shard-00001_t3": "n01440764"}
    assert all(r.skip == "no_label" for r in jrefs if r.key in ("shard-00000_s0", "shard-00001_t2"))

    # read interleaved across shards, reversed: order kept, exact bytes, each tar read once
    usable = [r for r in refs if r.skip is None]
    order = usable[::-1] + [refs[3]]
    out = list(src.read(order))
    assert [r.key for r, _, _ in out] == [r.key for r in order]
    for ref, data, reason in out[:-1]:
        assert reason is None and data == imgs[ref.locator.split("#")[1]]
    assert out[-1][1:] == (None, "no_image")
    # pickled copy: same bytes, no cached index carried
    copy = pickle.loads(pickle.dumps(src))
    assert read_all(copy, usable) == read_all(src, usable)
    assert [d for _, d, _ in src.read([SampleRef("k", "train", None, "nosuch.tar#s0"),
                                       SampleRef("k2", "train", None, "shard-00000.tar#nokey")])] == [None, None]
    # the shards are real WebDataset shards
    samples = list(webdataset.WebDataset(str(tmp_path / "wds" / "shard-{00000..00001}.tar"),
                                         shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == [r.locator.split("#")[1] for r in refs]
    for s in samples:
        img = next((s[e] for e in ("jpg", "png", "jpeg") if e in s), None)
        assert img == imgs.get(s["__key__"])
    json.dumps(src.describe())


def test_wds_single_tar_brace_pattern_and_txt(tmp_path, vocab):
    write_shards(tmp_path / "wds")
    folder = [(r.key, r.class_id, r.skip) for r in WebDatasetSource(str(tmp_path / "wds"), vocab).scan("train")]
    pattern = WebDatasetSource(str(tmp_path / "wds" / "shard-{00000..00001}.tar"), vocab)
    assert [(r.key, r.class_id, r.skip) for r in pattern.scan("train")] == folder
    single = WebDatasetSource(str(tmp_path / "wds" / "shard-00001.tar"), vocab, split="val")
    srefs = list(single.scan("val"))
    assert [r.key for r in srefs] == [k for k, _, _ in folder if k.startswith("shard-00001")]
    assert srefs[0].split == "val" and srefs[0].locator == "shard-00001.tar#t0"
    with pytest.raises(UserError, match="missing"):
        WebDatasetSource(str(tmp_path / "wds" / "shard-{00000..00002}.tar"), vocab)

    (tmp_path / "txt").mkdir()
    with webdataset.TarWriter(str(tmp_path / "txt" / "part.tar")) as w:
        for key, text in [("a", "goldfish"), ("b", "Carassius auratus"), ("c", "2"), ("d", "nothing"),
                          ("a", "tench")]:  # "a" again, not next to its first members: a separate sample
            w.write({"__key__": key, "jpg": jpg(ord(key)), "txt": text})
    txt = WebDatasetSource(str(tmp_path / "txt"), vocab, label_field="txt")
    refs = list(txt.scan("train"))
    assert [(r.key, r.class_id, r.skip) for r in refs] == [
        ("part_a", "n01443537", None), ("part_b", "n01443537", None), ("part_c", "n02012849", None),
        ("part_d", None, "unknown_class"), ("part_a__dup2", None, "duplicate_key")]
    assert [d for _, d, _ in txt.read(refs[:3])] == [jpg(ord(k)) for k in "abc"]


def test_wds_keys_unique_when_safe_names_collide(tmp_path, vocab):
    root = tmp_path / "coll"
    root.mkdir()
    with webdataset.TarWriter(str(root / "a.tar")) as w:
        for seed, key in enumerate(("b_c", "x/y", "x_y")):  # "x/y", "x_y": two samples, one safe key
            w.write({"__key__": key, "jpg": jpg(90 + seed), "cls": b"0"})
    with webdataset.TarWriter(str(root / "a_b.tar")) as w:
        w.write({"__key__": "c", "jpg": jpg(99), "cls": b"1"})  # "a_b" + "_c" == "a" + "_b_c"
    src = WebDatasetSource(str(root), vocab)
    refs = list(src.scan("train"))
    assert [(r.key, r.locator, r.skip) for r in refs] == [
        ("a_b_c", "a.tar#b_c", None), ("a_x_y", "a.tar#x/y", None), ("a_x_y__dup2", "a.tar#x_y", None),
        ("a_b_c__dup2", "a_b.tar#c", None)]
    assert [d for _, d, _ in src.read(refs)] == [jpg(90), jpg(91), jpg(92), jpg(99)]


def test_wds_truncated_and_garbage_shards(tmp_path, vocab):
    root = tmp_path / "broken"
    root.mkdir()
    imgs = {f"a{i}": jpg(40 + i) for i in range(4)}
    full = root / "full.tar"
    with webdataset.TarWriter(str(full)) as w:
        for i in range(4):
            w.write({"__key__": f"a{i}", "cls": str(i).encode(), "jpg": imgs[f"a{i}"]})
    with tarfile.open(full) as tf:
        members = {m.name: m for m in tf.getmembers()}
    data = full.read_bytes()
    a2 = members["a2.jpg"]
    (root / "cut.tar").write_bytes(data[: a2.offset_data + a2.size // 2])  # cut inside a2's image
    (root / "edge.tar").write_bytes(data[: members["a2.cls"].offset])  # cut at a header boundary
    (root / "zz-garbage.tar").write_bytes(b"this is not a tar archive\n" * 30)
    full.unlink()

    src = WebDatasetSource(str(root), vocab)
    refs = list(src.scan("train"))
    got = [(r.key, r.class_id, r.skip) for r in refs]
    assert got == [
        ("cut_a0", "n01440764", None), ("cut_a1", "n01443537", None), ("cut_a2", None, "unreadable"),
        ("cut__truncated", None, "unreadable_shard"),
        ("edge_a0", "n01440764", None), ("edge_a1", None, "unreadable"),  # may have lost members
        ("edge__truncated", None, "unreadable_shard"),
        ("zz-garbage__truncated", None, "unreadable_shard")]
    assert "cut off" in refs[3].detail and "end-of-archive" in refs[6].detail
    out = list(src.read(refs))
    assert [(d, why) for _, d, why in out] == [
        (imgs["a0"], None), (imgs["a1"], None), (None, "unreadable"), (None, "unreadable_shard"),
        (imgs["a0"], None), (None, "unreadable"), (None, "unreadable_shard"), (None, "unreadable_shard")]
    # asked directly for the cut-off image anyway: reported, never raised
    forced = SampleRef("cut_a2", "train", "2", "cut.tar#a2")
    assert list(src.read([forced]))[0][1:] == (None, "unreadable")


def write_img2dataset(root: Path) -> dict[str, bytes]:
    """A hand-made img2dataset output (webdataset format + parquet + stats, save_additional_columns)."""
    root.mkdir(parents=True)
    rows = [("000000000", "success", "n01440764", jpg(60)), ("000000001", "failed_to_download", "n01443537", None),
            ("000000002", "success", "goldfish", png_bytes(62)), ("000000003", "success", "n09999999", jpg(63))]
    table_rows = []
    with tarfile.open(root / "00000.tar", "w") as tf:
        for key, status, cid, img in rows:
            meta = {"url": f"http://example.com/{key}.jpg", "caption": f"photo {key}", "key": key,
                    "status": status, "error_message": None if img else "HTTP Error 404: Not Found",
                    "width": 20 if img else None, "height": 16 if img else None,
                    "original_width": 20 if img else None, "original_height": 16 if img else None,
                    "exif": None, "sha256": None, "class_id": cid}
            table_rows.append(meta)
            members = [("txt", meta["caption"].encode()), ("json", json.dumps(meta).encode())]
            if img is not None:
                members.insert(0, ("jpg", img))
            for ext, payload in members:
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
    pq.write_table(pa.Table.from_pylist(table_rows), root / "00000.parquet")
    (root / "00000_stats.json").write_text(json.dumps({"count": 4, "successes": 3, "failed_to_download": 1,
                                                       "status_dict": {"success": 3, "HTTP Error 404": 1}}))
    return {key: img for key, _, _, img in rows if img is not None}


def test_wds_img2dataset_output(tmp_path, vocab):
    imgs = write_img2dataset(tmp_path / "i2d")
    src = WebDatasetSource(str(tmp_path / "i2d"), vocab, label_field="json:class_id")
    assert src.describe()["num_shards"] == 1  # parquet and stats files are not shards
    refs = list(src.scan("train"))
    assert [(r.key, r.class_id, r.skip) for r in refs] == [
        ("00000_000000000", "n01440764", None), ("00000_000000001", None, "failed_to_download"),
        ("00000_000000002", "n01443537", None), ("00000_000000003", None, "unknown_class")]
    assert "404" in refs[1].detail
    out = {r.key: (d, why) for r, d, why in src.read(refs)}
    assert out["00000_000000000"] == (imgs["000000000"], None)
    assert out["00000_000000002"] == (imgs["000000002"], None)
    assert out["00000_000000001"] == (None, "failed_to_download")
    # the hand-made shard reads with webdataset too
    keys = [s["__key__"] for s in webdataset.WebDataset(str(tmp_path / "i2d" / "00000.tar"),
                                                        shardshuffle=False, empty_check=False)]
    assert keys == ["000000000", "000000001", "000000002", "000000003"]


def test_wds_user_errors(tmp_path, vocab):
    write_shards(tmp_path / "wds")
    with pytest.raises(UserError, match="does not exist"):
        WebDatasetSource(str(tmp_path / "nope"), vocab)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .tar shards"):
        WebDatasetSource(str(tmp_path / "empty"), vocab)
    with pytest.raises(UserError, match="label_field"):
        WebDatasetSource(str(tmp_path / "wds"), vocab, label_field="json:")
    with pytest.raises(UserError, match="label_field"):
        WebDatasetSource(str(tmp_path / "wds"), vocab, label_field="caption")
    with pytest.raises(UserError, match="class list"):
        WebDatasetSource(str(tmp_path / "wds"), None)
    with pytest.raises(UserError, match="only the split"):
        list(WebDatasetSource(str(tmp_path / "wds"), vocab).scan("val"))
