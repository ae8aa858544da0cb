"""cards write / cards check keep credentials out of a published card, and cards write locks the build.

A real build of the embedded sample (hf output) whose recorded command holds a key in a URL; a real card written
from it; a real card folder with planted credentials checked by the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from builders.imagenet_qa import main as build_main
from cards.__main__ import main as cards_main
from cards.check import check_folder
from cards.publish import plan_upload
from cards.write import write_card
from vlm_classdata.errors import run_cli
from vlm_classdata.stages import lock_out

SECRET_URL = "http://user:sk-abcdef123456@host/v1"
SCRIPT = str(Path(__file__).resolve().parents[1] / "builders" / "imagenet_qa.py")


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """The embedded sample built to hf/, its last run recorded with a key and a password in its command."""
    out = tmp_path_factory.mktemp("cards") / "build"
    assert build_main(["--out", str(out), "--outputs", "hf", "--quiet"]) == 0
    log = out / "run_log.jsonl"
    last = json.loads(log.read_text(encoding="utf-8").splitlines()[-1])
    last["argv"] = [SCRIPT, "--out", str(out), "--outputs", "hf", "--llm-url", SECRET_URL,
                    "--images", "https://bob:hunter2@images.example.org/x?token=abc123"]
    with log.open("a", encoding="utf-8") as f:
        f.write(json.dumps(last) + "\n")
    return out


def test_written_card_holds_no_credential(build, capsys):
    assert run_cli(cards_main, ["write", str(build)]) == 0  # write, then its own check: no problem
    out = capsys.readouterr().out
    assert "problem:" not in out, out
    text = (build / "hf" / "README.md").read_text(encoding="utf-8")
    assert "python -m builders.imagenet_qa" in text  # the command is still shown ...
    for secret in ("sk-abcdef123456", "user:", "hunter2", "abc123"):
        assert secret not in text, secret  # ... without its secrets
    assert "http://***@host/v1" in text and "token=***" in text
    assert check_folder(build / "hf") == []


def test_check_flags_every_kind_of_credential_once_per_line(build, tmp_path, capsys):
    write_card(build)
    folder = tmp_path / "hf"
    shutil.copytree(build / "hf", folder)
    readme = folder / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nServer: http://u:p@h/v1\n\nKey sk-abcdef1234567890\n",
                      encoding="utf-8")
    (folder / "notes.txt").write_text("ok\nAuthorization: Bearer abcdefghijklmnop1234\n", encoding="utf-8")
    n = readme.read_text(encoding="utf-8").count("\n")
    problems = check_folder(folder)
    assert problems == [
        f"README.md line {n - 2}: looks like a user name or password in a URL (scheme://user:password@host); "
        "remove it",
        f"README.md line {n}: looks like an API key (sk-...); remove it",
        "notes.txt line 2: looks like a Bearer token; remove it",
    ]
    assert run_cli(cards_main, ["check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [f"problem: {p}" for p in problems]
    for secret in ("u:p@", "sk-abcdef1234567890", "abcdefghijklmnop1234"):
        assert secret not in out


def test_write_waits_for_no_live_run_and_cleans_leftovers(build, capsys):
    leftover = build / "hf" / ".README.md.tmp999999"
    leftover.write_text("half a card")
    assert "README.md.tmp999999" not in [rel for rel, _ in plan_upload(build / "hf")]  # never uploaded
    with lock_out(build):  # a live run on the build
        assert run_cli(cards_main, ["write", str(build)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "in use by another run" in err and "\n" not in err
        assert leftover.exists()
    assert run_cli(cards_main, ["write", str(build)]) == 0
    assert not leftover.exists()


def test_missing_build_is_one_line_and_creates_nothing(tmp_path, capsys):
    assert run_cli(cards_main, ["write", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()
