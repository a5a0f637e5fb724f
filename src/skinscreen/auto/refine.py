"""Model-side refinement of a candidate box: decoder-only iterations on a cached embedding.

Every function here takes a predictor that already holds an encoded photo
(``predictor.set_image`` was called) and uses only ``predictor.decode_logits`` (the cheap
decoder) and ``predictor.encoding.transform``; the encoder never runs again.

Boxes are XYXY. ``*_model`` boxes are in model-input pixels (the decoder's space); the others are
original photo pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from skinscreen.postprocess.mask import largest_component
from skinscreen.preprocess.transforms import box_from_mask, box_iou, expand_box


@dataclass(frozen=True)
class Refined:
    """Result of refining one candidate box.

    Attributes:
        box: ``(4,)`` XYXY photo pixels, the box to prompt the decoder with.
        iou_prediction: the decoder's IoU head for ``box``.
        stability: IoU of the masks at logit thresholds +1 and -1 (SAM's stability score).
        area_frac: mask area / photo area (model-input space, padding excluded).
        border_frac: share of the photo's perimeter the mask touches.
        iterations: decoder calls spent.
        converged: the box stopped moving (IoU with the previous box >= ``tol``).
    """

    box: np.ndarray
    iou_prediction: float
    stability: float
    area_frac: float
    border_frac: float
    iterations: int
    converged: bool


def decode_region(predictor, box: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Decoder on a photo-pixel box -> (logits on the resized region ``(nh, nw)``, IoU, box_model).

    The low-res logits are cropped to the resized photo (padding removed) and brought to
    model-input resolution when ``low_res_size`` differs from the input size.
    """
    t = predictor.encoding.transform
    box_model = t.apply_boxes(np.asarray(box, dtype=np.float64))
    logits, iou = predictor.decode_logits(box_model.astype(np.float32))
    logits = np.asarray(logits, dtype=np.float32).reshape(logits.shape[-2:])
    s = t.input_size
    if logits.shape[0] != s:
        logits = cv2.resize(logits, (s, s), interpolation=cv2.INTER_LINEAR)
    nh, nw = t.resized_size
    return logits[:nh, :nw], float(iou), box_model


def refine_box(
    predictor,
    box: np.ndarray,
    *,
    margin: float = 0.05,
    max_iter: int = 4,
    tol: float = 0.9,
) -> Refined | None:
    """Iterate box -> decoder mask -> tight box of the mask grown by ``margin`` until stable.

    Args:
        predictor: a LesionPredictor with an image set.
        box: ``(4,)`` XYXY start box, photo pixels.
        margin: growth per side of the mask's tight box (fraction of its width/height).
        max_iter: most decoder calls.
        tol: stop when the new box's IoU with the previous one reaches this.

    Returns:
        The last box prompted and its scores, or None when the decoder finds nothing.
    """
    t = predictor.encoding.transform
    H, W = t.original_size
    nh, nw = t.resized_size
    box = np.asarray(box, dtype=np.float64)
    converged = False
    for it in range(1, max_iter + 1):
        logits, iou, _ = decode_region(predictor, box)
        mask = largest_component(logits > 0)
        tight = box_from_mask(mask)
        if tight is None:
            return None
        new = expand_box(t.invert_boxes(tight), margin, (H, W))
        if box_iou(new, box) >= tol or it == max_iter:
            converged = box_iou(new, box) >= tol
            break
        box = new
    hi, lo = logits > 1.0, logits > -1.0
    stability = float(hi.sum() / max(1, lo.sum()))
    border = (mask[0].sum() + mask[-1].sum() + mask[:, 0].sum() + mask[:, -1].sum()) / (
        2 * (nh + nw)
    )
    return Refined(
        box=box,
        iou_prediction=iou,
        stability=stability,
        area_frac=float(mask.mean()),
        border_frac=float(border),
        iterations=it,
        converged=converged,
    )
