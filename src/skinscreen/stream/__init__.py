"""Video and camera frames: track a lesion across frames (see docs/stream.md).

:class:`LesionTracker` is the frame-loop API (``feed(frame) -> FrameResult``);
:mod:`skinscreen.stream.runner` reads files and cameras and drops frames rather than lag;
:mod:`skinscreen.stream.synthetic` builds test clips with exact per-frame truth.

A screening aid, never a diagnosis.
"""

from skinscreen.stream.quality import BestFrame, BestFramePicker, FrameQuality, frame_quality
from skinscreen.stream.tracker import FrameResult, LesionTracker, TrackerConfig, TrackerStats

__all__ = [
    "BestFrame",
    "BestFramePicker",
    "FrameQuality",
    "FrameResult",
    "LesionTracker",
    "TrackerConfig",
    "TrackerStats",
    "frame_quality",
]
