"""Shared test set-up: fully offline Hugging Face / Ray settings and generated ImageNet-layout trees."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_CACHE = tempfile.mkdtemp(prefix="vlmcd-tests-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ.update({
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    "HF_HOME": os.path.join(_CACHE, "hf"), "HF_DATASETS_CACHE": os.path.join(_CACHE, "hf", "datasets"),
    "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "NO_ALBUMENTATIONS_UPDATE": "1",
    "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_TELEMETRY": "1",
    # the project cache (WordNet copy, lexicon cache) of this test session, not ~/.cache; subprocesses inherit it
    "VLMCD_CACHE": os.environ.get("VLMCD_CACHE") or os.path.join(_CACHE, "vlmcd"),
})

import pytest  # noqa: E402

from builders.synthetic import DEFAULT_WNIDS, add_bad_inputs, make_imagenet_tree  # noqa: E402

# The longest test files (seconds, summed, under `make test`), started first so that two xdist workers finish
# together instead of one waiting on the last slow file.
SLOW_FILES = ("test_blind_released.py", "test_verify_passes.py", "test_blind_solvers.py", "test_pipeline.py",
              "test_golden_outputs.py", "test_cards_write.py", "test_targeted.py", "test_bench_corpora_smoke.py",
              "test_gen2_coverage.py", "test_consumer_lmms_eval.py", "test_count_cli.py", "test_count_startup.py",
              "test_install.py", "test_safety_verify_targeted.py", "test_count_semantics.py",
              "test_safety_builders_ray.py", "test_bench_vlm_smoke.py", "test_wire_build_export.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow files first (in :data:`SLOW_FILES` order), the rest in their collected order."""
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FILES)))


@pytest.fixture(scope="session")
def imagenet_tree(tmp_path_factory):
    """A clean tree: 6 real wnids, 3 train + 2 flat val images each, devkit and LOC csv labels."""
    root = tmp_path_factory.mktemp("imagenet")
    truth = make_imagenet_tree(root, DEFAULT_WNIDS, train_per_class=3, val_per_class=2)
    return root, truth


@pytest.fixture(scope="session")
def dirty_tree(tmp_path_factory):
    """Like imagenet_tree plus one of every bad input kind in train/ (see builders.synthetic.add_bad_inputs)."""
    root = tmp_path_factory.mktemp("imagenet_dirty")
    truth = make_imagenet_tree(root, DEFAULT_WNIDS, train_per_class=3, val_per_class=2)
    bad = add_bad_inputs(root)
    return root, truth, bad


@pytest.fixture(scope="session")
def released_imagewikiqa():
    """The released ImageWikiQA file from ``shared/`` beside the checkout (CI lays a copy there)."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagewikiqa_released.jsonl"
    if not path.is_file():
        pytest.skip(f"released ImageWikiQA file not found at {path} (shared/ is not beside the checkout)")
    return path
