"""How far to trust an outline: quality signals, predicted Jaccard, failure probability."""

from skinscreen.outline_quality.score import (
    FAILURE_JACCARD,
    FEATURES,
    QualityModel,
    load_quality_model,
    outline_quality,
    outline_signals,
)

__all__ = [
    "FAILURE_JACCARD",
    "FEATURES",
    "QualityModel",
    "load_quality_model",
    "outline_quality",
    "outline_signals",
]
