"""The ``wds`` output read by its real consumers, in the consumers' venv: webdataset 1.0 (``WebDataset`` over the
brace pattern of each split's index, ``.decode("pil").to_tuple("jpg", "json", "cls", "txt")``, as open_clip
reads it) and wids (``ShardListDataset`` over ``wds/<split>.json``, random access by index).

Three builds: the embedded sample (JPEGs), an ImageFolder tree of PNG (and one JPEG) photos with the default
``--wds-image-format jpg`` (PNGs re-encoded once, JPEG bytes kept), and the same tree with ``keep`` (read with
``jpg;png;webp``), a caption template of its own and tars that roll over (several shards of two parts). Builds run in this process; the readers run in one subprocess of the consumers' Python.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import tarfile
from pathlib import Path

import pytest
from consumers import consumers_python
from inprocess import run_main
from PIL import Image

from builders.imagenet_qa import main as build_main
from builders.sample import SAMPLE_ROOT
from builders.synthetic import jpeg_bytes

WNIDS = ("n01440764", "n01443537", "n02012849")  # tench, goldfish, crane
JPEG_SOI = b"\xff\xd8\xff"

# Runs in the consumers' venv. argv[1]: JSON list of [wds folder, image key, wids cache folder]. Prints, per
# folder and split: the index, every sample webdataset yields, and wids' samples at seeded random indexes.
READER = r"""
import json, random, sys
import webdataset as wds
import wids

report = {"webdataset": wds.__version__}
for folder, image_key, cache in json.loads(sys.argv[1]):
    splits = {}
    for index_path in sorted(p for p in __import__("pathlib").Path(folder).glob("*.json") if p.name != "sizes.json"):
        index = json.loads(index_path.read_text())
        urls = f"{folder}/{index['brace_urls']}"
        stream = wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple(image_key, "json", "cls", "txt")
        streamed = [[row["id"], cls, txt, row["conversations"][-1]["value"], image.mode, list(image.size)]
                    for image, row, cls, txt in stream]
        ds = wids.ShardListDataset(str(index_path), cache_dir=cache)
        picks = random.Random(0).sample(range(len(ds)), min(len(ds), 7))
        indexed = []
        for i in picks:
            sample = ds[i]
            image = sample[".jpg"] if ".jpg" in sample else sample[".png"]
            indexed.append([i, sample["__key__"], sample[".cls"], sample[".txt"], sample[".json"]["id"],
                            list(image.size)])
        splits[index_path.stem] = {"index": index, "streamed": streamed, "wids_len": len(ds), "indexed": indexed}
    report[folder] = splits
print(json.dumps(report))
"""


def cli(*args: str) -> None:
    res = run_main(build_main, "--quiet", "--outputs", "wds", *args)
    assert res.returncode == 0, res.stderr


def png_tree(root: Path) -> dict[str, tuple[str, tuple[int, int], str]]:
    """``root/<split>/<wnid>/*`` of PNG photos (RGB and grey) plus one JPEG; key → (wnid, size, format)."""
    rng = random.Random(3)
    truth = {}
    for split, per_class in (("train", 4), ("val", 2)):
        for c, wnid in enumerate(WNIDS):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                key, size = f"{split}_{wnid}_{i}", (24 + 3 * i + c, 20 + 2 * i)
                if split == "train" and c == 0 and i == 0:
                    (folder / f"{key}.jpg").write_bytes(jpeg_bytes(rng, size))
                    truth[key] = (wnid, size, "jpg")
                    continue
                buf = io.BytesIO()
                mode = "L" if i % 2 else "RGB"
                Image.new(mode, size, 90 if mode == "L" else (200, 40 + i, 10 * c)).save(buf, format="PNG")
                (folder / f"{key}.png").write_bytes(buf.getvalue())
                truth[key] = (wnid, size, "png")
    return truth


def tar_members(wds_dir: Path) -> dict[str, bytes]:
    """Every member of every tar of a build, by name."""
    members = {}
    for tar_path in sorted(wds_dir.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            for info in tar:
                members[info.name] = tar.extractfile(info).read()
    return members


def test_webdataset_and_wids_read_every_split(tmp_path: Path) -> None:
    sample_out, jpg_out, keep_out = tmp_path / "sample", tmp_path / "png_jpg", tmp_path / "png_keep"
    cli("--out", str(sample_out))
    root = tmp_path / "photos"
    truth = png_tree(root)
    source = ("--source", "imagefolder", "--root", str(root), "--classes", "imagenet1k")
    cli(*source, "--out", str(jpg_out))
    cli(*source, "--out", str(keep_out), "--wds-image-format", "keep", "--wds-caption", "{name} ({class_id})",
        "--shard-size", "3", "--wds-max-count", "2")  # several shards of two parts: a two-level brace pattern
    builds = [(sample_out, "jpg"), (jpg_out, "jpg"), (keep_out, "jpg;png;webp")]
    args = [[str(out / "wds"), key, str(tmp_path / f"cache_{out.name}")] for out, key in builds]
    res = subprocess.run([consumers_python(), "-c", READER, json.dumps(args)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.splitlines()[-1])
    sample_truth = {p.stem: p.parent.name for p in (SAMPLE_ROOT / "train").glob("*/*.JPEG")}
    with open(SAMPLE_ROOT / "LOC_val_solution.csv", encoding="utf-8") as fh:
        sample_truth.update((row["ImageId"], row["PredictionString"].split()[0]) for row in csv.DictReader(fh))
    assert report["webdataset"].startswith("1.")

    for out, _ in builds:
        manifest = json.loads((out / "manifest.json").read_text())
        names = [c["name"] for c in json.loads((out / "classes.json").read_text())["classes"]]
        ids = [c["id"] for c in json.loads((out / "classes.json").read_text())["classes"]]
        splits = report[str(out / "wds")]
        assert set(splits) == set(manifest["splits"]) and len(splits) == 2
        for split, got in splits.items():
            written = manifest["splits"][split]["written"]
            nsamples = sum(s["nsamples"] for s in got["index"]["shardlist"])
            assert len(got["streamed"]) == nsamples == got["wids_len"] == written > 0  # every sample arrives
            for key, cls, txt, answer, mode, size in got["streamed"]:
                assert names[cls] == answer  # label index, conversation and caption name the same class
                if out == keep_out:
                    assert txt == f"{names[cls]} ({ids[cls]})"
                else:
                    assert txt == f"a photo of a {names[cls]}." and mode == "RGB"
                if out == sample_out:
                    assert ids[cls] == sample_truth[key]
                else:
                    assert (ids[cls], size) == (truth[key][0], list(truth[key][1]))
            by_position = {i: row for i, row in enumerate(got["streamed"])}
            for i, key, cls, txt, row_id, size in got["indexed"]:  # wids' sample i is webdataset's i-th
                assert [key, cls, txt, size] == [by_position[i][0], by_position[i][1], by_position[i][2],
                                                 by_position[i][5]] and row_id == key
            sizes = json.loads((out / "wds" / "sizes.json").read_text())  # open_clip's count of each tar
            assert sum(sizes[s["url"]] for s in got["index"]["shardlist"]) == written

    # jpg: one extension; JPEG bytes as they were, PNGs re-encoded. keep: the bytes as found, both listed
    members = tar_members(jpg_out / "wds")
    assert {name.split(".")[1] for name in members} == {"jpg", "json", "cls", "txt"}
    for key, (wnid, _, fmt) in truth.items():
        source_bytes = (root / key.split("_")[0] / wnid / f"{key}.{fmt}").read_bytes()
        assert members[f"{key}.jpg"].startswith(JPEG_SOI)
        assert (members[f"{key}.jpg"] == source_bytes) == (fmt == "jpg")
    kept = tar_members(keep_out / "wds")
    for key, (wnid, _, fmt) in truth.items():
        assert kept[f"{key}.{fmt}"] == (root / key.split("_")[0] / wnid / f"{key}.{fmt}").read_bytes()
    train_index = report[str(keep_out / "wds")]["train"]["index"]
    assert train_index["image_key"] == "jpg;png" and "png" in train_index["extensions"]
    assert train_index["brace_urls"] == "train-{00000..00003}-{000..001}.tar" and len(train_index["shardlist"]) == 8


def test_wds_caption_none_and_bad_settings(tmp_path: Path) -> None:
    out = tmp_path / "nocap"
    cli("--out", str(out), "--splits", "val", "--wds-caption", "none")  # the source's name; written as validation
    assert {name.split(".")[1] for name in tar_members(out / "wds")} == {"jpg", "json", "cls"}
    index = json.loads((out / "wds" / "validation.json").read_text())
    assert index["extensions"] == ["cls", "jpg", "json"] and index["image_key"] == "jpg"
    for bad, message in ((["--wds-caption", "a photo of a {label}"], "--wds-caption 'a photo of a {label}': unknown "
                                                                      "field {label}; use {name} or {class_id}"),
                         (["--wds-caption", "a photo"], "names no field")):
        res = run_main(build_main, "--quiet", "--outputs", "wds", "--out", str(tmp_path / "refused"), *bad)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
        assert not (tmp_path / "refused").exists()  # refused before anything is written
    with pytest.raises(SystemExit) as refused:  # argparse's own choice check (usage + one error line)
        run_main(build_main, "--outputs", "wds", "--out", str(tmp_path / "refused"), "--wds-image-format", "png")
    assert refused.value.code == 2 and not (tmp_path / "refused").exists()
