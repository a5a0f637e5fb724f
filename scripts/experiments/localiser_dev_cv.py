"""Does the localiser learn ISIC 2017's fainter borders from dev photos? (fifth session)

5-fold cross-validation on lesions-dev: the shipped localiser head (trained on lesions-train)
is fine-tuned on four folds of dev photos (photo + mirror) mixed with lesions-train photos (so it
keeps what it knew), then scores automatic mode end to end on the held-out fold (the runtime's
rule: the heaviest region above 0.5, its box grown by 5%, LiteMedSAM's decoder at photo
resolution). Baseline: the shipped head on the same photos.

Usage (from the repository root, the `export` extra installed):
    python scripts/experiments/localiser_dev_cv.py HEADS.pt OUT.json [EPOCHS] [LR] [N_TRAIN]
HEADS.pt: the heads file of the shipped configuration (its ``final`` state).
"""

import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

from skinscreen.predictor import LesionPredictor
from skinscreen.train.cache import build_cache, cache_root, default_cache_dir
from skinscreen.train.data import list_images
from skinscreen.train.localiser import (
    head_from_state,
    load_data,
    loss_fn,
    predict_maps,
    score_maps,
)
from skinscreen.train.teacher import load_teacher

SHARED = Path("../shared/data")
heads_path, out = Path(sys.argv[1]), Path(sys.argv[2])
EPOCHS = int(sys.argv[3]) if len(sys.argv) > 3 else 8
LR = float(sys.argv[4]) if len(sys.argv) > 4 else 3e-4
N_TRAIN = int(sys.argv[5]) if len(sys.argv) > 5 else 300
torch.set_num_threads(2)

heads = torch.load(heads_path, map_location="cpu", weights_only=True)
width = heads["config"]["width"]
shipped = head_from_state(heads["final"], width)

dev = SHARED / "lesions-dev"
teacher = load_teacher("litemedsam", use_onnx_bundle=True)
dev_root = cache_root(default_cache_dir(), "litemedsam-dev", 0)
images = list_images([dev / "images"])
build_cache(teacher, images, dev_root, views=2, seed=0)
d = load_data(dev_root, dev / "masks", views=(0, 1))
tr_root = cache_root(default_cache_dir(), "litemedsam", 0)
t = load_data(tr_root, SHARED / "lesions-train" / "masks", views=(0,))
rng = np.random.default_rng(0)
keep = np.sort(rng.choice(len(t.ids), size=min(N_TRAIN, len(t.ids)), replace=False))

ids = sorted(set(d.ids))
perm = rng.permutation(len(ids))
folds = [set(ids[i] for i in part) for part in np.array_split(perm, 5)]


def fine_tune(train_ids: set[str], seed: int) -> torch.nn.Module:
    head = copy.deepcopy(shipped).train()
    rows_d = np.array([r for r, i in enumerate(d.ids) if i in train_ids])
    emb = np.concatenate([d.emb[rows_d], t.emb[keep]])
    valid = np.concatenate([d.valid[rows_d], t.valid[keep]])
    target = np.concatenate([d.target[rows_d], t.target[keep]])
    g = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=LR, weight_decay=1e-2)
    steps = EPOCHS * int(np.ceil(len(emb) / 16))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for ep in range(EPOCHS):
        order = g.permutation(len(emb))
        tot = 0.0
        for i in range(0, len(order), 16):
            idx = np.sort(order[i : i + 16])
            loss = loss_fn(
                head(torch.from_numpy(emb[idx].astype(np.float32)), torch.from_numpy(valid[idx])),
                torch.from_numpy(target[idx]),
                torch.from_numpy(valid[idx]),
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
        print(f"  epoch {ep + 1}/{EPOCHS} loss {tot / len(emb):.4f}", flush=True)
    return head.eval()


v0 = {i: r for r, (i, v) in enumerate(zip(d.ids, d.views, strict=True)) if v == 0}
base_maps, tuned_maps = {}, {}
for k, val in enumerate(folds):
    print(f"fold {k + 1}/5: {len(val)} held out", flush=True)
    head = fine_tune(set(ids) - val, seed=k)
    rows = np.array([v0[i] for i in sorted(val)])
    for i, m in zip(sorted(val), predict_maps(head, d, rows), strict=True):
        tuned_maps[i] = m
    for i, m in zip(sorted(val), predict_maps(shipped, d, rows), strict=True):
        base_maps[i] = m

pred = LesionPredictor("litemedsam", variant="onnx-fp32", threads=2, box_check=False)
res = {
    "config": {"epochs": EPOCHS, "lr": LR, "n_train": int(len(keep))},
    "shipped": score_maps(base_maps, dev_root, dev / "masks", (0.05,), pred),
    "fine_tuned_cv": score_maps(tuned_maps, dev_root, dev / "masks", (0.05,), pred),
}
out.write_text(json.dumps(res, indent=1))
print(json.dumps(res, indent=1))
