"""Decode whatever a user gives (a path, bytes, a file object, a PIL image, an array)
into a numpy array, or raise :class:`ImageError` with a message that names the problem.

Decoding is guarded: a size cap on the bytes, a pixel cap checked from the header before
any pixel is decoded (decompression bombs), EXIF orientation applied, the first frame of
animations, 16-bit, CMYK, palette and transparency converted to 8-bit gray/RGB/RGBA.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 10 * 1024 * 1024  # 10 MB, the app's upload cap too
MAX_PIXELS = 40_000_000  # e.g. 6300x6300; a 4000x4000 photo passes
# The formats read, each with the file extensions an upload may have.
FORMATS = {"PNG": ("png",), "JPEG": ("jpg", "jpeg"), "BMP": ("bmp",), "GIF": ("gif",),
           "WEBP": ("webp",), "TIFF": ("tif", "tiff")}
EXTENSIONS = [ext for exts in FORMATS.values() for ext in exts]


class ImageError(ValueError):
    """An input that cannot be read as an image; the message says why, and which file
    where a path was given (``path``). ``reason`` is the why alone, for a caller that
    names the file itself (the CLI's ``FILE: error: REASON``)."""

    def __init__(self, reason: str, path: str | os.PathLike | None = None):
        self.reason, self.path = reason, path
        super().__init__(f"{path}: {reason}" if path is not None else reason)


class ImageTooLarge(ImageError):
    """An input over a limit (:data:`MAX_BYTES`, :data:`MAX_PIXELS`): a caller may answer
    it apart from a broken file (the HTTP API's 413)."""


def check_size(size: int, path: str | os.PathLike | None = None) -> None:
    """Raise :class:`ImageTooLarge` for a file (``path``, where there is one) of ``size``
    bytes over :data:`MAX_BYTES`, before any of it is read."""
    if size > MAX_BYTES:
        raise ImageTooLarge(f"file is {size / 1e6:.1f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB", path)


def _sniff(raw: bytes) -> str:
    head = raw[:256].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg")) or b"<html" in head:
        return "it is an HTML/XML text document, not an image"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in raw[:512]):
        return "it is a text file, not an image"
    return f"unrecognised image data (formats read: {', '.join(FORMATS)})"


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError("no such file", path)
        if path.is_dir():
            raise ImageError("is a directory, not an image", path)
        check_size(path.stat().st_size, path)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ImageError(f"cannot be read ({exc.strerror})", path) from exc
    if hasattr(source, "read"):
        raw = source.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ImageTooLarge(f"file is larger than the {MAX_BYTES / 1e6:.0f} MB limit")
        return raw
    raise ImageError(f"cannot read an image from a {type(source).__name__}")


def load_image(source) -> np.ndarray:
    """Decode ``source`` to uint8 (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA."""
    if isinstance(source, np.ndarray):
        return check_array(source)
    if isinstance(source, Image.Image):
        return _to_array(source)
    raw = _read_bytes(source)
    if not raw:
        raise ImageError("the file is empty (0 bytes)")
    check_size(len(raw))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=tuple(FORMATS))
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > MAX_PIXELS:
                raise ImageTooLarge(
                    f"image declares {width}x{height} pixels; the limit is "
                    f"{MAX_PIXELS / 1e6:.0f} megapixels")
            image.seek(0)  # first frame of an animation
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not an image: {_sniff(raw)}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image is too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        if "truncated" in msg or "broken data stream" in msg or isinstance(exc, EOFError):
            raise ImageError(f"the image file is truncated or damaged ({msg})") from None
        raise ImageError(f"the image cannot be decoded ({msg})") from None
    return _to_array(image)


def _to_array(image: Image.Image) -> np.ndarray:
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not lose the picture
        pass
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        hi = arr.max() or 1
        return check_array((arr * (255.0 / max(hi, 255))).astype(np.uint8) if hi > 255
                           else arr.astype(np.uint8))
    if image.mode == "F":
        return check_array(np.asarray(image))
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("LA", "PA") or (image.mode == "L" and "transparency" in image.info):
        image = image.convert("RGBA")
    elif image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")  # CMYK, YCbCr, 1, LAB, HSV...
    return check_array(np.asarray(image))


def check_array(arr) -> np.ndarray:
    """Validate an in-memory image and bring it to uint8 gray, RGB or RGBA."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"expected an image array (H, W[, 3|4]), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"the image is empty ({arr.shape[1]}x{arr.shape[0]} pixels)")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ImageTooLarge(f"image has {arr.shape[1]}x{arr.shape[0]} pixels; the limit is "
                         f"{MAX_PIXELS / 1e6:.0f} megapixels")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ImageError(f"unsupported pixel type {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ImageError("the image holds NaN or infinite values")
    hi = arr.max()
    scale = 255.0 if hi <= 1.0 else (255.0 / 65535.0 if hi > 255 else 1.0)
    return np.clip(arr * scale, 0, 255).round().astype(np.uint8)
