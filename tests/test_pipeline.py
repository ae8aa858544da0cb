"""End-to-end builds on real generated files: counts, every output readable by its own library, bad inputs,
determinism across worker counts, resume after a real kill, Ray, mixing, and CLI errors."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import signal
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from inprocess import run_main
from PIL import Image
from signal_at import start

from builders.imagenet_qa import main as build_main
from builders.pipeline import Build, BuildConfig
from builders.sources.imagenet import ImageNetSource
from builders.synthetic import DEFAULT_WNIDS, add_bad_inputs, make_imagenet_tree
from vlm_classdata.errors import UserError
from vlm_classdata.executors import LocalExecutor, RayExecutor
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
ALL = ["llava", "hf", "wds", "eval_open", "mcq", "mcq_hf", "vlmevalkit"]


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every output file (run_log.jsonl holds times and is excluded)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "run_log.jsonl":
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def build(root: Path, out: Path, workers: int = 1, **cfg) -> dict:
    vocab = ClassVocabulary.bundled("imagenet1k").subset(DEFAULT_WNIDS)
    config = BuildConfig(**{"outputs": ALL, "shard_size": 4, **cfg})
    return Build(ImageNetSource(str(root), vocabulary=vocab), out, config, LocalExecutor(workers),
                 show_progress=False).run()


def test_full_build_counts_and_every_output(dirty_tree, tmp_path):
    root, truth, bad = dirty_tree
    m = build(root, tmp_path / "out")
    converts = {k: v for k, v in bad.items() if v.startswith("convert:")}
    skips = {k: v for k, v in bad.items() if not v.startswith("convert:")}
    train = m["splits"]["train"]
    assert train["written"] == len(truth["train"]) + len(converts)
    assert m["splits"]["validation"]["written"] == len(truth["val"])
    # every bad input is accounted for, with the expected reason
    got = {s["locator"]: s["reason"] for s in m["skipped"] if s["split"] == "train"}
    assert got == skips
    assert train["converted"] == Counter(v.split(":", 1)[1] for v in converts.values())
    assert train["skipped"] == len(skips)

    out = tmp_path / "out"
    # LLaVA training JSON: paths resolve against the image root, <image> leads the human turn
    llava = json.loads((out / "llava" / "train.json").read_text())
    assert len(llava) == train["written"]
    for item in llava:
        assert (root / item["image"]).is_file()
        assert item["conversations"][0]["value"].startswith("<image>\n")
        assert item["conversations"][1]["value"] in ClassVocabulary.bundled("imagenet1k").names
    by_key = {Path(p).stem: w for p, w in truth["train"].items()}
    names = {e.class_id: e.name for e in ClassVocabulary.bundled("imagenet1k")}
    for item in llava:
        if item["id"] in by_key:
            assert item["conversations"][1]["value"] == names[by_key[item["id"]]]

    # HF parquet loads offline with decoded RGB images and the right split sizes
    import datasets  # heavy: only this test reads the parquet back

    ds = datasets.load_dataset(str(out / "hf"))
    assert ds["train"].num_rows == train["written"] and ds["validation"].num_rows == len(truth["val"])
    img = ds["train"][0]["images"][0]  # TRL's images column: a list holding the row's one image
    assert isinstance(img, Image.Image)
    assert all(len(ims) == 1 and ims[0].mode in ("RGB", "L") for ims in ds["train"]["images"])  # converted CMYK/P/LA/16-bit
    assert ds["train"].features["label"].names[0] == names[DEFAULT_WNIDS[0]]

    # WebDataset shards iterate with webdataset itself
    import webdataset as wds  # heavy: only this test reads the shards back

    tars = sorted(str(p) for p in (out / "wds").glob("train-*.tar"))
    samples = list(wds.WebDataset(tars, shardshuffle=False))
    assert len(samples) == train["written"]
    assert all("." not in s["__key__"] for s in samples)

    # MCQ: letters exactly balanced per split, the answer letter points at the true class
    for split in ("train", "validation"):
        rows = [json.loads(x) for x in (out / "mcq" / f"{split}.jsonl").read_text().splitlines()]
        letters = Counter(r["answer"] for r in rows)
        assert max(letters.values()) - min(letters.values()) <= 1 and len(letters) == 4
        for r in rows:
            assert r["options"][r["answer_index"]] == r["class_name"]
            assert f"{r['answer']}. {r['class_name']}" in r["text"]

    # VLMEvalKit TSV: pandas reads it, images are base64 of real images
    import pandas as pd  # heavy: only this test reads the TSV back

    tsv = pd.read_csv(out / "vlmevalkit" / "validation.tsv", sep="\t")
    assert len(tsv) == len(truth["val"])
    assert set("ABCD") <= set(tsv.columns) and {"index", "image", "question", "answer"} <= set(tsv.columns)
    Image.open(io.BytesIO(base64.b64decode(tsv["image"][0]))).load()

    # manifest lists per-class counts and per-shard stats
    assert sum(train["class_counts"].values()) == train["written"]
    assert sum(s["written"] for s in m["shards"]["train"]) == train["written"]


def test_byte_identical_across_worker_counts(imagenet_tree, tmp_path):
    root, _ = imagenet_tree
    build(root, tmp_path / "w1", workers=1, seed=7)
    build(root, tmp_path / "w2", workers=2, seed=7)
    a, b = tree_digest(tmp_path / "w1"), tree_digest(tmp_path / "w2")
    assert a == b and len(a) > 10
    build(root, tmp_path / "s8", workers=1, seed=8)
    assert tree_digest(tmp_path / "s8")["llava/train.json"] != a["llava/train.json"] or \
        tree_digest(tmp_path / "s8")["mcq/validation.jsonl"] != a["mcq/validation.jsonl"]


def test_rerun_is_a_noop_and_changed_config_is_refused(imagenet_tree, tmp_path):
    root, _ = imagenet_tree
    build(root, tmp_path / "o", seed=1)
    before = tree_digest(tmp_path / "o")
    build(root, tmp_path / "o", seed=1)
    assert tree_digest(tmp_path / "o") == before
    with pytest.raises(UserError, match="seed"):
        build(root, tmp_path / "o", seed=2)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "builders.imagenet_qa", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300, **kw)


# (when, nth, target) of each killed run; each resumes what the runs before it left (see signal_at.start)
KILL_POINTS = [("before", 2, "*/.state/build/*.done.json"),  # a shard published, its marker not yet
               ("after", 3, "*/.state/build/*.done.json"),   # mid-build, after resuming the first kill
               ("before", 1, "*/manifest.json")]             # every shard done and the outputs finalised


def test_kill_and_resume_is_byte_identical(tmp_path):
    root = tmp_path / "inet"
    make_imagenet_tree(root, DEFAULT_WNIDS, train_per_class=8, val_per_class=0, size=(64, 48))
    add_bad_inputs(root)
    common = ["--root", str(root), "--classes", str(tmp_path / "classes.txt"), "--outputs",
              "llava,hf,wds,mcq,vlmevalkit", "--shard-size", "6", "--verify", "full", "--quiet", "--seed", "3"]
    (tmp_path / "classes.txt").write_text("\n".join(f"{w} {ClassVocabulary.bundled('imagenet1k')[w].name}"
                                                    for w in DEFAULT_WNIDS) + "\n")
    ref = run_main(build_main, *common, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    assert len(list((tmp_path / "ref" / ".state" / "build").glob("*.done.json"))) >= 7  # room for the kills

    out = tmp_path / "killed"
    for when, nth, pattern in KILL_POINTS:  # real processes, SIGKILLed at an exact publication (signal_at)
        killed = start("KILL", when, nth, pattern, "builders.imagenet_qa", *common, "--out", str(out),
                       log=tmp_path / "killed.log")
        assert killed.wait() == -signal.SIGKILL, (when, nth, pattern, killed.output())
        assert not (out / "manifest.json").exists()
    assert (out / "llava" / "train.json").is_file()  # the last kill came after the outputs were finalised
    done = run_main(build_main, *common, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert tree_digest(out) == tree_digest(tmp_path / "ref")
    manifest = json.loads((out / "manifest.json").read_text())
    llava = json.loads((out / "llava" / "train.json").read_text())
    assert len(llava) == len({x["id"] for x in llava}) == manifest["splits"]["train"]["written"]


def test_ray_executor_matches_local(imagenet_tree, tmp_path):
    pytest.importorskip("ray")
    root, _ = imagenet_tree
    vocab = ClassVocabulary.bundled("imagenet1k").subset(DEFAULT_WNIDS)
    config = BuildConfig(outputs=["llava", "hf", "wds", "mcq"], shard_size=5, seed=4)
    Build(ImageNetSource(str(root), vocabulary=vocab), tmp_path / "local", config, LocalExecutor(1),
          show_progress=False).run()
    import ray  # heavy and optional: only the Ray test needs it

    try:
        Build(ImageNetSource(str(root), vocabulary=vocab), tmp_path / "ray", config, RayExecutor(2),
              show_progress=False).run()
    finally:
        ray.shutdown()
    assert tree_digest(tmp_path / "ray") == tree_digest(tmp_path / "local")


def test_mix_with_llava_instruction_set(imagenet_tree, tmp_path):
    root, truth = imagenet_tree
    theirs = [{"id": f"coco-{i}", "image": f"coco/train2017/{i:012d}.jpg",
               "conversations": [{"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": "x"}]}
              for i in range(25)]
    (tmp_path / "mix665k.json").write_text(json.dumps(theirs))
    m = build(root, tmp_path / "o", outputs=["llava"], mix_with=str(tmp_path / "mix665k.json"),
              image_prefix="imagenet/", splits=["train"])
    mixed = json.loads((tmp_path / "o" / "llava" / "train_mixed.json").read_text())
    assert len(mixed) == 25 + len(truth["train"]) == m["outputs"]["llava"]["mixed"]["total"]
    assert sum(1 for x in mixed if x["image"].startswith("imagenet/train/")) == len(truth["train"])
    assert [x["id"] for x in mixed[:30]] != [x["id"] for x in (theirs + mixed)[:30]]  # shuffled


@pytest.mark.parametrize("args,needle", [
    (["--root", "/nonexistent/imagenet"], "/nonexistent/imagenet"),
    (["--outputs", "llava,nope"], "unknown output 'nope'"),
    (["--mcq-choices", "1001", "--outputs", "mcq"], "1001"),
    (["--splits", "test"], "split 'test' not found"),
    (["--classes", "no-such-list"], "no-such-list"),
])
def test_user_errors_are_one_line(args, needle, tmp_path):
    res = _cli(*args, "--out", str(tmp_path / "o"), "--quiet")
    assert res.returncode == 2
    assert needle in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_embedded_sample_runs_from_the_cli(tmp_path):
    res = _cli("--out", str(tmp_path / "demo"), "--quiet")
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert m["splits"]["train"]["written"] > 0 and m["splits"]["validation"]["written"] > 0
    assert "written" in res.stdout


def test_tar_members_are_deterministic(imagenet_tree, tmp_path):
    root, _ = imagenet_tree
    build(root, tmp_path / "o", outputs=["wds"])
    for tar in (tmp_path / "o" / "wds").glob("*.tar"):
        with tarfile.open(tar) as tf:
            assert all(m.mtime == 0 and m.uid == 0 for m in tf.getmembers())
