"""Train the outline-quality model (lab; scikit-learn): signals cache, grouped CV, JSON export.

``python -m skinscreen.train.quality collect --data DIR --set NAME --cache DIR`` segments every
photo of a folder (``images/``, ``masks/``, optional ``metadata.csv``) the way users get
outlines: every automatic candidate (the first one is what automatic mode answers today) and
drawn boxes (the expert box, and the expert box with each side moved by up to 10% and 20% of
its size: as users draw them), all with the runtime's default pipeline (5% margin, box check on
drawn boxes), and appends one JSON line per outline (its signals from
:func:`skinscreen.outline_quality.outline_signals` and its Jaccard with the expert) to
``<cache>/<set>.jsonl``. One encoder run per photo; a rerun skips photos already cached.

``python -m skinscreen.train.quality fit --cache DIR --out src/skinscreen/assets`` trains on the
``train`` set with 5-fold cross-validation grouped by patient (PAD-UFES-20 ids), reports the
out-of-fold figures, picks the operating point in CV, fits on all of it and writes
``<model>-quality.json`` (trees exported as arrays) and ``<model>-quality.meta.json``
(provenance, sha256, CV figures).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from skinscreen.evaluate.dataset import find_pairs, jitter_box, seed_for
from skinscreen.evaluate.metrics import dice, jaccard
from skinscreen.io.image import load_image, load_mask
from skinscreen.outline_quality.score import FAILURE_JACCARD, FEATURES, outline_signals
from skinscreen.preprocess.transforms import box_from_mask

#: drawn-box jitter amounts collected per photo (0: the expert's box)
DRAWN_JITTERS = (0.0, 0.10, 0.20)
#: automatic candidates scored per photo
MAX_CANDIDATES = 4


def _metadata(data: Path) -> dict[str, dict]:
    p = data / "metadata.csv"
    if not p.is_file():
        return {}
    with p.open() as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def _downscale(image: np.ndarray, truth: np.ndarray, max_side: int | None):
    """Photo and mask with the longer side at most ``max_side`` (the model sees 256 px, so the
    outline barely changes; full-resolution post-processing dominates the cost otherwise)."""
    import cv2

    h, w = truth.shape
    if not max_side or max(h, w) <= max_side:
        return image, truth
    f = max_side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(truth.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return small, m


def collect(
    data: Path,
    set_name: str,
    cache: Path,
    *,
    limit: int | None = None,
    max_side: int | None = None,
) -> Path:
    from skinscreen.auto.locate import find_lesion_boxes
    from skinscreen.predictor import LesionPredictor

    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"{set_name}.jsonl"
    done = set()
    if out.is_file():
        done = {json.loads(line)["id"] for line in out.read_text().splitlines() if line.strip()}
    meta = _metadata(data)
    pairs = find_pairs(data / "images", data / "masks")[:limit]
    # a seeded shuffle, so a partial cache mixes every source
    pairs = [pairs[i] for i in np.random.default_rng(0).permutation(len(pairs))]
    pred = LesionPredictor()
    t_start = time.time()
    with out.open("a") as f:
        for n, pair in enumerate(pairs):
            if pair.id in done:
                continue
            truth = load_mask(pair.mask)
            image = load_image(pair.image)
            if image.shape[:2] != truth.shape:
                continue
            image, truth = _downscale(image, truth, max_side)
            pred.set_image(image)
            base = {
                "set": set_name,
                "id": pair.id,
                "modality": meta.get(pair.id, {}).get("modality", ""),
                "source": meta.get(pair.id, {}).get("source", ""),
            }
            rows = []
            cands = find_lesion_boxes(image, pred)
            cj = [c.to_json_dict() for c in cands]
            if not cands:
                rows.append({**base, "kind": "auto", "rank": 0, "n_candidates": 0, "jaccard": 0.0})
            for rank, c in enumerate(cands[:MAX_CANDIDATES]):
                seg = pred.predict(box=c.box, box_margin=0.0, box_check=False)
                seg.box_source, seg.box_used, seg.auto = "auto", seg.box, {"candidates": cj}
                sig = outline_signals(pred, seg, candidates=cj, rank=rank)
                rows.append(
                    {
                        **base,
                        "kind": "auto",
                        "rank": rank,
                        "method": c.method,
                        "n_candidates": len(cands),
                        "jaccard": jaccard(seg.mask, truth),
                        "dice": dice(seg.mask, truth),
                        "signals": sig,
                    }
                )
            tb = box_from_mask(truth)
            for amount in DRAWN_JITTERS:
                box = tb
                if amount:
                    rng = np.random.default_rng(seed_for(pair.id, int(amount * 100)))
                    box = jitter_box(tb, truth.shape, rng, amount)
                seg = pred.predict(box=box)
                rows.append(
                    {
                        **base,
                        "kind": "drawn",
                        "jitter": amount,
                        "jaccard": jaccard(seg.mask, truth),
                        "dice": dice(seg.mask, truth),
                        "signals": outline_signals(pred, seg),
                    }
                )
            for r in rows:
                f.write(json.dumps(r) + "\n")
            f.flush()
            pred.reset_image()
            el = time.time() - t_start
            print(f"[{set_name}] {n + 1}/{len(pairs)} {pair.id} {el:.0f}s", file=sys.stderr)
    return out


def load_rows(cache: Path, set_name: str) -> list[dict]:
    p = cache / f"{set_name}.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


# -- fitting (scikit-learn) ------------------------------------------------------------------

#: gradient-boosting settings of both ensembles (chosen before looking at dev; small and shallow)
GB_PARAMS = {"n_estimators": 150, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8}
FOLDS = 5


def _xy(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    X = np.array([[r["signals"][k] for k in FEATURES] for r in rows], np.float64)
    return X, np.array([r["jaccard"] for r in rows], np.float64)


def export_ensemble(model, X: np.ndarray, classifier: bool) -> dict:
    """A fitted sklearn GradientBoosting{Regressor,Classifier} -> JSON arrays of its trees; the
    constant ``init`` is recovered from the model's own raw output on ``X[:1]``."""
    trees = []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        trees.append(
            {
                "left": t.children_left.tolist(),
                "right": t.children_right.tolist(),
                "feature": t.feature.tolist(),
                "threshold": [float(v) for v in t.threshold],
                "value": [float(v) for v in t.value[:, 0, 0]],
            }
        )
    lr = float(model.learning_rate)
    x = X[:1]
    raw = float(model.decision_function(x)[0] if classifier else model.predict(x)[0])
    tree_sum = sum(float(e.predict(x)[0]) for e in model.estimators_[:, 0])
    return {"init": raw - lr * tree_sum, "learning_rate": lr, "trees": trees}


def _user_outlines(rows: list[dict], pj: np.ndarray, pf: np.ndarray, choose: bool):
    """The outlines users get, with their estimates: every drawn one, and per photo the automatic
    candidate answered (highest predicted Jaccard when ``choose``, else the first). Photos with
    no candidate count as automatic outlines with Jaccard 0 and p_failure 1 (nothing answered).
    Returns a list of dicts ``kind, id, jaccard, predicted_jaccard, p_failure``."""
    out, by_photo = [], {}
    for i, r in enumerate(rows):
        if r["kind"] == "drawn":
            out.append(
                {
                    "kind": "drawn",
                    "id": r["id"],
                    "jitter": r["jitter"],
                    "jaccard": r["jaccard"],
                    "predicted_jaccard": pj[i],
                    "p_failure": pf[i],
                }
            )
        else:
            by_photo.setdefault(r["id"], []).append(i)
    for pid, idx in by_photo.items():
        idx = [i for i in idx if "signals" in rows[i]]
        if not idx:
            out.append(
                {
                    "kind": "auto",
                    "id": pid,
                    "jaccard": 0.0,
                    "first_jaccard": 0.0,
                    "predicted_jaccard": 0.0,
                    "p_failure": 1.0,
                    "none": True,
                }
            )
            continue
        first = min(idx, key=lambda i: rows[i]["rank"])
        best = max(idx, key=lambda i: pj[i]) if choose else first
        out.append(
            {
                "kind": "auto",
                "id": pid,
                "jaccard": rows[best]["jaccard"],
                "first_jaccard": rows[first]["jaccard"],
                "oracle_jaccard": max(rows[i]["jaccard"] for i in idx),
                "predicted_jaccard": pj[best],
                "p_failure": pf[best],
            }
        )
    return out


def summarise(outlines: list[dict], threshold: float) -> dict:
    """Failure detection and abstention figures of user outlines at ``threshold``."""
    from skinscreen.evaluate.metrics import threshold_jaccard
    from skinscreen.evaluate.quality import expected_calibration_error, failure_auroc

    def block(sel: list[dict]) -> dict:
        if not sel:
            return {"n": 0}
        j = np.array([o["jaccard"] for o in sel])
        p = np.array([o["p_failure"] for o in sel])
        pj = np.array([o["predicted_jaccard"] for o in sel])
        f = j < FAILURE_JACCARD
        flag = p >= threshold
        ans = ~flag
        return {
            "n": len(sel),
            "failures": int(f.sum()),
            "failure_auroc": None if (a := failure_auroc(p, f)) is None else round(a, 4),
            "flagged_failures": round(float(flag[f].mean()), 4) if f.any() else None,
            "flagged_good": round(float(flag[~f].mean()), 4) if (~f).any() else None,
            "ece": round(expected_calibration_error(p, f), 4),
            "jaccard_mae": round(float(np.abs(pj - j).mean()), 4),
            "threshold_jaccard": round(float(np.mean([threshold_jaccard(v) for v in j])), 4),
            "coverage": round(float(ans.mean()), 4),
            "threshold_jaccard_answered": round(
                float(np.mean([threshold_jaccard(v) for v in j[ans]])), 4
            )
            if ans.any()
            else None,
        }

    auto = [o for o in outlines if o["kind"] == "auto"]
    res = {
        "all": block(outlines),
        "auto": block(auto),
        "drawn": block([o for o in outlines if o["kind"] == "drawn"]),
        "drawn_expert_box": block(
            [o for o in outlines if o["kind"] == "drawn" and o["jitter"] == 0]
        ),
    }
    if auto:
        res["auto"]["first_candidate_threshold_jaccard"] = round(
            float(np.mean([threshold_jaccard(o.get("first_jaccard", 0.0)) for o in auto])), 4
        )
        res["auto"]["oracle_threshold_jaccard"] = round(
            float(np.mean([threshold_jaccard(o.get("oracle_jaccard", 0.0)) for o in auto])), 4
        )
    return res


def pick_threshold(outlines: list[dict], max_good_flagged: float = 0.10) -> float:
    """The operating point: the lowest p_failure threshold (so the most failures flagged) at
    which at most ``max_good_flagged`` of the good cross-validated user outlines are flagged."""
    j = np.array([o["jaccard"] for o in outlines if not o.get("none")])
    p = np.array([o["p_failure"] for o in outlines if not o.get("none")])
    f = j < FAILURE_JACCARD
    for t in np.unique(np.round(p, 4)):
        if (p[~f] >= t).mean() <= max_good_flagged:
            return float(t)
    return 1.0


def fit(
    cache: Path, out_dir: Path, model_name: str = "litemedsam", figures: Path | None = None
) -> dict:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from skinscreen.outline_quality.score import QualityModel
    from skinscreen.train.finetune import group_of

    rows_all = load_rows(cache, "train")
    rows = [r for r in rows_all if "signals" in r]
    X, J = _xy(rows)
    F = (J < FAILURE_JACCARD).astype(int)
    groups = np.array([group_of(r["id"]) for r in rows])
    oof_j, oof_raw = np.zeros(len(rows)), np.zeros(len(rows))
    for tr, va in GroupKFold(FOLDS, shuffle=True, random_state=0).split(X, J, groups):
        reg = GradientBoostingRegressor(random_state=0, **GB_PARAMS).fit(X[tr], J[tr])
        clf = GradientBoostingClassifier(random_state=0, **GB_PARAMS).fit(X[tr], F[tr])
        oof_j[va] = reg.predict(X[va])
        oof_raw[va] = clf.predict_proba(X[va])[:, 1]
    # Platt scaling of the out-of-fold log-odds (monotone, so it keeps the ranking)
    logit = np.log(np.clip(oof_raw, 1e-6, 1 - 1e-6) / np.clip(1 - oof_raw, 1e-6, 1))
    platt = LogisticRegression(C=1e6).fit(logit[:, None], F)
    cal_a, cal_b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    oof_p = 1 / (1 + np.exp(-(cal_a * logit + cal_b)))
    rows_map = {id(r): i for i, r in enumerate(rows)}
    full_pj = np.array([oof_j[rows_map[id(r)]] if id(r) in rows_map else 0.0 for r in rows_all])
    full_pf = np.array([oof_p[rows_map[id(r)]] if id(r) in rows_map else 1.0 for r in rows_all])
    first = _user_outlines(rows_all, full_pj, full_pf, choose=False)
    chosen = _user_outlines(rows_all, full_pj, full_pf, choose=True)
    gain = np.mean(
        [o["jaccard"] >= 0.65 and o["jaccard"] for o in chosen if o["kind"] == "auto"]
    ) - np.mean([o["jaccard"] >= 0.65 and o["jaccard"] for o in first if o["kind"] == "auto"])
    choose = bool(gain > 0.005)  # a real gain, worth up to 3 more decoder runs per photo
    outl = chosen if choose else first
    threshold = pick_threshold(outl)
    cv = summarise(outl, threshold)
    by_mod = {}
    mod = {r["id"]: r["modality"] for r in rows_all}
    for m in sorted(set(mod.values())):
        by_mod[m] = summarise([o for o in outl if mod[o["id"]] == m], threshold)["all"]
    cv["by_modality"] = by_mod
    cv["first_candidate"] = summarise(first, threshold)["auto"]

    reg = GradientBoostingRegressor(random_state=0, **GB_PARAMS).fit(X, J)
    clf = GradientBoostingClassifier(random_state=0, **GB_PARAMS).fit(X, F)
    ids = sorted({r["id"] for r in rows_all})
    info = {
        "name": f"{model_name}-quality",
        "model": model_name,
        "features": list(FEATURES),
        "failure_jaccard": FAILURE_JACCARD,
        "threshold": threshold,
        "choose_candidates": choose,
        "max_candidates": MAX_CANDIDATES,
        "medians": {k: float(np.median(X[:, i])) for i, k in enumerate(FEATURES)},
        "jaccard": export_ensemble(reg, X, classifier=False),
        "failure": export_ensemble(clf, X, classifier=True),
        "calibration": {
            "method": "Platt scaling of the failure ensemble's out-of-fold log-odds",
            "a": cal_a,
            "b": cal_b,
        },
    }
    # the shipped evaluator must reproduce sklearn's raw outputs
    qm = QualityModel(info, "")
    for i in range(0, len(X), max(1, len(X) // 50)):
        xi = X[i]
        sig = dict(zip(FEATURES, xi, strict=True))
        j_np, _ = qm.predict(sig)
        assert abs(j_np - float(np.clip(reg.predict(xi[None])[0], 0, 1))) < 1e-6
        raw = 1 / (1 + np.exp(-_ens(info["failure"], xi)))
        assert abs(raw - clf.predict_proba(xi[None])[0, 1]) < 1e-6
    out_dir.mkdir(parents=True, exist_ok=True)
    asset = out_dir / f"{model_name}-quality.json"
    text = json.dumps(info, separators=(",", ":")) + "\n"
    asset.write_text(text)
    import hashlib

    import sklearn

    meta = {
        "file": asset.name,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "size_bytes": len(text.encode()),
        "trained_with": f"python -m skinscreen.train.quality fit --cache CACHE --out {out_dir} "
        "(CACHE from python -m skinscreen.train.quality collect --data lesions-train --set train)",
        "sklearn": sklearn.__version__,
        "estimators": {
            "jaccard": "GradientBoostingRegressor",
            "failure": "GradientBoostingClassifier + Platt scaling",
            **GB_PARAMS,
        },
        "data": {
            "set": "lesions-train",
            "photos": len(ids),
            "outlines": len(rows),
            "drawn_jitters": list(DRAWN_JITTERS),
            "max_candidates": MAX_CANDIDATES,
            "licence": "learned from ISIC 2018 (CC BY-NC 4.0), PAD-UFES-20 (CC BY 4.0) and DermIS/DermQuest (research use): research / non-commercial",
        },
        "cv": {
            "folds": FOLDS,
            "grouped_by": "patient (PAD-UFES-20 ids)",
            "threshold": threshold,
            "choose_candidates_gain_threshold_jaccard": round(float(gain), 4),
            **cv,
        },
    }
    (out_dir / f"{model_name}-quality.meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _ens(model: dict, x: np.ndarray) -> float:
    from skinscreen.outline_quality.score import _ensemble

    return _ensemble(model, x)


def score_set(
    cache: Path, set_name: str, model_name: str = "litemedsam"
) -> tuple[dict, list[dict]]:
    """Held-out figures of the shipped model on a cached set (``dev``, ``skin-tones``)."""
    from skinscreen.outline_quality.score import load_quality_model

    load_quality_model.cache_clear()
    qm = load_quality_model(model_name)
    rows = load_rows(cache, set_name)
    pj, pf = np.zeros(len(rows)), np.ones(len(rows))
    for i, r in enumerate(rows):
        if "signals" in r:
            pj[i], pf[i] = qm.predict(r["signals"])
    outl = _user_outlines(rows, pj, pf, choose=bool(qm.info["choose_candidates"]))
    return summarise(outl, qm.threshold), outl


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m skinscreen.train.quality")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--set", required=True)
    c.add_argument("--cache", type=Path, required=True)
    c.add_argument("--limit", type=int)
    c.add_argument("--max-side", type=int, help="downscale photos to this longer side first")
    f = sub.add_parser("fit")
    f.add_argument("--cache", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--model", default="litemedsam")
    s = sub.add_parser("score")
    s.add_argument("--cache", type=Path, required=True)
    s.add_argument("--set", required=True)
    s.add_argument("--figures", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "collect":
        collect(args.data, args.set, args.cache, limit=args.limit, max_side=args.max_side)
    elif args.cmd == "fit":
        meta = fit(args.cache, args.out, args.model)
        print(json.dumps(meta["cv"], indent=1))
    else:
        res, outl = score_set(args.cache, args.set)
        print(json.dumps(res, indent=1))
        if args.figures:
            write_figures(outl, args.figures, args.set)
    return 0


def write_figures(outl: list[dict], out: Path, name: str) -> None:
    """Reliability diagram and risk-coverage curve PNGs of user outlines."""
    from skinscreen.evaluate.quality import reliability_png, risk_coverage_png

    out.mkdir(parents=True, exist_ok=True)
    curves_f, curves_j = [], []
    for label, sel in (
        ("all", outl),
        ("automatic", [o for o in outl if o["kind"] == "auto"]),
        ("drawn", [o for o in outl if o["kind"] == "drawn"]),
    ):
        p = np.array([o["p_failure"] for o in sel])
        j = np.array([o["jaccard"] for o in sel])
        curves_f.append((f"{label} (n={len(sel)})", p, j < FAILURE_JACCARD))
        curves_j.append((f"{label} (n={len(sel)})", p, j))
    (out / f"reliability-{name}.png").write_bytes(reliability_png(curves_f, f"{name}: reliability"))
    (out / f"risk-coverage-{name}.png").write_bytes(
        risk_coverage_png(curves_j, f"{name}: risk-coverage")
    )


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["collect", "load_rows", "FEATURES", "FAILURE_JACCARD"]
