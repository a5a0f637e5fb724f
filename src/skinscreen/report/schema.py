"""The assessment report: a versioned pydantic schema, published as JSON Schema.

``docs/report.schema.json`` is generated from :class:`LesionReport`; regenerate it with
``python -m skinscreen.report.schema > docs/report.schema.json`` after any change here, and bump
:data:`SCHEMA_VERSION` (minor: fields added; major: fields renamed, removed or re-defined).

Units: ``*_px`` photo pixels, ``*_mm`` millimetres, ``*_mm2`` square millimetres (None when no
scale is known), angles in degrees, colour differences in CIEDE2000 units.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.4"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageInfo(_Model):
    name: str = Field(description="File name of the photo (no directories).")
    width: int
    height: int


class WeightsInfo(_Model):
    role: str = Field(description="'model', 'box-check decoder' or 'localiser'.")
    name: str = Field(description="Model or asset name, e.g. litemedsam, litemedsam-boxaug.")
    licence: str = Field(description="Licence of these weights.")
    commercial_use: bool = Field(description="Whether that licence allows commercial use.")


class SegmentationInfo(_Model):
    source: Literal["model", "mask"] = Field(
        description="'model': predicted by skinscreen; 'mask': a mask file supplied by the user."
    )
    model: str | None = None
    variant: str | None = None
    engine: str | None = Field(None, description="'onnxruntime' or 'openvino'.")
    box: list[float] | None = Field(
        None, description="XYXY box as given (user) or found (auto), photo pixels."
    )
    box_source: str | None = Field(None, description="'user', 'auto' or 'full-image'.")
    box_margin: float | None = Field(
        None, description="Fraction of the box's width/height added per side (user boxes)."
    )
    box_used: list[float] | None = Field(
        None, description="XYXY box that prompted the model: box grown by box_margin, clipped."
    )
    iou_prediction: float | None = Field(None, description="The decoder's own quality estimate.")
    tta_views: int | None = Field(
        None,
        description="Outlines averaged: 4 with test-time flips (--tta: the photo and its three "
        "mirror images), 1 without.",
    )
    box_check: dict | None = Field(
        None,
        description="The box check on a drawn box: agreement (Dice of the two decoders' masks), "
        "threshold, decoder ('default' or 'box-robust': the outline used), check_model; null "
        "when no check ran.",
    )
    weights: list[WeightsInfo] = Field(
        default_factory=list,
        description="Every set of weights that produced the outline, with its licence.",
    )
    commercial_use: bool | None = Field(
        None, description="Whether the licences of all those weights allow commercial use."
    )
    commercial_only: bool | None = Field(
        None, description="Run with --commercial-only (only commercially licensed weights)."
    )
    timings_ms: dict[str, float] = Field(default_factory=dict)


class QualityDriver(_Model):
    signal: str = Field(description="Name of the signal (see outline_quality.signals).")
    value: float
    effect: float = Field(
        description="How much lower p_failure would be with this signal at its training median."
    )


class OutlineQuality(_Model):
    """How far to trust the outline (skinscreen.outline_quality): an estimate learned on
    lesions-train against expert outlines; it can be wrong too."""

    model_config = ConfigDict(extra="allow")

    predicted_jaccard: float = Field(
        ge=0, le=1, description="Predicted Jaccard (IoU) of the outline with an expert's."
    )
    p_failure: float = Field(
        ge=0, le=1, description="Calibrated probability that the outline is a failure (J < 0.65)."
    )
    check_outline: bool = Field(
        description="p_failure at or above the operating point: check this outline or draw a box."
    )
    threshold: float = Field(description="The operating point on p_failure (chosen in CV).")
    drivers: list[QualityDriver] = Field(
        default_factory=list, description="The signals that raised p_failure most."
    )
    signals: dict[str, float] = Field(default_factory=dict)
    model: str | None = None


class ScaleInfo(_Model):
    mm_per_pixel: float | None = None
    source: str | None = Field(None, description="'user' or 'dermoscope:<preset>'; None: no scale.")


class AxisAsymmetry(_Model):
    axis: Literal["major", "minor"]
    angle_deg: float = Field(description="Axis angle, counter-clockwise on screen from +x.")
    shape_index: float = Field(
        description="Fraction of the lesion area not overlapping its mirror image about the axis."
    )
    shape_asymmetric: bool
    color_delta_e: float | None = Field(
        None, description="CIEDE2000 difference between the mean colours of the two halves."
    )
    color_asymmetric: bool | None = None


class Asymmetry(_Model):
    axes: list[AxisAsymmetry]
    asymmetric_axes: int = Field(ge=0, le=2, description="Axes with shape_asymmetric (0-2).")
    color_asymmetric_axes: int = Field(ge=0, le=2)
    shape_threshold: float
    color_threshold_delta_e: float


class Border(_Model):
    compactness: float = Field(description="P^2 / (4 pi A): 1 for a disc, larger when irregular.")
    solidity: float = Field(description="Area over convex-hull area: 1 when convex.")
    octant_edge_width: list[float | None] = Field(
        min_length=8,
        max_length=8,
        description="10-90 % lightness transition width per octant, in lesion radii "
        "(octant 0 starts at 3 o'clock, counter-clockwise). None: not measurable.",
    )
    abrupt_octants: int = Field(ge=0, le=8, description="Octants with an abrupt cut-off.")
    abrupt_width_threshold: float


class Colors(_Model):
    present: list[str] = Field(
        description="Dermoscopic colours present: white, red, light_brown, dark_brown, "
        "blue_gray, black."
    )
    count: int = Field(ge=0, le=6)
    fractions: dict[str, float] = Field(
        description="Fraction of lesion pixels per class (the six colours, skin, other)."
    )
    min_fraction: float
    variegation: float = Field(description="sqrt(var L* + var a* + var b*) over the lesion.")
    lab_std: list[float] = Field(min_length=3, max_length=3)
    skin_lab: list[float] | None = Field(None, description="Median CIELAB of the skin ring.")


class Quality(_Model):
    ok: bool
    sharpness: float
    overexposed_fraction: float
    underexposed_fraction: float
    lightness_median: float
    color_cast_deg: float
    skin_b: float | None
    touching_border: bool
    too_small: bool
    area_fraction: float
    compression_blockiness: float = Field(
        description="8x8 block-edge ratio of the luma (about 1 without block edges); reported only."
    )
    jpeg_quality_estimate: float | None = Field(
        description="JPEG quality (1-100, IJG scale) from the file's quantisation tables, or from "
        "the pixels' DC quantisation; None when not found. A warning at 25 or below."
    )
    jpeg_quality_source: Literal["file", "pixels"] | None = Field(
        description="'file' (quantisation tables), 'pixels' (decoded photo) or None."
    )


class LesionReport(_Model):
    """One lesion's assessment. A screening aid, never a diagnosis (see ``disclaimer``)."""

    schema_version: str = Field(description=f"Version of this schema ({SCHEMA_VERSION}).")
    disclaimer: str
    skinscreen_version: str
    image: ImageInfo
    segmentation: SegmentationInfo
    scale: ScaleInfo
    color_constancy: bool = Field(description="Shades-of-Gray correction applied before colour.")
    area_px: int
    area_mm2: float | None
    perimeter_px: float
    perimeter_mm: float | None
    diameter_max_px: float = Field(description="Maximum Feret diameter.")
    diameter_max_mm: float | None
    diameter_max_endpoints: list[list[float]] = Field(description="[[x, y], [x, y]] photo pixels.")
    diameter_equivalent_px: float
    diameter_equivalent_mm: float | None
    diameter_over_6mm: bool | None = Field(description="ABCDE 'D': None without a scale.")
    centroid: list[float] = Field(description="[x, y] photo pixels.")
    asymmetry: Asymmetry
    border: Border
    colors: Colors
    ita_deg: float | None = Field(description="Individual Typology Angle of the skin ring.")
    skin_tone: str | None = Field(
        description="ITA category: very light, light, intermediate, tan, brown, dark."
    )
    quality: Quality
    outline_quality: OutlineQuality | None = Field(
        None, description="Outline-quality estimate of a predicted outline (None: not computed)."
    )
    warnings: list[str]
    not_assessed: list[str] = Field(
        description="Criteria this tool cannot assess (e.g. dermoscopic structures)."
    )


def json_schema() -> dict:
    """The JSON Schema of :class:`LesionReport` (what ``docs/report.schema.json`` holds)."""
    schema = LesionReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m skinscreen.report.schema > docs/report.schema.json
    import sys

    sys.stdout.write(json_schema_text())
