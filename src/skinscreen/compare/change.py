"""Compare two photos of one lesion: register, carry the box, segment both, measure the change.

Size change is measured in ONE frame: the EARLIER outline is mapped into the LATER photo by the
registration, so a re-take from closer, rotated or brighter is not growth. Scale-free features
(asymmetry, border, colours, skin ITA) come from each photo's own assessment
(:func:`skinscreen.report.build.assess_image`).

Conventions: photos ``(H, W, 3)`` uint8 RGB, masks ``(H, W)`` bool, boxes XYXY photo pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from skinscreen._version import __version__
from skinscreen.assess.features import LesionProperties
from skinscreen.assess.scale import Scale
from skinscreen.compare.noise import NoiseFloor, default_noise_floor
from skinscreen.compare.registration import (
    NotSameLesionError,
    Registration,
    apply_homography,
    register,
)
from skinscreen.compare.schema import (
    COMPARE_SCHEMA_VERSION,
    Change,
    ComparisonReport,
    NoiseFloorInfo,
    RegistrationInfo,
    ScaleSource,
)
from skinscreen.disclaimer import DISCLAIMER
from skinscreen.errors import SkinscreenError
from skinscreen.report.build import Assessment, assess_image

#: Registered outlines overlapping less than this (Jaccard) are not taken as the same lesion.
MIN_OUTLINE_IOU = 0.2
#: The skin around the lesion changed ITA by more than this: the light differs (colour warning).
ITA_LIGHTING_DEG = 8.0
#: The mapped EARLIER lesion must keep this fraction of its area inside the LATER photo.
MIN_INSIDE = 0.97

NOT_MEASURABLE: tuple[str, ...] = (
    "Whether a change is a real change of the skin or a difference in how the photos were taken "
    "cannot be fully separated: the noise floor covers lighting, angle, zoom, focus and "
    "compression as simulated and as seen in three real re-takes, not every camera or dermoscope.",
    "How fast lesions grow, and which growth matters clinically, needs real follow-up photos "
    "with known outcomes; this tool only measures the change between two photos.",
    "Raised or bulging lesions: the photos are aligned as flat images, so height changes are not "
    "seen.",
)


@dataclass
class Comparison:
    """A :class:`ComparisonReport` with what drew it: both assessments, the registration, the
    EARLIER outline and photo mapped into the LATER frame (``(H, W)`` bool, ``(H, W, 3)`` uint8).
    """

    report: ComparisonReport
    earlier: Assessment
    later: Assessment
    registration: Registration
    earlier_mask_in_later: np.ndarray
    earlier_photo_in_later: np.ndarray


def warp_to_later(array: np.ndarray, matrix: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Map an EARLIER-frame photo ``(H, W, 3)`` uint8 or mask ``(H, W)`` bool into the LATER frame
    (``size_hw`` = LATER (H, W)); masks are resampled bilinearly and thresholded at 0.5."""
    h, w = size_hw
    m = np.asarray(matrix, np.float64)
    if array.dtype == bool:
        out = cv2.warpPerspective(
            array.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0
        )
        return out >= 0.5
    return cv2.warpPerspective(
        array, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def carry_box(box: np.ndarray, matrix: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """The XYXY box around ``box``'s four corners mapped by ``matrix``, clipped to ``size_hw``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    q = apply_homography(matrix, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    h, w = size_hw
    return np.array(
        [
            max(0.0, q[:, 0].min()),
            max(0.0, q[:, 1].min()),
            min(w - 1.0, q[:, 0].max()),
            min(h - 1.0, q[:, 1].max()),
        ]
    )


def _reprompt(predictor, seg, box_margin: float | None):
    """Prompt again with the box around the first outline (grown by the usual margin), so both
    photos' outlines come from the same kind of prompt whatever box started them: a box carried
    from a smaller earlier lesion would otherwise cut a grown one."""
    if not seg.mask.any():
        return seg
    ys, xs = np.nonzero(seg.mask)
    box = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
    again = predictor.predict(box=box, box_margin=box_margin)
    return again if again.mask.any() else seg


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b)) / u if u else 0.0


def _rel(new: float, old: float) -> float:
    return float(new) / float(old) - 1.0 if old > 0 else float("inf")


def _mean_asym(r) -> float:
    return (r.asymmetry.axes[0].shape_index + r.asymmetry.axes[1].shape_index) / 2.0


def decide(change: Change, floor: NoiseFloor) -> str:
    """The verdict: size first (area, then maximum diameter), then shape and colour."""
    if abs(change.area_rel) > floor.area_rel:
        return "grown" if change.area_rel > 0 else "shrunk"
    if abs(change.diameter_max_rel) > floor.diameter_max_rel:
        return "grown" if change.diameter_max_rel > 0 else "shrunk"
    if abs(change.asymmetry_delta) > floor.asymmetry or abs(change.border_delta) > floor.border:
        return "changed shape or colour"
    if change.colors_added or change.colors_lost:
        lighting_ok = change.ita_delta_deg is not None and abs(change.ita_delta_deg) <= (
            ITA_LIGHTING_DEG
        )
        if lighting_ok:
            return "changed shape or colour"
    return "no measurable change"


def _explain(change: Change, floor: NoiseFloor, verdict: str, scaled: bool) -> list[str]:
    pct = lambda v: f"{v:+.0%}"  # noqa: E731
    out = []
    if verdict == "no measurable change":
        out.append(
            "No measurable change: every difference between the two photos is within what "
            "photographing the same, unchanged lesion again produces (the noise floor)."
        )
    elif verdict in ("grown", "shrunk"):
        out.append(
            f"The lesion looks {'larger' if verdict == 'grown' else 'smaller'} in the later photo: "
            f"its area changed by {pct(change.area_rel)} and its largest diameter by "
            f"{pct(change.diameter_max_rel)}, beyond the noise floor of "
            f"\u00b1{floor.area_rel:.0%} (area) and \u00b1{floor.diameter_max_rel:.0%} (diameter)."
        )
    else:
        out.append(
            "The size is within the noise floor, but the shape or the colours changed more than "
            "re-photographing alone would explain."
        )
    size = f"Area {pct(change.area_rel)}, largest diameter {pct(change.diameter_max_rel)}"
    if scaled and change.area_mm2_delta is not None:
        size += f" ({change.area_mm2_delta:+.1f} mm\u00b2, {change.diameter_max_mm_delta:+.2f} mm)"
    out.append(
        size + ", both measured after aligning the earlier photo onto the later one, so a photo "
        "taken from closer or rotated does not count as growth."
    )
    out.append(
        f"New outline area {change.grown_fraction:.0%} and lost area {change.shrunk_fraction:.0%} "
        "of the earlier lesion (green and magenta in the growth map)."
    )
    if change.colors_added or change.colors_lost:
        parts = []
        if change.colors_added:
            parts.append(
                "new colours: " + ", ".join(c.replace("_", " ") for c in change.colors_added)
            )
        if change.colors_lost:
            parts.append(
                "colours gone: " + ", ".join(c.replace("_", " ") for c in change.colors_lost)
            )
        out.append(
            "; ".join(parts).capitalize() + ". Light and camera change colours too: compare the "
            "photos yourself."
        )
    return out


def compare_photos(
    earlier: np.ndarray,
    later: np.ndarray,
    predictor=None,
    *,
    box: list[float] | None = None,
    box_margin: float | None = None,
    earlier_mask: np.ndarray | None = None,
    later_mask: np.ndarray | None = None,
    scale_earlier: Scale | None = None,
    scale_later: Scale | None = None,
    scale_detail: dict[str, dict] | None = None,
    names: tuple[str, str] = ("earlier", "later"),
    noise_floor: NoiseFloor | None = None,
    registration: Registration | None = None,
) -> Comparison:
    """Compare the same lesion in ``earlier`` and ``later`` (``(H, W, 3)`` uint8 RGB photos).

    Outlines come from ``predictor`` (a :class:`~skinscreen.predictor.LesionPredictor`): with
    ``box`` (XYXY, EARLIER photo pixels) the box is carried into the LATER photo through the
    registration; without it, automatic mode runs in both (and the EARLIER outline's box is
    carried over when the two automatic outlines do not overlap). Or pass both masks.

    Raises:
        NotSameLesionError: the photos do not register, or the outlines do not overlap.
        SkinscreenError: an empty outline or a lesion outside one of the photos.
    """
    floor = noise_floor or default_noise_floor()
    scale_earlier = scale_earlier or Scale()
    scale_later = scale_later or Scale()
    reg = registration or register(earlier, later)
    if not reg.ok:
        raise NotSameLesionError(
            f"the two photos do not show the same skin: {reg.reason}. Give two photos of the "
            "same lesion with most of the surrounding skin in both."
        )
    size_l = later.shape[:2]
    seg_e = seg_l = None
    prob_e = prob_l = None
    if earlier_mask is None or later_mask is None:
        if predictor is None:
            raise SkinscreenError("give a predictor, or both earlier_mask and later_mask")
        predictor.set_image(earlier)
        seg_e = predictor.predict(box=box, box_margin=box_margin)
        seg_e = _reprompt(predictor, seg_e, box_margin)
        predictor.reset_image()
        predictor.set_image(later)
        if box is not None:
            seg_l = predictor.predict(box=carry_box(box, reg.matrix, size_l), box_margin=box_margin)
        else:
            seg_l = predictor.predict(box=None)
            if _iou(warp_to_later(seg_e.mask, reg.matrix, size_l), seg_l.mask) < MIN_OUTLINE_IOU:
                seg_l = predictor.predict(
                    box=carry_box(seg_e.box, reg.matrix, size_l), box_margin=0.0
                )
        seg_l = _reprompt(predictor, seg_l, box_margin)
        predictor.reset_image()
        earlier_mask, later_mask = seg_e.mask, seg_l.mask
        prob_e, prob_l = seg_e.probability, seg_l.probability
    earlier_mask = np.asarray(earlier_mask).astype(bool)
    later_mask = np.asarray(later_mask).astype(bool)
    for m, which in ((earlier_mask, "earlier"), (later_mask, "later")):
        if not m.any():
            raise SkinscreenError(
                f"no lesion outlined in the {which} photo: give --box X0,Y0,X1,Y1 (earlier photo)"
            )

    if registration is None:
        # the lesion may have changed, the skin around it has not: register again on the skin
        again = register(earlier, later, exclude_earlier=earlier_mask, exclude_later=later_mask)
        if again.ok:
            reg = again
    mapped = warp_to_later(earlier_mask, reg.matrix, size_l)
    ys, xs = np.nonzero(earlier_mask)
    step = max(1, len(xs) // 20000)
    q = apply_homography(reg.matrix, np.c_[xs[::step], ys[::step]])
    inside = np.mean(
        (q[:, 0] >= 0) & (q[:, 1] >= 0) & (q[:, 0] <= size_l[1] - 1) & (q[:, 1] <= size_l[0] - 1)
    )
    if inside < MIN_INSIDE:
        raise SkinscreenError(
            "the lesion of the earlier photo lies partly outside the later photo: take the later "
            "photo with the whole lesion and some skin around it in frame"
        )
    iou = _iou(mapped, later_mask)
    if iou < MIN_OUTLINE_IOU:
        raise NotSameLesionError(
            f"the outlines in the two photos do not overlap after alignment (Jaccard {iou:.2f}): "
            "they are probably different lesions. Give --box around the same lesion."
        )

    a_e = assess_image(
        earlier,
        earlier_mask,
        probability=prob_e,
        segmentation=seg_e,
        scale=scale_earlier,
        image_name=names[0],
    )
    a_l = assess_image(
        later,
        later_mask,
        probability=prob_l,
        segmentation=seg_l,
        scale=scale_later,
        image_name=names[1],
    )
    pe, pl = LesionProperties(mapped), a_l.props
    re_, rl = a_e.report, a_l.report
    scaled = scale_earlier.mm_per_pixel is not None and scale_later.mm_per_pixel is not None
    s = scale_later.mm_per_pixel if scaled else None
    base = float(pe.area_px)
    grown = np.count_nonzero(later_mask & ~mapped) / base
    shrunk = np.count_nonzero(mapped & ~later_mask) / base
    ita_delta = (
        None if re_.ita_deg is None or rl.ita_deg is None else round(rl.ita_deg - re_.ita_deg, 2)
    )
    change = Change(
        area_rel=round(_rel(pl.area_px, pe.area_px), 4),
        diameter_max_rel=round(_rel(pl.diameter_max_px, pe.diameter_max_px), 4),
        diameter_equivalent_rel=round(
            _rel(pl.diameter_equivalent_px, pe.diameter_equivalent_px), 4
        ),
        area_mm2_delta=None if s is None else round((pl.area_px - pe.area_px) * s * s, 3),
        diameter_max_mm_delta=None
        if s is None
        else round((pl.diameter_max_px - pe.diameter_max_px) * s, 3),
        diameter_equivalent_mm_delta=None
        if s is None
        else round((pl.diameter_equivalent_px - pe.diameter_equivalent_px) * s, 3),
        asymmetry_delta=round(_mean_asym(rl) - _mean_asym(re_), 4),
        border_delta=round(rl.border.compactness - re_.border.compactness, 4),
        abrupt_octants_delta=rl.border.abrupt_octants - re_.border.abrupt_octants,
        colors_added=[c for c in rl.colors.present if c not in re_.colors.present],
        colors_lost=[c for c in re_.colors.present if c not in rl.colors.present],
        color_variegation_delta=round(rl.colors.variegation - re_.colors.variegation, 3),
        ita_delta_deg=ita_delta,
        grown_fraction=round(grown, 4),
        shrunk_fraction=round(shrunk, 4),
        outline_iou=round(iou, 4),
    )
    verdict = decide(change, floor)
    warnings = []
    if ita_delta is not None and abs(ita_delta) > ITA_LIGHTING_DEG:
        warnings.append(
            f"The skin around the lesion looks different in the two photos (ITA {ita_delta:+.0f} "
            "degrees): the light or the camera differs, so colour changes are not reliable."
        )
    if scaled:
        ratio = scale_earlier.mm_per_pixel / scale_later.mm_per_pixel
        if not math.isclose(ratio, reg.scale, rel_tol=0.05):
            warnings.append(
                f"The two scales disagree with the alignment: the photos' zoom differs by "
                f"{reg.scale:.2f}x but their mm per pixel by {ratio:.2f}x. Millimetre changes use "
                "the later photo's scale; check both scales."
            )
    else:
        warnings.append(
            "No scale for both photos: changes are relative (percent) only. Give --mm-per-pixel, "
            "--dermoscope or --auto-scale for millimetres."
        )
    if reg.reprojection_error_px > 3.0:
        warnings.append(
            f"The alignment is loose (error {reg.reprojection_error_px:.1f} px): the skin may have "
            "stretched or the angle differs a lot; small changes are less certain."
        )
    detail = scale_detail or {}

    def _src(sc: Scale, key: str) -> ScaleSource:
        d = detail.get(key) or {}
        return ScaleSource(
            mm_per_pixel=sc.mm_per_pixel,
            uncertainty_mm_per_pixel=d.get("uncertainty_mm_per_pixel"),
            source=sc.source,
            detail=d.get("detail"),
        )

    report = ComparisonReport(
        schema_version=COMPARE_SCHEMA_VERSION,
        disclaimer=DISCLAIMER,
        skinscreen_version=__version__,
        registration=RegistrationInfo(**reg.to_dict()),
        earlier=re_,
        later=rl,
        scale={"earlier": _src(scale_earlier, "earlier"), "later": _src(scale_later, "later")},
        change=change,
        noise_floor=NoiseFloorInfo(**floor.to_dict()),
        verdict=verdict,
        explanation=_explain(change, floor, verdict, scaled),
        warnings=warnings,
        not_measurable=list(NOT_MEASURABLE),
    )
    return Comparison(
        report=report,
        earlier=a_e,
        later=a_l,
        registration=reg,
        earlier_mask_in_later=mapped,
        earlier_photo_in_later=warp_to_later(earlier, reg.matrix, size_l),
    )
