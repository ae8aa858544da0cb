"""Check image bytes before they enter a dataset, and normalise odd modes to RGB.

``inspect_image`` is the one gate every source's bytes pass through. It never raises on bad data: it returns
an :class:`ImageCheck` whose ``skip`` names the reason (``zero_byte``, ``not_an_image``, ``truncated``,
``decompression_bomb``, ...). ``verify="fast"`` reads the header and checks the end-of-image marker (JPEG
``FFD9``, PNG ``IEND``), decoding fully only when that marker is missing; ``verify="full"`` decodes every image.
For ``verify="fast"`` a JPEG's header is parsed here rather than by PIL (~25x faster): the markers up to
the start of scan, sizes and component count from its one SOF0/1/2 segment. Whatever that parser does not
fully understand (another SOF kind such as arithmetic or lossless coding, not 8-bit samples, odd component
counts, MPO, EXIF that PIL would read for the resolution, malformed segments, a missing end marker, images
over the pixel limit, ...) goes to the PIL path, so the result is always what PIL would give.
Images whose mode is not RGB or L (CMYK, palette, LA, RGBA, 16-bit, ...) are flagged ``convert`` with the mode
as reason; :func:`to_rgb_jpeg` turns them into RGB JPEG bytes for writers that embed images.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb threshold
KEEP_MODES = frozenset({"RGB", "L"})
EXT_BY_FORMAT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff",
                 "MPO": "jpg"}
_PNG_END = b"IEND\xaeB`\x82"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _describe(exc: BaseException) -> str:
    """Error text without object addresses, so manifests are identical run to run."""
    return _ADDRESS.sub("", f"{type(exc).__name__}: {exc}")[:200]


@dataclass(frozen=True)
class ImageCheck:
    """Outcome of :func:`inspect_image`."""

    skip: str | None = None  # reason the image must be dropped, or None
    format: str | None = None  # PIL format name
    mode: str | None = None
    width: int = 0
    height: int = 0
    convert: str | None = None  # reason it needs conversion to RGB (e.g. "mode_CMYK"), or None
    detail: str = ""

    @property
    def ext(self) -> str:
        return EXT_BY_FORMAT.get(self.format or "", "jpg")


def _full_decode(data: bytes) -> str | None:
    """Decode all pixels; return an error description or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.load()
    except Exception as exc:  # PIL raises many types for corrupt data
        return _describe(exc)
    return None


_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_MODES = {1: "L", 3: "RGB", 4: "CMYK"}
_JPEG_PLAIN = frozenset({0xC4, 0xDD, 0xFE})  # DHT, DRI, COM: PIL only skips or stores them


def _odd_app(marker: int, data: bytes, start: int, size: int) -> bool:
    """APP segments that PIL reads in ways the fast path does not follow: an MPO index, an ICC chunk too short
    for PIL, Photoshop resources, an Adobe segment too short for PIL."""
    if marker == 0xE2:
        return data.startswith(b"MPF\0", start) or (size < 14 and data.startswith(b"ICC_PROFILE\0", start))
    if marker == 0xED:
        return data.startswith(b"Photoshop 3.0\0", start)
    return marker == 0xEE and size < 7 and data.startswith(b"Adobe", start)


def _jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, components)`` from a baseline, extended or progressive 8-bit Huffman JPEG's markers
    (SOI up to SOS), or None whenever PIL's reading of the header could differ or fail: then PIL decides."""
    n = len(data)
    pos = 2
    sof = -1
    exif = dpi = False
    while True:
        if pos + 4 > n or data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        start = pos + 4
        end = pos + 2 + ((data[pos + 2] << 8) | data[pos + 3])
        if end < start or end > n:  # length below 2, or the segment runs past the data
            return None
        if marker == 0xDA:  # start of scan: the header is complete
            break
        if marker in (0xC0, 0xC1, 0xC2):
            if sof >= 0:
                return None
            sof = start
            sof_end = end
        elif marker == 0xDB:  # quantization tables: PIL rejects a segment whose tables do not fit
            i = start
            while i < end:
                i += 65 if data[i] < 16 else 129
            if i != end:
                return None
        elif 0xE0 <= marker <= 0xEF:
            size = end - start
            if marker == 0xE0 and data.startswith(b"JFIF", start):
                if size < 7:  # PIL fails on a JFIF segment without its version
                    return None
                dpi = dpi or (size >= 12 and data[start + 7] in (1, 2))  # PIL takes the dpi from it
            elif marker == 0xE1:
                exif = exif or data.startswith(b"Exif\0\0", start)
            elif _odd_app(marker, data, start, size):
                return None
        elif marker not in _JPEG_PLAIN:
            return None
        pos = end
    # PIL reads the resolution from EXIF unless JFIF gave it; it fails on a partial component entry
    if sof < 0 or (exif and not dpi) or sof_end - sof < 6 or (sof_end - sof - 6) % 3 or data[sof] != 8:
        return None
    return (data[sof + 3] << 8) | data[sof + 4], (data[sof + 1] << 8) | data[sof + 2], data[sof + 5]


def _fast_jpeg(data: bytes, max_pixels: int) -> ImageCheck | None:
    """The :func:`inspect_image` result of a JPEG with an end marker, from its header alone; None: ask PIL."""
    header = _jpeg_header(data)
    if header is None:
        return None
    w, h, components = header
    mode = _JPEG_MODES.get(components)
    limit = max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, Image.MAX_IMAGE_PIXELS)
    if mode is None or w <= 0 or h <= 0 or w * h > limit:
        return None
    if not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None
    return ImageCheck(format="JPEG", mode=mode, width=w, height=h, convert=None if mode in KEEP_MODES
                      else f"mode_{mode}")


def inspect_image(data: bytes, verify: str = "fast", max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageCheck:
    """Classify image bytes as usable, convertible or skipped (with a reason)."""
    if not data:
        return ImageCheck(skip="zero_byte")
    if verify == "fast" and data.startswith(_JPEG_SOI):
        fast = _fast_jpeg(data, max_pixels)
        if fast is not None:
            return fast
    return _inspect_pil(data, verify, max_pixels)


def _inspect_pil(data: bytes, verify: str, max_pixels: int) -> ImageCheck:
    """:func:`inspect_image` by PIL alone (every format; the reference the JPEG fast path must agree with)."""
    if not data:
        return ImageCheck(skip="zero_byte")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt, mode, (w, h) = img.format, img.mode, img.size
            info_transparency = "transparency" in img.info
            img.close()
    except Image.DecompressionBombError as exc:
        return ImageCheck(skip="decompression_bomb", detail=_describe(exc))
    except (UnidentifiedImageError, SyntaxError, ValueError) as exc:
        return ImageCheck(skip="not_an_image", detail=_describe(exc))
    except OSError as exc:
        return ImageCheck(skip="truncated", detail=_describe(exc))
    if w <= 0 or h <= 0:
        return ImageCheck(skip="not_an_image", format=fmt, detail="zero size")
    if w * h > max_pixels:
        return ImageCheck(skip="decompression_bomb", format=fmt, mode=mode, width=w, height=h,
                          detail=f"{w}x{h} exceeds {max_pixels} pixels")
    tail_ok = ((fmt in ("JPEG", "MPO") and data.rstrip(b"\0").endswith(b"\xff\xd9"))
               or (fmt == "PNG" and data.endswith(_PNG_END)))
    if verify == "full" or not tail_ok:
        err = _full_decode(data)
        if err:
            return ImageCheck(skip="truncated" if "truncated" in err.lower() or "broken" in err.lower()
                              else "undecodable", format=fmt, mode=mode, width=w, height=h, detail=err)
    convert = None
    if mode not in KEEP_MODES or (mode == "L" and info_transparency):
        convert = f"mode_{mode}"
    return ImageCheck(format=fmt, mode=mode, width=w, height=h, convert=convert)


def to_rgb_jpeg(data: bytes, quality: int = 95) -> bytes:
    """Decode any supported image and re-encode it as 8-bit RGB JPEG (alpha composited on white)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.uint32)
            peak = 65535 if img.mode.startswith("I;16") or arr.max() > 255 else 255
            img = Image.fromarray((arr * 255 // max(peak, 1)).astype("uint8"))
        if img.mode == "P":
            img = img.convert("RGBA")
        if img.mode in ("RGBA", "LA", "PA"):
            rgba = img.convert("RGBA")
            bg = Image.new("RGB", rgba.size, (255, 255, 255))
            bg.paste(rgba, mask=rgba.split()[-1])
            img = bg
        out = io.BytesIO()
        img.convert("RGB").save(out, format="JPEG", quality=quality)
        return out.getvalue()
