"""Split names and keys that would become paths are validated where they enter (issue case 2).

A split given on the command line (``--split-name``) or by a dataset's structure (an HF split) that cannot
be one file name ends the run with one line, exit 2, before anything is written. A manifest row whose
``split`` cannot be one is skipped as ``unsafe_name`` (counted, named); a key too long to be a file name is
skipped as ``unsafe_name``. Nothing is ever written outside ``--out``.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from datasets import Dataset, Features, Image, Value

from builders.sources.wds import WebDatasetSource
from builders.synthetic import jpeg_bytes
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
EVIL = "../../../../evil"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "builders.imagenet_qa", "--quiet", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def listing(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files}


def one_line_error(res: subprocess.CompletedProcess, *parts: str) -> None:
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for part in parts:
        assert part in lines[0], lines[0]


@pytest.fixture
def sandbox(tmp_path):
    """``tmp_path/a/b/c/d/out`` deep enough for ``../../../../evil`` to land inside tmp_path, one image,
    and an absolute split path inside tmp_path."""
    (tmp_path / "a" / "b" / "c" / "d").mkdir(parents=True)
    (tmp_path / "img.jpg").write_bytes(jpeg_bytes(random.Random(0)))
    return tmp_path


def test_manifest_rows_with_a_path_as_split_are_skipped_and_nothing_leaves_out(sandbox):
    absolute = str(sandbox / "abs")
    rows = [{"image": "img.jpg", "label": "tench", "split": EVIL, "id": "evil"},
            {"image": "img.jpg", "label": "tench", "split": absolute, "id": "abs"},
            {"image": "img.jpg", "label": "tench", "id": "good"}]
    # the manifest and its image live beside --out, not above it (an --out inside the input is refused)
    (sandbox / "data").mkdir()
    (sandbox / "data" / "img.jpg").write_bytes((sandbox / "img.jpg").read_bytes())
    (sandbox / "data" / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = listing(sandbox)
    out = sandbox / "a" / "b" / "c" / "d" / "out"
    res = cli("--source", "manifest", "--root", str(sandbox / "data" / "m.jsonl"), "--classes", "imagenet1k",
              "--out", str(out), "--outputs", "llava,eval_open,mcq")
    assert res.returncode == 0, res.stderr
    assert {p for p in listing(sandbox) - before if not p.startswith("a/b/c/d/out/")} == set()
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["splits"]) == ["train"]
    assert manifest["splits"]["train"]["written"] == 1
    assert manifest["splits"]["train"]["skip_reasons"] == {"unsafe_name": 2}
    details = [s["detail"] for s in manifest["skipped"]]
    assert details[0].startswith("line 1: split '../../../../evil' cannot be used in a file name")
    assert details[1].startswith(f"line 2: split {absolute!r} cannot be used in a file name")
    assert [r["id"] for r in json.loads((out / "llava" / "train.json").read_text())] == ["good"]


@pytest.mark.parametrize("source", ["manifest", "webdataset", "imagefolder"])
@pytest.mark.parametrize("split", [EVIL, "/abs/evil"])
def test_split_name_option_that_is_a_path_is_one_error_before_work(sandbox, source, split):
    (sandbox / "m.jsonl").write_text('{"image": "img.jpg", "label": "tench"}\n')
    (sandbox / "folders" / "tench").mkdir(parents=True)
    (sandbox / "folders" / "tench" / "1.jpg").write_bytes((sandbox / "img.jpg").read_bytes())
    with tarfile.open(sandbox / "s.tar", "w") as tf:
        for name, data in (("k.jpg", (sandbox / "img.jpg").read_bytes()), ("k.cls", b"0")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    root = {"manifest": sandbox / "m.jsonl", "webdataset": sandbox / "s.tar", "imagefolder": sandbox / "folders"}
    before = listing(sandbox)
    out = sandbox / "a" / "b" / "c" / "d" / "out"
    res = cli("--source", source, "--root", str(root[source]), "--classes", "imagenet1k",
              "--split-name", split, "--out", str(out), "--outputs", "llava")
    one_line_error(res, f"split name {split!r} cannot be used in a file name")
    assert listing(sandbox) == before


def test_hf_split_that_is_a_path_is_one_error_before_work(sandbox):
    """A regression guard: ``datasets`` itself refuses such a split when loading; HFSource checks again."""
    img = {"bytes": (sandbox / "img.jpg").read_bytes(), "path": None}
    Dataset.from_dict({"image": [img], "label": ["tench"]}, split=EVIL,
                      features=Features({"image": Image(), "label": Value("string")})
                      ).save_to_disk(str(sandbox / "hfds"))
    before = listing(sandbox)
    out = sandbox / "a" / "b" / "c" / "d" / "out"
    res = cli("--source", "hf", "--root", str(sandbox / "hfds"), "--classes", "imagenet1k", "--out", str(out),
              "--outputs", "llava")
    one_line_error(res, str(sandbox / "hfds"), repr(EVIL))
    assert listing(sandbox) == before


def test_webdataset_key_too_long_for_a_file_name_is_unsafe_name(tmp_path):
    data = jpeg_bytes(random.Random(3))
    with tarfile.open(tmp_path / "s.tar", "w", format=tarfile.PAX_FORMAT) as tf:
        for key in ("short", "x" * 230):
            for ext, payload in (("jpg", data), ("cls", b"tench")):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
    src = WebDatasetSource(str(tmp_path / "s.tar"), ClassVocabulary.bundled("imagenet1k"))
    refs = list(src.scan("train"))
    assert [(r.key, r.class_id, r.skip) for r in refs] == [
        ("s_short", "n01440764", None), ("s_" + "x" * 230, None, "unsafe_name")]
    assert "longer than 200 bytes" in refs[1].detail


def test_hf_split_or_key_too_long_for_a_file_name(tmp_path):
    from builders.sources.hf import HFSource
    from vlm_classdata.errors import UserError

    img = {"bytes": jpeg_bytes(random.Random(4)), "path": None}
    features = Features({"image": Image(), "label": Value("string"), "key": Value("string")})
    long_split = "s" * 210  # a valid Hugging Face split name, but no file name
    Dataset.from_dict({"image": [img], "label": ["tench"], "key": ["k"]}, split=long_split,
                      features=features).save_to_disk(str(tmp_path / "long_split"))
    with pytest.raises(UserError, match="cannot be used in a file name: longer than 200 bytes"):
        HFSource(str(tmp_path / "long_split"), vocabulary=ClassVocabulary.bundled("imagenet1k"))
    Dataset.from_dict({"image": [img] * 2, "label": ["tench"] * 2, "key": ["ok", "k" * 230]},
                      features=features).save_to_disk(str(tmp_path / "long_key"))
    src = HFSource(str(tmp_path / "long_key"), vocabulary=ClassVocabulary.bundled("imagenet1k"), key_column="key")
    assert [(r.key, r.class_id, r.skip) for r in src.scan("train")] == [
        ("ok", "n01440764", None), ("train_00000001", None, "unsafe_name")]
