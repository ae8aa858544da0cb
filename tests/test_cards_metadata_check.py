"""cards.metadata + cards.check on a real Hugging Face folder built by builders.imagenet_qa (embedded sample)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from datasets import ClassLabel, Image
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData
from PIL import Image as PILImage

from builders.imagenet_qa import main as build_main
from cards.check import DEFAULT_SECTIONS, check_folder, check_main
from cards.credentials import CHUNK
from cards.metadata import (
    HUB_LICENSES,
    LICENSES,
    card_metadata,
    data_info,
    known_source,
    license_for,
    render_front_matter,
    size_category,
)
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import BUNDLED

FAKE_TOKEN = "hf_" + "Ab3dE" * 7  # 35 letters/digits after hf_: token-shaped, not a real token
BODY = """
# ImageNet QA (demo)

## Dataset summary

Instruction data made from a 5-class ImageNet sample. ![class counts](plots/class_counts.png)

See the [training shard](data/train-00000-of-00001.parquet), the [Hub](https://huggingface.co/docs)
and [this section](#dataset-structure).

## Dataset structure

```json
{"messages": "[not a link](nowhere.png) TODO"}
```

Inline code is not checked either: `![x](absent.png)`.

## Dataset creation

Built with `python -m builders.imagenet_qa`.

## Licence

ImageNet terms of access.

## Citation

```bibtex
@inproceedings{deng2009imagenet, title={ImageNet}}
```
"""


@pytest.fixture(scope="module")
def built_hf(tmp_path_factory) -> tuple[Path, dict]:
    """The hf output of the embedded sample (train 20, validation 10) and the build manifest."""
    out = tmp_path_factory.mktemp("cards_build") / "build"
    assert build_main(["--out", str(out), "--outputs", "hf", "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    return out / "hf", manifest


def _meta(folder: Path) -> dict:
    lic, name, _ = license_for("imagenet1k")
    return card_metadata(folder, pretty_name="ImageNet QA (demo)", license_id=lic, license_name=name,
                         task_categories=["image-text-to-text", "visual-question-answering"],
                         source_datasets=["extended|imagenet-1k"], tags=["vlm", "instruction-tuning"])


def _carded(built: Path, dest: Path) -> Path:
    """A copy of the hf folder with a generated card and a linked plot image."""
    folder = dest / "hf"
    shutil.copytree(built, folder)
    (folder / "plots").mkdir()
    PILImage.new("RGB", (8, 6), (200, 30, 30)).save(folder / "plots" / "class_counts.png")
    (folder / "README.md").write_text(render_front_matter(_meta(folder)) + BODY, encoding="utf-8")
    return folder


def test_data_info_reads_parquet_metadata(built_hf):
    folder, manifest = built_hf
    info = data_info(folder)
    counts = manifest["outputs"]["hf"]["counts"]
    assert {s: v["num_examples"] for s, v in info["splits"].items()} == counts == {"train": 20, "validation": 10}
    assert list(info["splits"]) == ["train", "validation"]
    assert isinstance(info["features"]["images"].feature, Image)  # TRL's list-of-images column
    assert isinstance(info["features"]["label"], ClassLabel) and info["features"]["label"].num_classes == 1000
    files = sorted((folder / "data").glob("*.parquet"))
    assert info["download_size"] == sum(p.stat().st_size for p in files)
    assert info["dataset_size"] == sum(v["num_bytes"] for v in info["splits"].values()) > 0
    assert info["num_examples"] == 30
    assert info["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "data/train-*"}, {"split": "validation", "path": "data/validation-*"}]}]
    # the writer's own README records the same split sizes
    writer_info = DatasetInfosDict.from_dataset_card_data(DatasetCard.load(folder / "README.md").data)
    assert {s: i.num_examples for s, i in writer_info["default"].splits.items()} == counts
    assert {s: i.num_bytes for s, i in writer_info["default"].splits.items()} == {
        s: v["num_bytes"] for s, v in info["splits"].items()}


def test_data_info_user_errors(tmp_path):
    with pytest.raises(UserError, match="no Parquet shards"):
        data_info(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.parquet").write_bytes(b"PAR1")
    with pytest.raises(UserError, match="<split>-"):
        data_info(tmp_path)
    (tmp_path / "data" / "train.parquet").rename(tmp_path / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(UserError, match="not a readable Parquet file"):
        data_info(tmp_path)


def test_card_metadata_round_trips_through_hub_and_datasets(built_hf, tmp_path):
    folder = _carded(built_hf[0], tmp_path)
    meta = _meta(folder)
    assert list(meta)[:4] == ["pretty_name", "license", "license_name", "license_link"]
    assert meta["license"] == "other" and meta["license_name"] == "imagenet-terms-of-access"
    assert meta["license_link"].startswith("https://image-net.org/")
    assert meta["size_categories"] == ["n<1K"] and meta["language"] == ["en"]
    assert "task_ids" not in meta  # empty → left out
    front = render_front_matter(meta)
    assert front.startswith("---\n") and front.endswith("---\n")
    assert yaml.safe_load(front.strip().strip("-")) == meta

    card = DatasetCard.load(folder / "README.md")
    assert isinstance(card.data, DatasetCardData)
    assert card.data.to_dict() == meta
    assert DatasetCardData(**meta).to_dict() == meta
    assert card.text.lstrip().startswith("# ImageNet QA (demo)")
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert configs == {"default": {"data_files": [{"split": "train", "path": "data/train-*"},
                                                  {"split": "validation", "path": "data/validation-*"}]}}
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    assert {s: i.num_examples for s, i in infos["default"].splits.items()} == {"train": 20, "validation": 10}
    assert infos["default"].features == data_info(folder)["features"]
    assert infos["default"].download_size == data_info(folder)["download_size"]

    with pytest.raises(ValueError, match="not a Hugging Face Hub licence"):
        card_metadata(folder, pretty_name="x", license_id="imagenet", task_categories=["x"], source_datasets=["x"])
    with pytest.raises(ValueError, match="license_name"):
        card_metadata(folder, pretty_name="x", license_id="other", task_categories=["x"], source_datasets=["x"])
    plain = card_metadata(folder, pretty_name="x", license_id="cc-by-4.0", task_categories="image-classification",
                          source_datasets="original", task_ids=["multi-class-image-classification"])
    assert "license_name" not in plain and plain["task_categories"] == ["image-classification"]
    assert plain["task_ids"] == ["multi-class-image-classification"]


def test_good_card_has_no_problems(built_hf, tmp_path, capsys):
    folder = _carded(built_hf[0], tmp_path)
    assert check_folder(folder) == []
    assert check_main(folder) == 0
    assert capsys.readouterr().out.strip() == f"ok: {folder} (2 splits, 30 examples)"


def test_every_problem_reported_in_one_call(built_hf, tmp_path, capsys):
    folder = _carded(built_hf[0], tmp_path)
    meta = _meta(folder)
    meta["license"] = "imagenet-license"  # not a Hub licence id
    meta["dataset_info"]["splits"][0]["num_examples"] = 21  # train really has 20
    meta["size_categories"] = ["1K<n<10K"]
    body = (BODY.replace("## Citation", "## References")
            .replace("## Dataset creation", "## Dataset creation\n\nPrompts: TODO.\n\n"
                                            "![missing plot](plots/missing.png) <img src=\"plots/gone.png\">\n"
                                            "[outside](../secret.txt)\n\n[More Information Needed]\n"))
    (folder / "README.md").write_text(render_front_matter(meta) + body + f"\ntoken: {FAKE_TOKEN}\n",
                                      encoding="utf-8")
    (folder / "notes").mkdir()
    (folder / "notes" / "run.json").write_text(json.dumps({"a": 1}) + "\n" + json.dumps({"t": FAKE_TOKEN}) + "\n")

    problems = check_folder(folder)
    text = "\n".join(problems)
    expected = [
        "license 'imagenet-license' is not a Hugging Face Hub licence id",
        "split 'train': dataset_info says num_examples 21, the data has 20",
        "size_categories ['1K<n<10K'] does not match the 30 examples (expected 'n<1K')",
        "link target 'plots/missing.png' does not exist",
        "link target 'plots/gone.png' does not exist",
        "link '../secret.txt' points outside the folder",
        "no section heading mentions 'citation'",
        "leftover placeholder 'TODO'",
        "leftover placeholder '[More Information Needed]'",
        "notes/run.json line 2: looks like a Hugging Face access token",
    ]
    for piece in expected:
        assert piece in text, piece
    assert [p for p in problems if "access token" in p and p.startswith("README.md line")]  # README too
    assert sum("placeholder" in p for p in problems) == 2  # the TODO inside the code block is not counted
    assert "nowhere.png" not in text and "absent.png" not in text  # links in code are not checked
    assert FAKE_TOKEN not in text  # a problem line never repeats the secret
    assert len(problems) == len(expected) + 1  # nothing else is reported (+1: the token in README.md)

    assert check_main(folder) == 1
    out = capsys.readouterr().out
    assert out.count("problem: ") == len(problems) and FAKE_TOKEN not in out


def test_broken_configs_data_and_front_matter(built_hf, tmp_path):
    folder = _carded(built_hf[0], tmp_path)
    meta = _meta(folder)
    meta["configs"][0]["data_files"].append({"split": "test", "path": "data/test-*"})
    del meta["pretty_name"], meta["task_categories"]
    meta["license_name"] = "ImageNet Terms"
    (folder / "README.md").write_text(render_front_matter(meta) + BODY, encoding="utf-8")
    problems = check_folder(folder, require_sections=DEFAULT_SECTIONS + ("bias/risks/limitations",))
    text = "\n".join(problems)
    for piece in ("'pretty_name' is missing", "'task_categories' is missing",
                  "license_name 'ImageNet Terms' must be lower-case",
                  "config 'default' split 'test': no file matches 'data/test-*'",
                  "datasets.load_dataset fails offline",
                  "no section heading mentions 'bias' or 'risks' or 'limitations'"):
        assert piece in text, piece

    (folder / "README.md").write_text("---\nlicense: [unclosed\n---\n# Summary\n", encoding="utf-8")
    problems = check_folder(folder, require_sections=("summary",))
    assert any("front matter is not valid YAML" in p for p in problems)
    (folder / "README.md").unlink()
    problems = check_folder(folder, require_sections=("summary",))
    assert problems == ["README.md is missing"]  # the data alone still loads
    with pytest.raises(UserError, match="not a folder"):
        check_folder(tmp_path / "absent")


def test_check_restores_offline_setting(built_hf, tmp_path, monkeypatch):
    folder = _carded(built_hf[0], tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert check_folder(folder) == []
    assert "HF_HUB_OFFLINE" not in os.environ


def test_token_found_across_read_chunks(built_hf, tmp_path):
    """A token that straddles a read-chunk edge is still found, on the right line; a short hf_ word is not one."""
    folder = _carded(built_hf[0], tmp_path)
    prefix = ("x" * 99 + "\n") * (CHUNK // 100)  # lines of 100 bytes; the token straddles the chunk edge
    text = prefix + "a" * (CHUNK - len(prefix) - 10) + " " + FAKE_TOKEN + "\nend " + FAKE_TOKEN + "\nhf_short\n"
    (folder / "big.txt").write_text(text)
    n_before = prefix.count("\n")
    found = [p for p in check_folder(folder) if p.startswith("big.txt")]
    assert found == [f"big.txt line {n}: looks like a Hugging Face access token; remove it"
                     for n in (n_before + 1, n_before + 2)]


@pytest.mark.parametrize(("n", "category"), [
    (0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (9_999, "1K<n<10K"), (10_000, "10K<n<100K"),
    (99_999, "10K<n<100K"), (100_000, "100K<n<1M"), (999_999, "100K<n<1M"), (10 ** 6, "1M<n<10M"),
    (10 ** 7, "10M<n<100M"), (10 ** 8, "100M<n<1B"), (10 ** 9, "1B<n<10B"), (10 ** 10, "10B<n<100B"),
    (10 ** 11, "100B<n<1T"), (10 ** 12 - 1, "100B<n<1T"), (10 ** 12, "n>1T"), (10 ** 15, "n>1T"),
])
def test_size_category_boundaries(n, category):
    assert size_category(n) == category


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_size_category_rejects_non_counts(bad):
    with pytest.raises(ValueError):
        size_category(bad)


@pytest.mark.parametrize(("dataset", "lic", "name", "in_note"), [
    ("imagenet1k", "other", "imagenet-terms-of-access", "non-commercial research and educational"),
    ("imagenet-1k", "other", "imagenet-terms-of-access", "image-net.org"),
    ("ILSVRC/imagenet-1k", "other", "imagenet-terms-of-access", "does not own the copyright"),
    ("objectnet", "other", "objectnet-license", "never be used to tune the parameters"),
    ("cub200", "other", "cub-200-2011-terms", "inherits the licence/terms of cub-200-2011"),
    ("food101", "other", "food-101-terms", "foodspotting"),
    ("ethz/food101", "other", "food-101-terms", "scientific fair use"),
    ("flowers102", "other", "oxford-flowers-102-terms", "inherits the licence/terms of oxford flowers-102"),
    ("stanford_cars", "other", "stanford-cars-terms", "inherits the licence/terms of stanford cars"),
    ("caltech101", "cc-by-4.0", None, "attribution 4.0"),
    ("my_flowers", "other", "my-flowers-terms", "inherits the licence/terms of my_flowers"),
    (None, "other", "source-dataset-terms", "not recorded"),
])
def test_license_for(dataset, lic, name, in_note):
    got = license_for(dataset)
    assert got[:2] == (lic, name)
    assert in_note in got[2].lower()


def test_every_bundled_list_has_known_terms():
    for name in BUNDLED:
        key = known_source(name)
        assert key is not None, name
        entry = LICENSES[key]
        assert entry["license"] in HUB_LICENSES and entry["note"]
        if entry["license"] == "other":
            assert entry["license_name"] and entry["license_link"].startswith("https://")
    assert known_source("caltech256") is None and known_source("imagenet-r") is None
