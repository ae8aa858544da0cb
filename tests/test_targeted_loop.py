"""The whole targeted-data loop offline, through the real CLIs: count class names in an instruction corpus →
pick the least-named classes → mine a LAION-style parquet whose URLs point at a local image server → download
with img2dataset → build → dataset card; then run the same one command again (resume: nothing fetched twice)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from image_server import ImageServer

from builders.targeted.__main__ import main as targeted_main
from cards.__main__ import main as cards_main
from corpora_stats.__main__ import main as corpora_main
from vlm_classdata.errors import run_cli
from vlm_classdata.vocabulary import ClassVocabulary

# six real ImageNet classes; the instruction corpus names the first three often, the last three rarely
CLASSES = ["n01440764", "n01443537", "n02123045", "n04336792", "n03126707", "n04398044"]  # tench … teapot
RARE = CLASSES[3:]


def _instruction_corpus(path) -> None:
    vocab = ClassVocabulary.bundled("imagenet1k")
    lines = []
    for i, cid in enumerate(CLASSES):
        times = 6 if cid not in RARE else i - 2  # stretcher 1, crane 2, teapot 3
        lines += [{"text": f"A photo of a {vocab[cid].name} on a sunny day, number {k}."} for k in range(times)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def _laion(path, srv: ImageServer) -> dict[str, dict[str, int]]:
    """LAION-style rows naming the rare classes (and one frequent one, not chosen); returns what is expected."""
    rows, expected = [], {}
    plan = {"n04336792": ["good", "good", "good", "missing"],          # stretcher
            "n03126707": ["good", "broken", "good"],                   # crane (the machine; "crane" is shared)
            "n04398044": ["good", "good", "error", "good", "good"]}   # teapot
    vocab = ClassVocabulary.bundled("imagenet1k")
    for cid, kinds in plan.items():
        name = vocab[cid].name
        for k, kind in enumerate(kinds):
            ext = ".jpg" if kind == "good" else ""
            rows.append({"URL": srv.url(f"{kind}/{cid}_{k}{ext}"), "TEXT": f"my old {name} in the garden"})
        expected[cid] = {"mined": len(kinds), "downloaded": kinds.count("good")}
    rows.append({"URL": srv.url("good/tench_x.jpg"), "TEXT": "a big tench from the lake"})  # not a chosen class
    rows.append({"URL": srv.url("good/twice.jpg"), "TEXT": "a stretcher next to a teapot"})  # two chosen classes
    rows.append({"URL": "ftp://example.invalid/x.jpg", "TEXT": "a teapot"})  # not http(s)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return expected


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    (root / "classes.json").write_text(
        json.dumps(ClassVocabulary.bundled("imagenet1k").subset(CLASSES).to_json()), encoding="utf-8")
    _instruction_corpus(root / "instruct.jsonl")
    assert run_cli(corpora_main, ["count", "--classes", str(root / "classes.json"), "--corpus",
                                  f"instruct={root / 'instruct.jsonl'}", "--out", str(root / "counts"),
                                  "--quiet"]) == 0
    with ImageServer(slow_seconds=3) as srv:
        expected = _laion(root / "laion.parquet", srv)
        command = ["--counts", str(root / "counts"), "--select", "least:3", "--corpus", str(root / "laion.parquet"),
                   "--out", str(root / "out"), "--image-size", "32", "--threads", "4", "--timeout", "2",
                   "--outputs", "llava,hf", "--quiet"]
        assert run_cli(targeted_main, command) == 0
        first = srv.counts()
        assert run_cli(targeted_main, command) == 0  # the same command again: resumes
        second = srv.counts()
    return {"root": root, "out": root / "out", "expected": expected, "hits": (first, second)}


def test_loop_counts_add_up_per_class(loop):
    out, expected = loop["out"], loop["expected"]
    report = json.loads((out / "mined" / "mine_report.json").read_text())
    vocab = ClassVocabulary.bundled("imagenet1k")
    assert [c["class_id"] for c in report["classes"]] == sorted(RARE, key=lambda c: vocab[c].index)  # least named
    assert report["multi_class_rows"] == 1 and report["skipped"]["bad_url"] == 1
    dl = json.loads((out / "download.json").read_text())
    manifest = json.loads((out / "build" / "manifest.json").read_text())
    for cid, want in expected.items():
        info = dl["classes"][cid]
        assert info["mined"] == want["mined"] and info["downloaded"] == want["downloaded"]
        assert info["mined"] == info["downloaded"] + sum(info["failed"].values())
        assert manifest["targeted"]["kept"][cid] == want["downloaded"]
    assert dl["totals"]["failed_reasons"] == {"decode_error": 1, "http_404": 1, "http_500": 1}
    hf = pa.concat_tables([pq.read_table(p) for p in sorted((out / "build" / "hf" / "data").glob("*.parquet"))])
    ids = hf.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == sum(w["downloaded"] for w in expected.values())
    assert sorted(set(hf.column("class_id").to_pylist())) == sorted(RARE)


def test_rerun_of_the_one_command_fetches_nothing_again(loop):
    first, second = loop["hits"]
    assert sum(first.values()) == sum(w["mined"] for w in loop["expected"].values())
    assert second == first


def test_card_of_the_loop_says_how_classes_were_chosen(loop, capsys):
    build = loop["out"] / "build"
    assert run_cli(cards_main, ["write", str(build)]) == 0
    text = (build / "hf" / "README.md").read_text(encoding="utf-8")
    assert "## Targeted collection" in text and "`least:3`" in text
    assert "| stretcher | 1 | 4 | 4 | 3 | 1 | http_404 1 | 3 |" in text
    assert "license_name: web-images-owners-rights" in text and "web-mined" in text
    assert run_cli(cards_main, ["check", str(build / "hf")]) == 0
