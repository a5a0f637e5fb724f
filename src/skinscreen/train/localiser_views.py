"""Train the localiser head on many augmented views per photo (an embedding bank, any device).

:mod:`skinscreen.train.localiser` trains the head on cached ONNX embeddings of one or two views
(photo, mirror) per photo, which is what a CPU can afford. This module trains the same head on
``n`` random augmentations of every photo (flips, rotation, crop and zoom-out, lighting, colour
casts, blur, JPEG), encoded by our PyTorch encoder on whatever device is there (a GPU encodes
the ~20 k views in seconds) and held as a float16 bank in device memory.

The steps, each usable alone:

* :func:`write_pack` (here, CPU): the training photos already resized by the model's rule (the
  distillation cache's view 0), their masks at the same size, modality, patient group and
  original size, as small files that can be moved to another machine.
* :func:`random_view` / :func:`view_arrays`: one augmented view and its model input, valid map
  and target map (the target follows the geometry; border pixels are reflected in both the
  photo and the mask so the labels stay consistent).
* :func:`build_bank`: encode all views; :func:`train_on_bank`: train a head sampling one view of
  each photo per epoch; :func:`cross_validate_bank`: patient-grouped folds (the same folds as
  :func:`skinscreen.train.localiser.cross_validate`) returning one head per fold.

The heads it returns are scored like the CPU-trained ones: out-of-fold maps on the ONNX
runtime's own cached embeddings, boxes prompted to the decoder, at photo resolution
(:func:`skinscreen.train.localiser.score_maps`), so the figures compare one to one.

Command line (on the machine with the accelerator)::

    python -m skinscreen.train.localiser_views --pack PACK --weights W.pt --out OUT
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from skinscreen.auto.learned import GRID
from skinscreen.io.image import load_mask
from skinscreen.spec import ModelSpec, get_spec
from skinscreen.train.data import AugmentParams, augment, model_input, resized_view
from skinscreen.train.finetune import group_of, grouped_folds
from skinscreen.train.localiser import LocaliserHead, loss_fn, target_map, valid_map


# ---------------------------------------------------------------------------------- the pack
def write_pack(
    cache_root: Path, masks_dir: Path, metadata_csv: Path | None, out_dir: Path, quality: int = 92
) -> int:
    """Write ``out_dir/images/<id>.jpg`` (the cached resized photo, JPEG ``quality``),
    ``out_dir/masks/<id>.png`` (expert mask resized to the same size, area rule, >= 0.5) and
    ``out_dir/index.json`` (id, modality, group, original size). Returns the photo count."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    modality: dict[str, str] = {}
    if metadata_csv is not None and Path(metadata_csv).is_file():
        with open(metadata_csv) as f:
            modality = {r["id"]: r.get("modality", "") for r in csv.DictReader(f)}
    index = []
    for img_path in sorted((Path(cache_root) / "v0").glob("*.img.npy")):
        stem = img_path.name[: -len(".img.npy")]
        mpath = Path(masks_dir) / f"{stem}.png"
        if not mpath.is_file():
            continue
        rgb = np.load(img_path)
        h, w = rgb.shape[:2]
        mask = load_mask(mpath)
        small = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
        cv2.imwrite(
            str(out_dir / "images" / f"{stem}.jpg"),
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, quality],
        )
        cv2.imwrite(str(out_dir / "masks" / f"{stem}.png"), small.astype(np.uint8) * 255)
        index.append(
            {
                "id": stem,
                "modality": modality.get(stem, ""),
                "group": group_of(stem),
                "original_hw": list(mask.shape[:2]),
            }
        )
    (out_dir / "index.json").write_text(json.dumps(index, indent=0) + "\n")
    return len(index)


@dataclass
class Pack:
    """Photos (``(h, w, 3)`` uint8 RGB, longest side = the model input) and bool masks."""

    ids: list[str]
    images: list[np.ndarray]
    masks: list[np.ndarray]
    modality: dict[str, str]


def read_pack(pack_dir: Path) -> Pack:
    pack_dir = Path(pack_dir)
    index = json.loads((pack_dir / "index.json").read_text())
    ids, images, masks = [], [], []
    for e in index:
        bgr = cv2.imread(str(pack_dir / "images" / f"{e['id']}.jpg"), cv2.IMREAD_COLOR)
        m = cv2.imread(str(pack_dir / "masks" / f"{e['id']}.png"), cv2.IMREAD_GRAYSCALE)
        ids.append(e["id"])
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        masks.append(m > 127)
    return Pack(ids, images, masks, {e["id"]: e["modality"] for e in index})


# ---------------------------------------------------------------------------------- the views
def random_view_params(rng: np.random.Generator) -> AugmentParams:
    """Flips, rotation +-30 deg, crop to 60-100 % or zoom out to 130 % (reflected border),
    lighting (gamma 0.6-1.6, contrast) and colour casts (channel gains 0.85-1.15)."""
    zoom_out = rng.random() < 0.25
    scale = float(rng.uniform(1.0, 1.3)) if zoom_out else float(rng.uniform(0.6, 1.0))
    margin = max(0.0, (1 - scale) / 2)
    return AugmentParams(
        hflip=bool(rng.random() < 0.5),
        vflip=bool(rng.random() < 0.5),
        angle=float(rng.uniform(-30, 30)) if rng.random() < 0.7 else 0.0,
        scale=scale,
        center=(
            float(rng.uniform(0.5 - margin, 0.5 + margin)),
            float(rng.uniform(0.5 - margin, 0.5 + margin)),
        ),
        brightness=float(rng.uniform(0.7, 1.3)),
        contrast=float(rng.uniform(0.7, 1.3)),
        saturation=float(rng.uniform(0.6, 1.4)),
        hue_shift=float(rng.uniform(-8, 8)),
        gamma=float(rng.uniform(0.6, 1.6)),
        channel_gain=tuple(float(g) for g in rng.uniform(0.85, 1.15, size=3)),
    )


def random_view(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One random view of ``(h, w, 3)`` uint8 ``image`` and its ``(h, w)`` bool ``mask``
    (geometry applied to both; blur with p 0.2, JPEG re-encoding at quality 20-80 with p 0.2)."""
    a = random_view_params(rng)
    out, m = augment(image, a, mask, mask_border="reflect")
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.8)))
    if rng.random() < 0.2:
        ok, buf = cv2.imencode(
            ".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 81))]
        )
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return out, m


def view_arrays(
    spec: ModelSpec, image: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A view -> (model input ``(3, S, S)`` float32, valid ``(64, 64)``, target ``(64, 64)``),
    by the runtime's resize/normalise/pad rule."""
    resized = resized_view(spec, image)
    h, w = resized.shape[:2]
    return (
        model_input(spec, resized),
        valid_map(h, w, spec.input_size),
        target_map(mask, h, w, spec.input_size),
    )


def _views_of_photo(args: tuple) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    spec_name, image, mask, n, seed = args
    cv2.setNumThreads(1)
    spec = get_spec(spec_name)
    rng = np.random.default_rng(seed)
    views = [(image, mask), (image[:, ::-1], mask[:, ::-1])]
    views += [random_view(image, mask, rng) for _ in range(n)]
    return [view_arrays(spec, np.ascontiguousarray(v), np.ascontiguousarray(m)) for v, m in views]


# ---------------------------------------------------------------------------------- the bank
@dataclass
class Bank:
    """``emb`` (N, V, 256, 64, 64) float16, ``valid``/``target`` (N, V, 1, 64, 64) float32, on
    one device; view 0 is the photo, 1 its mirror, 2.. random views."""

    ids: list[str]
    emb: torch.Tensor
    valid: torch.Tensor
    target: torch.Tensor


@torch.no_grad()
def build_bank(
    encoder: torch.nn.Module,
    pack: Pack,
    spec: ModelSpec,
    n_random: int,
    device: torch.device,
    seed: int = 0,
    batch: int = 64,
    workers: int = 8,
    log=print,
) -> Bank:
    """Encode photo, mirror and ``n_random`` random views of every photo of ``pack``."""
    from multiprocessing import get_context

    n, v = len(pack.ids), n_random + 2
    emb = torch.empty((n, v, 256, GRID, GRID), dtype=torch.float16, device=device)
    valid = torch.empty((n, v, 1, GRID, GRID), dtype=torch.float32, device=device)
    target = torch.empty_like(valid)
    jobs = [
        (spec.name, im, m, n_random, seed * 100003 + i)
        for i, (im, m) in enumerate(zip(pack.images, pack.masks, strict=True))
    ]
    t0 = time.time()
    pending: list[tuple[int, int, np.ndarray]] = []

    def flush() -> None:
        x = torch.from_numpy(np.stack([p[2] for p in pending])).to(device)
        e = encoder(x).half()
        for k, (i, j, _) in enumerate(pending):
            emb[i, j] = e[k]
        pending.clear()

    # worker processes are spawned, not forked: a fork of a process that already runs torch,
    # CUDA or ONNX Runtime threads can deadlock in the child
    pool = get_context("spawn").Pool(workers) if workers > 1 else None
    views_iter = (
        pool.imap(_views_of_photo, jobs, chunksize=4) if pool else map(_views_of_photo, jobs)
    )
    try:
        for i, views in enumerate(views_iter):
            for j, (x, va, ta) in enumerate(views):
                valid[i, j, 0] = torch.from_numpy(va)
                target[i, j, 0] = torch.from_numpy(ta)
                pending.append((i, j, x))
                if len(pending) == batch:
                    flush()
            if (i + 1) % 100 == 0:
                log(f"bank: {i + 1}/{n} photos, {time.time() - t0:.0f} s")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    if pending:
        flush()
    log(f"bank: {n} photos x {v} views in {time.time() - t0:.0f} s")
    return Bank(list(pack.ids), emb, valid, target)


def train_on_bank(
    bank: Bank,
    rows: np.ndarray,
    epochs: int = 40,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 1e-2,
    width: int = 32,
    views: int | None = None,
    seed: int = 0,
) -> LocaliserHead:
    """Train a head on photos ``rows``; each epoch draws one of the first ``views`` views (all
    when None) of every photo. AdamW with a one-cycle schedule, the loss of the CPU trainer."""
    device = bank.emb.device
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = LocaliserHead(c=width).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(rows) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    n_views = views or bank.emb.shape[1]
    head.train()
    for _ in range(epochs):
        order = rng.permutation(rows)
        for i in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[i : i + batch_size]).to(device)
            vi = torch.randint(0, n_views, (len(idx),), generator=gen).to(device)
            emb = bank.emb[idx, vi].float()
            valid = bank.valid[idx, vi]
            target = bank.target[idx, vi]
            loss = loss_fn(head(emb, valid), target, valid)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return head.eval()


@torch.no_grad()
def bank_maps(head: LocaliserHead, bank: Bank, rows: np.ndarray, view: int = 0) -> np.ndarray:
    """``(len(rows), 64, 64)`` probabilities of ``view`` of photos ``rows``."""
    out = []
    for i in range(0, len(rows), 64):
        idx = torch.from_numpy(rows[i : i + 64]).to(bank.emb.device)
        logits = head(bank.emb[idx, view].float(), bank.valid[idx, view])
        out.append(torch.sigmoid(logits)[:, 0].cpu().numpy())
    return np.concatenate(out)


def cross_validate_bank(
    bank: Bank, k: int = 5, seed: int = 0, **train_kw
) -> tuple[list[dict[str, torch.Tensor]], dict[str, np.ndarray]]:
    """Patient-grouped k folds (as the CPU trainer): one trained head state dict per fold, and
    the out-of-fold view-0 maps of this bank ``{id: (64, 64)}`` (a quick check on the device;
    the reported figures come from the runtime's embeddings)."""
    pos = {i: r for r, i in enumerate(bank.ids)}
    heads, oof = [], {}
    for fold, (train_ids, val_ids) in enumerate(grouped_folds(bank.ids, k, seed=seed)):
        rows = np.array([pos[i] for i in train_ids])
        vrows = np.array([pos[i] for i in val_ids])
        head = train_on_bank(bank, rows, seed=seed + fold, **train_kw)
        heads.append({n: t.detach().cpu().half() for n, t in head.state_dict().items()})
        for r, m in zip(vrows, bank_maps(head, bank, vrows), strict=True):
            oof[bank.ids[r]] = m
    return heads, oof


def quick_scores(
    model, oof: dict[str, np.ndarray], pack: Pack, spec: ModelSpec, bank: Bank, margin: float = 0.05
) -> dict[str, dict[str, float]]:
    """Decoder prompted with each map's best box on this bank's view-0 embedding, scored on the
    pack's (resized) masks: ``{group: {n, dice, threshold_jaccard}}``. A device-side proxy."""
    from skinscreen.auto.learned import regions_from_map
    from skinscreen.postprocess.mask import clean_mask
    from skinscreen.preprocess.transforms import (
        compute_transform,
        crop_and_resize_logits,
        expand_box,
    )

    pos = {i: r for r, i in enumerate(bank.ids)}
    rows: list[tuple[str, float, float]] = []
    device = bank.emb.device
    for i, prob in oof.items():
        gt = pack.masks[pos[i]]
        t = compute_transform(spec, gt.shape)
        regs = regions_from_map(prob, t)
        if not regs:
            rows.append((pack.modality.get(i, ""), 0.0, 0.0))
            continue
        box = expand_box(regs[0].box, margin, gt.shape)
        with torch.no_grad():
            b = torch.from_numpy(t.apply_boxes(box).astype(np.float32)).reshape(1, 4).to(device)
            logits, _ = model.decode(bank.emb[pos[i], 0][None].float(), b)
        low = logits[0, 0].float().cpu().numpy()
        mask = clean_mask(crop_and_resize_logits(low, t, low.shape[-1]) > 0)
        inter, union = float((mask & gt).sum()), float((mask | gt).sum())
        d = 2 * inter / max(float(mask.sum() + gt.sum()), 1.0)
        rows.append((pack.modality.get(i, ""), d, inter / max(union, 1.0)))
    out = {}
    for g in ["all"] + sorted({r[0] for r in rows}):
        sel = [r for r in rows if g == "all" or r[0] == g]
        j = np.array([r[2] for r in sel])
        out[g] = {
            "n": len(sel),
            "dice": round(float(np.mean([r[1] for r in sel])), 4),
            "threshold_jaccard": round(float(np.where(j >= 0.65, j, 0).mean()), 4),
        }
    return out


# ---------------------------------------------------------------------------------- command
def device_run(spec: ModelSpec, weights: Path, pack_dir: Path, limit: int, out: Path):
    """Shared set-up of the device-side trainers: ``(device, model, pack, log)``.

    The model of ``spec`` with ``weights`` (a state dict, float16 allowed) on CUDA when present
    (TF32 allowed), else the CPU; the pack's first ``limit`` photos (0: all); ``log`` prints and
    appends to ``out/log.txt``.
    """
    from skinscreen.export.checkpoint import load_strict
    from skinscreen.export.models.build import build_model

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    model = build_model(spec)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    load_strict(model, {k: v.float() for k, v in state.items()}, source=str(weights))
    model = model.to(device).eval()
    pack = read_pack(pack_dir)
    if limit:
        pack = replace(
            pack, ids=pack.ids[:limit], images=pack.images[:limit], masks=pack.masks[:limit]
        )
    out.mkdir(parents=True, exist_ok=True)
    log_f = (out / "log.txt").open("a")

    def log(s: str) -> None:
        print(s, flush=True)
        log_f.write(s + "\n")
        log_f.flush()

    return device, model, pack, log


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pack", type=Path, required=True)
    p.add_argument("--weights", type=Path, required=True, help="model state dict (.pt)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", default="litemedsam")
    p.add_argument("--views", type=int, default=16, help="random views per photo")
    p.add_argument("--configs", default="w32-e40,w64-e40,w32-e40-v2", help="width, epochs, views")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="first N photos only (a smoke test)")
    a = p.parse_args(argv)

    spec = get_spec(a.model)
    device, model, pack, log = device_run(spec, a.weights, a.pack, a.limit, a.out)
    log(f"device {device}, {len(pack.ids)} photos, {a.views} random views")
    bank = build_bank(model.image_encoder, pack, spec, a.views, device, seed=a.seed, log=log)
    results, saved = {}, {}
    for cfg in a.configs.split(","):
        parts = dict((s[0], int(s[1:])) for s in cfg.split("-"))
        kw = dict(width=parts.get("w", 32), epochs=parts.get("e", 40), views=parts.get("v"))
        t0 = time.time()
        heads, oof = cross_validate_bank(bank, k=a.folds, seed=a.seed, **kw)
        q = quick_scores(model, oof, pack, spec, bank)
        final = train_on_bank(bank, np.arange(len(bank.ids)), seed=a.seed, **kw)
        saved[cfg] = {
            "config": kw,
            "ids": list(bank.ids),
            "views": f"photo, mirror and {a.views} random views per photo",
            "command": "python -m skinscreen.train.localiser_views "
            + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:])),
            "folds": heads,
            "final": {n: t.detach().cpu().half() for n, t in final.state_dict().items()},
        }
        results[cfg] = q
        log(f"{cfg}: {time.time() - t0:.0f} s, quick CV {json.dumps(q)}")
        # float16, one file per config (files coming back from a device are size-limited);
        # written after each config so a cut-off run keeps the finished ones
        torch.save(saved[cfg], a.out / f"heads-{cfg}.pt")
        (a.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    log("done")


if __name__ == "__main__":
    main()
