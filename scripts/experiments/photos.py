"""Shared photo loop of the fourth-session experiments: yields each photo with its localiser map
after making it the predictor's current encoding.

- ``which == "train"``: lesions-train, out-of-fold maps of the fold heads in ``$HEADS`` on the
  embedding cache of ``skinscreen train-localiser`` (``$CACHE``, default the distill cache);
- otherwise ``../shared/data/<which>`` with the shipped localiser (held-out sets).
"""

import csv
import os
from pathlib import Path

import numpy as np

from skinscreen.auto.learned import load_localiser
from skinscreen.io.image import load_image, load_mask
from skinscreen.predictor import ImageEncoding
from skinscreen.preprocess.transforms import compute_transform

SHARED = Path("../shared/data")
CACHE = Path(
    os.environ.get("CACHE", Path.home() / ".cache/skinscreen/distill-cache/litemedsam-seed0")
)


def photos(which: str, pred, step: int = 1):
    """Yield ``(id, (64, 64) probability map, (H, W) bool expert mask, group)``."""
    if which == "train":
        import torch

        from skinscreen.train.localiser import load_data, maps_from_fold_heads

        masks = SHARED / "lesions-train/masks"
        ds = load_data(CACHE, masks, views=(0,))
        heads = torch.load(
            os.environ.get("HEADS", "heads-w128-e120.pt"), map_location="cpu", weights_only=True
        )
        maps = maps_from_fold_heads(ds, heads["folds"], heads["config"]["width"], 0)
        with open(SHARED / "lesions-train/metadata.csv") as f:
            meta = {r["id"]: r["modality"] for r in csv.DictReader(f)}
        for k, (pid, prob) in enumerate(sorted(maps.items())):
            if k % step:
                continue
            gt = load_mask(masks / f"{pid}.png")
            t = compute_transform(pred.spec, gt.shape)
            emb = np.load(CACHE / "v0" / f"{pid}.emb.npy").astype(np.float32)[None]
            pred.set_encoding(ImageEncoding(np.zeros((1, 1, 3), np.uint8), emb, t, key=f"x:{pid}"))
            yield pid, prob, gt, meta.get(pid, "")
    else:
        d = SHARED / which
        loc = load_localiser("litemedsam")
        for p in sorted((d / "images").iterdir()):
            gt = load_mask(d / "masks" / f"{p.stem}.png")
            pred.set_image(load_image(p))
            prob = loc.probability_map(pred.encoding.embedding, pred.encoding.transform)
            yield p.stem, prob, gt, which


def prompt_boxes(pid: str, gt: np.ndarray) -> dict[str, np.ndarray]:
    """The robustness suite's prompt conditions for one photo, seeded by its id (raw boxes, no
    margin): tight, jitter-10, jitter-20 (drawn in this order, as in the fourth session's
    decoder_boxes_eval), then jitter-5, loose-10, loose-25."""
    import zlib

    from skinscreen.evaluate.dataset import jitter_box
    from skinscreen.preprocess.transforms import box_from_mask, expand_box

    hw = gt.shape
    tight = box_from_mask(gt).astype(np.float64)
    rng = np.random.default_rng(zlib.crc32(pid.encode()))
    return {
        "tight": tight,
        "jitter-10": jitter_box(tight, hw, rng, 0.10),
        "jitter-20": jitter_box(tight, hw, rng, 0.20),
        "jitter-5": jitter_box(tight, hw, rng, 0.05),
        "loose-10": expand_box(tight, 0.10, hw),
        "loose-25": expand_box(tight, 0.25, hw),
    }


def main(run_photo, pred) -> None:
    """``argv``: WHICH OUT.json [STEP]; writes one record per photo from ``run_photo``."""
    import json
    import sys

    which, out = sys.argv[1], sys.argv[2]
    step = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rows = []
    for pid, prob, gt, group in photos(which, pred, step):
        rows.append({**run_photo(pid, prob, gt), "group": group})
    with open(out, "w") as f:
        json.dump(rows, f)
    print("done", len(rows))


def argv_photos(argv: list[str]):
    """The shared command line of the sixth/seventh-session scripts, ``IMAGES MASKS OUT.json
    [STEP]``: returns ``(out path, iterator of (pair, (H, W, 3) photo, (H, W) bool expert mask))``
    over every STEP-th pair."""
    from skinscreen.evaluate.dataset import find_pairs

    images, masks, out = Path(argv[1]), Path(argv[2]), Path(argv[3])
    step = int(argv[4]) if len(argv) > 4 else 1
    pairs = find_pairs(images, masks)[::step]
    return out, ((p, load_image(p.image), load_mask(p.mask)) for p in pairs)
