"""Drawing the tracked lesion over a video frame: mask fill, contour, status line and FPS."""

from __future__ import annotations

import cv2
import numpy as np

from skinscreen.postprocess.overlay import OVERLAY_RGB, draw_overlay
from skinscreen.stream.tracker import FrameResult

#: Status colours (RGB): encoder ran on this frame / lesion lost / frame dropped.
ENCODER_RGB = (255, 200, 0)
LOST_RGB = (255, 90, 90)
FOOTER = "screening aid - not a diagnosis"


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color) -> None:
    """Readable text: dark outline under a coloured fill."""
    thick = max(1, round(scale * 2))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def annotate(
    frame: np.ndarray, result: FrameResult, *, fps: float | None = None, footer: bool = True
) -> np.ndarray:
    """Return a copy of ``frame`` ``(H, W, 3)`` uint8 RGB with ``result`` drawn over it.

    Tracking: translucent mask and contour (the teal of :data:`OVERLAY_RGB`), a dot in the
    corner when the encoder ran. Lost: a red "lesion lost" line. Dropped: the raw frame marked
    "dropped" (it was not processed).
    """
    h, w = frame.shape[:2]
    scale = max(0.35, min(1.0, w / 900))
    if result.dropped or result.mask is None:
        out = frame.copy()
        status, color = "dropped", (200, 200, 200)
    elif result.mask.any():
        out = draw_overlay(frame, result.mask, result.polygon)
        status = f"tracking  {result.area_px} px"
        color = OVERLAY_RGB
    else:
        out = frame.copy()
        status, color = "lesion lost - searching", LOST_RGB
    line = f"#{result.index}  {status}"
    if fps is not None:
        line = f"{fps:4.1f} FPS  " + line
    y = round(22 * scale + 6)
    _text(out, line, (8, y), scale * 0.8, color)
    if result.encoder_ran:
        r = max(3, round(6 * scale))
        cv2.circle(out, (w - 2 * r - 4, 2 * r + 4), r, ENCODER_RGB, -1, cv2.LINE_AA)
    if footer:
        _text(out, FOOTER, (8, h - 8), scale * 0.6, (255, 255, 255))
    return out


def frame_strip(tiles: list[np.ndarray], columns: int, gap: int = 4) -> np.ndarray:
    """Tile equally sized ``(H, W, 3)`` images into a grid with ``columns`` columns."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    out = np.full(
        (rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), 255, np.uint8
    )
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = t
    return out
