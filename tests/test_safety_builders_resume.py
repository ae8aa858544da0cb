"""Resume never mixes two sources: a build killed (SIGKILL) or finished, whose source then changed, is refused
with one line saying what changed; an unchanged rerun is a no-op. Settings that can only give a broken result
(--mix-with that is not a LLaVA list or clashes, --max-pixels 0, ...) are refused before --out is touched, and
correcting --mix-with reuses the built shards.

Builds run in-process (:func:`inprocess.run_main`, same exit code and stderr as the command); the killed build
is a real process, killed by ``signal_at`` right after its first shard marker (an exact point, no race)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from inprocess import run_main
from signal_at import start

from builders.imagenet_qa import main as build_main
from builders.pipeline import SourceListing
from builders.sources.imagenet import ImageNetSource
from builders.synthetic import DEFAULT_WNIDS, jpeg_bytes, make_imagenet_tree
from vlm_classdata.vocabulary import ClassVocabulary

PREFIX = ("--image-prefix", "imagenet/")  # a mixed file resolves every image from one folder


def cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m builders.imagenet_qa ARGS --quiet``, run in this process."""
    return run_main(build_main, *args, "--quiet")


def one_line(res: subprocess.CompletedProcess, code: int = 2) -> str:
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    return res.stderr


def stamps(root: Path) -> dict[str, tuple[int, str]]:
    """(mtime_ns, sha256) of every file but the run log and lock files: what a no-op must leave alone."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith((".vlm-classdata.lock",
                                                                                       "run_log"))}


@pytest.fixture
def tree(tmp_path) -> tuple[Path, list[str]]:
    root = tmp_path / "inet"
    make_imagenet_tree(root, DEFAULT_WNIDS, train_per_class=6, val_per_class=0, size=(64, 48))
    classes = tmp_path / "classes.txt"
    vocab = ClassVocabulary.bundled("imagenet1k")
    classes.write_text("".join(f"{w} {vocab[w].name}\n" for w in DEFAULT_WNIDS))
    return root, ["--root", str(root), "--classes", str(classes), "--shard-size", "3", "--outputs", "llava,mcq"]


def add_image(root: Path) -> str:
    rel = f"train/{DEFAULT_WNIDS[1]}/new.JPEG"
    (root / rel).write_bytes(jpeg_bytes(random.Random(99), size=(64, 48)))
    return rel


# ----- case 3 -----------------------------------------------------------------------------------------
def test_killed_build_whose_source_changed_is_refused_not_mixed(tmp_path, tree):
    root, common = tree
    common = [*common, "--verify", "full"]
    out = tmp_path / "o"
    killed = start("KILL", "after", 1, "*/.state/build/*.done.json", "builders.imagenet_qa", *common,
                   "--out", str(out), "--quiet", log=tmp_path / "killed.log")
    assert killed.wait() == -signal.SIGKILL, killed.output()
    assert list((out / ".state" / "build").glob("*.done.json")) and not (out / "manifest.json").exists()
    rel = add_image(root)
    err = one_line(cli(*common, "--out", str(out)))
    assert f"holds a build of another source listing: 1 added ({rel})" in err and "--overwrite" in err
    assert not (out / "manifest.json").exists()
    done = cli(*common, "--out", str(out), "--overwrite")
    assert done.returncode == 0, done.stderr
    llava = json.loads((out / "llava" / "train.json").read_text())
    ids = [x["id"] for x in llava]
    assert len(ids) == len(set(ids)) == 6 * len(DEFAULT_WNIDS) + 1 and "new" in ids


def test_finished_build_notices_added_changed_and_removed_files(tmp_path, tree):
    root, common = tree
    out = tmp_path / "o"
    assert cli(*common, "--out", str(out)).returncode == 0
    rel = add_image(root)
    assert f"1 added ({rel})" in one_line(cli(*common, "--out", str(out)))
    (root / rel).unlink()
    victim = sorted((root / "train" / DEFAULT_WNIDS[0]).iterdir())[0]
    os.utime(victim, ns=(time.time_ns(), time.time_ns() + 10**9))  # same bytes, rewritten later
    assert f"1 changed ({victim.relative_to(root)})" in one_line(cli(*common, "--out", str(out)))
    victim.unlink()
    assert f"1 removed ({victim.relative_to(root)})" in one_line(cli(*common, "--out", str(out)))


def test_unchanged_rerun_of_a_finished_build_is_a_fast_noop(tmp_path, tree):
    _, common = tree
    out = tmp_path / "o"
    assert cli(*common, "--out", str(out)).returncode == 0
    before = stamps(out)
    t0 = time.monotonic()
    again = cli(*common, "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert stamps(out) == before  # nothing rewritten: not a marker, not an output, not the manifest
    assert time.monotonic() - t0 < 30
    assert len((out / "run_log.jsonl").read_text().splitlines()) == 2


def test_changed_options_are_refused_with_what_differs(tmp_path, tree):
    _, common = tree
    out = tmp_path / "o"
    assert cli(*common, "--out", str(out)).returncode == 0
    assert "config differs in: seed" in one_line(cli(*common, "--out", str(out), "--seed", "5"))


# ----- case 13 ----------------------------------------------------------------------------------------
def llava_rows(n: int, prefix: str = "coco") -> list[dict]:
    return [{"id": f"{prefix}-{i}", "image": f"coco/{i}.jpg",
             "conversations": [{"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": "x"}]}
            for i in range(n)]


@pytest.mark.parametrize("content,needle", [
    (json.dumps({"id": "a", "conversations": []}), "a JSON object, expected a JSON list"),
    (json.dumps([{"image": "x.jpg"}]), "row 1 has no 'id'"),
    (json.dumps([{"id": 1, "conversations": "hi"}]), "row 1 has no 'conversations' list"),
    ("[]", "holds no rows"),
    ('{"id": "a", "conversations": []}\nnot json\n', "line 2 is not JSON"),
    (json.dumps(llava_rows(3) + [{"id": f"{DEFAULT_WNIDS[0]}_1002", "conversations": []}]),
     "1 sample id(s) of this build also occur in"),
])
def test_bad_mix_file_is_refused_before_out_is_touched(tmp_path, tree, content, needle):
    _, common = tree
    mix = tmp_path / "mix.json"
    mix.write_text(content)
    err = one_line(cli(*common, "--out", str(tmp_path / "o"), "--mix-with", str(mix), "--image-prefix", "imagenet/"))
    assert needle in err
    assert not (tmp_path / "o").exists()


def test_mix_jsonl_is_accepted_and_correcting_the_mix_reuses_the_shards(tmp_path, tree):
    _, common = tree
    out = tmp_path / "o"
    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in llava_rows(5)))
    assert cli(*common, "--out", str(out), "--mix-with", str(first), *PREFIX).returncode == 0
    mixed = json.loads((out / "llava" / "train_mixed.json").read_text())
    assert len(mixed) == 5 + 6 * len(DEFAULT_WNIDS)
    shards = {k: v for k, v in stamps(out).items() if k.startswith(".state/build/")}
    assert shards
    second = tmp_path / "second.json"
    second.write_text(json.dumps(llava_rows(7, "vg")))
    res = cli(*common, "--out", str(out), "--mix-with", str(second), *PREFIX)
    assert res.returncode == 0, res.stderr
    assert {k: v for k, v in stamps(out).items() if k.startswith(".state/build/")} == shards  # reused
    mixed = json.loads((out / "llava" / "train_mixed.json").read_text())
    assert len(mixed) == 7 + 6 * len(DEFAULT_WNIDS) and not any(x["id"].startswith("coco") for x in mixed)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["mix_with"] == str(second) and manifest["outputs"]["llava"]["mixed"]["theirs"] == 7
    assert cli(*common, "--out", str(out), *PREFIX).returncode == 0  # without --mix-with: the stale mix goes
    assert not (out / "llava" / "train_mixed.json").exists()


@pytest.mark.parametrize("args,needle", [
    (["--max-pixels", "0"], "--max-pixels must be a whole number of at least 1"),
    (["--max-pixels", "-5"], "--max-pixels must be"),
    (["--wds-max-count", "0", "--outputs", "wds"], "--wds-max-count must be"),
    (["--wds-max-bytes", "0", "--outputs", "wds"], "--wds-max-bytes must be"),
    (["--mcq-choices", "1"], "--mcq-choices must be at least 2"),
    (["--splits", "../x"], "cannot be used in a file name"),
    (["--mix-with", "nowhere.json"], "no such file"),
    (["--mix-with", "MIX"], "--mix-with needs --image-prefix"),
    (["--ray-timeout", "0"], "--ray-timeout must be more than 0"),
])
def test_impossible_settings_are_refused_before_out_is_touched(tmp_path, tree, args, needle):
    _, common = tree
    (tmp_path / "mix.json").write_text(json.dumps(llava_rows(2)))
    args = [str(tmp_path / "mix.json") if a == "MIX" else a for a in args]
    assert needle in one_line(cli(*common, "--out", str(tmp_path / "o"), *args))
    assert not (tmp_path / "o").exists()


def test_mix_without_llava_output_is_refused(tmp_path, tree):
    _, common = tree
    mix = tmp_path / "m.json"
    mix.write_text(json.dumps(llava_rows(2)))
    assert "--outputs does not include" in one_line(cli(*common, "--out", str(tmp_path / "o"), "--outputs", "mcq",
                                                         "--mix-with", str(mix)))
    assert not (tmp_path / "o").exists()


def test_source_listing_costs_one_stat_per_file(tmp_path):
    """10k files: the listing (one stat each) and its hash stay well under the scan's own order of cost."""
    root = tmp_path / "big"
    root.mkdir()
    (root / "one.JPEG").write_bytes(jpeg_bytes(random.Random(1)))
    for w in DEFAULT_WNIDS[:2]:
        folder = root / "train" / w
        folder.mkdir(parents=True)
        for i in range(5000):
            os.link(root / "one.JPEG", folder / f"{w}_{i}.JPEG")
    vocab = ClassVocabulary.bundled("imagenet1k").subset(DEFAULT_WNIDS[:2])
    source = ImageNetSource(str(root), vocabulary=vocab)
    scanned = {"train": list(source.scan("train"))}
    t0 = time.perf_counter()
    listing = SourceListing(source, scanned)
    digest = listing.digest()
    seconds = time.perf_counter() - t0
    assert len(listing) == 10_000 and len(digest) == 20
    assert seconds < 5, f"listing 10k files took {seconds:.2f}s"
    shutil.rmtree(root)
