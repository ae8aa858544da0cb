"""Smoke test of scripts/bench_builders.py: a tiny tree, every contender runs, the table lists them all."""

from __future__ import annotations

import pytest
from scripts_loader import load_script

from vlm_classdata.errors import UserError


def _load_bench():
    return load_script('bench_builders')


def test_bench_smoke(tmp_path, capsys):
    bench = _load_bench()
    tree, work = tmp_path / "tree", tmp_path / "work"
    argv = ["--images", "60", "--classes", "6", "--size", "64x48", "--workers", "1", "--naive-sample", "20",
            "--repeat", "1", "--tree", str(tree), "--work", str(work), "--markdown"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    table = out[out.index("contender"):]
    text_rows = [ln for ln in table.splitlines() if ln and not ln.startswith("|")]
    md_rows = [ln for ln in table.splitlines() if ln.startswith("| ")]
    for name in bench.CONTENDERS:
        row = next(ln for ln in text_rows if ln.startswith(name))
        assert "FAILED" not in row
        assert any(r.startswith(f"| {name} |") for r in md_rows)
    ceiling = next(ln for ln in text_rows if ln.startswith(bench.CEILING))
    assert ceiling.split()[-1] == "100%" and " 60 " in ceiling
    assert "20*" in next(ln for ln in text_rows if ln.startswith(bench.NAIVE))  # the extrapolated sample
    assert "page cache: warmed" in out and "KB/JPEG" in out and "free memory touched" in out
    # the tree was generated with real wnids and is kept (--tree); every run's output was deleted (no --keep)
    assert len(list((tree / "train").glob("n*/*.JPEG"))) == 60
    assert (tree / "train" / "n01440764").is_dir()
    assert list(work.iterdir()) == []
    # a second run reuses the tree instead of regenerating it; a tree of another image size is refused
    assert bench.main(argv) == 0
    assert "tree: reusing" in capsys.readouterr().out
    with pytest.raises(UserError, match="64x48 JPEGs, not 80x60"):
        bench.main([*argv, "--size", "80x60"])


def test_bench_default_images_are_imagenet_like():
    bench = _load_bench()
    assert bench.build_parser().parse_args([]).size == (500, 375)
    assert bench.build_parser().parse_args([]).images == 20_000
    assert bench.noise_range((256, 192)) == bench.NOISE_SIGMA  # the small setting of earlier runs, unchanged
    sizes = [len(bench.noisy_jpeg("n01440764", i, (500, 375))) for i in range(1, 9)]
    assert 85_000 < sum(sizes) / len(sizes) < 140_000  # ~110 KB like ILSVRC-2012 train JPEGs
