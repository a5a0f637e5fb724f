"""Choosing among automatic boxes (sixth session, docs/auto.md): can a run-time signal pick, per
photo, the best of the boxes the localiser map offers?

Reads the records of ``dual_decoder.py`` (per photo: for region thresholds 0.5/0.3 and margins
0-30%, both decoders' Jaccard vs the expert mask, their IoU heads, how much of the box each mask
fills, the two masks' agreement) and scores threshold-Jaccard for:

- the shipped rule (threshold 0.5, margin 5%, LiteMedSAM's decoder) and the oracle over the
  candidates (an upper bound for any chooser);
- the candidate with the highest predicted IoU (the decoder's IoU head);
- mask-area stability across margins (the margin after which the mask grows least);
- a learned chooser: gradient-boosted regression of Jaccard on the candidate's signals, trained
  on the lesions-train records (out-of-fold localiser maps) and applied to the held-out sets;
  on lesions-train itself 5-fold cross-validation. With ``aug`` candidates the boxaug decoder is
  in-sample on lesions-train (it was trained there), so those train figures are optimistic.

Needs scikit-learn (not a skinscreen dependency).

Usage: python scripts/experiments/auto_select.py DEV.json SKIN_TONES.json TRAIN.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

MARGINS = ("0.00", "0.05", "0.10", "0.15", "0.20", "0.30")
THRESHOLDS = ("0.5", "0.3")


def thr_j(j: float) -> float:
    return j if j >= 0.65 else 0.0


def candidates(rec: dict, decoders: tuple[str, ...]) -> list[tuple[tuple, dict, str]]:
    out = []
    for t in THRESHOLDS:
        for m in MARGINS:
            x = rec.get(f"auto{t}:m{m}")
            if x is not None:
                out.extend(((t, m, d), x, d) for d in decoders)
    return out


def mask_area(x: dict, dec: str) -> float:
    b = x["box"]
    return x[f"fill_{dec}"] * (b[2] - b[0]) * (b[3] - b[1])


def signals(rec: dict, decoders: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(candidates x signals, their Jaccard) or None when the localiser found nothing."""
    ref = rec.get("auto0.5:m0.05")
    if ref is None:
        return None
    b = ref["box"]
    ref_box = (b[2] - b[0]) * (b[3] - b[1])
    ref_area = mask_area(ref, "base") + 1.0
    xs, ys = [], []
    for (t, m, dec), x, _ in candidates(rec, decoders):
        bb = x["box"]
        box_area = (bb[2] - bb[0]) * (bb[3] - bb[1])
        xs.append(
            [
                float(t),
                float(m),
                decoders.index(dec),
                x[f"fill_{dec}"],
                x[f"iou_{dec}"],
                np.log((mask_area(x, dec) + 1.0) / ref_area),
                x["agree"],
                x["fill_base"] / max(x["fill_aug"], 1e-3),
                np.log(box_area / ref_box),
            ]
        )
        ys.append(x[f"jac_{dec}"])
    return np.array(xs), np.array(ys)


def simple_rules(recs: list[dict]) -> dict[str, float]:
    shipped, oracle, by_iou, stable = [], [], [], []
    for r in recs:
        x = r.get("auto0.5:m0.05")
        shipped.append(0.0 if x is None else thr_j(x["jac_base"]))
        cands = candidates(r, ("base", "aug"))
        if not cands:
            oracle.append(0.0), by_iou.append(0.0), stable.append(0.0)
            continue
        oracle.append(max(thr_j(x[f"jac_{d}"]) for _, x, d in cands))
        best = max(cands, key=lambda c: c[1][f"iou_{c[2]}"])
        by_iou.append(thr_j(best[1][f"jac_{best[2]}"]))
        # boxaug at region threshold 0.3: the margin (5-15%) after which its mask grows least
        xs = [r[f"auto0.3:m{m}"] for m in MARGINS]
        if any(x is None for x in xs):
            stable.append(0.0)
            continue
        area = [mask_area(x, "aug") for x in xs]
        growth = [abs(area[i + 1] - area[i]) / max(area[i], 1.0) for i in range(1, 4)]
        stable.append(thr_j(xs[1 + int(np.argmin(growth))]["jac_aug"]))
    return {
        "shipped": float(np.mean(shipped)),
        "oracle": float(np.mean(oracle)),
        "highest_iou_head": float(np.mean(by_iou)),
        "stability_boxaug_t0.3": float(np.mean(stable)),
    }


def chosen(model, sig) -> float:
    if sig is None or len(sig[0]) == 0:
        return 0.0
    return thr_j(float(sig[1][int(np.argmax(model.predict(sig[0])))]))


def fit(sigs):
    from sklearn.ensemble import GradientBoostingRegressor

    x = np.concatenate([s[0] for s in sigs if s is not None])
    y = np.concatenate([s[1] for s in sigs if s is not None])
    model = GradientBoostingRegressor(
        n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=0
    )
    return model.fit(x, y)


def main() -> None:
    dev, tones, train = (json.loads(Path(p).read_text()) for p in sys.argv[1:4])
    report: dict = {}
    for name, recs in (("dev", dev), ("skin-tones", tones), ("train", train)):
        report[name] = simple_rules(recs)
    for decoders in (("base",), ("base", "aug")):
        key = "learned_" + "+".join(decoders)
        tr = [signals(r, decoders) for r in train]
        model = fit(tr)
        for name, recs in (("dev", dev), ("skin-tones", tones)):
            report[name][key] = float(np.mean([chosen(model, signals(r, decoders)) for r in recs]))
        oof = np.zeros(len(train))
        idx = np.arange(len(train))
        for k in range(5):
            m = fit([tr[i] for i in idx if i % 5 != k])
            for i in idx[idx % 5 == k]:
                oof[i] = chosen(m, tr[i])
        report["train"][key + "_cv"] = float(oof.mean())
        derm = [i for i, r in enumerate(train) if r.get("group") == "dermoscopy"]
        report["train"][key + "_cv_dermoscopy"] = float(oof[derm].mean())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
