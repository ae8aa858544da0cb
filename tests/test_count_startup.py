"""Start-up of ``python -m corpora_stats count``: a warm count (lexicon cached) of a txt corpus imports
neither NLTK nor pyarrow/numpy nor the libraries only other subcommands use, and writes the same counts as
a count without the cache; a parquet corpus still loads pyarrow, when it is read, and counts the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# used by report/mine/builders/imagewikiqa, by parquet / HF corpora, or by building a lexicon; never needed to
# count a txt corpus with a cached lexicon
NOT_FOR_COUNT = ("nltk", "pyarrow", "numpy", "jinja2", "markupsafe", "rapidfuzz", "matplotlib", "scipy",
                 "sklearn", "datasets", "transformers", "torch", "pandas", "PIL", "httpx", "ray")
LINES = ["a tench swims near two geese", "the computer mouse", "no class here"]
RUN = ("import json, sys; from corpora_stats.__main__ import main; rc = main(sys.argv[1:]); "
       f"print(json.dumps([rc, sorted({{m.split('.')[0] for m in sys.modules}} & set({list(NOT_FOR_COUNT)!r}))]))")


def _count(tmp_path: Path, out: str, env: dict[str, str], *args: str) -> list:
    res = subprocess.run([sys.executable, "-c", RUN, *args, "--out", str(tmp_path / out), "--quiet"], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.splitlines()[-1])


def test_a_warm_count_loads_only_what_counting_needs(tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    cache = {"VLMCD_CACHE": str(tmp_path / "cache")}
    args = ("count", "--corpus", f"tiny={corpus}")
    rc, loaded = _count(tmp_path, "cold", cache, *args)  # builds the lexicon in a child process: NLTK loads there
    assert rc == 0 and loaded == [] and len(list((tmp_path / "cache" / "lexicon").glob("*.json"))) == 1
    rc, loaded = _count(tmp_path, "warm", cache, *args)
    assert rc == 0 and loaded == []
    rc, _ = _count(tmp_path, "uncached", {**cache, "VLMCD_LEXICON_CACHE": "0"}, *args)
    counts = [(tmp_path / run / "counts_tiny.csv").read_text(encoding="utf-8") for run in ("cold", "warm", "uncached")]
    assert counts[0] == counts[1] == counts[2] and "n01440764" in counts[0]


def test_the_cli_module_imports_nothing_heavy():
    """What every ``python -m corpora_stats ...`` (``--help`` and one-line errors included) loads before work."""
    probe = ("import sys, corpora_stats.__main__; "
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(NOT_FOR_COUNT)!r})))")
    res = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_a_parquet_count_still_loads_pyarrow_and_counts_the_same(tmp_path):
    import pyarrow as pa  # heavy: only this test writes a parquet corpus
    import pyarrow.parquet as pq  # heavy: as above

    pq.write_table(pa.table({"text": LINES}), tmp_path / "tiny.parquet")
    (tmp_path / "tiny.txt").write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    cache = {"VLMCD_CACHE": str(tmp_path / "cache")}
    rc, _ = _count(tmp_path, "txt", cache, "count", "--corpus", f"tiny={tmp_path / 'tiny.txt'}")
    assert rc == 0  # that count built and cached the lexicon
    rc, loaded = _count(tmp_path, "parquet", cache, "count", "--corpus", f"tiny={tmp_path / 'tiny.parquet'}")
    assert rc == 0 and "pyarrow" in loaded and "nltk" not in loaded
    counts = [(tmp_path / run / "counts_tiny.csv").read_text(encoding="utf-8") for run in ("txt", "parquet")]
    assert counts[0] == counts[1] and "n01440764" in counts[0]
