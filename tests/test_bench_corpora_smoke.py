"""The corpora benchmark runs end to end on a tiny corpus and its paper method agrees with the naive loop."""

from __future__ import annotations

from scripts_loader import load_script


def test_bench_corpora_smoke(tmp_path, capsys):
    mod = load_script("bench_corpora")
    assert mod.main(["--lines", "1500", "--naive-sample", "300", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("naive: paper's per-class token loop", "ceiling: polars read + contains_any",
                 "ours: count --method wordnet", "ours: count --method paper"):
        assert name in out
    assert "agree" in out and "goals:" in out
