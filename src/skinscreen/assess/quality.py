"""Image-quality checks around a lesion: blur, exposure, framing, size and colour cast.

Each check gives a number and, past a documented threshold, a plain-language warning that says
how to take a better photo. Warnings, not silence: measurements are still reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

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
    image: np.ndarray, mask: np.ndarray, props: LesionProperties | None = None
) -> QualityReport:
    """Check the photo ``(H, W, 3)`` uint8 RGB around the lesion ``mask`` ``(H, W)`` bool.

    ``props`` (the lesion's :class:`LesionProperties`, built from the same photo) is reused for
    the size and skin colour when given.
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
        warnings=warnings,
    )
