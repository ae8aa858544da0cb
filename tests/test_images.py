"""vlm_classdata.images: the JPEG fast path of inspect_image gives exactly PIL's result on every kind of input.

The reference is ``vlm_classdata.images._inspect_pil`` (the PIL-only path). Generated JPEGs of every mode and encoder
option, the bad inputs of builders.synthetic.add_bad_inputs, and thousands of corrupted variants (byte
mutations and truncations of the header) must all give equal ImageChecks; the fast path must really be taken
for ordinary JPEGs (progressive, grayscale, CMYK, EXIF with a JFIF resolution, ICC, comments).
"""

from __future__ import annotations

import io
import random
import warnings

import pytest
from PIL import Image

from builders.synthetic import add_bad_inputs, jpeg_bytes
from vlm_classdata import images
from vlm_classdata.images import DEFAULT_MAX_PIXELS, ImageCheck, inspect_image

FAKE_ICC = b"\0\0\2\x0cfake-icc-profile-payload" * 20


def reference(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageCheck:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return images._inspect_pil(data, "fast", max_pixels)


def fast(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageCheck:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return inspect_image(data, "fast", max_pixels)


def took_fast_path(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> bool:
    return images._fast_jpeg(data, max_pixels) is not None


def encode(img: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", **options)
    return out.getvalue()


def exif_bytes(dpi: bool) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"  # Make
    exif[0x0112] = 6  # Orientation
    if dpi:
        exif[0x0128] = 2  # ResolutionUnit: inch
        exif[0x011A] = 300.0  # XResolution
    return exif.tobytes()


def generated_jpegs() -> dict[str, bytes]:
    """JPEGs from PIL's encoder in every mode and with the options that add or change header segments."""
    rng = random.Random(7)
    base = Image.open(io.BytesIO(jpeg_bytes(rng, (61, 47), quality=95))).convert("RGB")
    out: dict[str, bytes] = {}
    for mode in ("RGB", "L", "CMYK"):
        img = base.convert(mode)
        out[f"{mode}"] = encode(img)
        out[f"{mode}_progressive"] = encode(img, progressive=True)
        out[f"{mode}_optimize_q40"] = encode(img, optimize=True, quality=40)
        out[f"{mode}_icc"] = encode(img, icc_profile=FAKE_ICC)
        out[f"{mode}_comment"] = encode(img, comment=b"a comment")
        out[f"{mode}_dpi"] = encode(img, dpi=(300, 300))
        out[f"{mode}_exif"] = encode(img, exif=exif_bytes(dpi=True))
        out[f"{mode}_exif_nodpi"] = encode(img, exif=exif_bytes(dpi=False))
        out[f"{mode}_exif_jfif_dpi"] = encode(img, exif=exif_bytes(dpi=True), dpi=(96, 96))
        out[f"{mode}_restart"] = encode(img, restart_marker_blocks=2)
    for sub in (0, 1, 2):
        out[f"RGB_subsampling{sub}"] = encode(base, subsampling=sub)
    out["RGB_q100_big_icc"] = encode(base, quality=100, icc_profile=FAKE_ICC * 400)  # ICC over several APP2
    out["L_1x1"] = encode(Image.new("L", (1, 1)))
    out["RGB_wide"] = encode(Image.new("RGB", (3000, 2), (1, 2, 3)))
    return out


def set_sof_size(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with other frame dimensions in its SOF segment (pixels are not decoded by 'fast')."""
    pos = 2
    while data[pos + 1] not in (0xC0, 0xC1, 0xC2):
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return data[:pos + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[pos + 9:]


def header_end(data: bytes) -> int:
    """Offset just past the SOS segment (where the entropy-coded data starts)."""
    pos = 2
    while data[pos + 1] != 0xDA:
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")


@pytest.fixture(scope="module")
def jpegs() -> dict[str, bytes]:
    return generated_jpegs()


def test_generated_jpegs_match_pil_and_take_the_fast_path(jpegs: dict[str, bytes]) -> None:
    for name, data in jpegs.items():
        assert fast(data) == reference(data), name
        assert fast(data).skip is None and fast(data).format == "JPEG", name
    # every ordinary JPEG is answered without PIL; EXIF without a JFIF resolution is left to PIL (it reads EXIF)
    by_path = {name: took_fast_path(data) for name, data in jpegs.items()}
    assert {n for n, f in by_path.items() if not f} == {"RGB_exif", "RGB_exif_nodpi", "L_exif", "L_exif_nodpi",
                                                        "CMYK_exif", "CMYK_exif_nodpi"}
    assert fast(jpegs["RGB_progressive"]) == ImageCheck(format="JPEG", mode="RGB", width=61, height=47)
    assert fast(jpegs["L"]).mode == "L" and fast(jpegs["L"]).convert is None
    assert fast(jpegs["CMYK_progressive"]).convert == "mode_CMYK"
    assert fast(jpegs["RGB_wide"]).width == 3000 and fast(jpegs["L_1x1"]).height == 1


def test_bad_inputs_match_pil(tmp_path) -> None:
    add_bad_inputs(tmp_path)
    checked = 0
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert fast(data) == reference(data), path.name
            checked += 1
    assert checked >= 10
    cmyk = next(p for p in tmp_path.rglob("*_odd_cmyk.JPEG")).read_bytes()
    assert fast(cmyk).convert == "mode_CMYK" and took_fast_path(cmyk)
    trunc = next(p for p in tmp_path.rglob("*_bad_trunc.JPEG")).read_bytes()
    assert fast(trunc).skip == "truncated" and not took_fast_path(trunc)


def test_pixel_limits_still_apply(jpegs: dict[str, bytes]) -> None:
    data = jpegs["RGB"]
    small_limit = 61 * 47 - 1
    assert fast(data, small_limit) == reference(data, small_limit)
    assert fast(data, small_limit).skip == "decompression_bomb"
    for w, h in ((10_000, 9_000), (20_000, 20_000), (65_535, 65_535)):  # over the limit; over PIL's own 2x
        bomb = set_sof_size(data, w, h)
        assert fast(bomb) == reference(bomb), (w, h)
        assert fast(bomb).skip == "decompression_bomb"
    zero = set_sof_size(data, 0, 47)
    assert fast(zero) == reference(zero) and fast(zero).skip == "not_an_image"


def test_other_coding_processes_and_precisions_go_to_pil(jpegs: dict[str, bytes]) -> None:
    data = jpegs["RGB"]
    sof = data.index(b"\xff\xc0")
    for marker in (0xC3, 0xC5, 0xC9, 0xCA, 0xCB, 0xCD):  # lossless, hierarchical, arithmetic
        variant = data[:sof + 1] + bytes([marker]) + data[sof + 2:]
        assert not took_fast_path(variant)
        assert fast(variant) == reference(variant), hex(marker)
    twelve_bit = data[:sof + 4] + b"\x0c" + data[sof + 5:]
    assert not took_fast_path(twelve_bit) and fast(twelve_bit) == reference(twelve_bit)
    assert fast(twelve_bit).skip is not None
    no_sof = data[:sof] + data[sof + 2 + int.from_bytes(data[sof + 2:sof + 4], "big"):]
    assert not took_fast_path(no_sof) and fast(no_sof) == reference(no_sof)


def test_corrupted_headers_and_truncations_match_pil(jpegs: dict[str, bytes]) -> None:
    rng = random.Random(3)
    cases = 0
    for name in ("RGB", "L_progressive", "CMYK", "RGB_exif_jfif_dpi", "RGB_icc", "RGB_restart"):
        data = jpegs[name]
        end = header_end(data)
        for pos in range(end):
            for value in {0x00, 0xFF, data[pos] ^ 0x80, (data[pos] + 1) & 0xFF, rng.randrange(256)}:
                if value == data[pos]:
                    continue
                variant = data[:pos] + bytes([value]) + data[pos + 1:]
                assert fast(variant) == reference(variant), (name, pos, value)
                cases += 1
        for cut in list(range(0, end + 8)) + [len(data) - 2, len(data) - 1]:
            variant = data[:cut]
            assert fast(variant) == reference(variant), (name, "cut", cut)
            cases += 1
        for tail in (b"\0\0\0", b"junk after the end", b"\xff\xd9\0"):
            variant = data + tail
            assert fast(variant) == reference(variant), (name, tail)
    assert cases > 10_000


def with_segment(data: bytes, marker: int, payload: bytes, after_sof: bool = False) -> bytes:
    """The JPEG with one more marker segment, right after SOI (or right after the SOF segment)."""
    pos = 2
    if after_sof:
        while data[pos + 1] not in (0xC0, 0xC1, 0xC2):
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    segment = bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload
    return data[:pos] + segment + data[pos:]


def test_unusual_segments_match_pil(jpegs: dict[str, bytes]) -> None:
    data = jpegs["RGB"]
    sof = data.index(b"\xff\xc0")
    sof_len = int.from_bytes(data[sof + 2:sof + 4], "big")
    partial_component = (data[:sof + 2] + (sof_len + 1).to_bytes(2, "big") + data[sof + 4:sof + 2 + sof_len]
                         + b"\x04" + data[sof + 2 + sof_len:])
    variants = {
        "partial SOF component": partial_component,
        "short JFIF": with_segment(data, 0xE0, b"JFIF\0"),
        "JFIF dpi + EXIF": with_segment(with_segment(data, 0xE1, b"Exif\0\0" + exif_bytes(dpi=True)), 0xE0,
                                        b"JFIF\0\1\1\1\0\x60\0\x60\0\0"),
        "EXIF, broken": with_segment(data, 0xE1, b"Exif\0\0MM\0*garbage"),
        "Photoshop, truncated resource": with_segment(data, 0xED, b"Photoshop 3.0\x008BIM\x04\x04"),
        "Photoshop, fine": with_segment(data, 0xED, b"Photoshop 3.0\x008BIM\x03\xed\0\0\0\0\0\0"),
        "short Adobe": with_segment(data, 0xEE, b"Adobe"),
        "Adobe": with_segment(data, 0xEE, b"Adobe\0\x64\0\0\0\0\1"),
        "short ICC chunk": with_segment(data, 0xE2, b"ICC_PROFILE\0"),
        "MPF": with_segment(data, 0xE2, b"MPF\0II*\0\x08\0\0\0"),
        "XMP": with_segment(data, 0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>"),
        "APP15": with_segment(data, 0xEF, b"anything"),
        "DRI": with_segment(data, 0xDD, b"\0\0"),
        "two SOF": with_segment(data, 0xC0, data[sof + 4:sof + 2 + sof_len], after_sof=True),
        "DNL": with_segment(data, 0xDC, b"\0\x10"),
        "empty DQT": with_segment(data, 0xDB, b""),
        "fill byte": data[:2] + b"\xff" + data[2:],
    }
    for name, variant in variants.items():
        assert fast(variant) == reference(variant), name
    assert took_fast_path(variants["JFIF dpi + EXIF"]) and took_fast_path(variants["Adobe"])
    assert not took_fast_path(variants["Photoshop, fine"]) and not took_fast_path(variants["MPF"])
    assert reference(variants["short JFIF"]).skip is not None  # PIL rejects these: the fast path must not pass them
    assert reference(variants["partial SOF component"]).skip is not None
