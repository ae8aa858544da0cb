"""Dataset cards from real builds: the embedded demo (all outputs), an ImageWikiQA build, corpora_stats counts,
a filtered build (a scripted tiny VLM through builders.verify) → write_card → check_folder, load_dataset.

Builds run through the real CLIs (subprocess, so their manifests record the real command) except the
verification pass, which runs in-process on a scripted tiny LLaVA (vlm_classdata.vlm.tiny) that always says
"tripod".
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from builders.imagenet_qa import main as build_main
from builders.sample import SAMPLE_ROOT
from builders.verify.__main__ import main as verify_main
from cards.__main__ import main as cards_main
from cards.check import check_folder
from cards.collect import collect
from cards.write import write_card
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.vlm.tiny import make_scripted_llava

REPO = Path(__file__).resolve().parents[1]
DEMO_CLASSES = {"n02123045": "tabby cat", "n03773504": "missile", "n04266014": "space shuttle",
                "n04485082": "tripod", "n07920052": "espresso"}
PNG = b"\x89PNG\r\n\x1a\n"


def cli(*args: str, cwd: Path = REPO) -> None:
    """Run ``python -m ...`` from the checkout; fail with its stderr."""
    done = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def front_matter(readme: Path) -> tuple[dict, str]:
    _, front, body = readme.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(front), body


def first_row(folder: Path) -> dict:
    """The first row of the first split's first shard (train before others, as the card shows it)."""
    files = sorted((folder / "data").glob("*.parquet"), key=lambda p: (not p.name.startswith("train-"), p.name))
    path = files[0]
    return next(pq.ParquetFile(path).iter_batches(batch_size=1)).to_pylist()[0]


def load_sizes(folder: Path) -> dict[str, int]:
    import datasets  # heavy: only this helper needs it

    ds = datasets.load_dataset(str(folder))
    return {split: d.num_rows for split, d in ds.items()}


@pytest.fixture(scope="module")
def benchmark_job(tmp_path_factory):
    """Start the ImageWikiQA build (WordNet load, ~5 s) in the background while the other builds run."""
    out = tmp_path_factory.mktemp("iwq") / "bench"
    proc = subprocess.Popen([sys.executable, "-m", "imagewikiqa", "build", "--out", str(out), "--class-ids",
                             ",".join(DEMO_CLASSES), "--images", str(SAMPLE_ROOT), "--images-per-question", "2",
                             "--no-progress"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield proc, out
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def demo(tmp_path_factory, benchmark_job) -> Path:
    """The embedded 5-class ImageNet sample, every output, through the real CLI."""
    out = tmp_path_factory.mktemp("demo") / "build"
    cli("builders.imagenet_qa", "--out", str(out), "--outputs", "all", "--quiet")
    return out


@pytest.fixture(scope="module")
def counts(tmp_path_factory) -> Path:
    """corpora_stats counts of the demo's classes in a four-line corpus (known: missile, espresso never)."""
    base = tmp_path_factory.mktemp("corpora")
    (base / "classes.txt").write_text("".join(f"{k} {v}\n" for k, v in DEMO_CLASSES.items()))
    (base / "tiny.txt").write_text("a tabby cat on a tripod\nthe space shuttle launched\n"
                                   "tabby cat again, tabby cat\nnothing here\n")
    cli("corpora_stats", "count", "--corpus", f"tiny={base / 'tiny.txt'}", "--classes", str(base / "classes.txt"),
        "--method", "paper", "--out", str(base / "counts"), "--quiet")
    return base / "counts"


def test_demo_card_loads_offline_and_renders_its_example_and_plots(demo):
    readme = write_card(demo)
    hf = demo / "hf"
    assert readme == hf / "README.md"
    assert check_folder(hf) == []
    assert load_sizes(hf) == {"train": 20, "validation": 10}

    meta, body = front_matter(readme)
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(readme)
    assert card.data.pretty_name == meta["pretty_name"] == "ImageNet-1k classification as VLM instruction data"
    assert meta["license"] == "other" and meta["license_name"] == "imagenet-terms-of-access"
    assert meta["task_categories"] == ["image-text-to-text", "image-classification"]
    assert meta["source_datasets"] == ["ILSVRC/imagenet-1k"] and meta["size_categories"] == ["n<1K"]
    for heading in ("# ImageNet-1k classification as VLM instruction data", "## Summary", "## Dataset structure",
                    "## Creation", "## Filtering", "## Class coverage", "## Bias, risks and limitations",
                    "## Licence", "## Citation"):
        assert f"\n{heading}\n" in "\n" + body
    assert "## Quality report" not in body

    # the example: the first row's image bytes as stored, and its text fields
    row = first_row(hf)
    assert "![example](assets/example.jpg)" in body
    assert (hf / "assets" / "example.jpg").read_bytes() == row["images"][0]["bytes"]
    question = row["prompt"][0]["content"][1]["text"]
    assert f'"text": "{question}"' in body and f'"id": "{row["id"]}"' in body
    # plots linked and present, and every linked asset exists
    links = re.findall(r"\]\((assets/[^)]+)\)", body)
    assert set(links) == {"assets/example.jpg", "assets/class_counts.png"}
    assert (hf / "assets" / "class_counts.png").read_bytes().startswith(PNG)
    # facts from the manifest: counts, classes, prompts with ids, the exact command, versions, skips
    assert "30 rows (train: 20, validation: 10) over 5 classes of the 1000-class vocabulary" in body
    assert "| n02123045 | tabby cat | 6 |" in body
    assert "| `instruct-07` | What is this a photo of? |" in body
    assert "paraphrased: one of 10 templates per sample" in body
    assert f"python -m builders.imagenet_qa --out {demo} --outputs all --quiet" in body
    assert "| datasets | " in body and "Seed: `0`" in body
    assert "| train | 20 | 20 | 0 | none | none |" in body
    assert "No model verification or filtering was applied" in body
    assert "2405.18415" in body and "2412.16418" in body and "russakovsky2015imagenet" in body
    assert "Yeung-Levy, Serena" in body and "Wang, Jingdong" in body


def test_cards_are_deterministic_bytes(demo, tmp_path):
    """Two writes, and a write from a copy of the build elsewhere, give byte-identical cards and assets."""
    copy = tmp_path / "copy"
    shutil.copytree(demo, copy)
    write_card(demo)
    first = {p.relative_to(demo / "hf"): p.read_bytes() for p in sorted((demo / "hf").rglob("*")) if p.is_file()}
    write_card(demo)
    again = {p.relative_to(demo / "hf"): p.read_bytes() for p in sorted((demo / "hf").rglob("*")) if p.is_file()}
    write_card(copy)
    moved = {p.relative_to(copy / "hf"): p.read_bytes() for p in sorted((copy / "hf").rglob("*")) if p.is_file()}
    assert Path("README.md") in first and Path("assets/class_counts.png") in first
    assert first == again == moved


def test_corpora_counts_add_a_frequency_section_and_plot(demo, counts, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(demo / "hf", repo)
    readme = write_card(demo, repo_folder=repo, corpora=str(counts), pretty_name="Demo with counts")
    assert readme == repo / "README.md"
    assert check_folder(repo) == []
    meta, body = front_matter(readme)
    assert meta["pretty_name"] == "Demo with counts" and body.lstrip().startswith("# Demo with counts\n")
    assert "### Class-name frequency in `tiny` (4 documents)" in body
    # mentions: tabby cat 3, space shuttle 1, tripod 1, missile 0, espresso 0 → median 1
    assert "2 never mentioned, median 1 mentions per class" in body
    # ties in class id order
    assert "- mentions per class, most to least: tabby cat (3), space shuttle (1), tripod (1), missile (0), " \
           "espresso (0)" in body
    assert "- never mentioned: missile, espresso" in body
    assert "![class-name frequency](assets/class_frequency.png)" in body
    assert (repo / "assets" / "class_frequency.png").read_bytes().startswith(PNG)
    assert "2 of these classes are never mentioned in `tiny`" in body
    # the build's own folder is untouched by a write elsewhere
    assert not (demo / "hf" / "assets" / "class_frequency.png").exists()


@pytest.fixture(scope="module")
def benchmark(benchmark_job) -> Path:
    """The ImageWikiQA build of the demo's 5 classes paired with the embedded sample's images."""
    proc, out = benchmark_job
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-2000:]
    return out


def test_imagewikiqa_card_carries_its_quality_report(benchmark):
    readme = write_card(benchmark)
    hf = benchmark / "hf"
    assert check_folder(hf) == []
    manifest = json.loads((benchmark / "manifest.json").read_text())
    report = json.loads((benchmark / "quality_report.json").read_text())
    sizes = load_sizes(hf)
    assert list(sizes) == ["test"] and sizes["test"] == pq.ParquetFile(
        sorted((hf / "data").glob("test-*.parquet"))[0]).metadata.num_rows
    meta, body = front_matter(readme)
    assert meta["task_categories"] == ["visual-question-answering"]
    assert meta["pretty_name"] == "ImageWikiQA-style knowledge benchmark (ImageNet-1k)"
    assert f"{manifest['questions']} questions about 5 classes" in body
    # the quality report's own tables, one heading level down, and the letters plot
    assert "## Quality report" in body and "### Blind baselines (never reading the question)" in body
    assert "\n# Quality report" not in body
    for letter, n in report["letters"].items():
        assert f"| {letter} | {n} | " in body
    assert f"| longest option | {report['blind_baselines']['longest']:.1%} |" in body
    assert "![correct letters](assets/letters.png)" in body
    assert (hf / "assets" / "letters.png").read_bytes().startswith(PNG)
    # rejections by reason, the unverified warning, the command, WordNet cited
    for reason, n in manifest["rejections"].items():
        assert f"| {reason} | {n} |" in body
    assert "not checked by a verifier model" in body
    assert "python -m imagewikiqa build --out" in body
    assert "miller1995wordnet" in body
    row = first_row(hf)
    assert (hf / "assets" / "example.jpg").read_bytes() == row["image"]["bytes"]
    assert f'"question": {json.dumps(row["question"])}' in body


@pytest.fixture(scope="module")
def filtered(demo, tmp_path_factory) -> Path:
    """label_check by a scripted model that always says "tripod", then keep:label_check → the 6 tripods."""

    base = tmp_path_factory.mktemp("filtered")
    build = base / "build"
    shutil.copytree(demo, build, ignore=shutil.ignore_patterns("assets"))
    model = make_scripted_llava(str(base / "says_tripod"), "tripod")
    assert verify_main(["run", "--build", str(build), "--passes", "label_check", "--model", model, "--quiet",
                        "--device", "cpu", "--max-new-tokens", "4"]) == 0
    assert verify_main(["filter", "--build", str(build), "--rule", "keep:label_check", "--out",
                        str(base / "kept")]) == 0
    return base / "kept"


def test_filtered_card_counts_each_pass_and_rule(filtered):
    facts = collect(filtered)
    assert facts.kind == "filtered" and facts.split_counts == {"train": 4, "validation": 2}
    readme = write_card(filtered)
    hf = filtered / "hf"
    assert check_folder(hf) == []
    assert load_sizes(hf) == {"train": 4, "validation": 2}
    meta, body = front_matter(readme)
    assert meta["pretty_name"].endswith("(filtered)") and "filtered" in meta["tags"]
    assert "Filtering kept **6 of 30** samples (24 dropped)" in body
    assert "| `keep:label_check.correct>=1` | 24 | 6 | 24 | says_tripod |" in body
    assert re.search(r"\| label_check \| [^|]+ \| says_tripod \| 30 \| 30 \| 6 \| 20\.0% \| none \|", body)
    assert "| data/train-00000-of-00001.parquet | 20 | 4 |" in body
    assert "| n04485082 | tripod | 6 |" in body and "| n02123045 |" not in body
    assert "python -m builders.verify filter --build" in body and "--rule keep:label_check" in body
    assert "filtered set leans towards images those models find easy" in body


def test_build_without_hf_folder_is_one_line_user_error(tmp_path, capsys):
    build = tmp_path / "nohf"
    assert build_main(["--out", str(build), "--outputs", "llava,mcq", "--quiet"]) == 0
    capsys.readouterr()
    with pytest.raises(UserError, match=r"--outputs hf") as err:
        write_card(build)
    assert "\n" not in str(err.value)
    assert run_cli(cards_main, ["write", str(build)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--outputs hf" in lines[0]
    with pytest.raises(UserError, match="no manifest.json"):
        write_card(tmp_path)


def test_malformed_manifest_is_one_line_naming_the_file_and_field(demo, tmp_path, capsys):
    """A manifest whose field has the wrong type is refused on read (cards read typed records), in one line."""
    build = tmp_path / "build"
    shutil.copytree(demo, build)
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["outputs"]["hf"]["counts"] = {"train": "twenty"}
    (build / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli(cards_main, ["write", str(build)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(build / "manifest.json") in lines[0]
    assert "field 'outputs.hf.counts.train'" in lines[0]


def test_card_of_a_source_with_one_label_source(demo, tmp_path):
    """imagefolder and manifest sources record one label source for every split (a string, not a mapping)."""
    build = tmp_path / "build"
    shutil.copytree(demo, build)
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["source"]["label_source"] = "class_folders"
    (build / "manifest.json").write_text(json.dumps(manifest))
    _, body = front_matter(write_card(build))
    assert "| labels from | class_folders |" in body


def test_cli_write_check_and_dry_run_publish(demo, tmp_path, capsys):
    """The three subcommands as a user runs them on the demo: write (checks too), check, publish --dry-run."""
    build = tmp_path / "build"
    shutil.copytree(demo, build)
    assert run_cli(cards_main, ["write", str(build)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"card → {build / 'hf' / 'README.md'}"
    assert run_cli(cards_main, ["check", str(build / "hf")]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {build / 'hf'} (2 splits, 30 examples)")
    assert run_cli(cards_main, ["publish", str(build / "hf"), "--repo-id", "me/demo", "--dry-run"]) == 0
    listed = capsys.readouterr().out
    for name in ("README.md", "assets/example.jpg", "assets/class_counts.png",
                 "data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"):
        assert name in listed
    (build / "hf" / "assets" / "example.jpg").unlink()  # a broken card: check says so and fails
    assert run_cli(cards_main, ["check", str(build / "hf")]) == 1
    assert "assets/example.jpg" in capsys.readouterr().out
