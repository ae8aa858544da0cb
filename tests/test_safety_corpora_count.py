"""`corpora_stats count` publishes a counts folder as a whole: a re-count killed with SIGKILL (while staging or
while publishing) never leaves tables that `report`/`mine` take for the old ones; disk full and a bad --out end
in one line; what a dead run left is removed by the next; valid corpora give the same bytes as before."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
import pytest

from corpora_stats.__main__ import main
from corpora_stats.count import CountConfig, count_corpora
from corpora_stats.counts_folder import load_counts, load_counts_folder
from vlm_classdata.errors import UserError, run_cli
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
WNIDS = ["n01440764", "n01491361", "n02129604", "n01514859", "n02012849", "n03126707", "n02457408",
         "n01855672", "n03793489"]
TEXTS = ["A tench in the pond.", "Tinca tinca, also called TENCH", "tenches and a tiger-shark!",
         "a tiger shark near a tiger", "then again, nothing here", "the hen and the geese", "a crane lifts steel",
         "my mouse is broken", "three-toed sloth hanging"] * 7

# SIGKILL the count right after os.replace publishes a counts_* table: anywhere under OUT ("stage") or
# directly into OUT ("publish"); a real kill of a real process at the moment that matters
KILLER = """
import os, signal, sys
from pathlib import Path
out, mode = Path(sys.argv[1]).resolve(), sys.argv[2]
real = os.replace
def replace(src, dst, *a, **k):
    real(src, dst, *a, **k)
    d = Path(dst).resolve()
    if d.name.startswith("counts_") and (d.parent == out if mode == "publish" else out in d.parents):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from vlm_classdata.errors import run_cli
from corpora_stats.__main__ import main
sys.exit(run_cli(main, sys.argv[3:]))
"""


def classes_file(tmp: Path) -> Path:
    names = ClassVocabulary.bundled("imagenet1k")
    p = tmp / "classes.txt"
    p.write_text("".join(f"{w} {names[w].name}\n" for w in WNIDS))
    return p


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "corpora_stats", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env, **kw)


@pytest.fixture()
def run(capsys):
    """The CLI in this process (as ``python -m corpora_stats`` runs it): → (exit status, stdout, stderr)."""
    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = run_cli(main, list(args))
        got = capsys.readouterr()
        return rc, got.out, got.err
    return call


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and p.name.startswith(("counts_", "forms", "snippets_", "classes"))}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp*"))


@pytest.fixture()
def recount(tmp_path, run):
    """A counts folder of two corpora, and the args of a re-count whose tables differ from it."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("\n".join(TEXTS[:9]) + "\n")
    b.write_text("\n".join(TEXTS[:5]) + "\n")
    out = tmp_path / "freq"
    base = ["count", "--classes", str(classes_file(tmp_path)), "--out", str(out), "--quiet"]
    rc, _, err = run(*base, "--corpus", f"a={a}", "--corpus", f"b={b}")
    assert rc == 0, err
    before = {name: load_counts(out)[0][name] for name in ("a", "b")}
    a2, b2 = tmp_path / "a2.txt", tmp_path / "b2.txt"
    a2.write_text("\n".join(TEXTS) + "\n")
    b2.write_text("\n".join(TEXTS) + "\n")
    return out, before, digest(out), base + ["--corpus", f"a={a2}", "--corpus", f"b={b2}"]


def killed(out: Path, mode: str, args: list[str], tmp_path: Path) -> None:
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    res = subprocess.run([sys.executable, str(script), str(out), mode, *args], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == -signal.SIGKILL, res.stderr


def test_recount_killed_while_staging_leaves_the_old_counts_and_its_leftovers_are_removed(recount, tmp_path, run):
    out, before, old_digest, args = recount
    killed(out, "stage", args, tmp_path)
    assert leftovers(out), "the killed run left its staging folder"
    tables, _ = load_counts(out)  # the old, consistent state
    for name, table in before.items():
        assert tables[name].equals(table)
    assert digest(out) == old_digest
    rc, _, err = run("report", "--counts", str(out), "--out", str(tmp_path / "report"))
    assert rc == 0, err
    rc, _, err = run(*args)  # the next run removes what the dead one left, and publishes the new counts
    assert rc == 0, err
    assert leftovers(out) == []
    assert load_counts(out)[0]["a"]["doc_freq"].sum() > before["a"]["doc_freq"].sum()


def test_recount_killed_while_publishing_is_refused_by_report_and_mine(recount, tmp_path, run):
    out, _, old_digest, args = recount
    killed(out, "publish", args, tmp_path)
    assert digest(out) != old_digest  # a new table already sits beside the old count_meta.json
    rc, _, err = run("report", "--counts", str(out), "--out", str(tmp_path / "report"))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "does not match count_meta.json" in err and "counts_a" in err
    with pytest.raises(UserError, match="does not match count_meta.json"):
        load_counts_folder(out, "a")
    rc, _, err = run(*args)  # a complete re-count repairs the folder
    assert rc == 0, err
    assert set(load_counts(out)[0]) == {"a", "b"}


def test_a_table_edited_after_count_is_refused(recount):
    out = recount[0]
    with open(out / "snippets_b.jsonl", "a") as fh:
        fh.write('{"class_id": "x"}\n')
    with pytest.raises(UserError, match=r"snippets_b.jsonl does not match count_meta.json \(its size"):
        load_counts(out)


def test_meta_records_files_with_size_mtime_and_skipped_files(tmp_path, run):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.txt").write_text("a tench\n")
    (folder / "b.parquet").write_bytes(b"PAR1 not really")
    pl.DataFrame({"TEXT": ["a tiger shark"]}).write_parquet(folder / "c.parquet")
    packed = gzip.compress("".join(f"tench {i}\n" for i in range(20_000)).encode())
    (folder / "d.txt.gz").write_bytes(packed[: len(packed) // 2])
    out = tmp_path / "freq"
    rc, stdout, err = run("count", "--classes", str(classes_file(tmp_path)), "--out", str(out), "--quiet",
                          "--corpus", f"c={folder}")
    assert rc == 0, err
    assert "b.parquet: not a readable parquet file" in stdout and "d.txt.gz: truncated gzip" in stdout
    info = json.loads((out / "count_meta.json").read_text())["corpora"]["c"]
    assert info["format"] == "mixed" and info["files"] == 4
    listed = {Path(r["file"]).name: r for r in info["file_list"]}
    for name in ("a.txt", "b.parquet", "c.parquet", "d.txt.gz"):
        st = (folder / name).stat()
        assert (listed[name]["size"], listed[name]["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    assert listed["a.txt"]["documents"] == 1 and listed["c.parquet"]["documents"] == 1
    assert listed["d.txt.gz"]["documents"] > 5_000 and listed["d.txt.gz"]["skipped"] == {"read_error": 1}
    assert info["documents"] == sum(r["documents"] for r in info["file_list"])
    assert info["skipped"] == {"read_error": 2}
    assert sorted(Path(e["file"]).name for e in info["skipped_files"]) == ["b.parquet", "d.txt.gz"]
    table = pl.read_parquet(out / "counts_c.parquet")
    freq = dict(zip(table["class_id"], table["doc_freq"], strict=True))
    assert freq["n01491361"] == 1 and freq["n01440764"] == 1 + listed["d.txt.gz"]["documents"]


def test_out_that_is_a_file_is_one_line(tmp_path, run):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a tench\n")
    (tmp_path / "out").write_text("a file")
    rc, _, err = run("count", "--classes", str(classes_file(tmp_path)), "--out", str(tmp_path / "out"),
                     "--corpus", f"c={corpus}", "--quiet")
    assert rc == 2 and "is a file" in err and len(err.strip().splitlines()) == 1


@pytest.fixture()
def small_disk(tmp_path):
    """A 160 KiB tmpfs when this user may mount one; else None (the test limits file sizes instead)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)],
                        capture_output=True).returncode == 0
    try:
        yield mount if ok else None
    finally:
        if ok:
            subprocess.run(["umount", str(mount)], check=False)


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))


def test_disk_full_recount_is_one_line_keeps_the_old_counts_and_leaves_nothing(tmp_path, small_disk, run):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    out = (small_disk or tmp_path) / "freq"
    rc, _, err = run("count", "--classes", str(classes_file(tmp_path)), "--out", str(out), "--corpus",
                     f"c={corpus}", "--quiet")
    assert rc == 0, err
    old = digest(out)
    # the whole ImageNet-1k list: its classes.json and forms.csv do not fit
    args = ["count", "--classes", "imagenet1k", "--out", str(out), "--corpus", f"c={corpus}", "--quiet"]
    if small_disk:  # a real full file system
        rc, _, err = run(*args)
    else:  # no tmpfs for this user: a file size limit gives the same failed write
        res = cli(*args, preexec_fn=_limit_file_size)
        rc, err = res.returncode, res.stderr
    assert rc == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert ("No space left on device" if small_disk else "File too large") in err
    assert leftovers(out) == [] and digest(out) == old
    assert load_counts(out)[0]["c"]["doc_freq"].sum() > 0


# the tables of this corpus as count wrote them before counts were staged and published as a whole
PINNED = {
    "classes.json": "f0bea8489a9ba34588bbdc8f41d715caf482890b45f635ef87518e52c28da584",  # ClassVocabulary.save layout (#16)
    "counts_jsonl.csv": "22d71e8b75e06764d515d72832ea917a2e1bf773d28d80327900dbb8a7980782",
    "counts_jsonl.parquet": "2bc3d11596121db33734802c0ea2ef5ee39ffabdeffc7dc73dfaf037f028eb59",
    "counts_pq.csv": "22d71e8b75e06764d515d72832ea917a2e1bf773d28d80327900dbb8a7980782",
    "counts_pq.parquet": "2bc3d11596121db33734802c0ea2ef5ee39ffabdeffc7dc73dfaf037f028eb59",
    "counts_txt.csv": "22d71e8b75e06764d515d72832ea917a2e1bf773d28d80327900dbb8a7980782",
    "counts_txt.parquet": "2bc3d11596121db33734802c0ea2ef5ee39ffabdeffc7dc73dfaf037f028eb59",
    "forms.csv": "8f76430fc63d0baca7837626a0bd9ceef09fbe12cf2c6258cb0c7d25bd9ee0e6",
    "forms_jsonl.parquet": "931eeac05b0b3f09346c23a3090743d8913e49654508718e99990112a3b87852",
    "forms_pq.parquet": "931eeac05b0b3f09346c23a3090743d8913e49654508718e99990112a3b87852",
    "forms_txt.parquet": "931eeac05b0b3f09346c23a3090743d8913e49654508718e99990112a3b87852",
    # snippets since #17: picked by a seeded hash of the document's text (same choice in every format and split)
    "snippets_jsonl.jsonl": "9670c47ed3375bebfb5488bf1e76394e21b776f76a515c8164e3aa7173502f9c",
    "snippets_pq.jsonl": "9670c47ed3375bebfb5488bf1e76394e21b776f76a515c8164e3aa7173502f9c",
    "snippets_txt.jsonl": "9670c47ed3375bebfb5488bf1e76394e21b776f76a515c8164e3aa7173502f9c",
}


def test_valid_corpora_give_the_same_bytes_as_before(tmp_path):
    (tmp_path / "c.txt").write_text("\n".join(TEXTS) + "\n")
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        for t in TEXTS:
            f.write(json.dumps({"TEXT": t}) + "\n")
    pl.DataFrame({"caption": TEXTS}).write_parquet(tmp_path / "c.parquet")
    vocab = ClassVocabulary.load(classes_file(tmp_path))
    out = tmp_path / "out"
    count_corpora({"txt": str(tmp_path / "c.txt"), "jsonl": str(tmp_path / "c.jsonl.gz"),
                   "pq": str(tmp_path / "c.parquet")}, vocab, out, CountConfig(snippets=3), show_progress=False)
    assert digest(out) == PINNED


def test_a_recount_of_fewer_corpora_removes_the_tables_it_no_longer_lists(recount, run, tmp_path):
    out = recount[0]
    corpus = tmp_path / "only.txt"
    corpus.write_text("a tench\n")
    rc, _, err = run("count", "--classes", str(classes_file(tmp_path)), "--out", str(out), "--quiet",
                     "--corpus", f"a={corpus}")
    assert rc == 0, err
    assert not list(out.glob("*_b.*")) and set(load_counts(out)[0]) == {"a"}
    assert sorted(json.loads((out / "count_meta.json").read_text())["tables"]) == [
        "classes.json", "counts_a.csv", "counts_a.parquet", "forms.csv", "forms_a.parquet", "snippets_a.jsonl"]
