"""Embedded default sample: a tiny ImageNet-layout tree cut from public-domain / CC0 photos.

``SAMPLE_ROOT`` holds ``train/<wnid>/<wnid>_<n>.JPEG``, flat ``val/ILSVRC2012_val_XXXXXXXX.JPEG`` (real val
file names of the same classes) and ``LOC_val_solution.csv``. Provenance and licences: ``README.md`` next
to this file; regenerate with ``scripts/make_sample.py``.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_ROOT: Path = Path(__file__).resolve().parent / "imagenet"


def sample_wnids() -> list[str]:
    """The sample's class ids (ImageNet-1k wnids), sorted: the folder names under ``SAMPLE_ROOT/train``."""
    return sorted(p.name for p in (SAMPLE_ROOT / "train").iterdir() if p.is_dir())
