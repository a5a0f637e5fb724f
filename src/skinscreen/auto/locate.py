"""Automatic localisation entry points: ranked lesion candidates and the single auto box.

Boxes are XYXY ``[x0, y0, x1, y1]`` floats in original (EXIF-upright) photo pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skinscreen.auto import classical
from skinscreen.auto.refine import decode_region, refine_box
from skinscreen.errors import SkinscreenError
from skinscreen.postprocess.mask import largest_component
from skinscreen.preprocess.transforms import box_iou, expand_box

#: classical proposals checked with the decoder when a predictor is given (the rest are dropped)
MAX_DECODED = 3
#: per-side growth of the mask's tight box between refinement iterations (``refine=True``)
REFINE_MARGIN = 0.05
#: a classical proposal needs at least this contrast to the surrounding skin (skin-distance channel,
#: CIELAB units); chosen on lesions-train: keeps >= 98.7% of lesions in every modality there
MIN_CONTRAST = 6.0
#: two candidates whose boxes overlap more than this are the same lesion (keep the better one)
NMS_IOU = 0.5


@dataclass(frozen=True)
class Candidate:
    """One automatically found lesion candidate.

    Attributes:
        box: ``(4,)`` float64 XYXY box in photo pixels.
        score: the classical ranking score (contrast x sqrt(area) x centre prior x solidity x
            colour and border penalties, :mod:`skinscreen.auto.classical`), higher is better;
            comparable only within one ``find_lesion_boxes`` call.
        method: how it was found: ``"learned"`` (the learned localiser on the image embedding,
            :mod:`skinscreen.auto.learned`; score = probability mass), ``"classical"``,
            ``"classical+decoder"`` (checked with one decoder run) or ``"classical+refine"``.
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
        try:
            held = predictor.encoding.image
        except SkinscreenError:  # no image set yet
            held = None
        same = held is not None and (
            held is image or (held.shape == image.shape and np.array_equal(held, image))
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


def _decoded(predictor, c: Candidate, refine: bool) -> Candidate | None:
    """Run the decoder on a classical candidate; None when the decoder finds nothing there."""
    feats = dict(c.features, classical_score=round(c.score, 4))
    if refine:
        r = refine_box(predictor, c.box, margin=REFINE_MARGIN)
        if r is None:
            return None
        feats.update(
            iou_prediction=round(r.iou_prediction, 4),
            stability=round(r.stability, 4),
            mask_area_frac=round(r.area_frac, 5),
            iterations=r.iterations,
            converged=r.converged,
        )
        return Candidate(r.box, c.score, "classical+refine", feats)
    logits, iou, _ = decode_region(predictor, c.box)
    mask = largest_component(logits > predictor.spec.mask_threshold)
    if not mask.any():
        return None
    feats.update(iou_prediction=round(iou, 4), mask_area_frac=round(float(mask.mean()), 5))
    return Candidate(c.box, c.score, "classical+decoder", feats)


def _learned_candidates(predictor) -> list[Candidate]:
    """Regions of the learned localiser (when the model ships one), boxes grown by its margin."""
    if getattr(predictor, "commercial_only", False):
        return []  # its weights derive from non-commercial photos (skinscreen.licences)
    loc = _localiser(predictor)
    if loc is None:
        return []
    enc = predictor.encoding
    margin = float(loc.info.get("box_margin", 0.1))
    out = []
    for r in loc.regions(enc.embedding, enc.transform):
        box = expand_box(r.box, margin, enc.image.shape[:2])
        feats = {
            "probability_mass": round(r.score, 2),
            "probability_peak": round(r.peak, 4),
            "region_area_frac": round(r.area_frac, 5),
            "box_margin": margin,
        }
        out.append(Candidate(box, r.score, "learned", feats))
    return out


def _localiser(predictor):
    """The learned localiser head for ``predictor``'s model (None: the package ships none)."""
    from skinscreen.auto.learned import load_localiser

    return load_localiser(predictor.spec.extra.get("localiser", predictor.spec.name))


def find_lesion_boxes(
    image, predictor=None, *, max_candidates: int = 5, refine: bool = False
) -> list[Candidate]:
    """Find lesion candidates in a photo, best first; an empty list when there is none.

    Args:
        image: ``(H, W, 3)`` uint8 RGB array (or anything ``skinscreen.io.image.load_image``
            reads).
        predictor: optional ``LesionPredictor``. When given, the photo is encoded once (unless
            the predictor already holds it) and each of the top :data:`MAX_DECODED` classical
            proposals is checked with one decoder run: proposals where the decoder finds no
            mask are dropped, the others gain ``iou_prediction`` and ``mask_area_frac``
            features (the decoder's IoU prediction does not rank them: on the dev set it was as
            high on stickers and ink as on lesions, docs/auto.md). When the model ships a learned
            localiser (:mod:`skinscreen.auto.learned`), its regions come first, ranked by
            probability mass, their boxes grown by the margin chosen in its cross-validation;
            it runs only when the classical contrast check found a candidate, so plain skin
            still gives an empty list.
        max_candidates: most candidates returned.
        refine: iterate box -> mask -> box grown by 5% (decoder only) before returning; measured
            on the dev set it lowers Dice slightly (docs/auto.md), so it is off by default.

    Returns:
        Candidates with XYXY boxes in photo pixels, the best first; overlapping duplicates are
        merged (non-maximum suppression at box IoU 0.5).
    """
    image = _ensure_image(image, predictor)
    cands = _classical_candidates(image)
    if predictor is not None and cands:
        checked = (_decoded(predictor, c, refine) for c in cands[:MAX_DECODED])
        cands = [c for c in checked if c is not None]
        cands.sort(key=lambda c: -c.score)
        # the learned localiser ranks first; it only runs where the classical contrast check
        # found something (a photo of plain skin gives no candidate: nothing invented)
        learned = _learned_candidates(predictor) if cands else []
        cands = learned + cands
    else:
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
    info = {
        "box_source": "auto",
        "method": best.method,
        "score": round(float(best.score), 4),
        "n_candidates": len(cands),
        "candidates": [c.to_json_dict() for c in cands],
    }
    if any(c.method.startswith("learned") for c in cands):  # the head took part in the ranking
        from skinscreen.licences import localiser_weights

        loc = _localiser(predictor)
        info["weights"] = localiser_weights(f"{loc.model}-localiser", loc.info).to_json_dict()
    return best.box.copy(), info
