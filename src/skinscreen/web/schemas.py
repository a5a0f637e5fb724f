"""Response models of the web API (they document the JSON in the OpenAPI schema)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(description='"ok" when the server is up')
    version: str
    model: str
    model_loaded: bool
    bundle_present: bool
    bundle_error: str | None = None
    assessment_available: bool
    on_device_available: bool = Field(description="onnxruntime-web files are installed")
    cache: dict
    queue: dict | None = Field(None, description="work queue: workers, capacity, admitted, refused")
    disclaimer: str


class ModelFile(BaseModel):
    part: str
    url: str
    bytes: int
    sha256: str


class ModelInfo(BaseModel):
    name: str
    served: bool = Field(description="this is the model /api/segment uses")
    path: str = Field(description="the bundle's folder name (never a full local path)")
    default_variant: str
    variant: str | None = Field(None, description="variant in use (served model only)")
    variants: list[str]
    size_bytes: int
    manifest_url: str | None = None
    files: list[ModelFile] = Field(default_factory=list, description="for the on-device mode")
    accuracy: dict | None = None
    parity: dict | None = None
    box_check: dict | None = Field(
        None,
        description="served model only, when its box check is on: model, agreement_min and the "
        "box-robust decoder's file (part, url, bytes, sha256) for the on-device mode",
    )


class ErrorResponse(BaseModel):
    detail: str


class SegmentResponse(BaseModel):
    """One segmentation. Coordinates are photo pixels (EXIF-upright), boxes XYXY."""

    model: str
    variant: str
    box: list[float] = Field(
        description="[x0, y0, x1, y1] box as sent (user) or found (auto), photo pixels"
    )
    box_source: str = Field(description='"user", "auto" or "full-image"')
    box_margin: float = Field(
        0.0, description="fraction of the box's width/height added per side (user boxes)"
    )
    box_used: list[float] | None = Field(
        None, description="[x0, y0, x1, y1] box that prompted the model: box grown, clipped"
    )
    polygon: list[list[float]] = Field(description="outer contour, [[x, y], ...] photo pixels")
    svg_path: str = Field(description='SVG path data "M x y L x y ... Z" in photo pixels')
    area_px: int = Field(description="mask area in photo pixels")
    area_fraction: float = Field(description="mask area / photo area")
    image_size: list[int] = Field(description="[width, height] of the EXIF-upright photo")
    image_sha256: str = Field(description="sha256 of the uploaded bytes (the cache key)")
    iou_prediction: float = Field(description="the decoder's IoU head")
    mask_png: str = Field(description="base64 PNG (mode L, 0/255) at photo resolution")
    heatmap_png: str = Field(description="base64 RGBA PNG of the probability, stretch to photo")
    heatmap_size: list[int] = Field(description="[width, height] of heatmap_png")
    features: dict | None = Field(description="lesion assessment, null when unavailable")
    quality: dict | None = Field(None, description="photo quality around the lesion, with warnings")
    assessment_note: str
    auto: dict | None = Field(None, description="automatic box details (box 'auto')")
    advisory: str | None = Field(
        None,
        description="automatic outlines only: check the outline, or draw a box (stronger on "
        "brown or dark skin, where automatic mode failed most often)",
    )
    box_check: dict | None = Field(
        None,
        description="box check on a drawn box: agreement (Dice of the two decoders' masks), "
        'threshold, decoder ("default" or "box-robust": the outline shown), check_model; null '
        "when no check ran",
    )
    weights: list[dict] = Field(
        default_factory=list,
        description="every set of weights that produced this outline: role (model, box-check "
        "decoder, localiser), name, licence, commercial_use",
    )
    commercial_use: bool = Field(
        True, description="whether the licences of all those weights allow commercial use"
    )
    commercial_only: bool = Field(
        False, description="the server runs only weights whose licence allows commercial use"
    )
    outline_quality: dict | None = Field(
        None,
        description="outline-quality estimate: predicted_jaccard, p_failure (Jaccard < 0.65), "
        "check_outline (true: check this outline or draw a box), threshold, drivers, signals; "
        "null when the model ships no quality model",
    )
    cache_hit: bool = Field(description="the photo's embedding came from the in-memory cache")
    timings_ms: dict[str, float]
    disclaimer: str
