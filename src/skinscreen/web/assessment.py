"""Optional bridge to :mod:`skinscreen.assess` (lesion features, photo quality).

The web app works without it: when the module is missing, or fails on a photo, the segmentation
still comes back, with ``features: null`` and a note saying why.
"""

from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)


def _modules():
    try:
        from skinscreen.assess import LesionProperties, assess_quality
    except ImportError as e:
        return None, f"the assessment module is not installed ({e})"
    return (LesionProperties, assess_quality), "ok"


def jpeg_quality(data: bytes) -> float | None:
    """The JPEG quality of the uploaded bytes from their quantisation tables (None: unknown or
    not a JPEG, or the assessment module is missing)."""
    try:
        from skinscreen.assess.quality import jpeg_quality_estimate
    except ImportError:
        return None
    return jpeg_quality_estimate(data)


def available() -> bool:
    return _modules()[0] is not None


def to_jsonable(obj: object) -> object:
    """Recursively turn numpy scalars/arrays into JSON values (NaN/inf become null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def run(
    image: np.ndarray, mask: np.ndarray, jpeg_quality: float | None = None
) -> tuple[dict | None, dict | None, str]:
    """Assess one segmented lesion: ``(features, quality, note)``; never raises.

    ``features``: :meth:`LesionProperties.to_dict` (pixel units; no mm without a scale),
    ``quality``: :meth:`QualityReport.to_dict` (with plain-language ``warnings``).
    ``jpeg_quality``: the uploaded file's JPEG quality (``jpeg_quality_estimate``), if known.
    """
    mods, note = _modules()
    if mods is None:
        return None, None, note
    if not mask.any():
        return None, None, "empty mask: nothing to assess"
    props_cls, quality_fn = mods
    try:
        props = props_cls(mask, image)
        features = to_jsonable(props.to_dict())
        quality = to_jsonable(quality_fn(image, mask, props, jpeg_quality=jpeg_quality).to_dict())
    except Exception as e:  # an assessment failure must not lose the segmentation
        log.warning("assessment failed: %s", e)
        return None, None, f"the assessment failed on this photo: {e}"
    return features, quality, "ok"
