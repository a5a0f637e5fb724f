"""The change report: a versioned pydantic schema, published as ``docs/compare.schema.json``.

Regenerate with ``python -m skinscreen.compare.schema > docs/compare.schema.json`` after any change
here, and bump :data:`COMPARE_SCHEMA_VERSION` (minor: fields added; major: renamed or removed).
``earlier`` and ``later`` are ordinary assessment reports (``docs/report.schema.json``).
Relative changes are fractions (0.12 = +12 %), measured in the LATER photo's frame after
registration.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from skinscreen.report.schema import LesionReport

COMPARE_SCHEMA_VERSION = "1.0"

Verdict = Literal["no measurable change", "grown", "shrunk", "changed shape or colour"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegistrationInfo(_Model):
    ok: bool
    method: str = Field(description="e.g. 'sift+similarity+ecc': features, model, refinement.")
    inliers: int = Field(description="Feature matches consistent with the transform.")
    reprojection_error_px: float = Field(
        description="RMS distance of the inlier matches after registration, LATER photo pixels."
    )
    matches: int = Field(description="Feature matches passing the ratio test.")
    scale: float = Field(
        description="Zoom of the LATER photo relative to the EARLIER (>1: closer)."
    )
    rotation_deg: float = Field(description="Rotation of the LATER photo, counter-clockwise.")
    overlap: float = Field(description="Fraction of the LATER photo the EARLIER photo covers.")
    ecc_refined: bool
    matrix: list[list[float]] = Field(
        description="3x3 homography: EARLIER photo pixels [x, y, 1] -> LATER photo pixels."
    )
    reason: str | None = None


class ScaleSource(_Model):
    mm_per_pixel: float | None = None
    uncertainty_mm_per_pixel: float | None = Field(
        None, description="One standard error (ruler scales only)."
    )
    source: str | None = Field(
        None, description="'user', 'dermoscope:<preset>', 'ruler' or None (no scale)."
    )
    detail: dict | None = Field(
        None, description="Ruler: tick pitch (px), ticks used, the ruler line's end points."
    )


class Change(_Model):
    area_rel: float = Field(description="LATER area / EARLIER area (registered) - 1.")
    diameter_max_rel: float = Field(description="Same for the maximum Feret diameter.")
    diameter_equivalent_rel: float
    area_mm2_delta: float | None = Field(
        None, description="LATER - EARLIER area in mm2 (both photos scaled; LATER's frame)."
    )
    diameter_max_mm_delta: float | None = None
    diameter_equivalent_mm_delta: float | None = None
    asymmetry_delta: float = Field(
        description="Change of the mean shape-asymmetry index (major and minor axes)."
    )
    border_delta: float = Field(description="Change of the compactness index P^2 / (4 pi A).")
    abrupt_octants_delta: int
    colors_added: list[str]
    colors_lost: list[str]
    color_variegation_delta: float
    ita_delta_deg: float | None = Field(
        None, description="Change of the surrounding skin's ITA: a lighting check."
    )
    grown_fraction: float = Field(
        description="Area in the LATER outline only, as a fraction of the EARLIER area."
    )
    shrunk_fraction: float = Field(
        description="Area in the EARLIER outline only, as a fraction of the EARLIER area."
    )
    outline_iou: float = Field(description="Overlap (Jaccard) of the registered outlines.")


class NoiseFloorInfo(_Model):
    area_rel: float
    diameter_max_rel: float
    asymmetry: float
    border: float
    source: str


class ComparisonReport(_Model):
    """Two photos of one lesion compared. A screening aid, never a diagnosis."""

    schema_version: str = Field(description=f"Version of this schema ({COMPARE_SCHEMA_VERSION}).")
    disclaimer: str
    skinscreen_version: str
    registration: RegistrationInfo
    earlier: LesionReport
    later: LesionReport
    scale: dict[str, ScaleSource] = Field(
        description="'earlier' and 'later': where each came from."
    )
    change: Change
    noise_floor: NoiseFloorInfo
    verdict: Verdict
    explanation: list[str] = Field(description="The verdict and each change in plain words.")
    warnings: list[str]
    not_measurable: list[str]


def json_schema() -> dict:
    schema = ComparisonReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m skinscreen.compare.schema > docs/compare.schema.json
    import sys

    sys.stdout.write(json_schema_text())
