"""Reading photos safely: any common source in, an EXIF-upright ``(H, W, 3)`` uint8 RGB array out.

Handles what phone and gallery photos really are: EXIF orientation, RGBA and LA (composited on
white), palette, grayscale, 16-bit and 32-bit integer or float PNG/TIFF, CMYK JPEG. Refuses, with a
message that says what to do: missing or empty files, non-images, truncated files, decompression
bombs (the pixel count is checked from the header before any pixel is decoded) and images too small
to segment.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skinscreen.errors import ImageError

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray

#: Largest accepted photo in pixels (a 108 MP phone sensor fits; a 20000 x 20000 bomb does not).
MAX_PIXELS = 120_000_000
#: Smallest accepted side in pixels.
MIN_SIDE = 16


def _describe(src: object) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    return f"<{type(src).__name__}>"


def _check_size(w: int, h: int, name: str, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise ImageError(
            f"{name}: {w}x{h} = {w * h / 1e6:.0f} MP is larger than the {max_pixels / 1e6:.0f} MP "
            "limit (possible decompression bomb); downscale the photo first"
        )
    if min(w, h) < MIN_SIDE:
        raise ImageError(
            f"{name}: {w}x{h} is too small to segment (each side must be at least {MIN_SIDE} px)"
        )


def _open(src: ImageSource, name: str) -> Image.Image:
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a directory, not an image file")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: file is empty")
        data: bytes | None = path.read_bytes()
    else:
        data = bytes(src)
        if not data:
            raise ImageError(f"{name}: no image data (0 bytes)")
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(
            f"{name}: not an image format Pillow can read (JPEG, PNG, TIFF, WebP, BMP...)"
        ) from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: refused as a decompression bomb ({e})") from None


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Decoded PIL image of any mode -> (H, W, 3) uint8 RGB."""
    mode = im.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im).astype(np.float64)
        if mode == "F":
            lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
            a = (a - lo) / max(hi - lo, 1e-12) * 255.0
        else:
            hi = 65535.0 if (mode.startswith("I;16") or a.max() > 255) else 255.0
            a = a / hi * 255.0
        g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def _from_array(a: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ImageError(
            f"{name}: array of shape {a.shape} is not an image; expected (H, W), (H, W, 3) or (H, W, 4)"
        )
    _check_size(a.shape[1], a.shape[0], name, max_pixels)
    if a.dtype == np.uint8:
        out = a
    elif a.dtype == np.uint16:
        out = (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError(f"{name}: array contains NaN or infinite values")
        scale = 255.0 if a.max() <= 1.0 else 1.0
        out = np.clip(a * scale + 0.5, 0, 255).astype(np.uint8)
    else:
        raise ImageError(f"{name}: unsupported array dtype {a.dtype}; use uint8, uint16 or float")
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    elif out.shape[2] == 4:
        alpha = out[..., 3:4].astype(np.float32) / 255.0
        out = (out[..., :3] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(out)


def load_image(src: ImageSource, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo into an upright ``(H, W, 3)`` uint8 RGB array.

    Args:
        src: a path, encoded bytes (JPEG, PNG, TIFF, ... or DICOM: :mod:`skinscreen.io.dicom`),
            a ``PIL.Image`` or a numpy array (``(H, W)``, ``(H, W, 3)``
            or ``(H, W, 4)``; uint8, uint16 or float in [0, 1]). Arrays are taken as already upright.
        max_pixels: refuse images with more pixels than this (decompression-bomb guard).

    Raises:
        ImageError: missing, empty, unreadable, truncated, too large or too small input.
    """
    name = _describe(src)
    if isinstance(src, np.ndarray):
        return _from_array(src, name, max_pixels)
    if not isinstance(src, Image.Image):
        from skinscreen.io import dicom  # DICOM photographs: pixels via pydicom

        if dicom.is_dicom(src):
            return dicom.load_dicom_image(src, max_pixels=max_pixels)
    im = src if isinstance(src, Image.Image) else _open(src, name)
    _check_size(im.width, im.height, name, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
            im = ImageOps.exif_transpose(im)
            arr = _to_rgb_array(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: refused as a decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(
            f"{name}: cannot decode the image (truncated or corrupt file?): {e}"
        ) from None
    return np.ascontiguousarray(arr)


def save_mask_png(mask: np.ndarray, path: str | os.PathLike) -> None:
    """Write a ``(H, W)`` bool mask as a mode-L PNG with values 0/255."""
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path, format="PNG")


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask image (any mode) as ``(H, W)`` bool: values >= 128 are foreground."""
    try:
        with Image.open(path) as im:
            a = np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError) as e:
        raise ImageError(f"{path}: cannot read mask: {e}") from None
    return a >= 128
