"""Assessment: lesion features (size, asymmetry, border, colour), skin tone, image quality, scale.

Definitions and sources of every feature: ``docs/features.md``. The dermoscopic ABCD rule's D
(differential structures) cannot be computed from a mask and is never reported; no TDS score is
produced. A screening aid, never a diagnosis.
"""

from skinscreen.assess.color import shades_of_gray
from skinscreen.assess.features import FEATURE_NAMES, LesionProperties, lesion_table
from skinscreen.assess.quality import QualityReport, assess_quality
from skinscreen.assess.scale import DERMOSCOPE_PRESETS, Scale, resolve_scale

__all__ = [
    "DERMOSCOPE_PRESETS",
    "FEATURE_NAMES",
    "LesionProperties",
    "QualityReport",
    "Scale",
    "assess_quality",
    "lesion_table",
    "resolve_scale",
    "shades_of_gray",
]
