"""Test-time flips for automatic mode (seventh session, docs/auto.md): does averaging the learned
localiser's map, and then the decoder's mask, over a photo and its three flips find better
automatic boxes and outlines?

Configurations, fixed before looking at any figure (nothing is tuned):

- ``single``: the shipped automatic mode (``predict()`` with no box).
- ``map``: the localiser's probability maps of the photo and its horizontal, vertical and double
  flip, each flipped back onto the photo and averaged; the top region of the mean map (threshold
  0.5, the shipped 5% margin) replaces the shipped box when the shipped box came from the learned
  localiser; one decoder run on the original photo.
- ``map+mask``: the ``map`` box, and the mask averaged over the four flips too (probabilities,
  threshold 0.5, cleaned like the runtime's mask).

Four encoder runs per photo. Scores per photo: Dice, Jaccard, threshold-Jaccard (ISIC 2018's).

Usage: python scripts/experiments/auto_tta.py IMAGES MASKS OUT.json [STEP]
"""

import json
import sys

import cv2
import numpy as np
from photos import argv_photos

from skinscreen.auto.learned import MIN_MASS_PX, PROB_THRESHOLD, load_localiser
from skinscreen.errors import NoLesionFoundError
from skinscreen.evaluate.metrics import dice, jaccard, threshold_jaccard
from skinscreen.postprocess.mask import clean_mask
from skinscreen.predictor import LesionPredictor
from skinscreen.preprocess.transforms import expand_box, flip_box, flip_image

FLIPS = ((False, False), (True, False), (False, True), (True, True))  # (horizontal, vertical)


def photo_map(loc, enc) -> np.ndarray:
    """The localiser's map upsampled to the model frame and cut to the photo: ``(nh, nw)``."""
    t = enc.transform
    s = t.input_size
    nh, nw = t.resized_size
    prob = loc.probability_map(enc.embedding, t)
    return cv2.resize(prob, (s, s), interpolation=cv2.INTER_LINEAR)[:nh, :nw]


def top_box(up: np.ndarray, t, margin: float, shape: tuple[int, int]) -> np.ndarray | None:
    """Top region (largest probability mass) of a photo-frame map -> photo-pixel XYXY box."""
    binary = (up >= PROB_THRESHOLD).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    best, best_mass = None, MIN_MASS_PX
    for i in range(1, n):
        mass = float(up[labels == i].sum())
        if mass >= best_mass:
            x, y, bw, bh, _ = stats[i]
            best, best_mass = np.array([x, y, x + bw, y + bh], dtype=np.float64), mass
    if best is None:
        return None
    H, W = t.original_size
    box = np.clip(t.invert_boxes(best[None])[0], 0, [W, H, W, H])
    return expand_box(box, margin, shape)


def scores(pred: np.ndarray, truth: np.ndarray, prefix: str) -> dict:
    j = jaccard(pred, truth)
    return {
        f"{prefix}_dice": dice(pred, truth),
        f"{prefix}_jaccard": j,
        f"{prefix}_thrj": threshold_jaccard(j),
    }


def main() -> None:
    out, photos = argv_photos(sys.argv)
    pred = LesionPredictor("litemedsam", engine="onnxruntime")
    loc = load_localiser("litemedsam")
    margin = float(loc.info.get("box_margin", 0.05))
    rows = []
    for pair, photo, truth in photos:
        shape = truth.shape
        row = {"id": pair.id}
        encs = [pred.encode(flip_image(photo, h, v)) for h, v in FLIPS]
        pred.set_encoding(encs[0])
        try:
            seg = pred.predict()
        except NoLesionFoundError:
            empty = np.zeros(shape, bool)
            for k in ("single", "map", "map+mask"):
                row.update(scores(empty, truth, k))
            row["method"] = "none"
            rows.append(row)
            print(row, flush=True)
            continue
        row.update(scores(seg.mask, truth, "single"))
        row["method"] = seg.auto.get("method")
        box = seg.box
        if row["method"] == "learned":
            mean_map = np.mean(
                [
                    flip_image(photo_map(loc, e), h, v)
                    for e, (h, v) in zip(encs, FLIPS, strict=True)
                ],
                axis=0,
            )
            tta_box = top_box(mean_map, encs[0].transform, margin, shape)
            if tta_box is not None:
                box = tta_box
        row["box_changed"] = bool(not np.allclose(box, seg.box))
        pred.set_encoding(encs[0])
        row.update(
            scores(pred.predict(box=box, box_margin=0.0, box_check=False).mask, truth, "map")
        )
        probs = []
        for e, (h, v) in zip(encs, FLIPS, strict=True):
            pred.set_encoding(e)
            s = pred.predict(box=flip_box(box, shape, h, v), box_margin=0.0, box_check=False)
            probs.append(flip_image(s.probability, h, v))
        row.update(scores(clean_mask(np.mean(probs, axis=0) > 0.5), truth, "map+mask"))
        rows.append(row)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    out.write_text(json.dumps(rows, indent=1))
    print(
        f"n = {len(rows)}, boxes changed by the mean map: {sum(r.get('box_changed', 0) for r in rows)}"
    )
    for k in ("single", "map", "map+mask"):
        d = np.mean([r[f"{k}_dice"] for r in rows])
        j = np.mean([r[f"{k}_jaccard"] for r in rows])
        t = np.mean([r[f"{k}_thrj"] for r in rows])
        print(f"{k:9s} Dice {d:.4f} Jaccard {j:.4f} threshold-Jaccard {t:.4f}")


if __name__ == "__main__":
    main()
