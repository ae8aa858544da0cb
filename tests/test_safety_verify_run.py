"""builders.verify run is fault-safe: damaged cache parts and model files, a full disk, a file as --out, a live
run on the same OUT, leftovers of dead runs. Real runs of the CLI (in-process, one model load each) on a tiny
random LLaVA saved with save_pretrained; a real full file system is a small tmpfs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

from builders.imagenet_qa import main as build_main
from builders.verify.__main__ import main as verify_main
from vlm_classdata.errors import run_cli
from vlm_classdata.stages import lock_out
from vlm_classdata.vlm.tiny import make_tiny_llava

LIMIT, CHUNK = 6, 2  # three parts


@pytest.fixture(scope="module")
def built(imagenet_tree, tmp_path_factory):
    root, _ = imagenet_tree
    out = tmp_path_factory.mktemp("vbuild") / "out"
    assert build_main(["--root", str(root), "--out", str(out), "--outputs", "mcq", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_llava(str(tmp_path_factory.mktemp("models") / "tiny"), seed=0)


def verify(built: Path, model: str, out: Path, *extra: str) -> int:
    return run_cli(verify_main, ["run", "--build", str(built), "--passes", "mcq", "--model", model, "--alias", "r",
                                 "--chunk-size", str(CHUNK), "--limit", str(LIMIT), "--max-new-tokens", "6",
                                 "--quiet", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def reference(built, model, tmp_path_factory):
    """The sidecar and summary of one uninterrupted run."""
    out = tmp_path_factory.mktemp("ref") / "verify"
    assert verify(built, model, out) == 0
    return pl.read_parquet(out / "mcq.r.parquet"), (out / "mcq.r.json").read_bytes()


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def last_log(out: Path) -> dict:
    return json.loads((out / "runs.jsonl").read_text().splitlines()[-1])


def test_truncated_cache_part_is_set_aside_and_recomputed(built, model, reference, tmp_path, capsys):
    out = tmp_path / "verify"
    assert verify(built, model, out) == 0
    parts = sorted((out / ".cache" / "mcq.r").glob("part-*.parquet"))
    assert len(parts) == 3
    damaged = parts[1]
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])  # cut off mid-file
    (out / "mcq.r.parquet").unlink()
    capsys.readouterr()
    assert verify(built, model, out) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(damaged) in warnings[0] and "set aside" in warnings[0], err
    assert last_log(out)["answered_now"] == CHUNK and last_log(out)["cached"] == LIMIT - CHUNK
    assert_frame_equal(pl.read_parquet(out / "mcq.r.parquet"), reference[0])
    assert (out / "mcq.r.json").read_bytes() == reference[1]
    assert damaged.with_name(damaged.name + ".damaged").is_file()  # kept for a look, never read again
    assert verify(built, model, out) == 0 and last_log(out)["answered_now"] == 0


def test_damaged_cache_meta_starts_the_pass_afresh(built, model, reference, tmp_path, capsys):
    out = tmp_path / "verify"
    assert verify(built, model, out) == 0
    (out / ".cache" / "mcq.r" / "meta.json").write_text('{"model": ')
    capsys.readouterr()
    assert verify(built, model, out) == 0
    assert "meta.json is damaged" in capsys.readouterr().err
    assert last_log(out)["answered_now"] == LIMIT
    assert_frame_equal(pl.read_parquet(out / "mcq.r.parquet"), reference[0])


@pytest.mark.parametrize("damage, named", [("truncate_weights", "model.safetensors"),
                                           ("bad_config", "config.json")])
def test_damaged_model_file_is_one_line_naming_it(built, model, tmp_path, capsys, damage, named):
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    if damage == "truncate_weights":
        weights = broken / "model.safetensors"
        os.truncate(weights, weights.stat().st_size - 1000)
    else:
        (broken / "config.json").write_text('{"model_type": "llava", ')
    assert verify(built, str(broken), tmp_path / "verify") == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(broken / named) in line, line


def test_out_that_is_a_file_or_the_build_is_one_line(built, model, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert verify(built, model, a_file) == 2
    assert "is a file" in one_error_line(capsys.readouterr().err)
    assert verify(built, model, built) == 2
    assert "build folder" in one_error_line(capsys.readouterr().err)
    assert a_file.read_text() == "x" and not (built / "mcq.r.parquet").exists()


def test_a_live_run_on_the_same_out_is_refused(built, model, tmp_path, capsys):
    out = tmp_path / "verify"
    with lock_out(out):
        assert verify(built, model, out) == 2
        assert "in use by another run" in one_error_line(capsys.readouterr().err)
    assert verify(built, model, out) == 0


def test_leftovers_of_dead_runs_are_removed(built, model, reference, tmp_path):
    out = tmp_path / "verify"
    cache = out / ".cache" / "mcq.r"
    cache.mkdir(parents=True)
    leftovers = [out / ".mcq.r.parquet.tmp999999", cache / ".part-000000-0.parquet.tmp999999"]
    for p in leftovers:
        p.write_bytes(b"half a file")
    assert verify(built, model, out) == 0
    assert not any(p.exists() for p in leftovers)
    assert_frame_equal(pl.read_parquet(out / "mcq.r.parquet"), reference[0])


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB tmpfs (skipped where mounting is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_one_line_and_the_next_run_resumes(built, model, reference, small_disk, capsys):
    out = small_disk / "verify"
    filler = small_disk / "filler"
    st = os.statvfs(small_disk)
    keep_free = 7  # blocks: the owner and lock files, meta.json and one or two parts fit, the rest does not
    filler.write_bytes(os.urandom((st.f_bavail - keep_free) * st.f_bsize))
    assert verify(built, model, out) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "disk is full" in line, line
    assert 1 <= len(list((out / ".cache" / "mcq.r").glob("part-*.parquet"))) < LIMIT // CHUNK  # mid-run
    assert not (out / "mcq.r.parquet").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # the failed write left nothing behind
    filler.unlink()
    assert verify(built, model, out) == 0
    assert_frame_equal(pl.read_parquet(out / "mcq.r.parquet"), reference[0])
    assert (out / "mcq.r.json").read_bytes() == reference[1]


def test_shards_share_out_but_one_shard_runs_once(built, model, reference, tmp_path, capsys):
    out = tmp_path / "verify"
    with lock_out(out / ".shards" / "0-of-2"):  # shard 0 is running
        assert verify(built, model, out, "--shard", "0/2") == 2
        assert "in use by another run" in one_error_line(capsys.readouterr().err)
        assert verify(built, model, out, "--shard", "1/2") == 0  # the other shard works beside it
    assert verify(built, model, out, "--shard", "0/2") == 0
    assert_frame_equal(pl.read_parquet(out / "mcq.r.parquet"), reference[0])


def test_filter_and_summary_faults_are_one_line(built, model, tmp_path, capsys):
    sidecars = tmp_path / "verify"
    assert verify(built, model, sidecars) == 0

    def cli(*args: str) -> int:
        return run_cli(verify_main, list(args))

    a_file = tmp_path / "file"
    a_file.write_text("x")
    base = ["filter", "--build", str(built), "--verify-dir", str(sidecars), "--rule", "drop:mcq"]
    for out, message in ((a_file, "is a file"), (built / "clean", "overlaps the input")):
        assert cli(*base, "--out", str(out)) == 2
        assert message in one_error_line(capsys.readouterr().err)
    assert cli("filter", "--build", str(built), "--verify-dir", str(sidecars), "--rule", "nonsense",
               "--out", str(tmp_path / "never")) == 2
    assert "filter rule 'nonsense'" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "never").exists()  # the rule is checked before the folder is made
    clean = tmp_path / "clean"
    with lock_out(clean):
        assert cli(*base, "--out", str(clean)) == 2
        assert "in use by another run" in one_error_line(capsys.readouterr().err)
    assert cli(*base, "--out", str(clean)) == 0 and (clean / "filter_report.json").is_file()
    (sidecars / "mcq.r.json").write_text('{"pass": ')  # a damaged summary is skipped, named
    capsys.readouterr()
    assert cli("summary", "--verify-dir", str(sidecars)) == 2  # nothing readable left: one line
    assert "no readable pass results" in one_error_line(capsys.readouterr().err.splitlines()[-1])
