"""Per-frame photo quality and the "best frame" picker for the still assessment.

A frame is good for the still assessment when it is sharp (variance of the Laplacian), well
exposed (few clipped pixels, mean brightness in a usable range) and shows the whole lesion near
the centre. :func:`frame_quality` scores one frame; :class:`BestFramePicker` keeps the best one
seen so far (online, one frame in memory).

Images are ``(H, W, 3)`` uint8 RGB, masks ``(H, W)`` bool, boxes XYXY in frame pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

#: Sharpness is measured on a gray copy with this longest side, so scores compare across sizes.
SHARPNESS_SIDE = 256
#: Variance of the Laplacian at which the sharpness score reaches 0.5 (gray levels squared).
SHARPNESS_HALF = 60.0
#: Mean gray levels inside this range count as well exposed; the score falls linearly outside.
EXPOSURE_RANGE = (70.0, 215.0)


@dataclass(frozen=True)
class FrameQuality:
    """Quality of one frame for the still assessment (all scores in [0, 1] unless stated).

    Attributes:
        sharpness: variance of the Laplacian of the gray lesion region (or whole frame) scaled
            to :data:`SHARPNESS_SIDE` px (gray levels squared, unbounded).
        sharpness_score: ``sharpness / (sharpness + SHARPNESS_HALF)``.
        exposure_score: share of unclipped pixels (gray in [5, 250]) times a brightness term
            that is 1 inside :data:`EXPOSURE_RANGE`.
        centring_score: 1 - distance of the mask centroid from the frame centre / half diagonal
            (0 without a mask).
        complete: the mask does not touch the frame border.
        score: product of the three scores, halved when the lesion is cut by the border.
    """

    sharpness: float
    sharpness_score: float
    exposure_score: float
    centring_score: float
    complete: bool
    score: float

    def to_json_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian (3x3) of an ``(h, w)`` uint8/float gray image."""
    return float(cv2.Laplacian(gray, cv2.CV_32F, ksize=3).var())


def frame_quality(
    frame: np.ndarray, mask: np.ndarray | None, box: np.ndarray | None = None
) -> FrameQuality:
    """Score ``frame`` ``(H, W, 3)`` with its lesion ``mask`` ``(H, W)`` (None or empty: no lesion).

    Sharpness is measured inside ``box`` grown by 25% (the lesion and its border) when given.
    """
    h, w = frame.shape[:2]
    s = min(1.0, SHARPNESS_SIDE / max(h, w))
    gray_full = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    region = gray_full
    if box is not None:
        x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
        dw, dh = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
        xa, ya = max(0, int(x0 - dw)), max(0, int(y0 - dh))
        xb, yb = min(w, int(np.ceil(x1 + dw))), min(h, int(np.ceil(y1 + dh)))
        if xb - xa >= 8 and yb - ya >= 8:
            region = gray_full[ya:yb, xa:xb]
    if s < 1.0:
        rh, rw = region.shape
        region = cv2.resize(
            region, (max(4, round(rw * s)), max(4, round(rh * s))), interpolation=cv2.INTER_AREA
        )
    sharp = sharpness(region)
    sharp_score = sharp / (sharp + SHARPNESS_HALF)

    unclipped = float(np.mean((gray_full >= 5) & (gray_full <= 250)))
    mean = float(gray_full.mean())
    lo, hi = EXPOSURE_RANGE
    bright = 1.0 - max(0.0, lo - mean, mean - hi) / lo
    exposure = unclipped * max(0.0, bright)

    if mask is None or not mask.any():
        return FrameQuality(sharp, sharp_score, exposure, 0.0, False, 0.0)
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    centring = max(0.0, 1.0 - np.hypot(cx - w / 2, cy - h / 2) / (0.5 * np.hypot(w, h)))
    complete = not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    score = sharp_score * exposure * centring * (1.0 if complete else 0.5)
    return FrameQuality(sharp, sharp_score, exposure, float(centring), bool(complete), float(score))


@dataclass
class BestFrame:
    """The best frame so far: its index, quality, a copy of the frame and its mask."""

    index: int
    quality: FrameQuality
    frame: np.ndarray
    mask: np.ndarray
    box: np.ndarray | None


class BestFramePicker:
    """Keep the frame with the highest :attr:`FrameQuality.score` (ties: the earlier one).

    ``offer`` copies the frame only when it becomes the best, so memory stays one frame.
    """

    def __init__(self, min_score: float = 0.0):
        self.min_score = min_score
        self.best: BestFrame | None = None

    def offer(
        self,
        index: int,
        frame: np.ndarray,
        mask: np.ndarray | None,
        quality: FrameQuality,
        box: np.ndarray | None = None,
    ) -> bool:
        """Consider a frame; returns True when it becomes the best one."""
        if mask is None or quality.score <= self.min_score:
            return False
        if self.best is not None and quality.score <= self.best.quality.score:
            return False
        self.best = BestFrame(index, quality, frame.copy(), mask.copy(), box)
        return True

    def reset(self) -> None:
        self.best = None
