"""Smoke test of scripts/bench_vlm.py: the tiny preset runs end to end offline, the table has every row, the
shared-vs-naive and batched-vs-batch-1 checks pass; the in-memory build and the 7B preset's config are right."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from scripts_loader import load_script

from vlm_classdata.vlm.tiny import build_tokenizer, llava_config

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_vlm.py"


def _load_bench():
    return load_script('bench_vlm')


def test_bench_vlm_tiny_runs_and_checks_agree(tmp_path):
    bench = _load_bench()
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # tests/conftest.py; passed on to the script
    argv = [sys.executable, str(SCRIPT), "--preset", "tiny", "--images", "2", "--naive-classes", "10",
            "--gen-images", "6", "--max-new-tokens", "4", "--batch-size", "3", "--threads", "1",
            "--work", str(tmp_path), "--markdown"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    table = out[out.index("\ncontender") + 1:]
    text_rows = [ln for ln in table.splitlines() if ln and not ln.startswith("|")]
    md_rows = [ln for ln in table.splitlines() if ln.startswith("| ")]
    assert md_rows[0] == "| " + " | ".join(bench.HEADERS) + " |"
    for name in bench.ROWS:
        row = next(ln for ln in text_rows if ln.startswith(name))
        assert any(r.startswith(f"| {name} |") for r in md_rows)
        assert row.split()[len(name.split())] == ("2" if name.startswith(("score", "ceiling: prefill only, b"))
                                                  else "6")  # images column
    naive = next(ln for ln in text_rows if ln.startswith(bench.SCORE_NAIVE))
    assert "1000 classes (10 timed)" in naive and "*" in naive  # extrapolated from the timed subset
    shared = next(ln for ln in text_rows if ln.startswith(bench.SCORE_SHARED))
    assert "1000 classes" in shared and "*" not in shared
    assert "n/a" in next(ln for ln in text_rows if ln.startswith(bench.SCORE_CEILING))  # no GPU peak on CPU
    # both agreement checks ran and passed (the exit status says the same)
    assert "agreement, shared vs naive on 20 (image, class) pairs" in out
    assert "→ ok (limit 0.001 in fp32)" in out
    assert "generation: 0 of 6 replies differ between batched and batch-1 → ok" in out
    assert "goals: shared ≥ 20× naive" in out and "batched generation ≥ 3× batch-1" in out
    # the model is the tiny preset, saved and loaded back through VLM.load
    assert "CLIP ViT 32/8 (16 image tokens)" in out and "loaded with VLM.load" in out
    assert (tmp_path / "tiny" / "model.safetensors").is_file()


def test_in_memory_build_equals_saved_and_7b_config(tmp_path):
    """The in-memory path (used for llava-1.5-7b on the GPU) builds the same model as save + VLM.load, and the
    llava-1.5-7b preset has LLaVA-1.5-7B's size (checked on the meta device: nothing is allocated)."""
    bench = _load_bench()
    from transformers import AutoModelForImageTextToText  # heavy: this test only

    saved, how_saved = bench.build_vlm("tiny", "cpu", None, tmp_path / "disk")
    built, how_built = bench.build_vlm("tiny", "cpu", None, tmp_path / "mem", in_memory=True)
    assert "VLM.load" in how_saved and "in memory" in how_built and built.device == "cpu"
    image = bench.make_images(1, 0)[0]
    names = ["tench", "goldfish", "great white shark"]
    assert built.score(image, "What is it?", names) == saved.score(image, "What is it?", names)

    with torch.device("meta"):
        config = llava_config(build_tokenizer(), **bench.PRESETS["llava-1.5-7b"]["args"])
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    assert sum(p.numel() for p in model.parameters()) == 7_062_902_784  # LLaVA-1.5-7B with a 32000 vocab
    assert config.vision_feature_layer == -2 and config.vision_config.num_hidden_layers == 24
    # ~2 x 6.5 B text weights x 600 tokens + the vision tower + attention
    assert 8.0e12 < bench.prefill_flops(model, 600) < 8.5e12
