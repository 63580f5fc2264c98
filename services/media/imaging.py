"""The image pipeline: uploaded bytes in, clean re-encoded images out, or an ``ImageRejected``
naming the reason. Synchronous and CPU-bound: callers run it in a worker thread, bounded.

Order of checks (cheap before expensive, nothing decoded before the header is judged):

1. size (``max_bytes``) and emptiness;
2. the type from the magic bytes (JPEG, PNG, WebP only; the filename is never looked at) and
   the declared part ``Content-Type``, which must agree with them;
3. the container structure walked by hand: data after the image's end (a polyglot: a JPEG with
   a ZIP, HTML or script appended) and the total size of metadata chunks/segments;
4. ``Image.open(formats=[the sniffed one])`` reads the header only: pixel count (decompression
   bombs), longest side and aspect ratio (1 x 100000 strips), number of frames;
5. a full decode (``load()``: ``verify()`` passes truncated files), EXIF orientation applied,
   colour converted to sRGB, then everything else dropped by re-encoding: EXIF (GPS), XMP, text
   chunks, ICC profiles, comments, further animation frames.

Thumbnails (512 and 128 px WebP) are resampled from the decoded original with ``reducing_gap``
(``reduce()`` first, then Lanczos). ``draft()`` is not used: the original has to be decoded at
full size anyway to be re-encoded, so a second, draft-reduced JPEG decode would add CPU without
lowering the peak memory, which is one full-size decode per slot either way.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageCms, ImageOps

from services.shared.errors import (
    ImageMissing,
    ImageRejected,
    ImageTooLarge,
    UnsafeImage,
    UnsupportedImage,
)

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSION = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
THUMBNAIL_SIZES = (512, 128)
# Declared part types that say nothing about the format (generic clients send these).
UNDECLARED = {"", "application/octet-stream"}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 5 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = 12_000
    max_aspect: float = 20.0
    max_frames: int = 50
    max_metadata_bytes: int = 512 * 1024


@dataclass(frozen=True)
class Rendition:
    name: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class ProcessedImage:
    """The re-encoded original and its WebP thumbnails, named by the original's SHA-256."""

    digest: str
    format: str
    width: int
    height: int
    renditions: tuple[Rendition, ...]

    @property
    def name(self) -> str:
        return self.renditions[0].name


def sniff(head: bytes) -> str | None:
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _describe(head: bytes) -> str:
    """A name for a refused format, for the problem detail."""
    text = head[:256].lstrip().lower()
    for magic, name in (
        (b"GIF8", "GIF"),
        (b"BM", "BMP"),
        (b"II*\x00", "TIFF"),
        (b"MM\x00*", "TIFF"),
        (b"\x00\x00\x00\x0cjxl", "JPEG XL"),
        (b"PK\x03\x04", "ZIP"),
        (b"%PDF", "PDF"),
    ):
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "AVIF" if brand.startswith(b"avi") else "HEIC/HEIF"
    if text.startswith(b"<?xml") or b"<svg" in text:
        return "SVG"
    if text.startswith(b"<"):
        return "HTML/XML"
    return "an unrecognised format"


def _corrupt(fmt: str, why: str) -> UnsafeImage:
    return UnsafeImage(f"The {fmt} image is corrupt: {why}.", "corrupt")


def _truncated(fmt: str) -> UnsafeImage:
    return UnsafeImage(f"The {fmt} image is truncated.", "truncated")


def _jpeg_layout(data: bytes) -> tuple[int, int]:
    """(offset just after EOI, bytes of APPn/COM segments)."""
    n, pos, metadata = len(data), 2, 0
    while True:
        if pos >= n:
            raise _truncated("JPEG")
        if data[pos] != 0xFF:
            raise _corrupt("JPEG", "a segment does not start with a marker")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise _truncated("JPEG")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos, metadata
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue
        if pos + 2 > n:
            raise _truncated("JPEG")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2:
            raise _corrupt("JPEG", "a segment has an impossible length")
        if pos + length > n:
            raise _truncated("JPEG")
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            metadata += length
        pos += length
        if marker == 0xDA:  # entropy-coded data runs to the next real marker
            while True:
                i = data.find(b"\xff", pos)
                if i < 0 or i + 1 >= n:
                    raise _truncated("JPEG")
                following = data[i + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    pos = i + 2
                elif following == 0xFF:
                    pos = i + 1
                else:
                    pos = i
                    break


# Small ancillary PNG chunks that describe pixels (or animation) rather than carry metadata.
_PNG_PIXEL_CHUNKS = {
    b"tRNS",
    b"gAMA",
    b"cHRM",
    b"sRGB",
    b"pHYs",
    b"bKGD",
    b"sBIT",
    b"hIST",
    b"acTL",
    b"fcTL",
    b"fdAT",
    b"cICP",
}


def _png_layout(data: bytes) -> tuple[int, int]:
    """(offset just after IEND, bytes of metadata chunks: text, EXIF, ICC, unknown)."""
    n, pos, metadata = len(data), 8, 0
    while True:
        if pos + 8 > n:
            raise _truncated("PNG")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if length > 0x7FFFFFFF or not kind.isalpha():
            raise _corrupt("PNG", "a chunk header is invalid")
        end = pos + 12 + length
        if end > n:
            raise _truncated("PNG")
        if kind[:1].islower() and kind not in _PNG_PIXEL_CHUNKS:
            metadata += length
        pos = end
        if kind == b"IEND":
            return pos, metadata


def _webp_layout(data: bytes) -> tuple[int, int]:
    """(end of the RIFF container, bytes of ICCP/EXIF/XMP chunks)."""
    n = len(data)
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > n:
        raise _truncated("WebP")
    pos, metadata = 12, 0
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        nxt = pos + 8 + size + (size & 1)
        if nxt > end + (size & 1):
            raise _corrupt("WebP", "a chunk runs past the end of the file")
        if kind in (b"ICCP", b"EXIF", b"XMP "):
            metadata += size
        pos = nxt
    return end, metadata


_LAYOUT: dict[str, Callable[[bytes], tuple[int, int]]] = {
    "JPEG": _jpeg_layout,
    "PNG": _png_layout,
    "WEBP": _webp_layout,
}


def check_declared(declared: str | None, fmt: str) -> None:
    media = (declared or "").split(";")[0].strip().lower()
    media = ALIASES.get(media, media)
    if media not in UNDECLARED and media != MIME[fmt]:
        raise UnsupportedImage(
            f"The file part declares {media} but its bytes are {MIME[fmt]}.", "type_mismatch"
        )


def inspect(data: bytes, declared: str | None, limits: ImageLimits) -> str:
    """Steps 1-3: the format, or the reason it is refused. No pixels are decoded."""
    if not data:
        raise ImageMissing("The file part is empty.", "empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"The image exceeds the limit of {limits.max_bytes} bytes.", "too_large"
        )
    fmt = sniff(data[:16])
    if fmt is None:
        raise UnsupportedImage(
            f"Only JPEG, PNG and WebP images are accepted; the file is {_describe(data[:512])}.",
            "unsupported_type",
        )
    check_declared(declared, fmt)
    end, metadata = _LAYOUT[fmt](data)
    if data[end:].strip(b"\x00"):
        raise UnsafeImage(
            f"{len(data) - end} bytes follow the end of the {fmt} image; files with appended "
            "data (polyglots) are refused.",
            "trailing_data",
        )
    if metadata > limits.max_metadata_bytes:
        raise UnsafeImage(
            f"The image carries {metadata} bytes of metadata; at most "
            f"{limits.max_metadata_bytes} are accepted.",
            "metadata_too_large",
        )
    return fmt


def check_geometry(width: int, height: int, frames: int, limits: ImageLimits) -> None:
    """Step 4, from the header alone."""
    if width < 1 or height < 1:
        raise UnsafeImage("The image has no pixels.", "corrupt")
    if width * height > limits.max_pixels:
        raise UnsafeImage(
            f"The image is {width}x{height} ({width * height} pixels); at most "
            f"{limits.max_pixels} pixels are accepted.",
            "too_many_pixels",
        )
    if max(width, height) > limits.max_side:
        raise UnsafeImage(
            f"The image is {width}x{height}; no side may exceed {limits.max_side} pixels.",
            "too_wide",
        )
    if max(width, height) / min(width, height) > limits.max_aspect:
        raise UnsafeImage(
            f"The image is {width}x{height}; the aspect ratio may not exceed "
            f"{limits.max_aspect:g}:1.",
            "aspect_ratio",
        )
    if frames > limits.max_frames:
        raise UnsafeImage(
            f"The image has {frames} frames; at most {limits.max_frames} are accepted.",
            "too_many_frames",
        )


def _to_srgb(im: Image.Image) -> Image.Image:
    """Pixels in sRGB (the ICC profile is dropped with the rest of the metadata)."""
    icc = im.info.get("icc_profile")
    if im.mode == "CMYK" or (icc and im.mode in ("RGB", "RGBA")):
        target = "RGBA" if im.mode == "RGBA" else "RGB"
        if icc:
            try:
                source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                srgb = ImageCms.createProfile("sRGB")
                converted = ImageCms.profileToProfile(im, source, srgb, outputMode=target)
                if converted is not None:
                    return converted
            except (ImageCms.PyCMSError, OSError, ValueError):
                pass  # an unusable profile: the pixels are taken as they are
        if im.mode == "CMYK":
            return im.convert("RGB")
    return im


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)


def _encode(im: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        im.save(out, "JPEG", quality=90)
    elif fmt == "PNG":
        if im.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
            im = im.convert("RGBA" if _has_alpha(im) else "RGB")
        transparency = im.info.get("transparency") if im.mode in ("P", "L", "RGB") else None
        extra = {"transparency": transparency} if transparency is not None else {}
        im.save(out, "PNG", compress_level=6, **extra)
    else:
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if _has_alpha(im) else "RGB")
        im.save(out, "WEBP", quality=85, method=4)
    return out.getvalue()


def _thumbnail(im: Image.Image, side: int) -> Image.Image:
    if im.mode not in ("RGB", "RGBA", "L"):
        im = im.convert("RGBA" if _has_alpha(im) else "RGB")
    scale = min(side / im.width, side / im.height, 1.0)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def process(data: bytes, declared: str | None, limits: ImageLimits) -> ProcessedImage:
    """Validate and re-encode one upload. Raises an ImageRejected subclass for every bad file."""
    fmt = inspect(data, declared, limits)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            check_geometry(im.width, im.height, getattr(im, "n_frames", 1), limits)
            im.load()  # the full decode: truncated or corrupt data fails here, not in verify()
            ImageOps.exif_transpose(im, in_place=True)
            clean = _to_srgb(im)
            # Only pixels survive: no EXIF/GPS, XMP, text chunks, comments or ICC profile.
            transparency = clean.info.get("transparency")
            clean.info.clear()
            if transparency is not None:
                clean.info["transparency"] = transparency
            width, height = clean.size
            original = _encode(clean, fmt)
            thumbs: list[Image.Image] = []
            source = clean
            for side in THUMBNAIL_SIZES:  # 512 from the original, 128 from the 512
                source = _thumbnail(source, side)
                thumbs.append(source)
            del clean
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnsafeImage(
            f"The image declares more than {limits.max_pixels} pixels.", "too_many_pixels"
        ) from None
    except (ImageRejected, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure on hostile input is a bad file
        # (OSError, SyntaxError, ValueError, EOFError, struct.error, ... from Pillow's plugins)
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise UnsafeImage(f"The {fmt} image cannot be decoded ({reason}).", reason) from None
    digest = hashlib.sha256(original).hexdigest()
    renditions = [Rendition(f"{digest}.{EXTENSION[fmt]}", original, MIME[fmt])]
    for side, thumb in zip(THUMBNAIL_SIZES, thumbs, strict=True):
        renditions.append(Rendition(f"{digest}-{side}.webp", _encode(thumb, "WEBP"), MIME["WEBP"]))
    return ProcessedImage(digest, fmt, width, height, tuple(renditions))


def read_limited(fp: IO[bytes], limit: int) -> bytes:
    """At most ``limit + 1`` bytes: enough to tell that a file is too large."""
    fp.seek(0)
    return fp.read(limit + 1)
