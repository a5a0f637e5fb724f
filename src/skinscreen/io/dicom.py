"""Reading DICOM photographs and dermoscopy (pydicom): pixels, pixel spacing and identifiers.

:func:`skinscreen.io.image.load_image` hands any DICOM file (``DICM`` at byte 128, or a ``.dcm``
name) to :func:`load_dicom_image`, so every verb that reads photos reads DICOM. Compressed pixel
data (JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE) is decoded by the pixel-data
handlers of the ``formats`` extra (pylibjpeg with libjpeg, pyjpegls, Pillow).

Refused with a message that says what to do: objects without pixel data (structured reports,
presentation states, ...), multi-frame objects, more pixels than the loader's limit (checked from
the header before any pixel is decoded) and pixel data that cannot be decoded.

Nothing here logs or prints: patient and study identifiers are returned only by
:func:`dicom_identifiers`, for callers that the user asked to carry them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from skinscreen.errors import ImageError

_EXTRA_HINT = "DICOM support needs the 'formats' extra: pip install 'skinscreen[formats]'"

#: Identifiers :func:`dicom_identifiers` returns (DICOM keyword -> JSON key).
IDENTIFIER_KEYWORDS = {
    "PatientID": "patient_id",
    "PatientName": "patient_name",
    "StudyInstanceUID": "study_instance_uid",
    "SeriesInstanceUID": "series_instance_uid",
    "SOPInstanceUID": "sop_instance_uid",
    "AccessionNumber": "accession_number",
    "StudyID": "study_id",
    "StudyDate": "study_date",
}


@contextlib.contextmanager
def quiet():
    """Silence pydicom's and highdicom's warnings and log records for the block: they can quote
    attribute values (a malformed patient name, a date), and identifiers are never logged."""
    loggers = [logging.getLogger(n) for n in ("pydicom", "highdicom")]
    before = [lg.disabled for lg in loggers]
    try:
        for lg in loggers:
            lg.disabled = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, was in zip(loggers, before, strict=True):
            lg.disabled = was


def _read_head(src: str | os.PathLike | bytes | bytearray | memoryview) -> bytes:
    if isinstance(src, (str, os.PathLike)):
        try:
            with open(src, "rb") as f:
                return f.read(132)
        except OSError:
            return b""
    return bytes(src[:132])


def is_dicom(src: object) -> bool:
    """True when ``src`` (a path or encoded bytes) is a DICOM file: the ``DICM`` magic at byte
    128 (Part 10), or a path ending ``.dcm``/``.dicom``. Arrays and PIL images are not."""
    if isinstance(src, (str, os.PathLike)):
        if Path(src).suffix.lower() in (".dcm", ".dicom"):
            return Path(src).is_file()
    elif not isinstance(src, (bytes, bytearray, memoryview)):
        return False
    return _read_head(src)[128:132] == b"DICM"


def _pydicom():
    try:
        import pydicom
    except ImportError:  # pragma: no cover - the extra is installed by make
        raise ImageError(_EXTRA_HINT) from None
    return pydicom


def read_dataset(src: str | os.PathLike | bytes, *, stop_before_pixels: bool = False):
    """Parse a DICOM file (path or bytes) into a ``pydicom.Dataset``.

    Raises:
        ImageError: not DICOM, truncated or unreadable.
    """
    pydicom = _pydicom()
    name = str(src) if isinstance(src, (str, os.PathLike)) else f"<{len(src)} bytes>"
    fp = src if isinstance(src, (str, os.PathLike)) else io.BytesIO(bytes(src))
    try:
        with quiet():
            return pydicom.dcmread(fp, stop_before_pixels=stop_before_pixels)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except Exception as e:  # pydicom raises InvalidDicomError, EOFError, ValueError, ...
        raise ImageError(f"{name}: not a readable DICOM file ({type(e).__name__}: {e})") from None


def _sop_class_name(ds) -> str:
    uid = getattr(ds, "SOPClassUID", None)
    if uid is None:
        return "object of unknown SOP class"
    return f"{getattr(uid, 'name', uid)} ({uid})"


def _to_uint8_rgb(arr: np.ndarray, ds) -> np.ndarray:
    """Decoded pixel array of one frame -> ``(H, W, 3)`` uint8 RGB."""
    pi = str(getattr(ds, "PhotometricInterpretation", "")).upper()
    if pi == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    if arr.dtype != np.uint8:
        bits = int(getattr(ds, "BitsStored", 8) or 8)
        a = arr.astype(np.float64)
        if a.min() < 0 or a.max() > (1 << bits) - 1:  # signed or mislabelled: stretch
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) / max(hi - lo, 1e-12)
        else:
            a = a / ((1 << bits) - 1)
        arr = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        if pi == "MONOCHROME1":
            arr = 255 - arr
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def load_dicom_image(
    src: str | os.PathLike | bytes | bytearray | memoryview, *, max_pixels: int
) -> np.ndarray:
    """A DICOM photograph (path or bytes) as an ``(H, W, 3)`` uint8 RGB array, pixels as stored
    (DICOM has no EXIF orientation). YBR colour (JPEG baseline) is converted to RGB.

    Raises:
        ImageError: not DICOM, no pixel data (e.g. a structured report), multi-frame, too many
            pixels, or pixel data that cannot be decoded.
    """
    from skinscreen.io.image import _check_size, _from_array

    name = str(src) if isinstance(src, (str, os.PathLike)) else f"<{len(src)} bytes>"
    if isinstance(src, (bytes, bytearray, memoryview)):
        src = bytes(src)
    ds = read_dataset(src)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageError(
            f"{name}: a DICOM {_sop_class_name(ds)} with no pixel data, not an image; give a "
            "DICOM photograph (VL Photographic, Dermoscopic Photography, Secondary Capture...)"
        )
    rows, cols = int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageError(
            f"{name}: a multi-frame DICOM ({frames} frames, {_sop_class_name(ds)}); give a "
            "single-frame photograph (extract the frame you want first)"
        )
    _check_size(cols, rows, name, max_pixels)
    try:
        with quiet():
            arr = ds.pixel_array  # pydicom 3: YBR_* converted to RGB
    except Exception as e:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        ts = f"{getattr(syntax, 'name', syntax)}" if syntax else "unknown transfer syntax"
        compressed = bool(syntax) and getattr(syntax, "is_compressed", False)
        why = "truncated or corrupt file" + (
            f", or no decoder for it installed ({_EXTRA_HINT})" if compressed else ""
        )
        raise ImageError(
            f"{name}: cannot decode the DICOM pixel data ({ts}: {why}): {type(e).__name__}: {e}"
        ) from None
    with quiet():
        rgb = _to_uint8_rgb(np.asarray(arr), ds)
    return _from_array(rgb, name, max_pixels)


def _spacing_of(ds) -> tuple[float, float] | None:
    """(row, column) spacing in mm from Pixel Spacing, the shared Pixel Measures functional group
    or Nominal Scanned Pixel Spacing (in that order); None when absent."""
    candidates = [getattr(ds, "PixelSpacing", None)]
    shared = getattr(ds, "SharedFunctionalGroupsSequence", None)
    if shared:
        measures = getattr(shared[0], "PixelMeasuresSequence", None)
        if measures:
            candidates.append(getattr(measures[0], "PixelSpacing", None))
    candidates.append(getattr(ds, "NominalScannedPixelSpacing", None))
    for value in candidates:
        if value is not None and len(value) == 2:
            try:
                r, c = float(value[0]), float(value[1])
            except (TypeError, ValueError):
                continue
            if r > 0 and c > 0 and np.isfinite([r, c]).all():
                return r, c
    return None


def dicom_mm_per_pixel(src: str | os.PathLike | bytes) -> float | None:
    """mm of skin per pixel stated by a DICOM file (header only; pixels are not decoded), or None
    for a non-DICOM file, no spacing, or non-square pixels (rows and columns more than 1% apart:
    lengths in one number per pixel would be wrong; give ``--mm-per-pixel``)."""
    if not is_dicom(src):
        return None
    try:
        ds = read_dataset(src, stop_before_pixels=True)
    except ImageError:
        return None
    with quiet():
        sp = _spacing_of(ds)
    if sp is None:
        return None
    r, c = sp
    if abs(r - c) > 0.01 * max(r, c):
        return None
    return (r + c) / 2.0


def dicom_identifiers(src: str | os.PathLike | bytes) -> dict[str, str] | None:
    """Patient/study identifiers of a DICOM file (the :data:`IDENTIFIER_KEYWORDS` present and
    not empty), or None for a non-DICOM file. Only for outputs the user asked to carry them."""
    if not is_dicom(src):
        return None
    ds = read_dataset(src, stop_before_pixels=True)
    out = {}
    with quiet():
        for kw, key in IDENTIFIER_KEYWORDS.items():
            v = getattr(ds, kw, None)
            if v not in (None, ""):
                out[key] = str(v)
    return out
