"""Auto-mode box rules on the localiser map (fourth session, docs/auto.md).

Usage: python scripts/experiments/exp_auto.py lesions-dev|lesions-skin-tones|train OUT.json [STEP]
(train: out-of-fold maps of the fold heads in $HEADS, a heads-<config>.pt from
skinscreen.train.localiser_views, on the embedding cache of `skinscreen train-localiser`).
"""
import csv, json, os, sys
from pathlib import Path
import cv2, numpy as np
from skinscreen.auto.learned import load_localiser
from skinscreen.predictor import LesionPredictor, ImageEncoding
from skinscreen.preprocess.transforms import box_from_mask, compute_transform, expand_box
from skinscreen.io.image import load_image, load_mask

which, out = sys.argv[1], Path(sys.argv[2])
SH = Path("/work/shared/data") if Path("/work/shared/data").exists() else Path("../shared/data")
pred = LesionPredictor("litemedsam", variant="onnx-fp32", threads=1)
MARGIN = 0.05


def comps(prob, t, thr):
    s = t.input_size; h, w = t.resized_size
    up = cv2.resize(prob, (s, s), interpolation=cv2.INTER_LINEAR)[:h, :w]
    n, lab, st, _ = cv2.connectedComponentsWithStats((up >= thr).astype(np.uint8), connectivity=8)
    return up, n, lab, st


def to_photo(t, box_frame):
    H, W = t.original_size
    b = t.invert_boxes(np.asarray(box_frame, np.float64)[None])[0]
    return np.clip(b, 0, [W, H, W, H])


def strategies(prob, t):
    """name -> photo box (or None)."""
    res = {}
    up, n, lab, st = comps(prob, t, 0.5)
    best = None
    if n > 1:
        mass = [up[lab == i].sum() for i in range(1, n)]
        best = 1 + int(np.argmax(mass))
        if mass[best - 1] < 4:
            best = None
    for thr in (0.5, 0.4, 0.3, 0.2):
        u, n2, lab2, st2 = comps(prob, t, thr)
        if n2 <= 1:
            res[f"t{thr}"] = None; res[f"h{thr}"] = None; continue
        mass = [u[lab2 == i].sum() for i in range(1, n2)]
        i = 1 + int(np.argmax(mass))
        x, y, bw, bh, _ = st2[i]
        res[f"t{thr}"] = to_photo(t, [x, y, x + bw, y + bh])
        # hysteresis: the low-threshold component that contains the 0.5 seed
        if best is not None:
            ids = np.unique(lab2[lab == best]); ids = ids[ids > 0]
            sel = np.isin(lab2, ids)
            ys, xs = np.nonzero(sel)
            res[f"h{thr}"] = to_photo(t, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        else:
            res[f"h{thr}"] = None
    return res


def decode(box, shape):
    logits, iou = pred.decode_logits(pred.encoding.transform.apply_boxes(box))
    return pred.postprocess(logits)[0], float(np.ravel(iou)[0])


def jac(m, g):
    return float((m & g).sum()) / max(float((m | g).sum()), 1.0)


def run_photo(pid, prob, gt):
    t = pred.encoding.transform
    rec = {"id": pid}
    for name, box in strategies(prob, t).items():
        if box is None:
            rec[name] = 0.0; rec[name + "_iou"] = 0.0; continue
        b = expand_box(box, MARGIN, gt.shape)
        m, iou = decode(b, gt.shape)
        rec[name] = jac(m, gt); rec[name + "_iou"] = iou
        if name == "t0.5" and m.any():
            # refinement: box of the mask, grown, decoded again (1 and 2 rounds)
            m2, iou2 = decode(expand_box(box_from_mask(m), MARGIN, gt.shape), gt.shape)
            rec["r1"] = jac(m2, gt); rec["r1_iou"] = iou2
            if m2.any():
                m3, iou3 = decode(expand_box(box_from_mask(m2), MARGIN, gt.shape), gt.shape)
                rec["r2"] = jac(m3, gt); rec["r2_iou"] = iou3
            else:
                rec["r2"] = 0.0
        elif name == "t0.5":
            rec["r1"] = rec["r2"] = 0.0
    gb = box_from_mask(gt)
    m, iou = decode(expand_box(gb, MARGIN, gt.shape), gt.shape)
    rec["gt"] = jac(m, gt)
    return rec


rows = []
if which == "train":
    import torch
    from skinscreen.train.localiser import load_data, maps_from_fold_heads
    root = Path.home() / ".cache/skinscreen/distill-cache/litemedsam-seed0"
    masks = SH / "lesions-train/masks"
    ds = load_data(root, masks, views=(0,))
    trained = torch.load(os.environ.get("HEADS", "heads-w128-e120.pt"), map_location="cpu", weights_only=True)
    maps = maps_from_fold_heads(ds, trained["folds"], trained["config"]["width"], 0)
    meta = {r["id"]: r["modality"] for r in csv.DictReader(open(SH / "lesions-train/metadata.csv"))}
    step = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    for k, (pid, prob) in enumerate(sorted(maps.items())):
        if k % step:
            continue
        gt = load_mask(masks / f"{pid}.png")
        t = compute_transform(pred.spec, gt.shape)
        emb = np.load(root / "v0" / f"{pid}.emb.npy").astype(np.float32)[None]
        pred.set_encoding(ImageEncoding(np.zeros((1, 1, 3), np.uint8), emb, t, key=f"x:{pid}"))
        r = run_photo(pid, prob, gt); r["group"] = meta.get(pid, ""); rows.append(r)
        if len(rows) % 50 == 0:
            print(len(rows), flush=True)
else:
    d = SH / which
    loc = load_localiser("litemedsam")
    for p in sorted((d / "images").iterdir()):
        gt = load_mask(d / "masks" / f"{p.stem}.png")
        pred.set_image(load_image(p))
        prob = loc.probability_map(pred.encoding.embedding, pred.encoding.transform)
        r = run_photo(p.stem, prob, gt); r["group"] = which; rows.append(r)
json.dump(rows, open(out, "w"))
print("done", len(rows))
