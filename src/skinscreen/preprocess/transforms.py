"""Pure geometry and pixel transforms between the photo and the model input.

Coordinate conventions used throughout skinscreen:

- images are ``(H, W, 3)`` uint8 RGB arrays (HWC);
- boxes are ``(4,)`` or ``(N, 4)`` float arrays in **XYXY** order ``[x0, y0, x1, y1]``;
- three pixel spaces: *original* (the EXIF-corrected photo, W x H), *resized* (the photo scaled
  for the model, ``new_w x new_h``) and *padded* (the square model input, S x S; padding is added
  at the bottom/right, so resized and padded coordinates coincide).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from skinscreen.spec import ModelSpec

_INTERP = {"area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR}


@dataclass(frozen=True)
class InputTransform:
    """How an original photo maps into the model's square input.

    Attributes:
        original_size: (H, W) of the original photo.
        resized_size: (new_h, new_w) of the photo inside the model input (before padding).
        input_size: side S of the square model input.
    """

    original_size: tuple[int, int]
    resized_size: tuple[int, int]
    input_size: int

    @property
    def scale_xy(self) -> tuple[float, float]:
        """(sx, sy): multiply original x / y by these to get model-input coordinates."""
        (h, w), (nh, nw) = self.original_size, self.resized_size
        return nw / w, nh / h

    def photo_size_in(self, frame: int) -> tuple[int, int]:
        """``(h, w)`` of the photo's part (top-left, before the padding) of a square frame of
        side ``frame`` that scales the model input by ``frame / input_size`` (e.g. the
        decoder's low-res logits); at least 1 px, Python rounding."""
        f = frame / self.input_size
        nh, nw = self.resized_size
        return max(1, round(nh * f)), max(1, round(nw * f))

    def apply_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Map XYXY boxes ``(..., 4)`` from original to model-input pixel space (float32)."""
        sx, sy = self.scale_xy
        return np.asarray(boxes, dtype=np.float64) * np.array([sx, sy, sx, sy])

    def invert_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Map XYXY boxes ``(..., 4)`` from model-input back to original pixel space."""
        sx, sy = self.scale_xy
        return np.asarray(boxes, dtype=np.float64) / np.array([sx, sy, sx, sy])

    def to_dict(self) -> dict:
        return {
            "original_size": list(self.original_size),
            "resized_size": list(self.resized_size),
            "input_size": self.input_size,
        }


def compute_transform(spec: ModelSpec, original_size: tuple[int, int]) -> InputTransform:
    """Return the :class:`InputTransform` for a photo of ``original_size`` = (H, W).

    ``longest_side``: scale = S / max(H, W); new side = int(side * scale + 0.5) (the reference
    LiteMedSAM rounding). ``stretch``: both sides become S.
    """
    h, w = original_size
    s = spec.input_size
    if spec.resize == "longest_side":
        scale = s / max(h, w)
        nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
        nh, nw = max(1, min(s, nh)), max(1, min(s, nw))
    else:
        nh, nw = s, s
    return InputTransform((h, w), (nh, nw), s)


def resize_image(spec: ModelSpec, image: np.ndarray, t: InputTransform) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 photo to ``(new_h, new_w, 3)`` with the spec's interpolation."""
    nh, nw = t.resized_size
    if (nh, nw) == image.shape[:2]:
        return image
    return cv2.resize(image, (nw, nh), interpolation=_INTERP[spec.interpolation])


def normalise(spec: ModelSpec, resized: np.ndarray) -> np.ndarray:
    """Min-max normalise an ``(h, w, 3)`` array over all channels to float32 in [0, 1]."""
    x = resized.astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    x -= lo
    x /= max(hi - lo, 1e-8)
    return x


def preprocess(spec: ModelSpec, image: np.ndarray) -> tuple[np.ndarray, InputTransform]:
    """Photo ``(H, W, 3)`` uint8 RGB -> model input ``(1, 3, S, S)`` float32 and its transform.

    Order (the reference LiteMedSAM/MedSAM pipeline): resize, min-max normalise, pad with zeros
    at the bottom/right to S x S, HWC -> NCHW.
    """
    t = compute_transform(spec, image.shape[:2])
    x = normalise(spec, resize_image(spec, image, t))
    s = spec.input_size
    out = np.zeros((1, 3, s, s), dtype=np.float32)
    nh, nw = t.resized_size
    out[0, :, :nh, :nw] = x.transpose(2, 0, 1)
    return out, t


def crop_and_resize_logits(logits: np.ndarray, t: InputTransform, low_res_size: int) -> np.ndarray:
    """Low-res logits ``(L, L)`` (model-input space scaled by L/S) -> ``(H, W)`` float32 logits.

    Crops the padded part, then resizes bilinearly (half-pixel centres, like
    ``F.interpolate(..., align_corners=False)``) to the original size.
    """
    ch, cw = t.photo_size_in(low_res_size)
    crop = np.ascontiguousarray(logits[:ch, :cw], dtype=np.float32)
    h, w = t.original_size
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def box_from_mask(mask: np.ndarray) -> np.ndarray | None:
    """Tight XYXY box ``(4,)`` of a ``(H, W)`` mask's foreground, or None when empty.

    Uses the pixel-edge convention: x1 = last foreground column + 1 (so the box of a single pixel
    at (x, y) is [x, y, x+1, y+1]).
    """
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def expand_box(box: np.ndarray, margin: float, size_hw: tuple[int, int]) -> np.ndarray:
    """Grow an XYXY box by ``margin`` x its width/height on every side, clipped to the image."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    dw, dh = (x1 - x0) * margin, (y1 - y0) * margin
    h, w = size_hw
    return np.array(
        [max(0.0, x0 - dw), max(0.0, y0 - dh), min(float(w), x1 + dw), min(float(h), y1 + dh)]
    )


def flip_image(image: np.ndarray, horizontal: bool, vertical: bool) -> np.ndarray:
    """Mirror an ``(H, W, ...)`` array left-right (``horizontal``) and/or top-bottom
    (``vertical``); a contiguous copy. Its own inverse."""
    if horizontal:
        image = image[:, ::-1]
    if vertical:
        image = image[::-1]
    return np.ascontiguousarray(image)


def flip_box(
    box: np.ndarray, size_hw: tuple[int, int], horizontal: bool, vertical: bool
) -> np.ndarray:
    """The XYXY box ``(4,)`` of a ``(H, W)`` photo, in pixel-edge coordinates, moved with the
    photo by :func:`flip_image` (x -> W - x, y -> H - y, sides swapped). Its own inverse."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    h, w = size_hw
    if horizontal:
        x0, x1 = w - x1, w - x0
    if vertical:
        y0, y1 = h - y1, h - y0
    return np.array([x0, y0, x1, y1], dtype=np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two XYXY boxes ``(4,)`` (any one pixel space)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union <= 0 else float(inter / union)
