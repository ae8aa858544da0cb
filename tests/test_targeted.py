"""builders.targeted: a MINED URL list → img2dataset (local image server) → instruction data, offline.

One module-scoped fixture serves ~30 images (good, broken, missing, failing, slow) over four ImageNet classes
and runs the whole loop three times on one OUT: a first run, a plain rerun, and a rerun after one shard is
marked unfinished (its stats file deleted, as when a download is killed). Tests read what the runs left.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from image_server import ImageServer

from builders.targeted.__main__ import main as targeted_main
from builders.targeted.download import download
from builders.targeted.errors import TargetedError
from builders.targeted.loop import run_loop
from builders.targeted.options import BuildOptions, DownloadOptions, LoopOptions
from builders.targeted.reasons import failure_reason
from builders.targeted.shards import normalize_tar
from builders.targeted.state import RUN_STATE_DIR
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.vocabulary import ClassVocabulary

# class id -> (display name, url paths); the expected failure reasons follow from the paths
PLAN = {
    "n01440764": [f"good/tench_{i}.jpg" for i in range(5)] + [f"good/tench_{i}.png" for i in range(2)]
                 + ["broken/tench_x.jpg", "missing/tench_y.jpg"],
    "n01443537": [f"good/goldfish_{i}.jpg" for i in range(6)] + ["error/goldfish_x.jpg", "slow/goldfish_y.jpg"],
    "n01484850": [f"good/shark_{i}.jpg" for i in range(7)] + ["missing/shark_x.jpg"],
    "n01491361": [f"good/tiger_{i}.png" for i in range(5)],
}
EXPECTED_FAILED = {
    "n01440764": {"decode_error": 1, "http_404": 1},
    "n01443537": {"http_500": 1, "timeout": 1},
    "n01484850": {"http_404": 1},
    "n01491361": {},
}
EMPTY_CLASS = "n01494475"  # chosen by the rule (in mine_report.json) but no caption matched: mined 0
SHARD_SIZE = 10
FETCH = DownloadOptions(image_size=32, processes=1, threads=4, timeout=1, shard_size=SHARD_SIZE)


def run(mined: Path, out: Path, extra_args: tuple[str, ...] = ()) -> dict:
    """The whole loop, quietly, with this file's download options."""
    return run_loop(LoopOptions(mined, out, download=FETCH, build=BuildOptions(extra_args=extra_args), progress=False))


def make_mined(folder: Path, srv: ImageServer, plan: dict[str, list[str]] = PLAN) -> Path:
    """A MINED folder per the contract: urls.parquet (class order, then url), classes.json, mine_report.json."""
    vocab = ClassVocabulary.bundled("imagenet1k")
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for cid in vocab.ids:
        for path in sorted(plan.get(cid, []), key=srv.url):
            name = vocab[cid].name
            rows.append({"url": srv.url(path), "caption": f"a photo of a {name} in the wild", "class_id": cid,
                         "class_name": name, "matched_form": name, "corpus": "laion_part0.parquet",
                         "row": len(rows) * 7})
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("url", pa.string()), ("caption", pa.string()), ("class_id", pa.string()), ("class_name", pa.string()),
        ("matched_form", pa.string()), ("corpus", pa.string()), ("row", pa.int64())]))
    pq.write_table(table, folder / "urls.parquet")
    (folder / "classes.json").write_text(json.dumps(vocab.to_json()))
    report = {
        "rule": {"kind": "least", "n": len(plan)},
        "counts": {"dir": "counts/", "corpus": "laion", "column": "doc_freq"}, "seed": 0, "per_class": 50,
        "forms": "unflagged", "corpus_files": ["laion_part0.parquet"], "rows_scanned": 1000,
        "skipped": {"no_url": 2}, "duplicate_urls": 1, "multi_class_rows": 0,
        "classes": [{"class_id": cid, "class_name": vocab[cid].name, "doc_freq": 3 + i,
                     "matched_rows": len(urls) + 1, "mined": len(urls)} for i, (cid, urls) in enumerate(plan.items())]
                   + [{"class_id": EMPTY_CLASS, "class_name": vocab[EMPTY_CLASS].name, "doc_freq": 0,
                       "matched_rows": 0, "mined": 0}],
        "mined_total": sum(len(u) for u in plan.values()), "command": "python -m corpora_stats mine ...",
    }
    (folder / "mine_report.json").write_text(json.dumps(report))
    return folder


def snapshot(build_dir: Path) -> dict[str, str]:
    """sha256 of every file a build leaves (its run log, which grows per run, and its resume state in .state/,
    which records the shards' modification times, aside)."""
    return {p.relative_to(build_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(build_dir.rglob("*")) if p.is_file() and p.name != "run_log.jsonl"
            and not p.relative_to(build_dir).as_posix().startswith(".state/")}


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("targeted")
    with ImageServer(slow_seconds=4) as srv:
        mined = make_mined(root / "mined", srv)
        out = root / "out"
        m1 = run(mined, out)
        hits1, snap1 = srv.counts(), snapshot(out / "build")
        m2 = run(mined, out)
        hits2, snap2 = srv.counts(), snapshot(out / "build")
        shard1 = pq.read_table(out / "shards" / "00001.parquet", columns=["url"]).column("url").to_pylist()
        (out / "shards" / "00001_stats.json").unlink()  # shard 1 was cut off
        m3 = run(mined, out)
        hits3, snap3 = srv.counts(), snapshot(out / "build")
        return {"srv": srv, "mined": mined, "out": out, "m": [m1, m2, m3], "hits": [hits1, hits2, hits3],
                "snap": [snap1, snap2, snap3], "shard1_urls": shard1}


def test_counts_add_up_per_class(loop):
    dl = json.loads((loop["out"] / "download.json").read_text())
    assert list(dl["classes"]) == [*PLAN, EMPTY_CLASS]  # vocabulary order
    assert dl["classes"][EMPTY_CLASS] == {"class_name": "hammerhead shark", "mined": 0, "downloaded": 0, "failed": {}}
    for cid, urls in PLAN.items():
        info = dl["classes"][cid]
        assert info["mined"] == len(urls)
        assert info["failed"] == EXPECTED_FAILED[cid]
        assert info["downloaded"] == sum(u.startswith("good/") for u in urls)
        assert info["mined"] == info["downloaded"] + sum(info["failed"].values())
    assert dl["totals"] == {"mined": 30, "downloaded": 25, "failed": 5,
                            "failed_reasons": {"decode_error": 1, "http_404": 2, "http_500": 1, "timeout": 1}}
    assert dl["shards"] == 3 and dl["image_size"] == 32 and dl["resize_mode"] == "border"
    assert "Starting the downloading" in (loop["out"] / "img2dataset.log").read_text()  # progress off: logged


def test_build_rows_carry_the_right_labels(loop):
    out, srv = loop["out"], loop["srv"]
    expected = {srv.url(p): cid for cid, paths in PLAN.items() for p in paths}
    # sample key "<shard>_<img2dataset key>" -> url, from img2dataset's own parquet files
    key_url = {}
    for pfile in sorted((out / "shards").glob("*.parquet")):
        for row in pq.read_table(pfile, columns=["key", "url", "status"]).to_pylist():
            if row["status"] == "success":
                key_url[f"{pfile.stem}_{row['key']}"] = row["url"]
    hf = pa.concat_tables([pq.read_table(p) for p in sorted((out / "build" / "hf").rglob("*.parquet"))])
    ids = hf.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 25
    vocab = ClassVocabulary.bundled("imagenet1k")
    for key, cid, name, label in zip(ids, hf.column("class_id").to_pylist(), hf.column("class_name").to_pylist(),
                                     hf.column("label").to_pylist(), strict=True):
        assert cid == expected[key_url[key]]
        assert name == vocab[cid].name and label == vocab[cid].index
    llava = json.loads(next((out / "build" / "llava").glob("*.json")).read_text())
    assert sorted(r["id"] for r in llava) == sorted(ids)
    for r in llava:
        assert (out / "build" / r["image"]).is_file()
        assert vocab[expected[key_url[r["id"]]]].name.lower() in r["conversations"][1]["value"].lower()
    manifest = loop["m"][0]
    assert manifest["vocabulary"]["dataset"] == "imagenet1k"
    assert manifest["splits"]["train"]["written"] == 25


def test_manifest_has_the_targeted_section(loop):
    on_disk = json.loads((loop["out"] / "build" / "manifest.json").read_text())
    section = on_disk["targeted"]
    assert section == loop["m"][0]["targeted"]
    assert section["mine"] == json.loads((loop["mined"] / "mine_report.json").read_text())
    assert section["mine"]["rule"]["kind"] == "least"
    assert section["download"] == json.loads((loop["out"] / "download.json").read_text())
    assert section["kept"] == {**{cid: sum(u.startswith("good/") for u in urls) for cid, urls in PLAN.items()},
                               EMPTY_CLASS: 0}
    assert section["download"]["error_examples"]["http_404"] == "HTTP Error 404: Not Found"


def test_rerun_fetches_nothing_and_changes_nothing(loop):
    h1, h2 = loop["hits"][0], loop["hits"][1]
    assert sum(h1.values()) == 30 and max(h1.values()) == 1  # every url once
    assert h2 == h1
    assert loop["snap"][1] == loop["snap"][0]
    assert loop["m"][1]["targeted"] == loop["m"][0]["targeted"]


def test_cut_off_shard_is_fetched_again_alone(loop):
    srv, h2, h3 = loop["srv"], loop["hits"][1], loop["hits"][2]
    again = {u.split("/", 3)[3] for u in loop["shard1_urls"]}
    assert len(again) == SHARD_SIZE
    assert h3 - h2 == Counter(again)  # only shard 1's urls, once each
    assert loop["snap"][2] == loop["snap"][0]  # rebuilt from the new shard: identical data
    # tars are in key order with fixed headers, whatever order the downloads finished in
    for tar in sorted((loop["out"] / "shards").glob("*.tar")):
        assert normalize_tar(tar) is False
    assert srv.hits("slow/goldfish_y.jpg") >= 1


@pytest.mark.parametrize("damage, message", [
    ("no_folder", "not found"),
    ("no_urls", "no urls.parquet"),
    ("no_column", "missing column(s) matched_form"),
    ("dup_url", "duplicate url"),
    ("unknown_class", "not in classes.json"),
    ("no_report", "MINED report"),
    ("empty", "no rows to download"),
])
def test_bad_mined_folder_is_one_line(tmp_path, damage, message, capsys):
    with ImageServer() as srv:
        mined = make_mined(tmp_path / "mined", srv, {"n01440764": ["good/a.jpg", "good/b.jpg"]})
    table = pq.read_table(mined / "urls.parquet")
    if damage == "no_folder":
        mined = tmp_path / "nowhere"
    elif damage == "no_urls":
        (mined / "urls.parquet").unlink()
    elif damage == "no_column":
        pq.write_table(table.drop_columns(["matched_form"]), mined / "urls.parquet")
    elif damage == "dup_url":
        pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), mined / "urls.parquet")
    elif damage == "unknown_class":
        pq.write_table(table.set_column(2, "class_id", pa.array(["n99999999", "n01440764"])), mined / "urls.parquet")
    elif damage == "no_report":
        (mined / "mine_report.json").unlink()
    elif damage == "empty":
        pq.write_table(table.slice(0, 0), mined / "urls.parquet")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(mined, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    rc = run_cli(targeted_main, ["--mined", str(mined), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "\n" not in err


def test_other_settings_on_the_same_out_are_refused(loop, tmp_path):
    with pytest.raises(UserError, match="image_size 32 → 64"):
        download(loop["mined"], loop["out"], replace(FETCH, image_size=64), progress=False)
    with pytest.raises(UserError, match="--seed is set by builders.targeted"):
        run(loop["mined"], tmp_path / "o", extra_args=["--seed", "3"])
    with pytest.raises(UserError, match="not understood"):
        run(loop["mined"], tmp_path / "o", extra_args=["--no-such-option"])


@pytest.mark.parametrize("status, message, reason", [
    ("failed_to_download", "HTTP Error 404: Not Found", "http_404"),
    ("failed_to_download", "HTTP Error 503: Service Unavailable", "http_503"),
    ("failed_to_download", "timed out", "timeout"),
    ("failed_to_download", "<urlopen error timed out>", "timeout"),
    ("failed_to_download", "The read operation timed out", "timeout"),
    ("failed_to_resize", "Image decoding error", "decode_error"),
    ("failed_to_download", "<urlopen error [Errno 111] Connection refused>", "connection_refused"),
    ("failed_to_download", "<urlopen error [Errno -2] Name or service not known>", "dns_error"),
    ("failed_to_download", "Remote end closed connection without response", "connection_closed"),
    ("failed_to_download", "Use of image disallowed by X-Robots-Tag directive", "disallowed_by_robots"),
    ("failed_to_resize", "image too small", "image_too_small"),
    ("failed_to_download", "something new", "download_error"),
    ("failed_to_resize", "something new", "resize_error"),
])
def test_failure_reasons_are_short(status, message, reason):
    assert failure_reason(status, message) == reason


@pytest.mark.parametrize("damage, message", [("drop", "lost rows"), ("repeat", "duplicated samples")])
def test_a_lost_or_repeated_row_is_caught(loop, tmp_path, damage, message):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(loop["out"] / "shards", out / "shards")
    shutil.copytree(loop["out"] / RUN_STATE_DIR, out / RUN_STATE_DIR)
    pfile = out / "shards" / "00002.parquet"
    table = pq.read_table(pfile)
    table = table.slice(1) if damage == "drop" else pa.concat_tables([table, table.slice(0, 1)])
    pq.write_table(table, pfile)
    with pytest.raises(TargetedError, match=message):  # every shard is finished: img2dataset not called
        download(loop["mined"], out, FETCH, progress=False)
