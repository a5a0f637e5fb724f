"""Mask + photo -> :class:`~skinscreen.report.schema.LesionReport` (features, skin tone, quality)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skinscreen._version import __version__
from skinscreen.assess import color as col
from skinscreen.assess import features as feat
from skinscreen.assess.features import LesionProperties
from skinscreen.assess.quality import QualityReport, assess_quality
from skinscreen.assess.scale import Scale
from skinscreen.disclaimer import DISCLAIMER
from skinscreen.errors import SkinscreenError
from skinscreen.report.schema import (
    SCHEMA_VERSION,
    Asymmetry,
    AxisAsymmetry,
    Border,
    Colors,
    ImageInfo,
    LesionReport,
    OutlineQuality,
    Quality,
    ScaleInfo,
    SegmentationInfo,
)

#: Criteria the tool does not assess, stated in every report.
NOT_ASSESSED: tuple[str, ...] = (
    "Dermoscopic structures (the D of the dermoscopic ABCD rule: pigment network, dots, globules, "
    "streaks, structureless areas) cannot be measured from an outline, so no Total Dermoscopy "
    "Score (TDS) is computed.",
    "Evolution (the E of the clinical ABCDE rule) needs photos of the same lesion over time.",
)


@dataclass
class Assessment:
    """A report with what was used to compute it (for drawing overlays).

    ``image`` is the photo the colour features saw (colour-corrected when ``color_constancy``),
    ``photo`` the original; both ``(H, W, 3)`` uint8 RGB. ``probability`` ``(H, W)`` float32 or None.
    """

    report: LesionReport
    props: LesionProperties
    quality: QualityReport
    photo: np.ndarray
    image: np.ndarray
    probability: np.ndarray | None


#: skin-tone categories on which automatic mode failed most often (docs/robustness.md)
AUTO_WEAK_SKIN_TONES: tuple[str, ...] = ("brown", "dark")


def automatic_outline_warning(skin_tone: str | None) -> str:
    """The advisory every automatically outlined lesion gets, stronger on the skin tones where
    automatic mode failed most often in our tests (``skin_tone``: an ITA category or None).

    Measured with the default pipeline (docs/robustness.md, "The whole suite, default pipeline"): an outline
    overlapping the expert's by less than 65% (Jaccard) in 15 of 86 dev dermoscopy photos on very
    light to tan skin with the automatic box vs 3 of 86 with the expert's box; on brown or dark
    skin (dev and skin-tones photos) 8 of 15 automatic vs 3 of 15 drawn.
    """
    text = (
        "The lesion was found and outlined automatically (no box was given). Automatic outlines "
        "miss part of the lesion more often than outlines from a drawn box (in our tests about 1 "
        "in 6 dermoscopy photos, against 1 in 30 with a box). Check the outline on the overlay; "
        "if it misses part of the lesion or outlines something else, give a box "
        "(--box X0,Y0,X1,Y1, or draw one on the web page)."
    )
    if skin_tone in AUTO_WEAK_SKIN_TONES:
        text += (
            f" The skin around this lesion measures {skin_tone}: on brown and dark skin about "
            "half of the automatic outlines in our tests missed much of the lesion, so a drawn "
            "box matters even more here."
        )
    return text


def check_outline_warning(q: dict) -> str:
    """The warning of an outline the outline-quality model flags (``q``: its JSON block)."""
    return (
        "Check this outline: it is likely wrong (predicted overlap with an expert's outline "
        f"{q['predicted_jaccard']:.0%}, failure probability {q['p_failure']:.0%}). Compare it "
        "with the lesion, and draw or adjust the box if it does not follow the lesion's edge."
    )


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(float(v), nd)


def assess_image(
    photo: np.ndarray,
    mask: np.ndarray,
    *,
    probability: np.ndarray | None = None,
    segmentation: Any | None = None,
    scale: Scale | None = None,
    color_constancy: bool = False,
    image_name: str = "photo",
    jpeg_quality: float | None = None,
) -> Assessment:
    """Measure the lesion ``mask`` ``(H, W)`` bool in ``photo`` ``(H, W, 3)`` uint8 RGB.

    Args:
        probability: the model's ``(H, W)`` lesion probability (for the heatmap), if any.
        segmentation: the :class:`skinscreen.predictor.Segmentation` the mask came from; None
            when the user supplied the mask.
        scale: mm per pixel (default: unknown, mm fields None).
        color_constancy: apply Shades-of-Gray colour constancy before the colour features.
        image_name: the photo's file name, for the report.
        jpeg_quality: the photo file's JPEG quality
            (:func:`skinscreen.assess.quality.jpeg_quality_estimate`); None: estimated from the
            pixels.
    """
    scale = scale or Scale()
    image = col.shades_of_gray(photo) if color_constancy else photo
    props = LesionProperties(mask, image, spacing=scale.mm_per_pixel)
    # quality is judged on the photo as taken (a colour cast is reported even when corrected)
    quality = assess_quality(
        photo, props.mask, None if color_constancy else props, jpeg_quality=jpeg_quality
    )

    if segmentation is not None:
        seg = SegmentationInfo(
            source="model",
            model=segmentation.model,
            variant=getattr(segmentation, "variant", None),
            box=[round(float(v), 2) for v in segmentation.box],
            box_source=segmentation.box_source,
            box_margin=round(float(getattr(segmentation, "box_margin", 0.0)), 4),
            box_used=[
                round(float(v), 2)
                for v in (
                    segmentation.box
                    if getattr(segmentation, "box_used", None) is None
                    else segmentation.box_used
                )
            ],
            iou_prediction=_r(segmentation.iou_prediction, 4),
            tta_views=int(getattr(segmentation, "tta_views", 1)),
            engine=getattr(segmentation, "engine", None),
            box_check=getattr(segmentation, "box_check", None),
            weights=list(getattr(segmentation, "weights", None) or []),
            commercial_use=all(w["commercial_use"] for w in getattr(segmentation, "weights", [])),
            commercial_only=bool(getattr(segmentation, "commercial_only", False)),
            timings_ms={k: round(float(v), 2) for k, v in segmentation.timings_ms.items()},
        )
    else:
        seg = SegmentationInfo(source="mask")

    axes = []
    for name, idx, cdelta in (
        ("major", props.asymmetry_major, props.color_asymmetry_major),
        ("minor", props.asymmetry_minor, props.color_asymmetry_minor),
    ):
        angle = (
            props.axis_major_angle_deg
            if name == "major"
            else (props.axis_major_angle_deg + 90) % 180
        )
        axes.append(
            AxisAsymmetry(
                axis=name,
                angle_deg=round(angle, 2),
                shape_index=round(idx, 4),
                shape_asymmetric=idx > feat.ASYMMETRY_THRESHOLD,
                color_delta_e=_r(cdelta, 2),
                color_asymmetric=None
                if cdelta is None
                else cdelta > feat.COLOR_ASYMMETRY_THRESHOLD,
            )
        )
    fractions = props.color_fractions
    warnings = list(quality.warnings)
    if scale.mm_per_pixel is None:
        warnings.append(
            "No scale given: sizes are in pixels only and the 6 mm diameter check is skipped. "
            "Give --mm-per-pixel (measure a ruler in the photo) or --dermoscope."
        )
    if segmentation is not None and segmentation.box_source == "full-image":
        warnings.append(
            "No lesion box was found automatically and the whole photo was used: check the "
            "outline, or give --box X0,Y0,X1,Y1."
        )
    if segmentation is not None and segmentation.box_source == "auto":
        warnings.append(automatic_outline_warning(props.skin_tone))
    oq = getattr(segmentation, "outline_quality", None) if segmentation is not None else None
    if oq is not None and oq.get("check_outline"):
        warnings.insert(0, check_outline_warning(oq))
    report = LesionReport(
        schema_version=SCHEMA_VERSION,
        disclaimer=DISCLAIMER,
        skinscreen_version=__version__,
        image=ImageInfo(name=image_name, width=int(photo.shape[1]), height=int(photo.shape[0])),
        segmentation=seg,
        scale=ScaleInfo(**scale.to_dict()),
        color_constancy=bool(color_constancy),
        area_px=props.area_px,
        area_mm2=_r(props.area_mm2, 3),
        perimeter_px=round(props.perimeter_px, 2),
        perimeter_mm=_r(props.perimeter_mm, 3),
        diameter_max_px=round(props.diameter_max_px, 2),
        diameter_max_mm=_r(props.diameter_max_mm, 3),
        diameter_max_endpoints=props.diameter_max_endpoints.round(2).tolist(),
        diameter_equivalent_px=round(props.diameter_equivalent_px, 2),
        diameter_equivalent_mm=_r(props.diameter_equivalent_mm, 3),
        diameter_over_6mm=props.diameter_over_6mm,
        centroid=props.centroid_xy.round(2).tolist(),
        asymmetry=Asymmetry(
            axes=axes,
            asymmetric_axes=props.asymmetry_count,
            color_asymmetric_axes=props.color_asymmetry_count,
            shape_threshold=feat.ASYMMETRY_THRESHOLD,
            color_threshold_delta_e=feat.COLOR_ASYMMETRY_THRESHOLD,
        ),
        border=Border(
            compactness=round(props.compactness, 4),
            solidity=round(props.solidity, 4),
            octant_edge_width=[_r(v, 4) for v in props.border_edge_width],
            abrupt_octants=props.border_abrupt_count,
            abrupt_width_threshold=feat.BORDER_ABRUPT_WIDTH,
        ),
        colors=Colors(
            present=props.colors_present,
            count=props.color_count,
            fractions={k: round(v, 4) for k, v in fractions.items()},
            min_fraction=col.COLOR_MIN_FRACTION,
            variegation=round(props.color_variegation, 3),
            lab_std=[round(v, 3) for v in props.color_std_lab],
            skin_lab=None
            if props.skin_lab is None
            else [round(float(v), 2) for v in props.skin_lab],
        ),
        ita_deg=_r(props.ita_deg, 2),
        skin_tone=props.skin_tone,
        outline_quality=None if oq is None else OutlineQuality(**oq),
        quality=Quality(
            **{
                k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in quality.to_dict().items()
                if k != "warnings"
            }
        ),
        warnings=warnings,
        not_assessed=list(NOT_ASSESSED),
    )
    return Assessment(
        report=report,
        props=props,
        quality=quality,
        photo=photo,
        image=image,
        probability=probability,
    )


def flat_row(report: LesionReport) -> dict:
    """One CSV row of a report's headline features (lists joined with ';')."""
    a, b, c = report.asymmetry, report.border, report.colors
    return {
        "image": report.image.name,
        "area_px": report.area_px,
        "area_mm2": report.area_mm2,
        "perimeter_px": report.perimeter_px,
        "perimeter_mm": report.perimeter_mm,
        "diameter_max_px": report.diameter_max_px,
        "diameter_max_mm": report.diameter_max_mm,
        "diameter_equivalent_px": report.diameter_equivalent_px,
        "diameter_equivalent_mm": report.diameter_equivalent_mm,
        "diameter_over_6mm": report.diameter_over_6mm,
        "asymmetry_major": a.axes[0].shape_index,
        "asymmetry_minor": a.axes[1].shape_index,
        "asymmetric_axes": a.asymmetric_axes,
        "color_asymmetry_major": a.axes[0].color_delta_e,
        "color_asymmetry_minor": a.axes[1].color_delta_e,
        "color_asymmetric_axes": a.color_asymmetric_axes,
        "compactness": b.compactness,
        "solidity": b.solidity,
        "abrupt_octants": b.abrupt_octants,
        "colors": ";".join(c.present),
        "color_count": c.count,
        "color_variegation": c.variegation,
        "ita_deg": report.ita_deg,
        "skin_tone": report.skin_tone,
        "quality_ok": report.quality.ok,
        "warnings": len(report.warnings),
        "box_source": report.segmentation.box_source,
    }


def segment_and_assess(
    predictor,
    path: Path,
    *,
    box: object | None = None,
    box_margin: float | None = None,
    mm_per_pixel: float | None = None,
    dermoscope: str | None = None,
    color_constancy: bool = False,
    abstain: bool = False,
) -> Assessment:
    """Segment the lesion in the photo at ``path`` with ``predictor`` (``box`` XYXY photo pixels,
    or None for automatic mode) and measure it (what ``skinscreen assess`` does per photo).

    Raises:
        SkinscreenError: unreadable photo, bad box or scale, or no lesion found.
    """
    from skinscreen.assess.quality import jpeg_quality_estimate
    from skinscreen.assess.scale import resolve_scale
    from skinscreen.io.dicom import dicom_mm_per_pixel

    predictor.set_image(path, box=box)  # a bad box is refused before the encoder runs
    try:
        seg = predictor.predict(box=box, box_margin=box_margin, abstain=abstain)
        if not seg.mask.any():
            raise SkinscreenError(
                "no lesion found (empty outline): draw a box with --box X0,Y0,X1,Y1"
            )
        photo = predictor.image
        return assess_image(
            photo,
            seg.mask,
            probability=seg.probability,
            segmentation=seg,
            scale=resolve_scale(
                mm_per_pixel,
                dermoscope,
                photo.shape[:2],
                file_mm_per_pixel=dicom_mm_per_pixel(path),
            ),
            color_constancy=color_constancy,
            image_name=Path(path).name,
            jpeg_quality=jpeg_quality_estimate(path),
        )
    finally:
        predictor.reset_image()
