"""Fine-tune LiteMedSAM's prompt encoder + mask decoder on loose and shifted box prompts
(fourth session; an experiment, nothing here is shipped).

Run where there is a GPU (a CPU works for a smoke test with --limit):

    PYTHONPATH=src python3 scripts/experiments/decoder_boxes.py --pack .gpu/pack \
        --weights .gpu/lite_medsam_fp16.pt --out OUT [--steps 2000] [--folds 5]

``--pack`` is a ``skinscreen.train.localiser_views.write_pack`` folder (photos resized by the
model's rule, expert masks at the same size, patient groups). Every photo gives its view 0, its
mirror and ``--views`` random views (flips, rotation, crop/zoom, lighting; mask follows). Boxes in
training: tight (20%), each side moved by up to 25% of the box size (50%) or grown by up to 35%
per side (30%), then grown by the runtime's 5% margin. Patient-grouped k-fold CV: base and tuned
are scored on the held-out photos' view 0 with the robustness suite's prompt conditions (tight,
jitter 10/20% seeded per photo, loose 25%; + 5% margin), Dice of ``logits > 0`` in the model
frame (no photo-resolution post-processing). Writes ``cv.json`` and, per config,
``decoder-<config>.pt`` (float16 state of ``prompt_encoder.*`` and ``mask_decoder.*`` trained on
all photos).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import torch

from skinscreen.evaluate.dataset import jitter_box
from skinscreen.preprocess.transforms import expand_box
from skinscreen.spec import get_spec
from skinscreen.train.data import model_input, resized_view
from skinscreen.train.finetune import grouped_folds
from skinscreen.train.localiser_views import device_run, random_view
from skinscreen.train.losses import dice_bce

MARGIN = 0.05
CONDITIONS = ("tight", "jitter-10", "jitter-20", "loose-25")


def views_of(pack, spec, n_random: int, seed: int):
    """Rows: (photo index, view, model input (3,S,S), mask (S,S) bool, tight box, (h, w))."""
    s = spec.input_size
    rows = []
    for i, (im, m) in enumerate(zip(pack.images, pack.masks, strict=True)):
        rng = np.random.default_rng(seed * 100003 + i)
        vs = [(im, m), (im[:, ::-1], m[:, ::-1])] + [random_view(im, m, rng) for _ in range(n_random)]
        for j, (v, mv) in enumerate(vs):
            r = resized_view(spec, np.ascontiguousarray(v))
            h, w = r.shape[:2]
            mr = cv2.resize(mv.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            if not mr.any():
                continue
            full = np.zeros((s, s), bool)
            full[:h, :w] = mr
            ys, xs = np.nonzero(mr)
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            rows.append((i, j, model_input(spec, r), full, box, (h, w)))
    return rows


def clip_boxes(box: torch.Tensor, hw: torch.Tensor) -> torch.Tensor:
    x0 = box[:, 0].clamp(min=0)
    y0 = box[:, 1].clamp(min=0)
    x0 = torch.minimum(x0, hw[:, 1] - 2)
    y0 = torch.minimum(y0, hw[:, 0] - 2)
    x1 = torch.maximum(torch.minimum(box[:, 2], hw[:, 1]), x0 + 2)
    y1 = torch.maximum(torch.minimum(box[:, 3], hw[:, 0]), y0 + 2)
    return torch.stack([x0, y0, x1, y1], 1)


def sample_boxes(tight: torch.Tensor, hw: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    dev = tight.device
    b = tight.shape[0]
    w = tight[:, 2] - tight[:, 0]
    h = tight[:, 3] - tight[:, 1]
    size = torch.stack([w, h, w, h], 1)
    u = torch.rand(b, generator=gen, device=dev)
    amount = torch.rand(b, 1, generator=gen, device=dev)
    jit = (torch.rand(b, 4, generator=gen, device=dev) * 2 - 1) * 0.25 * amount * size
    grow = 0.35 * amount * size * torch.tensor([-1.0, -1.0, 1.0, 1.0], device=dev)
    box = tight + torch.where((u >= 0.2) & (u < 0.7), 1.0, 0.0)[:, None] * jit
    box = box + torch.where(u >= 0.7, 1.0, 0.0)[:, None] * grow
    box = clip_boxes(box, hw)
    bw = box[:, 2] - box[:, 0]
    bh = box[:, 3] - box[:, 1]
    box = box + MARGIN * torch.stack([-bw, -bh, bw, bh], 1)
    return clip_boxes(box, hw)


def eval_boxes(pid: str, tight: np.ndarray, hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """The robustness suite's prompt conditions for one photo, + the runtime margin."""
    rng = np.random.default_rng(zlib.crc32(pid.encode()))
    out = {
        "tight": tight,
        "jitter-10": jitter_box(tight, hw, rng, 0.10),
        "jitter-20": jitter_box(tight, hw, rng, 0.20),
        "loose-25": expand_box(tight, 0.25, hw),
    }
    return {k: expand_box(v, MARGIN, hw).astype(np.float32) for k, v in out.items()}


@torch.no_grad()
def score(model, emb, masks, rows_eval, ids, device) -> dict[str, np.ndarray]:
    """Per condition, Dice of each evaluation row (view 0 of held-out photos)."""
    model.eval()
    out = {c: [] for c in CONDITIONS}
    for start in range(0, len(rows_eval), 32):
        part = rows_eval[start : start + 32]
        e = emb[[r[0] for r in part]].float()
        m = masks[[r[0] for r in part]]
        for c in CONDITIONS:
            boxes = torch.from_numpy(
                np.stack([eval_boxes(ids[r[1]], r[2], r[3])[c] for r in part])
            ).to(device)
            logits, _ = model.decode(e, boxes)
            pred = logits[:, 0] > 0
            inter = (pred & m).flatten(1).sum(1).float()
            tot = (pred.flatten(1).sum(1) + m.flatten(1).sum(1)).float()
            out[c].extend((2 * inter / tot.clamp(min=1)).tolist())
    return {c: np.array(v) for c, v in out.items()}


def train(base, emb, masks, tight, hw, rows, steps, lr, batch, device, seed, log):
    model = copy.deepcopy(base)
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for mod in (model.mask_decoder, model.prompt_encoder) for p in mod.parameters()]
    for p in params:
        p.requires_grad_(True)
    model.mask_decoder.train()
    model.prompt_encoder.train()
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + np.cos(np.pi * s / steps))
    )
    gen = torch.Generator(device=device).manual_seed(seed)
    rows_t = torch.as_tensor(rows, device=device)
    t0 = time.time()
    for step in range(steps):
        idx = rows_t[torch.randint(len(rows_t), (batch,), generator=gen, device=device)]
        boxes = sample_boxes(tight[idx], hw[idx], gen)
        logits, _ = model.decode(emb[idx].float(), boxes)
        loss = dice_bce(logits, masks[idx].float()[:, None])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 500 == 0:
            log(f"  step {step + 1}/{steps} loss {loss.item():.4f} ({time.time() - t0:.0f} s)")
    return model.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pack", type=Path, required=True)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--views", type=int, default=2, help="random views per photo")
    p.add_argument("--configs", default="lr3e-5,lr1e-4", help="comma-separated lr configs")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0)
    a = p.parse_args()

    spec = get_spec("litemedsam")
    device, base, pack, log = device_run(spec, a.weights, a.pack, a.limit, a.out)
    n = len(pack.ids)

    t0 = time.time()
    rows = views_of(pack, spec, a.views, a.seed)
    log(f"device {device}: {n} photos, {len(rows)} views prepared in {time.time() - t0:.0f} s")
    emb = torch.empty((len(rows), 256, 64, 64), dtype=torch.float16, device=device)
    with torch.no_grad():
        for s in range(0, len(rows), 64):
            x = torch.from_numpy(np.stack([r[2] for r in rows[s : s + 64]])).to(device)
            emb[s : s + 64] = base.image_encoder(x).half()
    masks = torch.from_numpy(np.stack([r[3] for r in rows])).to(device)
    tight = torch.from_numpy(np.stack([r[4] for r in rows])).to(device)
    hw = torch.tensor([r[5] for r in rows], dtype=torch.float32, device=device)
    log(f"embeddings in {time.time() - t0:.0f} s")

    photo_of = np.array([r[0] for r in rows])
    view_of = np.array([r[1] for r in rows])
    ids = pack.ids
    folds = grouped_folds(list(ids), a.folds, seed=a.seed)
    index = {pid: i for i, pid in enumerate(ids)}
    modality = [pack.modality.get(pid, "") for pid in ids]
    result: dict = {"photos": n, "views": len(rows), "conditions": list(CONDITIONS), "configs": {}}
    base_scores: dict[str, list] = {c: [] for c in CONDITIONS}
    eval_rows_all = []
    for _, val in folds:
        vset = {index[v] for v in val}
        eval_rows_all += [
            (k, photo_of[k], rows[k][4], rows[k][5])
            for k in range(len(rows))
            if view_of[k] == 0 and photo_of[k] in vset
        ]
    sb = score(base, emb, masks, eval_rows_all, ids, device)
    order = [r[1] for r in eval_rows_all]
    for c in CONDITIONS:
        base_scores[c] = sb[c]

    def summary(sc: dict[str, np.ndarray]) -> dict:
        out = {}
        for g in ["all"] + sorted(set(modality)):
            sel = np.array([g == "all" or modality[i] == g for i in order])
            out[g] = {c: round(float(sc[c][sel].mean()), 4) for c in CONDITIONS} | {
                "n": int(sel.sum())
            }
        return out

    result["base"] = summary(base_scores)
    log(f"base (held-out view 0): {json.dumps(result['base']['all'])}")
    for cfg in a.configs.split(","):
        lr = float(cfg[2:])
        tuned: dict[str, list] = {c: [] for c in CONDITIONS}
        t1 = time.time()
        for f, (train_ids, val) in enumerate(folds):
            tset = {index[t] for t in train_ids}
            vset = {index[v] for v in val}
            train_rows = [k for k in range(len(rows)) if photo_of[k] in tset]
            model = train(
                base, emb, masks, tight, hw, train_rows, a.steps, lr, a.batch, device, a.seed + f, log
            )
            ev = [r for r in eval_rows_all if r[1] in vset]
            sc = score(model, emb, masks, ev, ids, device)
            for c in CONDITIONS:
                tuned[c].append((ev, sc[c]))
            log(f"{cfg} fold {f + 1}/{len(folds)} done ({time.time() - t1:.0f} s)")
        # back into eval_rows_all order
        merged = {}
        for c in CONDITIONS:
            d = {}
            for ev, v in tuned[c]:
                d.update({r[0]: x for r, x in zip(ev, v, strict=True)})
            merged[c] = np.array([d[r[0]] for r in eval_rows_all])
        result["configs"][cfg] = summary(merged)
        log(f"{cfg} CV: {json.dumps(result['configs'][cfg]['all'])}")
        final = train(
            base, emb, masks, tight, hw, list(range(len(rows))), a.steps, lr, a.batch, device,
            a.seed, log,
        )
        keep = {
            k: v.detach().cpu().half()
            for k, v in final.state_dict().items()
            if k.startswith(("prompt_encoder.", "mask_decoder."))
        }
        torch.save(keep, a.out / f"decoder-{cfg}.pt")
        (a.out / "cv.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
