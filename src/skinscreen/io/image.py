"""Reading photos safely: any common source in, an EXIF-upright ``(H, W, 3)`` uint8 RGB array out.

Handles what phone and gallery photos really are: EXIF orientation, RGBA and LA (composited on
white), palette, grayscale, 16-bit and 32-bit integer or float PNG/TIFF, CMYK JPEG. Refuses, with a
message that says what to do (always an :class:`~skinscreen.errors.ImageError`, whatever the
decoder raised): missing or empty files, formats outside :data:`FORMATS`, truncated or corrupt
files, metadata bombs (PNG zTXt/iCCP), decompression bombs (the pixel count and a memory estimate
are checked from the header before any pixel is decoded; :data:`MAX_PIXELS` is below Pillow's own
bomb warning), NaN or infinite float pixels, and images too small to segment.
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

#: Largest accepted photo in pixels: 64 MP (a 12-50 MP phone photo fits, a 10000 x 10000 bomb
#: does not); below Pillow's ``MAX_IMAGE_PIXELS`` (89.5 MP), where it starts warning.
MAX_PIXELS = 64_000_000
#: Largest memory a decode may take, estimated from the header (decoded bands + conversion).
MAX_DECODE_BYTES = 1_000_000_000
#: Formats Pillow may open (the JPEG reader also opens MPO, the multi-picture JPEG of phones).
FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP")
#: ``PIL.Image.format`` values accepted from a caller's already-open image.
_PIL_FORMATS = (*FORMATS, "MPO")
#: Bytes per pixel of the decoded image by mode, and of the work to make RGB uint8 of it.
_MODE_BYTES = {
    "1": 1,
    "L": 1,
    "P": 1,
    "LA": 2,
    "PA": 2,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "RGBa": 4,
    "RGBX": 4,
    "CMYK": 4,
    "I": 4,
    "F": 4,
}
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


def decode_bytes_estimate(mode: str, w: int, h: int) -> int:
    """Bytes a decode of a ``w`` x ``h`` image in ``mode`` takes, up to the RGB uint8 array:
    the decoded bands, the float32 work array of 16/32-bit and float modes, and the output."""
    band = _MODE_BYTES.get(mode, 2 if mode.startswith("I;16") else 8)
    work = 4 if (mode.startswith("I;16") or mode in ("I", "F")) else 0
    alpha = 8 if mode in ("RGBA", "LA", "PA", "P") else 0  # RGBA copy + white canvas
    return w * h * (band + work + alpha + 3)


def _check_header(im: Image.Image, name: str, max_pixels: int) -> None:
    """Size, pixel and memory limits from the header alone (nothing decoded yet)."""
    _check_size(im.width, im.height, name, max_pixels)
    need = decode_bytes_estimate(im.mode, im.width, im.height)
    if need > MAX_DECODE_BYTES:
        raise ImageError(
            f"{name}: decoding this {im.width}x{im.height} {im.mode} image would take about "
            f"{need / 1e9:.1f} GB (limit {MAX_DECODE_BYTES / 1e9:.1f} GB); downscale the photo first"
        )


def _open(src: ImageSource, name: str) -> Image.Image:
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        try:
            if not path.exists():
                raise ImageError(f"{name}: no such file")
            if path.is_dir():
                raise ImageError(f"{name}: is a directory, not an image file")
            if path.stat().st_size == 0:
                raise ImageError(f"{name}: file is empty")
            data: bytes | None = path.read_bytes()
        except OSError as e:
            raise ImageError(f"{name}: cannot read the file ({e.strerror or e})") from None
    else:
        data = bytes(src)
        if not data:
            raise ImageError(f"{name}: no image data (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "corrupt EXIF"...: refused or harmless
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError(
            f"{name}: not an image in a supported format ({', '.join(FORMATS)}); convert it to JPEG or PNG"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: refused as a decompression bomb ({e})") from None
    except Exception as e:  # noqa: BLE001  any decoder failure (zTXt/iCCP bombs, bad headers...)
        raise ImageError(
            f"{name}: cannot read the image header (corrupt file?): {_short(e)}"
        ) from None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Decoded PIL image of any mode -> (H, W, 3) uint8 RGB."""
    mode = im.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im).astype(np.float32)
        if mode == "F":
            if not np.isfinite(a).all():
                raise ImageError("the image contains NaN or infinite pixel values")
            lo, hi = float(a.min()), float(a.max())
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
    if isinstance(src, Image.Image):
        im = src
        if im.format is not None and im.format not in _PIL_FORMATS:
            raise ImageError(f"{name}: {im.format} images are not supported ({', '.join(FORMATS)})")
    else:
        from skinscreen.io import dicom  # DICOM photographs: pixels via pydicom

        if dicom.is_dicom(src):
            return dicom.load_dicom_image(src, max_pixels=max_pixels)
        im = _open(src, name)
    _check_header(im, name, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "corrupt EXIF"...: refused or harmless
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
            im = ImageOps.exif_transpose(im)
            _check_header(im, name, max_pixels)  # a mode change on load (e.g. palette + alpha)
            arr = _to_rgb_array(im)
    except ImageError as e:
        raise ImageError(str(e) if str(e).startswith(name) else f"{name}: {e}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: refused as a decompression bomb ({e})") from None
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to decode this image; downscale it") from None
    except Exception as e:  # noqa: BLE001  every decoder failure is the project's error
        raise ImageError(
            f"{name}: cannot decode the image (truncated or corrupt file?): {_short(e)}"
        ) from None
    return np.ascontiguousarray(arr)


def save_mask_png(mask: np.ndarray, path: str | os.PathLike) -> None:
    """Write a ``(H, W)`` bool mask as a mode-L PNG with values 0/255."""
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path, format="PNG")


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask image (any mode) as ``(H, W)`` bool: values >= 128 are foreground."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "corrupt EXIF"...: refused or harmless
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=FORMATS) as im:
                _check_header(im, str(path), MAX_PIXELS)
                im.load()
                if im.mode == "F" and not np.isfinite(np.asarray(im)).all():
                    raise ImageError(f"{path}: mask contains NaN or infinite values")
                a = np.asarray(im.convert("L"))
    except ImageError:
        raise
    except Exception as e:  # noqa: BLE001  every decoder failure is the project's error
        raise ImageError(f"{path}: cannot read mask: {_short(e)}") from None
    return a >= 128
