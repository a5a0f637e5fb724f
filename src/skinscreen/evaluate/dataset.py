"""Evaluate the segmenter on a folder of photos against expert masks.

Pairs are matched by stem: ``images/<id>.<ext>`` with ``masks/<id>.png`` or ISIC's
``masks/<id>_segmentation.png``. Prompts:

- ``gt-box``: the tight bounding box of the expert mask;
- ``gt-box-jitter``: each side of that box moved by a seeded uniform random amount in
  [-10%, +10%] of the box width (x sides) or height (y sides), clipped to the photo; the seed is
  derived from the image id, so runs are repeatable;
- ``auto``: no prompt (automatic localisation, :mod:`skinscreen.auto`).

The box is passed with ``box_margin=margin`` (default 0.0), so the expert box (jittered or not)
is measured as it is unless a margin is asked for, whatever the model spec's default
``box_margin``; a margin grows the (jittered) box like ``LesionPredictor.predict`` grows a user's.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skinscreen.errors import NoLesionFoundError, SkinscreenError, UnreliableOutlineError
from skinscreen.evaluate.metrics import ISIC_JACCARD_THRESHOLD, dice, jaccard, threshold_jaccard
from skinscreen.io.image import load_image, load_mask
from skinscreen.preprocess.transforms import box_from_mask, expand_box

PROMPTS = ("gt-box", "gt-box-jitter", "auto")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")


@dataclass(frozen=True)
class Pair:
    id: str
    image: Path
    mask: Path


def find_pairs(images_dir: Path, masks_dir: Path) -> list[Pair]:
    """Photo/mask pairs matched by stem; raises when a folder is missing or nothing matches."""
    for d, what in ((images_dir, "--images"), (masks_dir, "--masks")):
        if not Path(d).is_dir():
            raise SkinscreenError(f"{what} {d}: not a directory")
    masks: dict[str, Path] = {}
    for m in Path(masks_dir).iterdir():
        if m.suffix.lower() == ".png":
            stem = m.stem.removesuffix("_segmentation")
            masks[stem] = m
    pairs = [
        Pair(p.stem, p, masks[p.stem])
        for p in sorted(Path(images_dir).iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in masks
    ]
    if not pairs:
        raise SkinscreenError(
            f"no photo in {images_dir} has a mask in {masks_dir} (expected <id>.png or <id>_segmentation.png)"
        )
    return pairs


def seed_for(image_id: str, seed: int = 0) -> int:
    """Stable per-image seed (independent of Python's hash randomisation)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{image_id}".encode()).digest()[:8], "little")


def jitter_box(
    box: np.ndarray, size_hw: tuple[int, int], rng: np.random.Generator, amount: float = 0.10
) -> np.ndarray:
    """Move each side of an XYXY box by uniform [-amount, +amount] of the box size, clipped.

    Guarantees a non-empty box of at least 2 px per side inside the photo.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    d = rng.uniform(-amount, amount, size=4) * np.array([w, h, w, h])
    H, W = size_hw
    nx0, ny0 = np.clip(x0 + d[0], 0, W - 2), np.clip(y0 + d[1], 0, H - 2)
    nx1, ny1 = np.clip(x1 + d[2], nx0 + 2, W), np.clip(y1 + d[3], ny0 + 2, H)
    return np.array([nx0, ny0, nx1, ny1])


def prompt_box(
    prompt: str, truth: np.ndarray, image_id: str, seed: int = 0, margin: float = 0.0
) -> np.ndarray | None:
    """The box for ``prompt`` (None for ``auto``), grown by ``margin`` x its size per side
    before any jitter (``evaluate_pairs`` leaves this at 0 and lets the predictor grow the
    jittered box instead)."""
    if prompt == "auto":
        return None
    box = box_from_mask(truth)
    if box is None:
        raise SkinscreenError(f"{image_id}: expert mask is empty, no box can be derived")
    if margin:
        box = expand_box(box, margin, truth.shape)
    if prompt == "gt-box-jitter":
        box = jitter_box(box, truth.shape, np.random.default_rng(seed_for(image_id, seed)))
    return box


@dataclass
class EvalResult:
    rows: list[dict] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def summary(self, prompt: str, model: str) -> dict:
        ok = self.rows
        n = len(ok)

        def mean(key: str) -> float | None:
            return round(statistics.fmean(r[key] for r in ok), 4) if ok else None

        return {
            "n": n,
            "n_failed": len(self.failures),
            "n_no_lesion_found": sum(r["box_source"] == NO_LESION for r in ok),
            "prompt": prompt,
            "model": model,
            "dice": mean("dice"),
            "jaccard": mean("jaccard"),
            "threshold_jaccard": mean("threshold_jaccard"),
            "failure_rate": round(sum(r["jaccard"] < ISIC_JACCARD_THRESHOLD for r in ok) / n, 4)
            if n
            else None,
            "dice_median": round(statistics.median(r["dice"] for r in ok), 4) if ok else None,
            "latency_ms_median": round(statistics.median(r["latency_ms"] for r in ok), 1)
            if ok
            else None,
            "encoder_ms_median": round(statistics.median(r["encoder_ms"] for r in ok), 1)
            if ok
            else None,
            "decoder_ms_median": round(statistics.median(r["decoder_ms"] for r in ok), 1)
            if ok
            else None,
        }


def predicted_mask(
    predictor, box: np.ndarray | None, margin: float | None, shape: tuple[int, int]
) -> tuple[np.ndarray, object | None]:
    """``(mask, segmentation)`` to score against an expert mask: ``predictor.predict(box,
    box_margin=margin)``, or an empty ``shape`` bool mask and None where automatic mode found
    no lesion (the user gets no outline, only the "draw a box" message; the expert outlined a
    lesion, so it scores 0 rather than leaving the photo out). Where automatic mode abstained
    (:class:`~skinscreen.errors.UnreliableOutlineError`: a lesion found, its outline likely
    wrong) the outline it would have given is returned, its ``outline_quality["answered"]``
    False, so all-photo metrics score it and the answered-only metrics leave it out."""
    try:
        seg = predictor.predict(box=box, box_margin=margin, abstain=box is None)
    except UnreliableOutlineError as e:
        seg = e.segmentation
        seg.outline_quality = dict(seg.outline_quality or {}, answered=False)
        return seg.mask, seg
    except NoLesionFoundError:
        return np.zeros(shape, dtype=bool), None
    return seg.mask, seg


#: ``box_source`` of a row where automatic mode found no lesion.
NO_LESION = "none"


def _no_lesion_row(image_id: str, enc, latency_ms: float) -> dict:
    """The row of a photo where automatic mode found no lesion: empty outline, scores 0."""
    return {
        "id": image_id,
        "dice": 0.0,
        "jaccard": 0.0,
        "threshold_jaccard": 0.0,
        "box": "",
        "box_used": "",
        "box_source": NO_LESION,
        "iou_prediction": None,
        "latency_ms": round(latency_ms, 1),
        "encoder_ms": round(enc.timings_ms.get("encoder", 0.0), 1),
        "decoder_ms": 0.0,
        "predicted_jaccard": None,
        "p_failure": None,
        "check_outline": None,
        "answered": False,
    }


def _quality_columns(seg) -> dict:
    """Per-row outline-quality columns (None where no quality model ran)."""
    q = seg.outline_quality or {}
    return {
        "predicted_jaccard": q.get("predicted_jaccard"),
        "p_failure": q.get("p_failure"),
        "check_outline": q.get("check_outline"),
        "answered": bool(q.get("answered", True)),
    }


def quality_summary(rows: list[dict], prompt: str) -> dict:
    """The outline-quality keys of a summary: ``failure_auroc`` (p_failure against Jaccard <
    0.65 over the rows with an estimate) and the share flagged ``check_outline``; for
    ``prompt="auto"`` also ``coverage`` (share of photos answered: a lesion found and the
    outline not abstained) and ``threshold_jaccard_answered`` / ``dice_answered`` /
    ``jaccard_answered`` over the answered photos."""
    from skinscreen.evaluate.quality import failure_auroc

    scored = [r for r in rows if r.get("p_failure") is not None]
    auroc = (
        failure_auroc(
            np.array([r["p_failure"] for r in scored]),
            np.array([r["jaccard"] < ISIC_JACCARD_THRESHOLD for r in scored]),
        )
        if scored
        else None
    )
    out: dict = {
        "failure_auroc": None if auroc is None else round(auroc, 4),
        "check_outline_rate": round(statistics.fmean(bool(r["check_outline"]) for r in scored), 4)
        if scored
        else None,
    }
    if prompt == "auto":
        ans = [r for r in rows if r.get("answered")]

        def mean(key: str) -> float | None:
            return round(statistics.fmean(r[key] for r in ans), 4) if ans else None

        out.update(
            coverage=round(len(ans) / len(rows), 4) if rows else None,
            n_answered=len(ans),
            threshold_jaccard_answered=mean("threshold_jaccard"),
            dice_answered=mean("dice"),
            jaccard_answered=mean("jaccard"),
        )
    return out


def evaluate_pairs(
    predictor,
    pairs: list[Pair],
    prompt: str = "gt-box",
    *,
    seed: int = 0,
    margin: float = 0.0,
    on_mask: Callable[[Pair, np.ndarray], None] | None = None,
    progress: Callable | None = None,
) -> EvalResult:
    """Segment every pair with ``prompt`` and score it; per-item errors are collected, not raised.
    With ``prompt="auto"`` a photo where no lesion is found scores 0 (an empty outline where the
    expert outlined a lesion; row ``box_source`` ``"none"``), it is not left out.

    ``margin``: the predictor's ``box_margin`` for the expert box (after jitter); 0.0 measures
    the raw expert box.
    """
    if prompt not in PROMPTS:
        raise SkinscreenError(f"unknown prompt {prompt!r}: choose one of {', '.join(PROMPTS)}")
    res = EvalResult()
    for pair in progress(pairs) if progress else pairs:
        try:
            truth = load_mask(pair.mask)
            t0 = time.perf_counter()
            image = load_image(pair.image)
            if image.shape[:2] != truth.shape:
                raise SkinscreenError(
                    f"photo is {image.shape[1]}x{image.shape[0]} but mask is {truth.shape[1]}x{truth.shape[0]}"
                )
            enc = predictor.set_image(image)
            box = prompt_box(prompt, truth, pair.id, seed)
            pred, seg = predicted_mask(predictor, box, margin, truth.shape)
            if seg is None:  # scored as an empty outline, as ISIC scores a missing mask
                res.rows.append(_no_lesion_row(pair.id, enc, (time.perf_counter() - t0) * 1e3))
                if on_mask is not None:
                    on_mask(pair, pred)
                continue
            latency = (time.perf_counter() - t0) * 1e3
            j = jaccard(seg.mask, truth)
            res.rows.append(
                {
                    "id": pair.id,
                    "dice": round(dice(seg.mask, truth), 5),
                    "jaccard": round(j, 5),
                    "threshold_jaccard": round(threshold_jaccard(j), 5),
                    "box": " ".join(f"{v:.1f}" for v in seg.box),
                    "box_used": " ".join(
                        f"{v:.1f}" for v in (seg.box if seg.box_used is None else seg.box_used)
                    ),
                    "box_source": seg.box_source,
                    "iou_prediction": round(seg.iou_prediction, 4),
                    "latency_ms": round(latency, 1),
                    "encoder_ms": round(seg.timings_ms.get("encoder", 0.0), 1),
                    "decoder_ms": round(seg.timings_ms.get("decoder", 0.0), 1),
                    **_quality_columns(seg),
                }
            )
            if on_mask is not None:
                on_mask(pair, seg.mask)
        except SkinscreenError as e:
            res.failures.append((pair.id, str(e)))
        finally:
            predictor.reset_image()
    return res
