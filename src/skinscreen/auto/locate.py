"""Automatic localisation entry points: ranked lesion candidates and the single auto box.

Boxes are XYXY ``[x0, y0, x1, y1]`` floats in original (EXIF-upright) photo pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skinscreen.auto import classical
from skinscreen.auto.refine import Refined, box_iou, refine_box

#: classical proposals refined by the decoder (the rest are returned unrefined)
MAX_REFINED = 3
#: per-side growth of the mask's tight box between refinement iterations and for the final box
REFINE_MARGIN = 0.05
#: a classical proposal needs at least this mean L*a*b* distance to the surrounding skin
MIN_CONTRAST = 4.0
#: a refined candidate whose decoder IoU prediction is below this is dropped
MIN_IOU_PREDICTION = 0.5
#: two candidates whose boxes overlap more than this are the same lesion (keep the better one)
NMS_IOU = 0.5


@dataclass(frozen=True)
class Candidate:
    """One automatically found lesion candidate.

    Attributes:
        box: ``(4,)`` float64 XYXY box in photo pixels.
        score: ranking score, higher is better (decoder IoU prediction for refined candidates,
            the classical score otherwise); comparable only within one ``find_lesion_boxes`` call.
        method: how it was found, e.g. ``"classical"`` or ``"classical+refine"``.
        features: the numbers behind the score (JSON-ready floats).
    """

    box: np.ndarray
    score: float
    method: str
    features: dict = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "method": self.method,
            "features": self.features,
        }


def _ensure_image(image, predictor) -> np.ndarray:
    """Return the photo as ``(H, W, 3)`` uint8 RGB and make sure ``predictor`` holds it."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3):
        from skinscreen.io.image import load_image

        image = load_image(image)
    if predictor is not None:
        enc = getattr(predictor, "_enc", None)
        same = enc is not None and (
            enc.image is image
            or (enc.image.shape == image.shape and np.array_equal(enc.image, image))
        )
        if not same:
            predictor.set_image(image)
    return image


def _classical_candidates(image: np.ndarray) -> list[Candidate]:
    props = classical.propose(image)
    return [
        Candidate(p.box, p.score, "classical", dict(p.features))
        for p in props
        if p.features["contrast"] >= MIN_CONTRAST
    ]


def _refined_score(c: Candidate, r: Refined) -> float:
    """Rank refined candidates by their classical score (on the dev set the decoder's IoU
    prediction was as high for stickers and ink as for lesions, so it does not rank them)."""
    return c.score


def find_lesion_boxes(image, predictor=None, *, max_candidates: int = 5) -> list[Candidate]:
    """Find lesion candidates in a photo, best first; an empty list when there is none.

    Args:
        image: ``(H, W, 3)`` uint8 RGB array (or anything ``skinscreen.io.image.load_image``
            reads).
        predictor: optional ``LesionPredictor``. When given, the photo is encoded once (unless
            the predictor already holds it) and the top classical proposals are refined with
            decoder-only iterations and ranked by the decoder's IoU prediction.
        max_candidates: most candidates returned.

    Returns:
        Candidates with XYXY boxes in photo pixels, the best first; overlapping duplicates are
        merged (non-maximum suppression at box IoU 0.5).
    """
    image = _ensure_image(image, predictor)
    cands = _classical_candidates(image)
    if predictor is not None and cands:
        refined: list[Candidate] = []
        for c in cands[:MAX_REFINED]:
            r = refine_box(predictor, c.box, margin=REFINE_MARGIN)
            if r is None or r.iou_prediction < MIN_IOU_PREDICTION:
                continue
            feats = dict(c.features)
            feats.update(
                classical_score=round(c.score, 4),
                iou_prediction=round(r.iou_prediction, 4),
                stability=round(r.stability, 4),
                mask_area_frac=round(r.area_frac, 5),
                mask_border_frac=round(r.border_frac, 4),
                iterations=r.iterations,
                converged=r.converged,
            )
            refined.append(Candidate(r.box, _refined_score(c, r), "classical+refine", feats))
        cands = refined
    cands.sort(key=lambda c: -c.score)
    kept: list[Candidate] = []
    for c in cands:
        if all(box_iou(c.box, k.box) <= NMS_IOU for k in kept):
            kept.append(c)
        if len(kept) == max_candidates:
            break
    return kept


def auto_box(image, predictor) -> tuple[np.ndarray | None, dict]:
    """The box ``LesionPredictor.predict()`` uses when no box is given.

    Args:
        image: ``(H, W, 3)`` uint8 RGB photo; ``predictor`` should already hold its encoding
            (it is encoded here otherwise).
        predictor: a ``LesionPredictor``.

    Returns:
        ``(box, info)``: ``box`` is ``(4,)`` float64 XYXY in photo pixels, or None when no lesion
        was found; ``info`` is JSON-ready: ``box_source`` ("auto"), ``method``, ``score``,
        ``n_candidates`` and ``candidates`` (each ``{box, score, method, features}``), or a
        ``note`` when nothing was found.
    """
    cands = find_lesion_boxes(image, predictor)
    if not cands:
        return None, {
            "box_source": "auto",
            "n_candidates": 0,
            "candidates": [],
            "note": "no lesion found automatically",
        }
    best = cands[0]
    return best.box.copy(), {
        "box_source": "auto",
        "method": best.method,
        "score": round(float(best.score), 4),
        "n_candidates": len(cands),
        "candidates": [c.to_json_dict() for c in cands],
    }
