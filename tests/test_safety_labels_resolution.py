"""One label resolution for every label kind (issue case 6), on real builds.

The toolkit's own ``hf`` output (ClassLabel names = imagenet1k display names) is built again with
``--source hf --classes imagenet1k``: no sample may be lost, in particular none of the six classes whose
display name is also another class's synonym (partridge, crayfish, cardigan, gong, harp, missile). A name
two classes share (crane) is ``ambiguous_class`` with both candidates named, whatever kind of label it is.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import Dataset, Features, Image, Value

from builders.sources.hf import HFSource
from builders.sources.imagefolder import ImageFolderSource
from builders.synthetic import jpeg_bytes, make_imagenet_tree
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
#: display names that are also another imagenet1k class's synonym
SHADOWED = {"n01807496": "partridge", "n01985128": "crayfish", "n02963159": "cardigan",
            "n03447721": "gong", "n03495258": "harp", "n03773504": "missile"}
CRANES = {"n02012849": "crane bird", "n03126707": "construction crane"}
CRANE_DETAIL = "label 'crane' names 2 classes: n02012849 (crane bird), n03126707 (construction crane)"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "builders.imagenet_qa", "--quiet", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def hf_rows(folder: Path) -> list[tuple[str, str]]:
    """``(split, class_id)`` of every row of an ``hf`` output, in split then row order."""
    out = []
    for f in sorted((folder / "data").glob("*.parquet")):
        split = f.name.split("-", 1)[0]
        out += [(split, cid) for cid in pq.read_table(f, columns=["class_id"]).column("class_id").to_pylist()]
    return out


def rebuild_loses_nothing(first: Path, tmp_path: Path) -> list[tuple[str, str]]:
    again = tmp_path / "again"
    res = cli("--source", "hf", "--root", str(first / "hf"), "--classes", "imagenet1k", "--out", str(again),
              "--outputs", "hf")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((again / "manifest.json").read_text())
    assert manifest["skipped"] == []
    assert all(info["skipped"] == 0 for info in manifest["splits"].values())
    before, after = hf_rows(first / "hf"), hf_rows(again / "hf")
    assert after == before  # same samples, same classes, same order
    return after


def test_rebuilding_the_embedded_sample_hf_output_loses_nothing(tmp_path):
    first = tmp_path / "first"
    res = cli("--out", str(first), "--outputs", "hf")
    assert res.returncode == 0, res.stderr
    rows = rebuild_loses_nothing(first, tmp_path)
    assert len(rows) == 30 and ("train", "n03773504") in rows  # the sample's missile class survives


def test_rebuilding_shadowed_names_and_cranes_loses_nothing(tmp_path):
    root = tmp_path / "tree"
    make_imagenet_tree(root, [*SHADOWED, *CRANES], train_per_class=2, val_per_class=0)
    first = tmp_path / "first"
    res = cli("--root", str(root), "--out", str(first), "--outputs", "hf")
    assert res.returncode == 0, res.stderr
    rows = rebuild_loses_nothing(first, tmp_path)
    assert sorted({cid for _, cid in rows}) == sorted([*SHADOWED, *CRANES])
    assert len(rows) == 16


def test_every_label_kind_resolves_the_same_way():
    vocab = ClassVocabulary.bundled("imagenet1k")
    for cid, name in {**SHADOWED, **CRANES}.items():
        assert vocab.resolve_label(name) == (cid, None, "")  # the display name wins over a synonym
        assert vocab.resolve_label(name.upper().replace(" ", "_")) == (cid, None, "")
        assert vocab.resolve_label(cid) == (cid, None, "")
    assert vocab.resolve_label("Cardigan Welsh corgi")[0] == "n02113186"
    assert vocab.resolve_label("projectile")[0] == "n04008634"
    assert vocab.resolve_label("crane") == (None, "ambiguous_class", CRANE_DETAIL)
    assert vocab.resolve_label(5) == vocab.resolve_label("5") == (vocab.ids[5], None, "")
    assert vocab.resolve_label(1000) == (None, "unknown_class", "label 1000 (index out of range 0..999)")
    assert vocab.resolve_label("unicorn") == (None, "unknown_class", "label 'unicorn'")


def test_a_wnid_field_resolves_when_ids_are_not_wnids():
    vocab = ClassVocabulary.from_json({"dataset": "x", "classes": [
        {"id": "0", "name": "tench", "wnid": "n01440764"}, {"id": "1", "name": "goldfish", "wnid": "n01443537"}]})
    assert vocab.resolve_label("n01443537") == ("1", None, "")


def test_crane_as_a_bare_string_label_is_ambiguous_with_both_candidates(tmp_path):
    rng = random.Random(0)
    img = {"bytes": jpeg_bytes(rng, (16, 12)), "path": None}
    Dataset.from_dict({"image": [img] * 3, "label": ["crane", "crane bird", "construction crane"]},
                      features=Features({"image": Image(), "label": Value("string")})
                      ).save_to_disk(str(tmp_path / "strs"))
    refs = list(HFSource(str(tmp_path / "strs"), vocabulary=ClassVocabulary.bundled("imagenet1k")).scan("train"))
    assert [(r.class_id, r.skip, r.detail) for r in refs] == [
        (None, "ambiguous_class", CRANE_DETAIL), ("n02012849", None, ""), ("n03126707", None, "")]


def test_crane_in_a_manifest_build_is_reported_with_both_candidates(tmp_path):
    rng = random.Random(1)
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(rng))
    (tmp_path / "m.jsonl").write_text(
        '{"image": "a.jpg", "label": "crane", "id": "amb"}\n{"image": "a.jpg", "label": "harp", "id": "ok"}\n')
    out = tmp_path / "out"
    res = cli("--source", "manifest", "--root", str(tmp_path / "m.jsonl"), "--classes", "imagenet1k",
              "--out", str(out), "--outputs", "llava")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["written"] == 1
    assert [(s["key"], s["reason"], s["detail"]) for s in manifest["skipped"]] == [
        ("amb", "ambiguous_class", CRANE_DETAIL)]


def test_crane_folder_and_class_map(tmp_path):
    rng = random.Random(2)
    for folder in ("crane", "cardigan", "harp"):
        (tmp_path / "imgs" / folder).mkdir(parents=True)
        (tmp_path / "imgs" / folder / "1.jpg").write_bytes(jpeg_bytes(rng))
    src = ImageFolderSource(tmp_path / "imgs", vocabulary=ClassVocabulary.bundled("imagenet1k"))
    got = [(r.locator, r.class_id, r.skip, r.detail) for r in src.scan("train")]
    assert got == [("cardigan/1.jpg", "n02963159", None, ""), ("crane/1.jpg", None, "ambiguous_class", CRANE_DETAIL),
                   ("harp/1.jpg", "n03495258", None, "")]
    with pytest.raises(UserError, match=r"'x' -> 'crane' .*n02012849 \(crane bird\), n03126707"):
        ImageFolderSource(tmp_path / "imgs", vocabulary=ClassVocabulary.bundled("imagenet1k"),
                          class_map={"x": "crane"})
    mapped = ImageFolderSource(tmp_path / "imgs", vocabulary=ClassVocabulary.bundled("imagenet1k"),
                               class_map={"crane": "crane bird"})
    assert [r.class_id for r in mapped.scan("train")] == ["n02963159", "n02012849", "n03495258"]
