"""scripts/bench_corpora.py, the whole-process counting benchmark: a run on a tiny corpus prints every row with
numbers and the goals, its `count` rows leave their tables, its cold row deletes only the lexicon cache in effect,
a parquet corpus holds the same lines, and the CPU of orphaned grandchildren is counted."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from scripts_loader import load_script

from vlm_classdata.wordnet import cache_dir

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_corpora.py"
ROWS = ("naive paper loop (200 lines, extrapolated)*", "polars read + contains_any",
        "count, lexicon cold, 1 worker", "count, lexicon warm, 1 worker", "count, warm, 2 workers",
        "count --method paper, warm, 1 worker")
NUMBER = re.compile(r"^[\d,]+(\.\d+)?×?$")


def bench(args: list[str], cache: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VLMCD_CACHE=str(cache))
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


@pytest.fixture
def private_cache(tmp_path: Path) -> Path:
    """A cache folder holding a copy of the real cache's WordNet, an old lexicon cache and a file beside it."""
    cache = tmp_path / "cache"
    real_wordnet = cache_dir() / "nltk_data"
    if real_wordnet.is_dir():
        shutil.copytree(real_wordnet, cache / "nltk_data")
    (cache / "lexicon" / "old").mkdir(parents=True)
    (cache / "lexicon" / "old" / "entry.bin").write_bytes(b"stale")
    (cache / "keep.txt").write_text("not the benchmark's")
    return cache


def table_rows(stdout: str) -> dict[str, list[str]]:
    """Markdown table rows of the output: contender → its other cells."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] != "contender":
            rows[cells[0]] = cells[1:]
    return rows


def test_whole_run_prints_every_row_and_touches_only_the_cache_in_effect(tmp_path, private_cache):
    real_lexicon = cache_dir() / "lexicon"
    real_existed = real_lexicon.is_dir()
    work = tmp_path / "work"
    work.mkdir()
    # listing WordNet's glosses takes NLTK ~10 s; the benchmark keeps its list in the work folder and reuses it,
    # so a small stand-in list of caption material goes there (the rows do not depend on where it came from)
    subjects = ("a small dog", "an old house", "the river bank", "a red car", "two birds", "a wooden table")
    verbs = ("stands near", "is seen beside", "rests on", "moves toward", "appears behind")
    things = ("the green field", "a stone wall", "the city street", "a quiet lake", "the morning light")
    (work / "wordnet_glosses.txt").write_text("".join(f"{s} {v} {t} in the picture\n" for s in subjects
                                                      for v in verbs for t in things), encoding="utf-8")
    done = bench(["--lines", "2000", "--big-lines", "0", "--naive-sample", "200", "--workdir", str(work)],
                 private_cache)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = table_rows(done.stdout)
    assert len(rows) == len(ROWS)
    for label in ROWS:
        cells = next(cells for name, cells in rows.items() if name.startswith(label))
        assert all(NUMBER.match(c) for c in cells[:5]), (label, cells)     # wall, CPU, MB/CPU-s, × naive, RSS
        assert float(cells[1].replace(",", "")) > 0
    assert NUMBER.match(rows["count, warm, 2 workers"][5])                 # speed-up over 1 worker
    assert rows["count, lexicon warm, 1 worker"][5] == "–"
    assert "agree for all 1,000 classes" in done.stdout                    # --method paper vs the naive loop
    goals = [line for line in done.stdout.splitlines() if line.startswith(("- PASS", "- FAIL"))]
    assert len(goals) == 4
    assert re.search(r"^machine: .+cores.+GiB RAM, Python 3", done.stdout, re.M)
    for key in ("cold", "warm1", "warm2", "paper"):
        assert (work / "runs" / f"{key}-0" / "out" / "counts_c.csv").is_file(), key
    # the cold row deleted the lexicon cache of VLMCD_CACHE, and nothing beside it; never the user's own
    assert not (private_cache / "lexicon" / "old").exists()
    assert (private_cache / "keep.txt").is_file()
    assert real_lexicon.is_dir() or not real_existed

    # the same lines as parquet, from the glosses and forms the first run kept (no WordNet load this time)
    prepared = bench(["--lines", "2000", "--big-lines", "0", "--naive-sample", "200", "--workdir", str(work),
                      "--format", "parquet", "--prepare"], private_cache, timeout=60)
    assert prepared.returncode == 0, prepared.stderr
    info = json.loads(prepared.stdout.splitlines()[-1])
    txt = (work / "captions_v1_s0_2000.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert pl.read_parquet(info["corpus"]["path"])["text"].to_list() == txt
    assert info["corpus"]["text_bytes"] == (work / "captions_v1_s0_2000.txt").stat().st_size
    again = bench(["--lines", "2000", "--big-lines", "0", "--naive-sample", "200", "--workdir", str(work),
                   "--prepare"], private_cache, timeout=60)
    assert again.returncode == 0 and "generating" not in again.stderr      # reused, not written again


BURN_TREE = textwrap.dedent('''
    import multiprocessing as mp, os, time

    def burn(seconds):
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
        return os.getpid()

    if __name__ == "__main__":
        pool = mp.get_context("forkserver").Pool(2)      # workers are grandchildren, via the forkserver
        assert len(set(pool.map(burn, [0.4, 0.4], chunksize=1))) == 2
        if os.fork() == 0:                               # a child that leaves an orphan behind
            if os.fork() == 0:
                time.sleep(0.2)
                burn(0.4)
                os._exit(0)
            os._exit(0)
        pool.terminate()
        os._exit(0)                                      # exits without waiting for anything
''')

MEASURE = textwrap.dedent('''
    import importlib.util, json, resource, subprocess, sys, time
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("bench_corpora", sys.argv[1])
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_corpora"] = bench
    spec.loader.exec_module(bench)
    cmd = [sys.executable, sys.argv[2]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True)
    time.sleep(1.0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    plain = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert bench.become_subreaper()
    run = bench.run_measured(cmd, Path(sys.argv[3]))
    print(json.dumps({"plain": plain, "tree": run.cpu_s, "returncode": run.returncode}))
''')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreapers are Linux's")
def test_cpu_of_forkserver_workers_and_orphans_is_counted(tmp_path):
    (tmp_path / "tree.py").write_text(BURN_TREE)
    done = subprocess.run([sys.executable, "-c", MEASURE, str(SCRIPT), str(tmp_path / "tree.py"),
                           str(tmp_path / "logs")], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["returncode"] == 0
    assert got["plain"] < 0.4          # the tree really hides its burn from RUSAGE_CHILDREN of a plain parent
    assert got["tree"] >= 1.2          # 3 × 0.4 s burned by two pool workers and one orphan, all counted


@pytest.mark.parametrize("args, says", [
    (["--lines", "0"], "--lines must be at least 1"),
    (["--lines", "10", "--naive-sample", "20"], "--naive-sample must be between 1 and --lines"),
    (["--big-lines", "-1"], "--big-lines must be 0"),
    (["--repeat", "0"], "--repeat must be at least 1"),
    (["--format", "csv"], "invalid choice"),
    (["--lines", "many"], "invalid int value"),
    (["--workdir", "FILE"], "is not a folder"),
])
def test_bad_options_are_one_line(tmp_path, args, says):
    (tmp_path / "FILE").write_text("x")
    args = [str(tmp_path / "FILE") if a == "FILE" else a for a in args]
    done = bench(args, tmp_path / "cache", timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: ") and says in done.stderr
    assert not (tmp_path / "cache").exists()


def test_clear_lexicon_cache_removes_that_folder_only(tmp_path, monkeypatch):
    mod = load_script("bench_corpora")
    monkeypatch.setenv("VLMCD_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "lexicon" / "a").mkdir(parents=True)
    (tmp_path / "cache" / "lexicon" / "a" / "forms.bin").write_bytes(b"x")
    (tmp_path / "cache" / "nltk_data").mkdir()
    assert mod.clear_lexicon_cache() == tmp_path / "cache" / "lexicon"
    assert not (tmp_path / "cache" / "lexicon").exists() and (tmp_path / "cache" / "nltk_data").is_dir()
    mod.clear_lexicon_cache()                                  # nothing there: nothing to do
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "precious.txt").write_text("x")
    (tmp_path / "cache" / "lexicon").symlink_to(tmp_path / "elsewhere")
    mod.clear_lexicon_cache()                                  # a link is removed as a link
    assert not (tmp_path / "cache" / "lexicon").exists() and (tmp_path / "elsewhere" / "precious.txt").is_file()


def test_captions_are_seeded_and_carry_a_form_in_about_30_percent():
    mod = load_script("bench_corpora")
    glosses = ["a small gray bird that sings in the early morning light over the quiet hills"]
    forms = ["tiger shark", "goldfish"]
    lines = list(mod.caption_lines(glosses, forms, 5000))
    assert lines == list(mod.caption_lines(glosses, forms, 5000))
    assert lines != list(mod.caption_lines(glosses, forms, 5000, seed=1))
    plain = [ln.lower().replace("-", " ") for ln in lines]
    with_form = sum(any(f in ln for f in forms) for ln in plain)
    assert 0.27 < with_form / len(lines) < 0.33
    assert any("Tiger Shark" in ln for ln in lines) and any("tiger-shark" in ln.lower() for ln in lines)
    assert {len(ln.split()) for ln, p in zip(lines, plain, strict=True) if not any(f in p for f in forms)} \
        == set(range(8, 12))


def test_table_and_goals_are_computed_from_the_runs(tmp_path):
    mod = load_script("bench_corpora")
    corpus = mod.Corpus(tmp_path / "c.txt", 1_000_000, 44_700_000, "txt")
    big = mod.Corpus(tmp_path / "big.txt", 10_000_000, 447_000_000, "txt")
    prepared = mod.Prepared(corpus, big, tmp_path / "names", tmp_path / "forms", tmp_path / "sample")
    (tmp_path / "forms").write_text("goldfish\ntiger shark\n")
    rows = mod.contenders(prepared, 5000)

    def run(wall: float, cpu: float, rss: float, **report: object) -> object:
        return mod.Run(wall, cpu, rss, 0, tmp_path / "out", tmp_path / "err", report=dict(report))

    # naive: 5,000 of 1M lines in a 5 s loop → 1,000 s of loop, plus the 0.5 s around it
    rows[0].runs = [run(5.6, 5.5, 30, lines=5000, loop_cpu_s=5.0, loop_wall_s=5.1)]
    for row, wall, cpu, rss in zip(rows[1:], (0.3, 3.0, 0.4, 0.5, 0.3, 4.0, 2.0),
                                   (0.6, 3.0, 0.4, 0.6, 0.3, 4.0, 4.1), (80, 290, 150, 160, 120, 299, 310),
                                   strict=True):
        row.runs = [run(wall, cpu, rss)]
    lines, numbers = mod.table(rows)
    assert numbers["naive"]["cpu"] == pytest.approx(0.5 + 1000.0)
    assert numbers["warm1"]["mb_per_cpu"] == pytest.approx(111.75)
    assert numbers["warm1"]["x_naive"] == pytest.approx(1000.5 / 0.4)
    assert numbers["big1"]["x_naive"] == pytest.approx(1000.5 * 10 / 4.0)
    assert numbers["warm2"]["speedup"] == pytest.approx(0.8) and numbers["big2"]["speedup"] == pytest.approx(2.0)
    assert len(lines) == 2 + 8 and "| count, warm, 2 workers | 0.50 | 0.60 | 74.5 | 1,668× | 160 | 0.80× |" in lines
    goals = mod.goal_lines(rows, numbers, corpus.lines)
    assert goals[0].startswith("- PASS") and "111.8" in goals[0]
    assert goals[1].startswith("- PASS") and "2,501×" in goals[1]
    assert goals[2].startswith("- FAIL") and "310 MB (count, warm, 2 workers, 10,000,000 lines)" in goals[2]
    assert goals[3].startswith("- FAIL") and "0.80× at 1,000,000 lines; 2.00× at 10,000,000 lines" in goals[3]
    rows[4].runs, rows[4].failures = [], ["exit 1: boom"]
    lines, numbers = mod.table(rows)
    assert "| count, warm, 2 workers | failed | | | | | |" in lines
    assert mod.goal_lines(rows, numbers, corpus.lines)[3].startswith("- PASS")   # only the 10M pair is left
