"""Check image bytes before they enter a dataset, and normalise odd modes to RGB.

``inspect_image`` is the one gate every source's bytes pass through. It never raises on bad data: it returns
an :class:`ImageCheck` whose ``skip`` names the reason (``zero_byte``, ``not_an_image``, ``truncated``,
``decompression_bomb``, ...). ``verify="fast"`` reads the header and checks the end-of-image marker (JPEG
``FFD9``, PNG ``IEND``), decoding fully only when that marker is missing; ``verify="full"`` decodes every image.
Images whose mode is not RGB or L (CMYK, palette, LA, RGBA, 16-bit, ...) are flagged ``convert`` with the mode
as reason; :func:`to_rgb_jpeg` turns them into RGB JPEG bytes for writers that embed images.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

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


def inspect_image(data: bytes, verify: str = "fast", max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageCheck:
    """Classify image bytes as usable, convertible or skipped (with a reason)."""
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
            import numpy as np

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
