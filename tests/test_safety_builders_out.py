"""The builder's output folder is safe: it never deletes or writes into an input, ``--overwrite`` only empties a
folder this tool made, one run per folder at a time (two real processes), faults (a real full tmpfs, a file
size limit, a file as --out) end in one line, and the rerun after the fault completes byte-identically.

Builds run in-process (:func:`inprocess.run_main`, same exit code and stderr as the command); a real process
only where it is the point: the run holding the lock (stopped at an exact point by ``signal_at``) and the file
size limit (an rlimit of the process and its workers)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from inprocess import run_main
from signal_at import start

from builders.imagenet_qa import main as build_main
from builders.synthetic import DEFAULT_WNIDS, jpeg_bytes, make_imagenet_tree
from vlm_classdata.atomic import is_leftover
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
IGNORED = {"run_log.jsonl", ".vlm-classdata.lock", ".vlm-classdata.lock.owner"}


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (the run log, which holds times, and lock files excluded)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in IGNORED}


def cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m builders.imagenet_qa ARGS --quiet``, run in this process."""
    return run_main(build_main, *args, "--quiet")


def cli_process(*args: str, preexec=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The same command in a real process (``preexec`` runs in the child before it starts). A run past
    ``timeout`` fails the test with the stacks of the child's threads (faulthandler, on SIGABRT) in its message."""
    cmd = [sys.executable, "-m", "builders.imagenet_qa", *args, "--quiet"]
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=preexec, env={**os.environ, "PYTHONFAULTHANDLER": "1"}) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate(timeout=30)
            pytest.fail(f"{' '.join(cmd)} still ran after {timeout} s; its threads:\n{err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def one_line(res: subprocess.CompletedProcess, code: int) -> str:
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    return res.stderr


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, list[str]]:
    """A small ImageNet tree and the common options of a build of it (a 6-class list file); never changed."""
    base = tmp_path_factory.mktemp("src")
    root = base / "inet"
    make_imagenet_tree(root, DEFAULT_WNIDS, train_per_class=4, val_per_class=1, size=(96, 80))
    classes = base / "classes.txt"
    vocab = ClassVocabulary.bundled("imagenet1k")
    classes.write_text("".join(f"{w} {vocab[w].name}\n" for w in DEFAULT_WNIDS))
    return root, ["--root", str(root), "--classes", str(classes), "--shard-size", "4", "--seed", "2",
                  "--outputs", "llava,hf,wds,mcq,vlmevalkit"]


class Digest(dict):
    """A :func:`digest` that remembers its folder."""

    folder: Path


@pytest.fixture(scope="module")
def clean(tree, tmp_path_factory) -> Digest:
    """The digest of a clean build of ``tree``."""
    out = tmp_path_factory.mktemp("clean") / "o"
    res = cli(*tree[1], "--out", str(out))
    assert res.returncode == 0, res.stderr
    found = Digest(digest(out))
    found.folder = out
    return found


# ----- case 1: never delete or write into an input ------------------------------------------------------
@pytest.mark.parametrize("where", ["same", "out_inside_root", "root_inside_out"])
@pytest.mark.parametrize("overwrite", [True, False])
def test_out_overlapping_the_input_is_refused_and_the_input_kept(tree, where, overwrite):
    root, common = tree
    out = {"same": root, "out_inside_root": root / "out", "root_inside_out": root.parent}[where]
    before = digest(root)
    res = cli(*common, "--out", str(out), *(["--overwrite"] if overwrite else []))
    assert "overlaps the input" in one_line(res, 2)
    assert digest(root) == before
    assert not (root / "out").exists() and not (root / ".vlm-classdata").exists()


def test_overwrite_refuses_a_folder_this_tool_did_not_make(tmp_path, tree):
    _, common = tree
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    res = cli(*common, "--out", str(out), "--overwrite")
    assert "not made by this tool" in one_line(res, 2)
    assert (out / "thesis.tex").read_text() == "years of work" and sorted(os.listdir(out)) == ["thesis.tex"]
    res = cli(*common, "--out", str(out))  # nor is it built into without --overwrite
    assert "holds no build of this tool" in one_line(res, 2)
    assert sorted(os.listdir(out)) == ["thesis.tex"]


def test_overwrite_of_a_legacy_build_and_of_our_build(tmp_path, tree, clean):
    _, common = tree
    legacy = tmp_path / "legacy"  # what an older version left: .state/plan.json, manifest.json, no marker file
    (legacy / ".state").mkdir(parents=True)
    (legacy / ".state" / "plan.json").write_text("{}")
    (legacy / "manifest.json").write_text("{}")
    assert "older version" in one_line(cli(*common, "--out", str(legacy)), 2)
    assert cli(*common, "--out", str(legacy), "--overwrite").returncode == 0
    assert digest(legacy) == clean
    (legacy / "llava" / "train.json").write_text("damaged")
    assert cli(*common, "--out", str(legacy), "--overwrite").returncode == 0
    assert digest(legacy) == clean


def test_an_input_inside_out_is_not_deleted_by_overwrite(tmp_path, tree):
    _, common = tree
    out = tmp_path / "o"
    assert cli(*common, "--out", str(out), "--outputs", "llava").returncode == 0
    mix = out / "mix.json"
    mix.write_text(json.dumps([{"id": "x", "conversations": []}]))
    res = cli(*common, "--out", str(out), "--outputs", "llava", "--mix-with", str(mix), "--image-prefix", "imagenet/",
              "--overwrite")
    assert "overlaps the input" in one_line(res, 2)
    assert mix.is_file() and (out / "llava" / "train.json").is_file()


# ----- case 4: one run per output folder ---------------------------------------------------------------
def test_a_second_run_into_a_busy_out_is_refused_and_the_first_completes(tmp_path, tree, clean):
    _, common = tree
    out = tmp_path / "busy"
    # the first run stops itself right after it took the lock and published its owner file (pid, host)
    first = start("STOP", "after", 1, "*/.vlm-classdata.lock.owner", "builders.imagenet_qa", *common,
                  "--out", str(out), "--quiet", log=tmp_path / "first.log")
    try:
        first.wait_stopped()
        second = cli(*common, "--out", str(out))
        assert f"is in use by another run (pid {first.pid}" in one_line(second, 2)
        second = cli(*common, "--out", str(out), "--overwrite")
        assert f"is in use by another run (pid {first.pid}" in one_line(second, 2)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait() == 0, first.output()
    assert digest(out) == clean
    assert cli(*common, "--out", str(out)).returncode == 0  # the lock went with the first run


# ----- case 10: faults end in one line, leave nothing wrong, and the rerun completes ------------------------
def _check_after_fault(out: Path, ref: dict[str, str]) -> None:
    """No file with a final name differs from the clean build's; only intermediate files may be extra."""
    got = digest(out)
    for name, sha in got.items():
        if name in ref:
            assert sha == ref[name], f"{name} differs from the clean build"
        else:
            assert is_leftover(Path(name)) or "/.parts/" in f"/{name}", f"unexpected file {name}"


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_file_size_limit_is_one_line_and_the_rerun_completes_identically(tmp_path, tree, clean):
    """In worker processes (the error crosses the pool) with a per-file size limit: EFBIG."""
    _, common = tree
    ref = clean
    out = tmp_path / "o"
    res = cli_process(*common, "--out", str(out), "--num-workers", "2", preexec=_limit_file_size(40_000))
    err = one_line(res, 1)
    assert "File too large" in err and str(out) in err
    _check_after_fault(out, ref)
    done = cli(*common, "--out", str(out))  # workers shape no byte (test_pipeline), so one is enough here
    assert done.returncode == 0, done.stderr
    assert digest(out) == ref
    assert not [p for p in out.rglob("*") if is_leftover(p)]


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB tmpfs (needs the right to mount; skipped otherwise)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip()}); the RLIMIT_FSIZE test covers it")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_is_one_line_and_the_rerun_after_freeing_space_is_identical(tmp_path, tree, clean, small_disk):
    _, common = tree
    ref = clean
    size = sum(p.stat().st_size for p in clean.folder.rglob("*") if p.is_file())
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (1024 * 1024 - size // 2))  # leaves about half of what the build needs
    out = small_disk / "o"
    err = one_line(cli(*common, "--out", str(out)), 1)
    assert "No space left on device" in err and "free space" in err and str(out) in err
    _check_after_fault(out, ref)
    filler.unlink()
    done = cli(*common, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert digest(out) == ref
    assert not [p for p in out.rglob("*") if is_leftover(p)]


def test_out_that_is_a_file_is_one_line(tmp_path, tree):
    _, common = tree
    out = tmp_path / "file"
    out.write_text("x")
    assert "is a file" in one_line(cli(*common, "--out", str(out)), 2)
    assert out.read_text() == "x"


def test_manifest_and_run_log_hold_no_credentials(tmp_path, tree):
    _, common = tree
    out = tmp_path / "o"
    res = cli(*common, "--out", str(out), "--outputs", "mcq", "--image-prefix", "https://me:hunter2secret@cdn.example/")
    assert res.returncode == 0, res.stderr
    for name in ("manifest.json", "run_log.jsonl", ".state/plan.done.json"):
        text = (out / name).read_text()
        assert "hunter2secret" not in text and "https://***@cdn.example/" in text, name


def test_out_beside_a_manifest_is_fine_but_out_holding_a_listed_image_is_refused(tmp_path):
    """Inputs are what a source reads: a manifest's folder is not scanned, so an --out beside the manifest is
    fine, but an --out that holds an image the manifest lists is refused before any work."""
    data = tmp_path / "data"
    (data / "out" / "imgs").mkdir(parents=True)
    picture = jpeg_bytes(random.Random(0))
    (data / "pic.jpg").write_bytes(picture)
    (data / "m.jsonl").write_text('{"image": "pic.jpg", "label": "tench"}\n')
    res = cli("--source", "manifest", "--root", str(data / "m.jsonl"), "--classes", "imagenet1k", "--out",
              str(data / "built"),
              "--outputs", "llava")
    assert res.returncode == 0, res.stderr
    (data / "out" / "imgs" / "pic.jpg").write_bytes(picture)
    (data / "out" / ".vlm-classdata").write_text("{}")  # even a folder this tool made
    (data / "m2.jsonl").write_text('{"image": "out/imgs/pic.jpg", "label": "tench"}\n')
    res = cli("--source", "manifest", "--root", str(data / "m2.jsonl"), "--classes", "imagenet1k", "--out",
              str(data / "out"),
              "--outputs", "llava", "--overwrite")
    assert "holds an input image of this build (out/imgs/pic.jpg)" in one_line(res, 2)
    assert (data / "out" / "imgs" / "pic.jpg").read_bytes() == picture
