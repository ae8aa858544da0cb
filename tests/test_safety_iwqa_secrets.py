"""A key or password in a server URL (`--llm http://user:sk-…@host/v1`) is sent to the server (basic auth) but
reaches no file under OUT: not the manifest, not the reply cache, not the stage markers, not the error line."""

from __future__ import annotations

import base64
import json

from chat_server import ChatServer, closed_port_url
from test_imagewikiqa_build import WNIDS, Writer

from imagewikiqa.__main__ import main
from vlm_classdata.errors import run_cli
from vlm_classdata.secrets import find_credentials

SECRET = "sk-LiveKey0123456789abcdefXYZ"
USER = "alice-the-user"


def _files_with_secret(root) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if SECRET.encode() in data or USER.encode() in data:
                hits.append(str(path.relative_to(root)))
    return hits


def test_url_credentials_are_used_but_never_written(tmp_path, capsys):
    writer = Writer()
    out = tmp_path / "bench"
    with ChatServer(writer) as srv:
        url = srv.url.replace("http://", f"http://{USER}:{SECRET}@")
        args = ["build", "--out", str(out), "--class-ids", ",".join(WNIDS[:4]), "--generator", "llm", "--llm", url,
                "--llm-model", "writer", "--per-class", "3", "--verifier", url, "--verifier-model", "writer",
                "--no-progress"]
        assert run_cli(main, args) == 0
        sent = [h.get("Authorization") for h in srv.headers]
    assert sent and set(sent) == {"Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()}
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err
    assert (out / "cache" / "generate").is_dir() and (out / "cache" / "verify").is_dir()
    assert _files_with_secret(out) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["llm"] == manifest["config"]["verifier"] == srv.url.replace("http://", "http://***@")
    assert "http://***@127.0.0.1" in manifest["command"] and not find_credentials(json.dumps(manifest))


def test_a_failed_build_records_no_credentials(tmp_path, capsys):
    out = tmp_path / "bench"
    url = closed_port_url().replace("http://", f"http://{USER}:{SECRET}@")
    args = ["build", "--out", str(out), "--class-ids", ",".join(WNIDS[:2]), "--generator", "llm", "--llm", url,
            "--llm-model", "m", "--no-progress"]
    assert run_cli(main, args) == 2
    err = capsys.readouterr().err
    assert "Connection refused" in err and SECRET not in err and USER not in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "Connection refused" in manifest["error"]
    assert _files_with_secret(out) == []
