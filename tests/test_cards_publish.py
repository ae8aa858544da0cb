"""cards.publish against a local in-memory Hub (tests/hub_server.py) with the real huggingface_hub client."""

from __future__ import annotations

import io
import logging
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hub_server import HubServer, git_blob_sha1
from huggingface_hub import constants as hf_constants
from inprocess import run_main
from PIL import Image

from builders.imagenet_qa import main as build_main
from cards.publish import (
    DEFAULT_IGNORE,
    PublishResult,
    plan_upload,
    publish,
    publish_main,
    resolve_token,
    validate_repo_id,
)
from vlm_classdata.errors import UserError, run_cli

FAKE = "hf_FAKEtok3nZq81NeverLeakMe4xYw"  # distinctive: any occurrence anywhere is a leak

CARD = """---
license: other
pretty_name: Tiny publish test
task_categories:
- image-classification
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
  - split: test
    path: data/test-*.parquet
---
# Tiny publish test

![classes](assets/class_frequency.png)
"""


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def _parquet(path: Path, n: int) -> None:
    images = [{"bytes": _png((10 * i, 20, 30)), "path": None} for i in range(n)]
    table = pa.table({"image": images, "label": list(range(n)), "question": [f"what is {i}?" for i in range(n)]})
    pq.write_table(table, path)


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    """Online mode for huggingface_hub (conftest sets HF_HUB_OFFLINE=1), no token anywhere, empty HF_HOME."""
    home = tmp_path / "hf_home"
    home.mkdir()
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_OIDC_ID_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(hf_constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    return home


@pytest.fixture
def dataset(tmp_path):
    """A small publishable folder plus things that must never be uploaded."""
    root = tmp_path / "ds"
    (root / "data").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "README.md").write_text(CARD, encoding="utf-8")
    _parquet(root / "data" / "train-00000-of-00001.parquet", 6)
    _parquet(root / "data" / "test-00000-of-00001.parquet", 3)
    (root / "assets" / "class_frequency.png").write_bytes(_png((200, 10, 10)))
    # never uploaded: resumable state, caches, temporary and partial files
    (root / ".state").mkdir()
    (root / ".state" / "progress.json").write_text('{"done": 3}')
    (root / "data" / ".cache").mkdir()
    (root / "data" / ".cache" / "blob").write_bytes(b"cache")
    (root / "data" / "train-00001.parquet.tmp").write_bytes(b"partial")
    (root / "assets" / "big.png.part").write_bytes(b"partial")
    # the owner marker and run lock every command leaves in its output folder (vlm_classdata.stages)
    (root / ".vlm-classdata").write_text('{"tool": "vlm-classdata"}')
    (root / ".vlm-classdata.lock").write_bytes(b"")
    (root / "data" / ".vlm-classdata.lock.owner").write_text("{}")
    return root


EXPECTED = ["README.md", "assets/class_frequency.png", "data/test-00000-of-00001.parquet",
            "data/train-00000-of-00001.parquet"]


def _assert_no_leak(hub: HubServer, *texts: str) -> None:
    for repo_files in hub.files.values():
        for path, data in repo_files.items():
            assert FAKE.encode() not in data, f"token leaked into uploaded file {path}"
    for req in hub.requests:
        assert FAKE.encode() not in req["body"], f"token leaked into a {req['route']} request body"
        assert FAKE not in req["path"] and FAKE not in str(req["query"])
    for text in texts:
        assert FAKE not in text


# ----------------------------------------------------------------------------------------------- plan


def test_plan_lists_publishable_files_only(dataset):
    plan = plan_upload(dataset)
    assert [rel for rel, _ in plan] == EXPECTED
    assert all(size == (dataset / rel).stat().st_size for rel, size in plan)
    assert [rel for rel, _ in plan_upload(dataset, allow=["data/*.parquet"])] == EXPECTED[2:]
    # with no ignore list the Hub-forbidden .cache folder is refused up front (huggingface_hub would fail late)
    with pytest.raises(UserError, match=r"data/\.cache/blob.*refuses \.cache/"):
        plan_upload(dataset, ignore=())
    assert ".state/**" in DEFAULT_IGNORE


def test_validate_repo_id():
    assert validate_repo_id("me/tiny-set_v1.0") == ("me", "tiny-set_v1.0")
    for bad in ("tiny", "a/b/c", "me/", "/x", "me/-x", "me/x.", "me/a--b", "me/a..b", "me/x.git",
                "me/sp ace", "m e/x", "me/" + "x" * 97):
        with pytest.raises(UserError, match="--repo-id"):
            validate_repo_id(bad)


def test_resolve_token_order(hub_env, monkeypatch):
    assert resolve_token() is None
    (hub_env / "token").write_text("hf_from_login_cache\n")
    assert resolve_token() == "hf_from_login_cache"
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert resolve_token() == "hf_from_env"
    assert resolve_token("hf_explicit") == "hf_explicit"
    assert resolve_token("   ") == "hf_from_env"  # blank counts as absent


def test_folder_checks(tmp_path, dataset):
    with pytest.raises(UserError, match="not found"):
        publish(tmp_path / "nope", "me/x", dry_run=True)
    with pytest.raises(UserError, match="README.md is excluded"):
        publish(dataset, "me/x", dry_run=True, allow=["data/*"])
    (dataset / "README.md").write_text("---\nlicense: [unclosed\n---\n# x\n")
    with pytest.raises(UserError, match="invalid card metadata"):
        publish(dataset, "me/x", dry_run=True)
    (dataset / "README.md").unlink()
    with pytest.raises(UserError, match="README.md not found"):
        publish(dataset, "me/x", dry_run=True)


# ----------------------------------------------------------------------------------------------- upload


def test_publish_sends_exactly_the_plan(hub_env, dataset, monkeypatch, capsys, caplog):
    before = {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    with HubServer(require_token=FAKE) as hub, caplog.at_level(logging.DEBUG):
        monkeypatch.setenv("HF_TOKEN", FAKE)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)  # read at call time, not at huggingface_hub import
        hf_logger = logging.getLogger("huggingface_hub")
        hf_logger.addHandler(caplog.handler)
        try:
            assert publish_main(dataset, "me/tiny", private=True, dry_run=False) == 0
        finally:
            hf_logger.removeHandler(caplog.handler)
    out, err = capsys.readouterr()
    plan = plan_upload(dataset)
    url = f"{hub.url}/datasets/me/tiny"
    total = sum(size for _, size in plan)
    assert out.strip() == f"published 4 files ({total / 1e6:.2f} MB) → {url}"
    # the server holds exactly the planned files, byte for byte, in one commit
    assert hub.files["me/tiny"] == {rel: (dataset / rel).read_bytes() for rel, _ in plan}
    assert sorted(hub.files["me/tiny"]) == EXPECTED
    assert [c["paths"] for c in hub.commits] == [EXPECTED]
    assert hub.repos["me/tiny"] == {"type": "dataset", "private": True, "visibility": "private"}
    assert hub.routes()[0] == "create" and "commit" in hub.routes()
    # the token travels only in the Authorization header, and nowhere else
    assert all(r["headers"].get("authorization") == f"Bearer {FAKE}" for r in hub.requests)
    _assert_no_leak(hub, out, err, caplog.text)
    for path in hub_env.rglob("*"):
        assert not path.is_file() or FAKE.encode() not in path.read_bytes()
    # nothing was written into the dataset folder
    assert {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()} == before


def test_dry_run_sends_nothing_and_lists_the_same_files(hub_env, dataset, monkeypatch, capsys):
    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert publish_main(dataset, "me/tiny", private=False, dry_run=True) == 0  # no token needed
        assert hub.requests == []
    lines = capsys.readouterr().out.strip().splitlines()
    plan = plan_upload(dataset)
    assert [ln.split()[0] for ln in lines[:-1]] == [rel for rel, _ in plan]
    assert [int(ln.split()[1].replace(",", "")) for ln in lines[:-1]] == [size for _, size in plan]
    assert lines[-1].startswith(f"dry run: 4 files ({sum(s for _, s in plan) / 1e6:.2f} MB")
    assert f"{hub.url}/datasets/me/tiny" in lines[-1] and "nothing was sent" in lines[-1]


def test_public_repo_and_rerun_sends_only_changes(hub_env, dataset):
    with HubServer(require_token=FAKE) as hub:
        first = publish(dataset, "me/tiny", token=FAKE, endpoint=hub.url)
        assert isinstance(first, PublishResult) and first.commit == hub.commits[0]["oid"]
        assert hub.repos["me/tiny"]["visibility"] == "public" and not hub.repos["me/tiny"]["private"]
        (dataset / "assets" / "class_frequency.png").write_bytes(_png((1, 2, 3)))
        second = publish(dataset, "me/tiny", token=FAKE, endpoint=hub.url, commit_message="new plot")
        # the repo already exists (409 accepted); unchanged files are skipped by their remote oid
        assert [c["paths"] for c in hub.commits] == [EXPECTED, ["assets/class_frequency.png"]]
        assert hub.commits[1]["header"]["summary"] == "new plot" and second.commit == hub.commits[1]["oid"]
        assert git_blob_sha1(hub.files["me/tiny"]["assets/class_frequency.png"]) == git_blob_sha1(
            (dataset / "assets" / "class_frequency.png").read_bytes())
        _assert_no_leak(hub)


def test_single_commit_path_without_xet(hub_env, dataset, monkeypatch):
    """huggingface_hub's legacy create_commit path (hf_xet disabled) sends the same files."""
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    with HubServer(require_token=FAKE) as hub:
        publish(dataset, "me/tiny", token=FAKE, endpoint=hub.url)
    assert hub.files["me/tiny"] == {rel: (dataset / rel).read_bytes() for rel in EXPECTED}


def test_publishes_the_embedded_demo_build(hub_env, tmp_path):
    out = tmp_path / "demo"
    # in-process (the exit code python -m gives); only the hf output, the folder that is published
    proc = run_main(build_main, "--out", str(out), "--overwrite", "--outputs", "hf")
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = out / "hf"
    plan = plan_upload(folder)
    assert "README.md" in dict(plan) and any(rel.startswith("data/") for rel, _ in plan)
    with HubServer(require_token=FAKE) as hub:
        result = publish(folder, "me/imagenet-demo", private=True, token=FAKE, endpoint=hub.url)
    assert hub.files["me/imagenet-demo"] == {rel: (folder / rel).read_bytes() for rel, _ in plan}
    assert result.bytes == sum(size for _, size in plan) and result.files == plan
    _assert_no_leak(hub)


# ----------------------------------------------------------------------------------------------- errors


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and FAKE not in msg and "Traceback" not in msg
    return msg


def test_no_token(hub_env, dataset):
    with HubServer() as hub, pytest.raises(UserError) as exc:
        publish(dataset, "me/tiny", endpoint=hub.url)
    assert _one_line(exc) == "no Hugging Face token: set HF_TOKEN or run `hf auth login`"
    assert hub.requests == []


@pytest.mark.parametrize("case", ["401", "403", "403-commit", "404-owner", "500", "500-echo", "down", "offline"])
def test_error_lines(hub_env, dataset, monkeypatch, case):
    with HubServer(require_token=FAKE, owners={"me"}) as hub:
        endpoint, repo = hub.url, "me/tiny"
        if case == "401":
            hub.require_token = "hf_someone_else"
        elif case == "403":
            hub.fail(403, "You don't have the rights to create a dataset under the namespace", routes={"create"})
        elif case == "403-commit":
            hub.fail(403, "read-only token", routes={"commit"})
        elif case == "404-owner":
            repo = "nobody/tiny"
        elif case == "500":
            hub.fail(500, "Internal Error - We're working hard to fix this\nsecond line", routes={"create"})
        elif case == "500-echo":  # a server that echoes the credentials back must not leak them
            hub.fail(500, f"cannot parse Authorization: Bearer {FAKE}", routes={"create"})
        elif case == "down":
            endpoint = f"http://127.0.0.1:{_closed_port()}"
        elif case == "offline":
            monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        with pytest.raises(UserError) as exc:
            publish(dataset, repo, private=True, token=FAKE, endpoint=endpoint)
    msg = _one_line(exc)
    expected = {
        "401": f"{hub.url} rejected the Hugging Face token (401 Unauthorized)",
        "403": "no permission for me/tiny (403 Forbidden)",
        "403-commit": "no permission for me/tiny (403 Forbidden)",
        "404-owner": f"owner 'nobody' not found on {hub.url} (404)",
        "500": "Hub error 500 while creating me/tiny: Internal Error - We're working hard to fix this",
        "500-echo": "Hub error 500 while creating me/tiny: cannot parse Authorization: Bearer ***",
        "down": f"cannot reach {endpoint}: network down?",
        "offline": "HF_HUB_OFFLINE is set",
    }[case]
    assert msg.startswith(expected), msg
    if case == "403-commit":
        assert hub.files["me/tiny"] == {}  # repo created, nothing committed
    _assert_no_leak(hub, msg)


def test_cli_error_is_one_line_exit_2(hub_env, dataset, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    code = run_cli(lambda argv: publish_main(dataset, "me/tiny", private=False, dry_run=False), [])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: cannot reach http://127.0.0.1:")
    assert FAKE not in err
