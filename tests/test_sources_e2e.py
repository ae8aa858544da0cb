"""Every source kind through the whole CLI build, on real files: ImageFolder with a bundled class list,
manifest JSONL, a Hugging Face parquet folder and WebDataset shards (the last two get image files exported
for the path-referencing outputs). The command runs in-process (:func:`inprocess.run_main`: same exit code,
stdout and stderr as ``python -m``)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from inprocess import run_main

from builders.imagenet_qa import main as build_main
from builders.synthetic import jpeg_bytes
from vlm_classdata.vocabulary import ClassVocabulary


def cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m builders.imagenet_qa --quiet ARGS``, run in this process."""
    return run_main(build_main, "--quiet", *args)


def check_outputs(out: Path, expected: int, names: set[str]) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(s["written"] for s in manifest["splits"].values()) == expected
    rows = json.loads((out / "llava" / "train.json").read_text())
    root = Path(manifest["outputs"]["llava"]["image_root"])
    root = root if root.is_absolute() else out / root
    for row in rows:
        assert (root / row["image"]).is_file(), row["image"]
        assert row["conversations"][1]["value"] in names
    mcq = [json.loads(x) for x in (out / "mcq" / "train.jsonl").read_text().splitlines()]
    assert len(mcq) == len(rows)
    assert all(r["options"][r["answer_index"]] == r["class_name"] for r in mcq)
    return manifest


def test_imagefolder_food101_style(tmp_path):
    vocab = ClassVocabulary.bundled("food101")
    rng = random.Random(0)
    root = tmp_path / "food-101" / "images"
    picked = vocab.entries[:4]
    for e in picked:
        (root / e.class_id).mkdir(parents=True)
        for i in range(3):
            (root / e.class_id / f"{i}.jpg").write_bytes(jpeg_bytes(rng))
    (root / "not_a_food").mkdir()
    (root / "not_a_food" / "x.jpg").write_bytes(jpeg_bytes(rng))
    out = tmp_path / "out"
    res = cli("--source", "imagefolder", "--root", str(root), "--classes", "food101", "--out", str(out),
              "--outputs", "llava,mcq,hf")
    assert res.returncode == 0, res.stderr
    m = check_outputs(out, 12, {e.name for e in picked})
    assert m["splits"]["train"]["skip_reasons"] == {"unknown_class": 1}
    assert m["vocabulary"]["num_classes"] == 101


def test_manifest_jsonl_source(tmp_path, imagenet_tree):
    root, truth = imagenet_tree
    names = {e.class_id: e.name for e in ClassVocabulary.bundled("imagenet1k")}
    lines = []
    for i, (rel, wnid) in enumerate(sorted(truth["train"].items())):
        label = wnid if i % 3 == 0 else (names[wnid] if i % 3 == 1 else ClassVocabulary.bundled("imagenet1k")[wnid].index)
        lines.append(json.dumps({"image": rel, "label": label, "split": "train"}))
    lines.append("{not json")
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    res = cli("--source", "manifest", "--root", str(manifest), "--classes", "imagenet1k", "--out", str(out),
              "--outputs", "llava,mcq")
    assert res.returncode == 0, res.stderr
    m = check_outputs(out, len(truth["train"]), {names[w] for w in truth["train"].values()})
    assert m["splits"]["train"]["skip_reasons"] == {"bad_manifest_line": 1}


@pytest.fixture()
def hf_folder(tmp_path):
    import datasets  # heavy: only the hf source test needs it

    rng = random.Random(1)
    names = ["tench", "goldfish", "great white shark"]
    images = [{"bytes": jpeg_bytes(rng), "path": None} for _ in range(9)]
    ds = datasets.Dataset.from_dict(
        {"image": images, "label": [i % 3 for i in range(9)]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)}))
    folder = tmp_path / "hfds"
    (folder / "data").mkdir(parents=True)
    ds.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    return folder, names


def test_hf_parquet_folder_source_exports_images(hf_folder, tmp_path):
    folder, names = hf_folder
    out = tmp_path / "out"
    res = cli("--source", "hf", "--root", str(folder), "--out", str(out), "--outputs", "llava,mcq,wds", "--mcq-choices", "3")
    assert res.returncode == 0, res.stderr
    m = check_outputs(out, 9, set(names))
    assert m["outputs"]["llava"]["image_root"] == "."
    assert len(list((out / "images" / "train").iterdir())) == 9


def test_webdataset_source(tmp_path):
    import webdataset as wds  # heavy: only the WebDataset source test needs it

    vocab = ClassVocabulary.bundled("imagenet1k").subset(["n01440764", "n01443537"])
    rng = random.Random(2)
    shards = tmp_path / "shards"
    shards.mkdir()
    for s in range(2):
        with wds.TarWriter(str(shards / f"{s:05d}.tar")) as tw:
            for i in range(4):
                tw.write({"__key__": f"{s:05d}{i:04d}", "jpg": jpeg_bytes(rng),
                          "json": {"class_id": vocab.ids[i % 2], "caption": "a fish"}})
    out = tmp_path / "out"
    classes = tmp_path / "classes.txt"
    classes.write_text("n01440764 tench\nn01443537 goldfish\n")
    res = cli("--source", "webdataset", "--root", str(shards), "--classes", str(classes),
              "--label-field", "json:class_id", "--out", str(out), "--outputs", "llava,mcq,hf", "--mcq-choices", "2")
    assert res.returncode == 0, res.stderr
    check_outputs(out, 8, {"tench", "goldfish"})
