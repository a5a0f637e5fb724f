"""Two decoders on one embedding (fifth session, docs/auto.md): LiteMedSAM's and
litemedsam-boxaug's, for user boxes (the robustness suite's prompt conditions + the runtime's 5%
margin) and automatic boxes (the localiser's region box grown by several margins).

Per photo and box it records, for the base mask, the boxaug mask and the mask of the mean logits:
Jaccard and Dice vs the expert mask, plus the signals a rule could use at run time (Dice between
the two decoders' masks, how much of the box each mask fills, the IoU heads).

Usage (from the repository root): python scripts/experiments/dual_decoder.py
    lesions-dev|lesions-skin-tones|train OUT.json [STEP]
"""

import numpy as np
from photos import main, prompt_boxes

from skinscreen.auto.learned import regions_from_map
from skinscreen.box_check import mask_agreement
from skinscreen.predictor import ImageEncoding, LesionPredictor
from skinscreen.preprocess.transforms import expand_box

pred = LesionPredictor("litemedsam", variant="onnx-fp32", threads=1, box_check=False)
aug = LesionPredictor("litemedsam-boxaug", variant="onnx-fp32", threads=1)
USER_MARGIN = 0.05
AUTO_MARGINS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30)


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Dice, Jaccard) of two bool masks."""
    inter = float((a & b).sum())
    s = float(a.sum() + b.sum())
    return 2 * inter / max(s, 1.0), inter / max(s - inter, 1.0)


def box_fill(mask: np.ndarray, box: np.ndarray) -> float:
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1.0)
    return float(mask.sum()) / area


def boxes_for(pid: str, prob: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray | None]:
    hw = gt.shape
    user = prompt_boxes(pid, gt)
    out: dict[str, np.ndarray | None] = {
        f"user:{k}": expand_box(b, USER_MARGIN, hw) for k, b in user.items()
    }
    t = pred.encoding.transform
    for thr in (0.5, 0.3):
        regions = regions_from_map(prob, t, thr)
        for m in AUTO_MARGINS:
            out[f"auto{thr}:m{m:.2f}"] = (
                expand_box(regions[0].box, m, hw) if regions else None
            )
    return out


def run_photo(pid, prob, gt):
    enc = pred.encoding
    aug.set_encoding(ImageEncoding(enc.image, enc.embedding, enc.transform, enc.key))
    rec: dict = {"id": pid}
    for name, box in boxes_for(pid, prob, gt).items():
        if box is None:
            rec[name] = None
            continue
        bm = enc.transform.apply_boxes(box)
        lb, ib = pred.decode_logits(bm)
        la, ia = aug.decode_logits(bm)
        mb = pred.postprocess(lb)[0]
        ma = pred.postprocess(la)[0]
        mm = pred.postprocess((lb + la) / 2)[0]
        r = {"iou_base": float(np.ravel(ib)[0]), "iou_aug": float(np.ravel(ia)[0])}
        for tag, m in (("base", mb), ("aug", ma), ("mean", mm)):
            r[f"dice_{tag}"], r[f"jac_{tag}"] = overlap(m, gt)
            r[f"fill_{tag}"] = box_fill(m, box)
        r["agree"] = overlap(mb, ma)[0]
        h, w = enc.transform.resized_size  # LiteMedSAM: low-res frame == input frame
        r["agree_frame"] = mask_agreement(lb, la, (h, w))
        r["box"] = [round(float(v), 1) for v in box]
        rec[name] = r
    return rec


main(run_photo, pred)
