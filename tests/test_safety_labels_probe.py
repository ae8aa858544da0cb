"""A label column or field that resolves nothing is found up front (issue case 13, source part).

Before, ``--label-field json:nosuch`` or an HF label column whose values name no class of ``--classes``
built 0 images and exited 0. Now the source reads the first labels when it is opened: present labels of
which none resolves, or a label member/field none of the first samples carries, is one line, exit 2,
naming the column or field, examples or the fields present. Unlabelled rows (a test split) never trip it.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import tarfile
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value

from builders.synthetic import jpeg_bytes

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "builders.imagenet_qa", "--quiet", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def one_line_error(res: subprocess.CompletedProcess, out: Path, *parts: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def images(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"bytes": jpeg_bytes(rng, (16, 12)), "path": None} for _ in range(n)]


def write_tar(path: Path, samples: list[dict[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tf:
        for i, members in enumerate(samples):
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{i:06d}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))


def test_hf_string_labels_that_name_no_class(tmp_path):
    Dataset.from_dict({"image": images(4), "label": ["foo", "bar", "baz", "foo"]},
                      features=Features({"image": Image(), "label": Value("string")})
                      ).save_to_disk(str(tmp_path / "ds"))
    out = tmp_path / "out"
    res = cli("--source", "hf", "--root", str(tmp_path / "ds"), "--classes", "imagenet1k", "--out", str(out))
    one_line_error(res, out, "column 'label'", "none of the first 4 labels", "'foo', 'bar', 'baz'")


def test_hf_wrong_label_column_or_class_list_on_our_own_output(tmp_path):
    first = tmp_path / "first"
    assert cli("--out", str(first), "--outputs", "hf").returncode == 0
    out = tmp_path / "out"
    res = cli("--source", "hf", "--root", str(first / "hf"), "--classes", "imagenet1k", "--label-column", "id",
              "--out", str(out), "--outputs", "llava")
    one_line_error(res, out, "column 'id'", "imagenet1k", "'n02123045_1'")
    res = cli("--source", "hf", "--root", str(first / "hf"), "--classes", "flowers102", "--out", str(out),
              "--outputs", "llava")
    one_line_error(res, out, "column 'label'", "flowers102", "'tabby cat'")  # ClassLabel names shown


def test_hf_unlabelled_test_split_is_not_an_error(tmp_path):
    features = Features({"image": Image(), "label": ClassLabel(names=["tench", "goldfish"])})
    DatasetDict({"train": Dataset.from_dict({"image": images(2), "label": [0, 1]}, features=features),
                 "test": Dataset.from_dict({"image": images(2, 1), "label": [-1, -1]}, features=features)}
                ).save_to_disk(str(tmp_path / "ds"))
    out = tmp_path / "out"
    res = cli("--source", "hf", "--root", str(tmp_path / "ds"), "--classes", "imagenet1k", "--out", str(out),
              "--outputs", "llava")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["written"] == 2
    assert manifest["splits"]["test"]["skip_reasons"] == {"no_label": 2, "empty_split": 1}


def test_wds_json_field_missing_from_the_first_samples(tmp_path):
    img = images(1)[0]["bytes"]
    write_tar(tmp_path / "s.tar", [{"jpg": img, "json": json.dumps({"class_id": "n01440764", "caption": "x"}).encode()}
                                   for _ in range(3)])
    out = tmp_path / "out"
    res = cli("--source", "webdataset", "--root", str(tmp_path / "s.tar"), "--classes", "imagenet1k",
              "--label-field", "json:nosuch", "--out", str(out))
    one_line_error(res, out, "'nosuch'", "none of the first 3 samples", "fields present: caption, class_id")


def test_wds_label_member_missing_or_naming_no_class(tmp_path):
    img = images(1)[0]["bytes"]
    write_tar(tmp_path / "json_only.tar", [{"jpg": img, "json": b"{}"}] * 2)
    out = tmp_path / "out"
    res = cli("--source", "webdataset", "--root", str(tmp_path / "json_only.tar"), "--classes", "imagenet1k",
              "--out", str(out))
    one_line_error(res, out, "has a .cls member", "members present: jpg, json")
    write_tar(tmp_path / "bad.tar", [{"jpg": img, "cls": name.encode()} for name in ("dog", "cat", "cow", "dog")])
    res = cli("--source", "webdataset", "--root", str(tmp_path / "bad.tar"), "--classes", "imagenet1k",
              "--out", str(out))
    one_line_error(res, out, "none of the first 4 samples", "'dog', 'cat', 'cow'")


def test_wds_probe_skips_failed_downloads_and_accepts_a_later_label(tmp_path):
    img = images(1)[0]["bytes"]
    failed = {"json": json.dumps({"status": "failed_to_download"}).encode()}
    write_tar(tmp_path / "s.tar", [failed, {"jpg": img, "json": b"{}"},
                                   {"jpg": img, "json": json.dumps({"class_id": "tench"}).encode()}])
    out = tmp_path / "out"
    res = cli("--source", "webdataset", "--root", str(tmp_path / "s.tar"), "--classes", "imagenet1k",
              "--label-field", "json:class_id", "--out", str(out), "--outputs", "llava")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["written"] == 1
    assert manifest["splits"]["train"]["skip_reasons"] == {"failed_to_download": 1, "no_label": 1}
