"""Image-quality checks around a lesion: blur, exposure, framing, size, colour cast and JPEG
compression.

Each check gives a number and, past a documented threshold, a plain-language warning that says
how to take a better photo. Warnings, not silence: measurements are still reported.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from skinscreen.assess import color as col
from skinscreen.assess.features import MIN_DIAMETER_PX, LesionProperties
from skinscreen.assess.skintone import ITA_MIN_B

#: Sharpness (variance of the Laplacian of the grey lesion neighbourhood, resampled to at most
#: 512 px) below which the photo is called blurred.
SHARPNESS_MIN = 8.0
#: Fraction of neighbourhood pixels with a channel >= 250 above which glare/overexposure is flagged.
OVEREXPOSED_MAX = 0.05
#: Fraction of neighbourhood pixels with every channel <= 15 above which underexposure is flagged.
UNDEREXPOSED_MAX = 0.10
#: Median ``L*`` of the neighbourhood outside this range: too dark / washed out.
LIGHTNESS_RANGE = (25.0, 92.0)
#: Shades-of-Gray illuminant farther than this from neutral grey (degrees): colour cast.
COLOR_CAST_MAX_DEG = 15.0
#: Lesions covering more than this fraction of the photo: probably a bad outline or too close.
AREA_FRACTION_MAX = 0.6
#: Side of the resampled neighbourhood used for the sharpness measure.
SHARPNESS_SIZE = 512
#: JPEG quality factor (IJG scale, 1-100) at or below which compression artefacts are flagged.
#: Chosen on lesions-train photos re-encoded at 95/75/50/30/20/10 (docs/features.md): quality 20
#: and 10 are flagged, 30 and above are not.
JPEG_QUALITY_MIN = 25.0
#: Side of the top-left (8 px grid aligned) region the pixel-based compression measures read.
COMPRESSION_SIZE = 2048
#: Largest DC quantisation step :func:`jpeg_quality_from_pixels` looks for (about quality 6).
DC_STEP_MAX = 128
#: A DC step is accepted when the block DCs lie within this fraction of the step of its multiples
#: (mean absolute distance; 0.25 for DCs that are not quantised).
DC_FIT_MAX = 0.1
#: ...and when at least 3 multiples each hold this fraction of the blocks (not a narrow cluster).
DC_BIN_MIN_FRACTION = 0.02
#: At most this many blocks enter the DC step search (evenly strided).
DC_BLOCKS_MAX = 20000

#: The IJG / JPEG Annex K luminance quantisation table (quality 50), row-major.
_IJG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float64,
)


def _quality_from_scale(scale_percent: float) -> float:
    """Invert the IJG scaling ``S = 5000 / q`` (q < 50) or ``S = 200 - 2 q`` (q >= 50)."""
    s = max(float(scale_percent), 1e-6)
    q = 5000.0 / s if s > 100.0 else (200.0 - s) / 2.0
    return float(np.clip(q, 1.0, 100.0))


def jpeg_quality_estimate(src: str | Path | bytes | Image.Image) -> float | None:
    """JPEG quality factor (1-100, IJG scale) of a JPEG file from its quantisation tables, or
    None when ``src`` is not a JPEG (or has no tables).

    ``src``: a path, the encoded bytes or an open ``PIL.Image``. Only the header is read (Pillow's
    ``Image.quantization``); the pixels are not decoded. The IJG encoder scales the Annex K luma
    table by ``S`` percent (``S = 5000 / q`` below 50, ``200 - 2 q`` from 50); ``S`` is estimated
    as 100 x (sum of the file's luma table entries that are not clipped to 1 or 255) / (sum of the
    same Annex K entries) and inverted. Cameras with their own tables get the IJG quality whose
    table is as coarse on average.
    """
    try:
        if isinstance(src, Image.Image):
            tables = getattr(src, "quantization", None) if src.format == "JPEG" else None
        else:
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
                tables = getattr(im, "quantization", None) if im.format == "JPEG" else None
    except (OSError, ValueError, SyntaxError):
        return None
    if not tables or 0 not in tables:
        return None
    q = np.asarray(list(tables[0]), dtype=np.float64)
    if q.size != 64:
        return None
    # Pillow lists the table in natural (row-major) order, like _IJG_LUMA
    t = _IJG_LUMA.ravel()
    keep = (q > 1) & (q < 255)
    if keep.sum() < 8:
        keep = np.ones(64, bool)
    return _quality_from_scale(100.0 * float(q[keep].sum()) / float(t[keep].sum()))


def _luma(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB (or ``(H, W)``) -> float32 luma (ITU-R BT.601, JPEG's Y), cropped
    to the top-left ``COMPRESSION_SIZE`` square."""
    a = np.asarray(image)[:COMPRESSION_SIZE, :COMPRESSION_SIZE]
    if a.ndim == 3:
        return a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return a.astype(np.float32)


def _boundary_phases(y: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Per axis (x, then y): mean |difference| of adjacent pixels for each phase modulo 8
    (``(8,)``, phase p = between pixels 8k+p and 8k+p+1) and the strongest phase."""
    out = []
    for axis in (1, 0):
        d = np.abs(np.diff(y, axis=axis)).mean(axis=1 - axis)
        n = d.size // 8 * 8
        if n < 16:
            out.append((np.zeros(8), 7))
            continue
        phase = d[:n].reshape(-1, 8).mean(axis=0)
        out.append((phase, int(np.argmax(phase))))
    return out


def compression_blockiness(image: np.ndarray) -> float:
    """8x8 block-boundary discontinuity ratio of a photo ``(H, W, 3)`` uint8 RGB (or ``(H, W)``).

    On the luma channel, the mean absolute difference between horizontally (vertically)
    adjacent pixels is taken for each column (row) phase modulo 8; the strongest phase over the
    mean of the other seven is the ratio, horizontal and vertical averaged (the block-edge ratio
    of Wu & Yuen's GBIM, IEEE Signal Processing Letters 1997, with the grid phase found rather
    than assumed). About 1 without block edges; JPEG raises it, but smooth dermoscopy photos
    saved at quality 92 already reach 2-2.5, so it is reported, not used for the warning
    (docs/features.md). Returns 1.0 for flat or tiny images.
    """
    ratios = []
    for phase, k in _boundary_phases(_luma(image)):
        rest = (phase.sum() - phase[k]) / 7.0
        if rest > 1e-6:
            ratios.append(float(phase[k] / rest))
    return float(np.mean(ratios)) if ratios else 1.0


def jpeg_quality_from_pixels(image: np.ndarray) -> float | None:
    """Estimate the JPEG quality factor of a decoded photo ``(H, W, 3)`` uint8 RGB from its pixels,
    or None when no coarse JPEG quantisation is found.

    JPEG rounds each 8x8 block's DC coefficient (8 x the block's mean luma - 128) to a multiple
    of the DC quantisation step (16 x S / 100 for the IJG tables), and decoding keeps that within
    about 2 units. The block grid is placed on the strongest block-edge phase; the step is the
    one (2 to ``DC_STEP_MAX``) whose multiples the block DCs fit best (mean distance below
    ``DC_FIT_MAX`` of the step, at least 3 multiples each holding ``DC_BIN_MIN_FRACTION`` of the
    blocks); the quality is the IJG one with that step (the principle of Fan & de Queiroz, IEEE
    Trans. Image Processing 2003, on the DC coefficient only). Steps below about 8 (quality 75
    and up) drown in the decoder's rounding and return None.
    """
    y = _luma(image)
    (_, px), (_, py) = _boundary_phases(y)
    x0, y0 = (px + 1) % 8, (py + 1) % 8
    y = y[y0:, x0:]
    h8, w8 = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    if h8 < 16 or w8 < 16:
        return None
    dc = 8.0 * (y[:h8, :w8].reshape(h8 // 8, 8, w8 // 8, 8).mean(axis=(1, 3)) - 128.0)
    dc = dc.ravel()[:: max(1, dc.size // DC_BLOCKS_MAX)].astype(np.float64)
    best, best_fit = None, DC_FIT_MAX
    for step in range(2, DC_STEP_MAX + 1):
        k = np.round(dc / step)
        fit = float(np.mean(np.abs(dc - step * k))) / step
        if fit >= best_fit:
            continue
        counts = np.bincount((k - k.min()).astype(np.int64))
        if int((counts >= DC_BIN_MIN_FRACTION * dc.size).sum()) < 3:
            continue
        best, best_fit = step, fit
    if best is None:
        return None
    return _quality_from_scale(100.0 * best / _IJG_LUMA[0, 0])


@dataclass
class QualityReport:
    """Quality figures of one photo around one lesion (see the module constants for thresholds).

    Attributes:
        sharpness: variance of the Laplacian (grey levels^2) of the lesion neighbourhood.
        overexposed_fraction / underexposed_fraction: clipped-pixel fractions there.
        lightness_median: median ``L*`` there.
        color_cast_deg: angle between the Shades-of-Gray illuminant of the photo and grey.
        skin_b: ``b*`` of the skin around the lesion (None when not measurable).
        touching_border: the lesion touches the photo's edge (size and asymmetry are cut).
        too_small: equivalent diameter below ``MIN_DIAMETER_PX`` pixels.
        area_fraction: lesion area over photo area.
        compression_blockiness: 8x8 block-boundary discontinuity ratio of the photo's luma
            (:func:`compression_blockiness`; about 1 without block edges). Reported only.
        jpeg_quality_estimate: JPEG quality factor (1-100, IJG scale) from the file's
            quantisation tables (:func:`jpeg_quality_estimate`) when the file is known, else from
            the decoded pixels (:func:`jpeg_quality_from_pixels`); None when neither finds one.
        jpeg_quality_source: ``"file"``, ``"pixels"`` or None (how the estimate was made).
        warnings: plain-language warnings, each with how to fix it.
    """

    sharpness: float
    overexposed_fraction: float
    underexposed_fraction: float
    lightness_median: float
    color_cast_deg: float
    skin_b: float | None
    touching_border: bool
    too_small: bool
    area_fraction: float
    compression_blockiness: float = 1.0
    jpeg_quality_estimate: float | None = None
    jpeg_quality_source: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _neighbourhood(mask: np.ndarray) -> tuple[slice, slice]:
    """Lesion bounding box grown by half its size on each side, clipped to the photo."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    dy, dx = (ys.max() - ys.min() + 1) // 2, (xs.max() - xs.min() + 1) // 2
    return (
        slice(max(0, ys.min() - dy), min(h, ys.max() + 1 + dy)),
        slice(max(0, xs.min() - dx), min(w, xs.max() + 1 + dx)),
    )


def assess_quality(
    image: np.ndarray,
    mask: np.ndarray,
    props: LesionProperties | None = None,
    *,
    jpeg_quality: float | None = None,
) -> QualityReport:
    """Check the photo ``(H, W, 3)`` uint8 RGB around the lesion ``mask`` ``(H, W)`` bool.

    ``props`` (the lesion's :class:`LesionProperties`, built from the same photo) is reused for
    the size and skin colour when given. ``jpeg_quality``: the file's JPEG quality
    (:func:`jpeg_quality_estimate`) when the photo came from a JPEG file; without it the quality
    is estimated from the pixels (:func:`jpeg_quality_from_pixels`).
    """
    props = props or LesionProperties(mask, image)
    mask = props.mask
    rows, cols = _neighbourhood(mask)
    roi = image[rows, cols]
    f = min(1.0, SHARPNESS_SIZE / max(roi.shape[:2]))
    small = roi
    if f < 1.0:
        size = (max(1, round(roi.shape[1] * f)), max(1, round(roi.shape[0] * f)))
        small = cv2.resize(roi, size, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    over = float(np.mean(roi.max(axis=2) >= 250))
    under = float(np.mean(roi.max(axis=2) <= 15))
    lightness = float(np.median(col.to_lab(small)[..., 0]))
    cast = col.color_cast_deg(col.illuminant_shades_of_gray(image))
    skin_b = None if props.skin_lab is None else float(props.skin_lab[2])
    touching = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    too_small = props.diameter_equivalent_px < MIN_DIAMETER_PX
    area_fraction = props.area_px / mask.size
    blockiness = compression_blockiness(image)
    jpeg_source = "file" if jpeg_quality is not None else None
    if jpeg_quality is None:
        jpeg_quality = jpeg_quality_from_pixels(image)
        jpeg_source = None if jpeg_quality is None else "pixels"

    warnings: list[str] = []
    if sharpness < SHARPNESS_MIN:
        warnings.append(
            f"The photo looks blurred (sharpness {sharpness:.0f} < {SHARPNESS_MIN:.0f}): border "
            "and colour measurements are unreliable. Hold the camera still and retake it in focus."
        )
    if over > OVEREXPOSED_MAX:
        warnings.append(
            f"{over:.0%} of the area around the lesion is overexposed (glare or flash): colours "
            "are unreliable. Retake without flash or with polarised light."
        )
    if under > UNDEREXPOSED_MAX or lightness < LIGHTNESS_RANGE[0]:
        warnings.append(
            "The area around the lesion is too dark: colours and skin tone are unreliable. "
            "Retake in brighter, even light."
        )
    elif lightness > LIGHTNESS_RANGE[1]:
        warnings.append(
            "The area around the lesion is washed out (too bright): colours are unreliable. "
            "Retake with less light or exposure."
        )
    if cast > COLOR_CAST_MAX_DEG or (skin_b is not None and skin_b <= ITA_MIN_B):
        warnings.append(
            f"The photo has a colour cast (illuminant {cast:.0f} degrees from neutral"
            + (", skin looks blue-grey" if skin_b is not None and skin_b <= ITA_MIN_B else "")
            + "): colours and skin tone are unreliable. Use --color-constancy or retake in "
            "neutral white light."
        )
    if touching:
        warnings.append(
            "The lesion touches the edge of the photo: its size and asymmetry are underestimated. "
            "Retake with the whole lesion and a margin of skin in the frame."
        )
    if too_small:
        warnings.append(
            f"The lesion is only {props.diameter_equivalent_px:.0f} pixels across (< "
            f"{MIN_DIAMETER_PX:.0f}): border and colour cannot be measured well. Take a closer photo."
        )
    if area_fraction > AREA_FRACTION_MAX:
        warnings.append(
            f"The outlined lesion covers {area_fraction:.0%} of the photo: check the outline, or "
            "retake from further away with skin around the lesion."
        )
    if jpeg_quality is not None and jpeg_quality <= JPEG_QUALITY_MIN:
        warnings.append(
            f"The photo is strongly JPEG-compressed (quality about {jpeg_quality:.0f} of 100, "
            f"<= {JPEG_QUALITY_MIN:.0f}): block artefacts blur the border and change colours. "
            "Use the original photo, not a compressed copy (e.g. one sent through a messaging "
            "app), or save it at a higher JPEG quality."
        )
    if props.skin_lab is None:
        warnings.append(
            "Too little skin is visible around the lesion to measure skin tone: include a margin "
            "of normal skin in the photo."
        )
    return QualityReport(
        sharpness=sharpness,
        overexposed_fraction=over,
        underexposed_fraction=under,
        lightness_median=lightness,
        color_cast_deg=cast,
        skin_b=skin_b,
        touching_border=touching,
        too_small=bool(too_small),
        area_fraction=float(area_fraction),
        compression_blockiness=blockiness,
        jpeg_quality_estimate=None if jpeg_quality is None else float(jpeg_quality),
        jpeg_quality_source=jpeg_source,
        warnings=warnings,
    )
