"""The shared safety foundation: atomic writes, the run lock, the output-folder claim, stage markers, path
names, credential redaction and the one-line CLI errors."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vlm_classdata.atomic import atomic_output, is_leftover, remove_leftovers, write_json_atomic
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.names import check_name, name_problem
from vlm_classdata.secrets import find_credentials, redact, redact_obj
from vlm_classdata.stages import (
    OWNER_FILE,
    Stages,
    file_listing,
    fingerprint,
    listing_changes,
    lock_out,
    open_out,
    paths_overlap,
)

ROOT = Path(__file__).resolve().parents[1]


def test_atomic_output_publishes_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "a" / "f.json"
    write_json_atomic(final, {"b": 1, "a": "é"})
    assert final.read_text(encoding="utf-8") == '{\n "a": "é",\n "b": 1\n}\n'
    with pytest.raises(RuntimeError), atomic_output(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert final.read_text(encoding="utf-8").startswith('{\n "a"')  # old content kept
    assert sorted(p.name for p in final.parent.iterdir()) == ["f.json"]  # no temp left


def test_remove_leftovers_only_touches_temp_siblings(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    keep = [tmp_path / "data.tmp", tmp_path / ".hidden", tmp_path / "sub" / "x.json"]
    gone = [tmp_path / ".x.json.tmp123", tmp_path / "sub" / ".part.parquet.tmp9"]
    for p in keep + gone:
        p.write_text("x")
    (tmp_path / ".dir.tmp55").mkdir()
    (tmp_path / ".dir.tmp55" / "inner").write_text("x")
    assert remove_leftovers(tmp_path) == 3
    assert all(p.exists() for p in keep) and not any(p.exists() for p in gone)
    assert not (tmp_path / ".dir.tmp55").exists()
    assert is_leftover(Path(".a.tmp1")) and not is_leftover(Path("a.tmp1"))


def test_stage_markers_need_the_same_fingerprint(tmp_path: Path) -> None:
    stages = Stages(tmp_path / ".state")
    fp = fingerprint({"seed": 0}, [["a.jpg", 3, 1]])
    assert fp == fingerprint({"seed": 0}, [["a.jpg", 3, 1]])
    assert stages.done("build/train-00000", fp) is None
    stages.mark("build/train-00000", fp, {"written": 3})
    assert stages.done("build/train-00000", fp) == {"written": 3}
    assert stages.done("build/train-00000", fingerprint({"seed": 1})) is None
    assert stages.units() == ["build/train-00000"]
    (stages.path("build/train-00000")).write_text("{trunc")  # a damaged marker means: not done
    assert stages.done("build/train-00000", fp) is None
    stages.clear("build/train-00000")
    assert stages.units() == []
    with pytest.raises(UserError):
        stages.path("../evil")


def test_file_listing_reports_what_changed(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(name)
    old = file_listing(sorted(tmp_path.iterdir()), tmp_path)
    (tmp_path / "d").write_text("new")
    (tmp_path / "a").write_text("longer")
    (tmp_path / "c").unlink()
    new = file_listing(sorted(tmp_path.iterdir()), tmp_path)
    assert listing_changes(old, new) == "1 added (d); 1 removed (c); 1 changed (a)"
    assert listing_changes(old, old) == "no file differs"


def test_names_that_would_leave_the_folder_are_refused() -> None:
    for bad in ("", ".", "..", "../../evil", "/abs", "a/b", "a\\b", "x\x00", " lead", "a" * 201):
        assert name_problem(bad), bad
        with pytest.raises(UserError):
            check_name(bad, "split")
    for good in ("train", "val", "validation", "n01440764_10026", "tête", "a.b-c+d"):
        assert check_name(good, "split") == good


def test_overlap_and_overwrite_refusals(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "train" / "x.jpg").write_bytes(b"img")
    assert paths_overlap(data, data / "train") and paths_overlap(data / "train", data)
    assert not paths_overlap(data, tmp_path / "data2")
    for out in (data, data / "out", tmp_path):
        with pytest.raises(UserError, match="overlaps the input"):
            open_out(out, inputs=[data], overwrite=True)
    assert (data / "train" / "x.jpg").read_bytes() == b"img"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="not made by this tool"):
        open_out(foreign, overwrite=True)
    assert (foreign / "thesis.tex").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        open_out(afile)


def test_open_out_claims_cleans_and_overwrites_own_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    lock = open_out(out, command="test")
    assert (out / OWNER_FILE).is_file()
    (out / "result.json").write_text("{}")
    (out / ".result.json.tmp4242").write_text("half")
    lock.release()
    lock = open_out(out)
    assert not (out / ".result.json.tmp4242").exists() and (out / "result.json").exists()
    lock.release()
    open_out(out, overwrite=True).release()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".vlm-classdata.lock")) == [OWNER_FILE]
    # a folder a killed run left with only its lock and a temporary file is overwritten like an empty one
    dead = tmp_path / "dead"
    dead.mkdir()
    (dead / ".vlm-classdata.lock").write_bytes(b"")
    (dead / ".x.json.tmp77").write_text("half")
    open_out(dead, overwrite=True).release()
    assert not (dead / ".x.json.tmp77").exists() and (dead / OWNER_FILE).is_file()
    legacy = tmp_path / "legacy"
    (legacy / ".state").mkdir(parents=True)
    open_out(legacy, overwrite=True, legacy=(".state",)).release()


_HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from vlm_classdata.stages import lock_out
    lock = lock_out(sys.argv[1])
    print("locked", flush=True)
    time.sleep(60)
""")


def _hold_lock(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER.format(root=str(ROOT)), str(out)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_live_lock_refuses_and_a_killed_one_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = _hold_lock(out)
    try:
        with pytest.raises(UserError, match=rf"in use by another run \(pid {holder.pid} "):
            lock_out(out)
    finally:
        holder.kill()
        holder.wait()
    t0 = time.monotonic()
    lock_out(out).release()  # the OS released the dead holder's lock: no wait, no manual clean-up
    assert time.monotonic() - t0 < 1.0


def test_redaction_of_urls_keys_and_tokens() -> None:
    text = ("--llm http://user:sk-abc123def456@host:8000/v1 --verifier https://tok@h/v1?api_key=SECRET9&x=1 "
            "Authorization: Bearer abcdefghijklmnop hf_ABCDEFGHIJKLMNOPQRSTUV ghp_ABCDEFGHIJKLMNOPQRSTUV "
            "AKIAABCDEFGHIJKLMNOP")
    out = redact(text)
    for secret in ("sk-abc123def456", "user:", "tok@", "SECRET9", "abcdefghijklmnop", "hf_ABC", "ghp_ABC",
                   "AKIAABCD"):
        assert secret not in out, secret
    assert "http://***@host:8000/v1" in out and "&x=1" in out
    assert find_credentials(out) == []
    kinds = {k for k, _ in find_credentials(text)}
    assert kinds == {"url_userinfo", "secret_query", "bearer", "openai_key", "hf_token", "github_token",
                     "aws_key"}
    assert redact_obj({"argv": ["--llm", "http://a:b@h/v1"], "n": 3}) == {"argv": ["--llm", "http://***@h/v1"],
                                                                          "n": 3}
    assert redact("https://host/v1 and http://localhost:8000/v1") == "https://host/v1 and http://localhost:8000/v1"


def _failing(exc: BaseException):
    def main(argv):
        raise exc
    return main


def test_run_cli_turns_every_failure_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(_failing(UserError("bad --x http://u:sk-secret1234@h/v1"))) == 2
    err = capsys.readouterr().err
    assert err == "error: bad --x http://***@h/v1\n"
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/out/hf/data.parquet")
    assert run_cli(_failing(full)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/out/hf/data.parquet: No space left on device (the disk is full" in err
    assert run_cli(_failing(PermissionError(errno.EACCES, "Permission denied", "/ro/x"))) == 1
    assert "/ro/x: Permission denied (no permission" in capsys.readouterr().err
    assert run_cli(_failing(ValueError("weird\nmultiline"))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected ValueError: weird multiline" in err


def test_a_library_write_error_carrying_an_os_error_becomes_an_oserror_naming_the_file(tmp_path: Path) -> None:
    import polars as pl

    from vlm_classdata.atomic import write_with

    def full_disk(path: Path) -> None:
        Path(path).write_bytes(b"half")
        raise pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)")

    final = tmp_path / "counts.parquet"
    with pytest.raises(OSError) as info:
        write_with(final, full_disk)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(final)
    assert list(tmp_path.iterdir()) == []  # no temporary file left
    with pytest.raises(pl.exceptions.ComputeError, match="bad schema"):  # other library errors pass through
        write_with(final, lambda p: (_ for _ in ()).throw(pl.exceptions.ComputeError("bad schema")))
