"""Drawing a mask over its photo: translucent fill plus the contour path."""

from __future__ import annotations

import cv2
import numpy as np

#: Fill/contour colour (RGB): a teal that stays visible on pink, brown and dark skin.
OVERLAY_RGB = (0, 220, 200)


def draw_overlay(
    image: np.ndarray,
    mask: np.ndarray,
    polygon: np.ndarray | None = None,
    *,
    alpha: float = 0.35,
    color: tuple[int, int, int] = OVERLAY_RGB,
    box: np.ndarray | None = None,
) -> np.ndarray:
    """Return a copy of ``image`` ``(H, W, 3)`` uint8 RGB with ``mask`` ``(H, W)`` blended in.

    The contour (``polygon`` ``(N, 2)`` ``[x, y]`` if given, else the mask's outer contours) is
    drawn with a line width that scales with the photo so it stays readable on a phone screen;
    ``box`` (XYXY) is drawn dashed-free in white when given.
    """
    out = image.copy()
    m = mask.astype(bool)
    tint = np.array(color, dtype=np.float32)
    out[m] = (out[m].astype(np.float32) * (1 - alpha) + tint * alpha + 0.5).astype(np.uint8)
    thickness = max(2, round(max(image.shape[:2]) / 400))
    if polygon is not None and len(polygon) >= 2:
        contours = [np.round(polygon).astype(np.int32).reshape(-1, 1, 2)]
    else:
        contours, _ = cv2.findContours(
            m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
    cv2.polylines(out, contours, True, color, thickness, lineType=cv2.LINE_AA)
    if box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), max(1, thickness // 2))
    return out
