"""Test-time flips vs orientation (sixth session, docs/robustness.md): does averaging the
probability maps of a photo and its three flips remove the per-photo drops under rotation and
flips?

For each photo and each of original / rotate-90 / flip-h / flip-v (the suite's perturbations,
expert mask moved with the photo), the default predictor segments with the moved expert box (+ its
5% margin) once ("single") and as the mean of the probability maps of the photo, its horizontal,
vertical and double flip (each flipped back; "tta", 4 encoder runs), thresholded at 0.5 and
cleaned like the runtime's mask. Reports mean Dice and how many photos lose more than 0.05 vs
their own original.

Usage: python scripts/experiments/flip_tta.py IMAGES MASKS OUT.json [STEP]
"""

import json
import sys

import numpy as np
from photos import argv_photos

from skinscreen.evaluate.metrics import dice
from skinscreen.evaluate.perturbations import BY_NAME
from skinscreen.postprocess.mask import clean_mask
from skinscreen.predictor import LesionPredictor
from skinscreen.preprocess.transforms import box_from_mask, flip_box, flip_image

CONDITIONS = ("original", "rotate-90", "flip-h", "flip-v")
FLIPS = ((False, False), (True, False), (False, True), (True, True))  # (horizontal, vertical)


def main() -> None:
    out, photos = argv_photos(sys.argv)
    pred = LesionPredictor("litemedsam", engine="onnxruntime")
    rows = []
    for pair, photo, truth in photos:
        row = {"id": pair.id}
        for name in CONDITIONS:
            image, mask = BY_NAME[name].apply(photo, truth)
            box = box_from_mask(mask)
            probs = []
            for h, v in FLIPS:
                pred.set_image(flip_image(image, h, v))
                seg = pred.predict(box=flip_box(box, mask.shape, h, v))
                probs.append(flip_image(seg.probability, h, v))
                if not (h or v):
                    row[f"{name}_single"] = dice(seg.mask, mask)
            row[f"{name}_tta"] = dice(clean_mask(np.mean(probs, axis=0) > 0.5), mask)
        rows.append(row)
        print(row, flush=True)
    out.write_text(json.dumps(rows, indent=1))
    for name in CONDITIONS:
        for how in ("single", "tta"):
            d = np.array([r[f"{name}_{how}"] for r in rows])
            o = np.array([r[f"original_{how}"] for r in rows])
            print(f"{name:10s} {how:6s} Dice {d.mean():.4f} drops>0.05 {(d < o - 0.05).sum()}")


if __name__ == "__main__":
    main()
