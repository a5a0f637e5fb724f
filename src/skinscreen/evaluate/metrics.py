"""Overlap metrics between binary masks, as the ISIC 2018 challenge scores them.

Definitions (``isic-challenge-scoring`` agrees; a test checks it): with TP, FP, FN counted over
pixels, Dice = 2TP / (2TP + FP + FN), Jaccard = TP / (TP + FP + FN), threshold-Jaccard = Jaccard
if Jaccard >= 0.65 else 0 (averaged per image). Two empty masks count as a perfect match.
"""

from __future__ import annotations

import numpy as np

ISIC_JACCARD_THRESHOLD = 0.65


def _counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    if pred.shape != truth.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape} vs truth {truth.shape}")
    p, t = pred.astype(bool), truth.astype(bool)
    tp = int(np.count_nonzero(p & t))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(t)) - tp


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of two ``(H, W)`` masks."""
    tp, fp, fn = _counts(pred, truth)
    d = 2 * tp + fp + fn
    return 1.0 if d == 0 else 2 * tp / d


def jaccard(pred: np.ndarray, truth: np.ndarray) -> float:
    """Jaccard index (IoU) of two ``(H, W)`` masks."""
    tp, fp, fn = _counts(pred, truth)
    d = tp + fp + fn
    return 1.0 if d == 0 else tp / d


def threshold_jaccard(j: float, threshold: float = ISIC_JACCARD_THRESHOLD) -> float:
    """ISIC 2018 rule: the Jaccard index if it reaches ``threshold``, else 0."""
    return j if j >= threshold else 0.0
