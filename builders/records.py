"""The two plain objects data flows through: a cheap reference found by scanning, and a loaded record.

source.scan() ─► SampleRef ─► source.read() + vlm_classdata.images.inspect_image ─► Record ─► format ─► writer
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field

_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-]")


def safe_key(text: str) -> str:
    """A sample key usable everywhere: no dots (WebDataset splits on them), no slashes or spaces."""
    return _KEY_BAD.sub("_", text)


def sample_rng(seed: int, *parts: str) -> random.Random:
    """A random generator that depends only on the seed and the given parts (never on order or workers)."""
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True, slots=True)
class SampleRef:
    """One input found by a source's scan: no image bytes yet.

    ``locator`` tells the source how to read it (a path relative to the root, ``shard.tar#key``,
    ``file.parquet#row``). ``skip`` is set when the scan already knows the input is unusable
    (e.g. ``unknown_class``); such refs are counted in the manifest and never read.
    """

    key: str
    split: str
    class_id: str | None
    locator: str
    skip: str | None = None
    detail: str = ""


@dataclass
class Record:
    """A loaded, checked sample: what every format consumes. Formats never read files."""

    key: str
    split: str
    class_id: str
    label: int  # index of the class in the build's vocabulary
    class_name: str  # unique display name
    image_bytes: bytes  # as found, or converted to RGB JPEG (see ``converted``)
    image_ext: str  # "jpg", "png", ...
    image_path: str | None  # path relative to the image root, for formats that reference files
    width: int = 0
    height: int = 0
    converted: str | None = None  # reason the bytes were re-encoded (e.g. "mode_CMYK"), else None
    meta: dict = field(default_factory=dict)
