"""Outline-quality signals and the shipped outline-quality model (runtime: numpy + OpenCV).

Every outline (drawn box, automatic, tracked frame) gets a few cheap signals from what the
pipeline already has: the decoder's IoU head, how stable the mask is when the logit threshold
moves, agreement with the box-robust check decoder and with the learned localiser's map, the
automatic candidates' agreement, the mask touching the photo border or its box, and the lesion's
contrast to the skin around it. :func:`outline_signals` computes them (two more small runs on the
cached embedding: the check decoder and the localiser head, no encoder run).

:class:`QualityModel` turns them into a predicted Jaccard with the expert and a calibrated
probability that the outline is a failure (Jaccard < 0.65, the ISIC threshold). The model is a
small gradient-boosted tree ensemble trained with scikit-learn in the lab
(:mod:`skinscreen.train.quality`, patient-grouped 5-fold CV on lesions-train), exported to JSON
(``assets/<model>-quality.json``, sha256 recorded in ``assets/<model>-quality.meta.json``) and
evaluated here with numpy, so the runtime needs neither scikit-learn nor torch.

Coordinates: boxes XYXY in photo pixels; masks ``(H, W)`` bool.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from skinscreen.errors import SkinscreenError
from skinscreen.preprocess.transforms import box_iou, crop_and_resize_logits

#: the signals, in the order the model reads them
FEATURES: tuple[str, ...] = (
    "iou_prediction",
    "stability",
    "confidence",
    "check_dice",
    "check_iou_prediction",
    "localiser_dice",
    "localiser_mean_in",
    "localiser_mass_out",
    "area_frac",
    "box_area_frac",
    "box_fill",
    "box_touch",
    "border_touch",
    "contrast",
    "n_components",
    "is_auto",
    "n_candidates",
    "candidate_agreement",
    "candidate_rank",
    "learned_candidate",
)

#: signals are computed on a working copy whose longer side is at most this (pixels)
WORK_SIZE = 256
#: logit offsets of the stability signal (mask at logit > -1 vs logit > +1)
STABILITY_LOGIT = 1.0
#: Jaccard below this is a failure (ISIC 2018 threshold)
FAILURE_JACCARD = 0.65


def _work_shape(h: int, w: int) -> tuple[int, int]:
    f = min(1.0, WORK_SIZE / max(h, w))
    return max(1, round(h * f)), max(1, round(w * f))


def _resize(a: np.ndarray, hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return cv2.resize(a, (hw[1], hw[0]), interpolation=interp)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * float((a & b).sum()) / s


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = int((a | b).sum())
    return 1.0 if u == 0 else float((a & b).sum()) / u


_LOC_CACHE: dict[tuple[str, tuple[int, int]], np.ndarray | None] = {}


def _localiser_map(predictor, hw: tuple[int, int]) -> np.ndarray | None:
    """The learned localiser's probability map of the current photo at ``hw`` (None: no
    localiser for this model). Cached per photo (key) so several outlines share one run."""
    enc = predictor.encoding
    ck = (f"{predictor.spec.name}:{enc.key}", hw)
    if ck in _LOC_CACHE:
        return _LOC_CACHE[ck]
    from skinscreen.auto.learned import GRID, load_localiser

    loc = load_localiser(predictor.spec.extra.get("localiser", predictor.spec.name))
    out = None
    if loc is not None and enc.embedding.shape[-2:] == (GRID, GRID):
        t = enc.transform
        prob = loc.probability_map(enc.embedding, t)
        s = t.input_size
        h, w = t.resized_size
        up = cv2.resize(prob, (s, s), interpolation=cv2.INTER_LINEAR)[:h, :w]
        out = _resize(np.ascontiguousarray(up), hw).astype(np.float32)
    if len(_LOC_CACHE) > 8:
        _LOC_CACHE.clear()
    _LOC_CACHE[ck] = out
    return out


def _check_mask(predictor, box_used: np.ndarray, shape_hw, hw) -> tuple[np.ndarray, float] | None:
    checker = getattr(predictor, "box_checker", None)
    if checker is None:  # e.g. interactive predictors: open the check decoder for the signal
        if not hasattr(predictor, "_quality_checker"):
            from skinscreen.box_check import open_box_checker

            predictor._quality_checker = open_box_checker(
                predictor.bundle, predictor.engine_choice.engine, None, None
            )
        checker = predictor._quality_checker
    if checker is None:
        return None
    enc = predictor.encoding
    box_model = enc.transform.apply_boxes(np.asarray(box_used, dtype=np.float64))
    logits, iou = checker.engine.decode(enc.embedding, box_model)
    full = crop_and_resize_logits(logits, enc.transform, predictor.spec.low_res_size)
    return _resize((full > predictor.spec.mask_threshold).astype(np.uint8), hw, True) > 0, float(
        iou
    )


def _band(hw: tuple[int, int], box: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """``hw`` bool map of the one-pixel inner band along a box's sides (working pixels)."""
    h, w = hw
    fx, fy = scale
    x0 = int(np.clip(np.floor(box[0] * fx), 0, w - 1))
    y0 = int(np.clip(np.floor(box[1] * fy), 0, h - 1))
    x1 = int(np.clip(np.ceil(box[2] * fx) - 1, x0, w - 1))
    y1 = int(np.clip(np.ceil(box[3] * fy) - 1, y0, h - 1))
    b = np.zeros(hw, bool)
    b[y0 : y1 + 1, [x0, x1]] = True
    b[[y0, y1], x0 : x1 + 1] = True
    return b


def outline_signals(
    predictor,
    seg,
    *,
    candidates: list | None = None,
    rank: int = 0,
) -> dict[str, float]:
    """The quality signals (:data:`FEATURES`) of one outline ``seg`` of the predictor's photo.

    Args:
        predictor: the ``LesionPredictor`` holding the photo ``seg`` was predicted on.
        seg: its :class:`~skinscreen.predictor.Segmentation`.
        candidates: for an automatic outline, the automatic candidates (``Candidate`` objects or
            their JSON dicts, best first); None: taken from ``seg.auto`` when present.
        rank: index of the candidate ``seg`` was prompted with.

    Returns:
        ``{name: float}`` for every name in :data:`FEATURES`.
    """
    enc = predictor.encoding
    image = enc.image
    H, W = image.shape[:2]
    hw = _work_shape(H, W)
    scale = (hw[1] / W, hw[0] / H)
    prob = _resize(np.asarray(seg.probability, np.float32), hw)
    mask = _resize(seg.mask.astype(np.uint8), hw, True) > 0
    box_used = np.asarray(seg.box if seg.box_used is None else seg.box_used, np.float64)
    hi, lo = 1.0 / (1.0 + np.exp(-STABILITY_LOGIT)), 1.0 / (1.0 + np.exp(STABILITY_LOGIT))
    inner = _band(hw, box_used, scale)
    x0, y0 = int(box_used[0] * scale[0]), int(box_used[1] * scale[1])
    x1, y1 = (
        max(x0 + 1, int(np.ceil(box_used[2] * scale[0]))),
        max(y0 + 1, int(np.ceil(box_used[3] * scale[1]))),
    )
    in_box = np.zeros(hw, bool)
    in_box[y0:y1, x0:x1] = True
    p_box = prob[in_box]
    area = int(mask.sum())
    border = np.zeros(hw, bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True

    sig: dict[str, float] = {
        "iou_prediction": float(seg.iou_prediction),
        "stability": _iou(prob > hi, prob > lo),
        "confidence": float(np.mean(np.abs(2 * p_box - 1))) if p_box.size else 0.0,
        "area_frac": area / mask.size,
        "box_area_frac": float(in_box.mean()),
        "box_fill": area / max(1, int(in_box.sum())),
        "box_touch": float(mask[inner].mean()),
        "border_touch": float(mask[border].mean()),
    }
    n, _ = cv2.connectedComponents((prob > 0.5).astype(np.uint8))
    sig["n_components"] = float(np.log1p(max(0, n - 1)))

    chk = _check_mask(predictor, box_used, (H, W), hw)
    sig["check_dice"], sig["check_iou_prediction"] = (
        (_dice(mask, chk[0]), chk[1]) if chk is not None else (1.0, float(seg.iou_prediction))
    )
    loc = _localiser_map(predictor, hw)
    if loc is not None:
        sig["localiser_dice"] = _dice(mask, loc >= 0.5)
        sig["localiser_mean_in"] = float(loc[mask].mean()) if area else 0.0
        total = float(loc.sum())
        sig["localiser_mass_out"] = float(loc[~mask].sum()) / total if total > 0 else 0.0
    else:
        sig.update(localiser_dice=-1.0, localiser_mean_in=-1.0, localiser_mass_out=-1.0)

    # lesion contrast: CIELAB distance between the outline's mean colour and a ring around it
    small = _resize(image, hw)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    if area:
        k = max(3, int(round(0.25 * np.sqrt(area))) | 1)
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
        ring &= ~mask
        sig["contrast"] = (
            float(np.linalg.norm(lab[mask].mean(0) - lab[ring].mean(0))) if ring.any() else 0.0
        )
    else:
        sig["contrast"] = 0.0

    auto = seg.box_source not in ("user", "tracker")
    if candidates is None and seg.auto is not None:
        candidates = seg.auto.get("candidates")
    boxes = [
        np.asarray(c["box"] if isinstance(c, dict) else c.box, np.float64)
        for c in (candidates or [])
    ]
    methods = [c["method"] if isinstance(c, dict) else c.method for c in (candidates or [])]
    sig["is_auto"] = 1.0 if auto else 0.0
    sig["n_candidates"] = float(len(boxes)) if auto else 0.0
    others = [box_iou(seg.box, b) for i, b in enumerate(boxes) if i != rank]
    sig["candidate_agreement"] = float(max(others)) if auto and others else 0.0
    sig["candidate_rank"] = float(rank) if auto else 0.0
    sig["learned_candidate"] = (
        1.0 if auto and rank < len(methods) and methods[rank] == "learned" else 0.0
    )
    return {k: float(sig[k]) for k in FEATURES}


# -- the model -----------------------------------------------------------------------------------


def _asset(name: str) -> Path:
    return Path(str(resources.files("skinscreen") / "assets" / name))


def _tree_predict(tree: dict, x: np.ndarray) -> float:
    """One exported regression tree (sklearn arrays: left, right, feature, threshold, value)."""
    node = 0
    left, right = tree["left"], tree["right"]
    feat, thr, val = tree["feature"], tree["threshold"], tree["value"]
    while left[node] != -1:
        node = left[node] if x[feat[node]] <= thr[node] else right[node]
    return val[node]


def _ensemble(model: dict, x: np.ndarray) -> float:
    return model["init"] + model["learning_rate"] * sum(_tree_predict(t, x) for t in model["trees"])


@dataclass
class QualityModel:
    """The shipped outline-quality model (a JSON asset, evaluated with numpy).

    ``info``: the asset's content: ``features``, ``jaccard`` and ``failure`` tree ensembles,
    the ``calibration`` (Platt scaling of the failure ensemble's log-odds), ``threshold`` (the operating point
    on ``p_failure``), the training ``medians`` and the CV figures.
    """

    info: dict
    sha256: str

    @property
    def threshold(self) -> float:
        return float(self.info["threshold"])

    def _vector(self, signals: dict[str, float]) -> np.ndarray:
        return np.array([float(signals[k]) for k in self.info["features"]], np.float64)

    def _p_failure(self, x: np.ndarray) -> float:
        raw = _ensemble(self.info["failure"], x)  # log-odds of the tree ensemble
        cal = self.info["calibration"]  # Platt scaling fitted on out-of-fold log-odds
        return float(1.0 / (1.0 + np.exp(-(cal["a"] * raw + cal["b"]))))

    def predict(self, signals: dict[str, float]) -> tuple[float, float]:
        """``(predicted_jaccard, p_failure)`` for one outline's signals."""
        x = self._vector(signals)
        j = float(np.clip(_ensemble(self.info["jaccard"], x), 0.0, 1.0))
        return j, self._p_failure(x)

    def drivers(self, signals: dict[str, float], top: int = 3) -> list[dict]:
        """The signals that raise ``p_failure`` most: each replaced by its training median,
        how much lower the failure probability would be (largest first, only positive ones)."""
        x = self._vector(signals)
        base = self._p_failure(x)
        med = self.info["medians"]
        out = []
        for i, k in enumerate(self.info["features"]):
            y = x.copy()
            y[i] = med[k]
            d = base - self._p_failure(y)
            if d > 0.01:
                out.append({"signal": k, "value": round(float(x[i]), 4), "effect": round(d, 3)})
        out.sort(key=lambda r: -r["effect"])
        return out[:top]

    def assess(self, signals: dict[str, float]) -> dict:
        """The JSON ``outline_quality`` block: ``predicted_jaccard``, ``p_failure``,
        ``check_outline`` (p_failure above the operating point), ``threshold``, ``drivers`` and
        the ``signals``."""
        j, p = self.predict(signals)
        return {
            "predicted_jaccard": round(j, 4),
            "p_failure": round(p, 4),
            "check_outline": bool(p >= self.threshold),
            "threshold": round(self.threshold, 4),
            "drivers": self.drivers(signals),
            "signals": {k: round(v, 4) for k, v in signals.items()},
            "model": self.info.get("name", "quality"),
        }


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_quality_model(path: Path, meta: Path | None = None) -> QualityModel:
    """Read an outline-quality asset; with ``meta`` (its provenance file), check its sha256.

    Raises a ``SkinscreenError`` when the hash does not match."""
    digest = file_sha256(path)
    if meta is not None and Path(meta).is_file():
        want = json.loads(Path(meta).read_text()).get("sha256")
        if want != digest:
            raise SkinscreenError(
                f"{Path(path).name}: sha256 {digest} does not match {Path(meta).name} ({want}); "
                "reinstall skinscreen, or retrain it with python -m skinscreen.train.quality fit"
            )
    return QualityModel(json.loads(Path(path).read_text()), digest)


@lru_cache(maxsize=4)
def load_quality_model(model: str = "litemedsam") -> QualityModel | None:
    """The packaged outline-quality model for ``model`` (None when the package ships none);
    its sha256 is checked against ``<model>-quality.meta.json``."""
    path = _asset(f"{model}-quality.json")
    if not path.is_file():
        return None
    return read_quality_model(path, _asset(f"{model}-quality.meta.json"))


def outline_quality(predictor, seg, *, candidates=None, rank: int = 0) -> dict | None:
    """``outline_quality`` JSON of ``seg`` (None when the model ships no quality model)."""
    qm = load_quality_model(predictor.spec.name)
    if qm is None:
        return None
    return qm.assess(outline_signals(predictor, seg, candidates=candidates, rank=rank))


__all__ = [
    "FEATURES",
    "FAILURE_JACCARD",
    "QualityModel",
    "load_quality_model",
    "outline_quality",
    "outline_signals",
    "read_quality_model",
]
