"""builders.targeted: a shard img2dataset calls finished is done only when it checks out (vlm_classdata.stages markers);
a failed one is removed and fetched again, alone, by the next run. OUT is claimed with the run lock.

Real downloads from a local image server (2 shards of 3 URLs); the failed shards are real shard files that a
fault left behind: a tar cut off (a full disk), a parquet that lost a row (a sample img2dataset dropped)."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import replace

import pyarrow.parquet as pq
import pytest
from image_server import ImageServer
from test_targeted import make_mined

from builders.targeted.__main__ import main as targeted_main
from builders.targeted.download import download
from builders.targeted.errors import DownloadIncomplete
from builders.targeted.options import DownloadOptions
from builders.targeted.state import LEGACY_STATE_FILE, RUN_STATE_DIR, STAGES_DIR
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.stages import Stages, lock_out

PLAN = {"n01440764": [f"good/tench_{i}.jpg" for i in range(3)],
        "n01443537": [f"good/goldfish_{i}.jpg" for i in range(3)]}
FETCH = DownloadOptions(image_size=32, processes=1, threads=2, timeout=2, shard_size=3)


@pytest.fixture(scope="module")
def server():
    with ImageServer(max_lifetime=600) as srv:
        yield srv


@pytest.fixture(scope="module")
def downloaded(server, tmp_path_factory):
    """A finished download (one img2dataset run), its requests and its account."""
    base = tmp_path_factory.mktemp("dl")
    mined = make_mined(base / "mined", server, PLAN)
    before = server.counts()
    download(mined, base / "out", FETCH, progress=False)
    return mined, base / "out", server.counts() - before, (base / "out" / "download.json").read_bytes()


@pytest.fixture
def first(downloaded, tmp_path):
    """A copy of the finished download (times kept, so its completion markers still hold)."""
    mined, out, hits, account = downloaded
    shutil.copytree(out, tmp_path / "out")
    return mined, tmp_path / "out", hits, account


def shard_urls(out, shard: str) -> list[str]:
    return pq.read_table(out / "shards" / f"{shard}.parquet", columns=["url"]).column("url").to_pylist()


def test_failed_shards_are_not_done_and_are_fetched_again_alone(server, first):
    mined, out, hits, account = first
    assert sum(hits.values()) == 6 and Stages(out / STAGES_DIR).units() == ["shard-00000", "shard-00001"]
    urls = shard_urls(out, "00000") + shard_urls(out, "00001")
    tar = out / "shards" / "00000.tar"
    os.truncate(tar, 1500)  # shard 0: its tar was cut off inside its first image (a full disk)
    table = pq.read_table(out / "shards" / "00001.parquet")
    pq.write_table(table.slice(1), out / "shards" / "00001.parquet")  # shard 1: a sample was dropped
    with pytest.raises(DownloadIncomplete, match=r"2 of 2 shards failed and were removed: shard 00000: "
                                                          r".*also 00001; run the same command again"):
        download(mined, out, FETCH, progress=False)
    assert not any((out / "shards").glob("0000[01]*"))  # removed: not finished, not marked
    assert Stages(out / STAGES_DIR).units() == []
    before = server.counts()
    download(mined, out, FETCH, progress=False)
    assert server.counts() - before == Counter(u.split("/", 3)[3] for u in urls)  # each url once
    assert (out / "download.json").read_bytes() == account
    before = server.counts()
    assert download(mined, out, FETCH, progress=False)["run"]["shards_fetched"] == []  # done: not fetched again
    assert server.counts() == before and (out / "download.json").read_bytes() == account


def test_a_shard_that_lost_a_row_is_named(first):
    mined, out, _, _ = first
    table = pq.read_table(out / "shards" / "00001.parquet")
    pq.write_table(table.slice(1), out / "shards" / "00001.parquet")
    with pytest.raises(DownloadIncomplete, match=r"1 of 2 shards failed and were removed: shard 00001: "
                                                          r"1 mined url\(s\) are missing, e\.g\. .* \(lost rows\)"):
        download(mined, out, FETCH, progress=False)
    assert (out / "shards" / "00000.tar").is_file() and not (out / "shards" / "00001_stats.json").exists()


def test_out_is_checked_locked_and_cleaned(first, tmp_path, capsys):
    mined, out, _, account = first
    leftover = out / "shards" / ".00000.tar.tmp999999"
    leftover.write_bytes(b"half a tar")
    with lock_out(out):
        assert run_cli(targeted_main, ["--mined", str(mined), "--out", str(out), "--download-only",
                                       "--image-size", "32", "--shard-size", "3", "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert "in use by another run" in err and "\n" not in err
    assert leftover.exists()
    assert download(mined, out, FETCH, progress=False)["run"]["shards_fetched"] == []
    assert not leftover.exists() and (out / "download.json").read_bytes() == account
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for bad, message in ((a_file, "is a file"), (mined, "MINED folder")):
        with pytest.raises(UserError, match=message):
            download(mined, bad, FETCH, progress=False)
    assert a_file.read_text() == "x" and sorted(p.name for p in mined.iterdir()) == [
        "classes.json", "mine_report.json", "urls.parquet"]


def test_a_damaged_marker_means_a_check_not_a_refetch(server, first):
    """A damaged completion marker only means the shard is checked again, never a crash or a refetch."""
    mined, out, _, account = first
    marker = Stages(out / STAGES_DIR).path("shard-00000")
    marker.write_text('{"unit": ')
    before = server.counts()
    download(mined, out, FETCH, progress=False)
    assert server.counts() == before and (out / "download.json").read_bytes() == account
    assert json.loads(marker.read_text())["unit"] == "shard-00000"
    shutil.rmtree(out / STAGES_DIR)  # a download made before markers existed is adopted as it is
    download(mined, out, FETCH, progress=False)
    assert server.counts() == before


def test_the_state_of_an_older_version_is_still_read(server, first):
    """An OUT whose resume state is the older ``.targeted_state.json`` (no markers) resumes as it is, and a
    download with other settings on it is still refused."""
    mined, out, _, account = first
    settings = json.loads(Stages(out / RUN_STATE_DIR).path("download").read_text())["info"]["settings"]
    shutil.rmtree(out / RUN_STATE_DIR)
    (out / LEGACY_STATE_FILE).write_text(json.dumps({"download_settings": settings}))
    with pytest.raises(UserError, match="image_size 32 → 64"):
        download(mined, out, replace(FETCH, image_size=64), progress=False)
    before = server.counts()
    assert download(mined, out, FETCH, progress=False)["run"]["shards_fetched"] == []
    assert server.counts() == before and (out / "download.json").read_bytes() == account
