"""A small learned lesion localiser on the image embedding (training side, torch).

The localiser is a head of about 0.1 M parameters that reads the image embedding the encoder
already computes (``(1, 256, 64, 64)``; no second encoder run) and predicts a coarse lesion
probability map ``(1, 1, 64, 64)`` on the model's padded 256 px frame. The runtime
(:mod:`skinscreen.auto.learned`) turns that map into ranked boxes and prompts the decoder with
the best one.

Inputs of the head: the embedding and ``valid`` ``(1, 1, 64, 64)``, the share of each 4x4 cell
that lies on the photo (1 inside, 0 on the bottom/right padding): the head sees where the photo
ends. Absolute position (a centre prior is learned, not hand-set) comes from two fixed coordinate
channels inside the model.

Data: the teacher-embedding cache of :mod:`skinscreen.train.cache` (views 0 = photo and 1 =
mirror of each training photo) and the expert masks. Reporting: k-fold cross-validation grouped
by patient (:func:`skinscreen.train.finetune.grouped_folds`), out-of-fold boxes for every photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skinscreen.auto.learned import GRID, cell_share
from skinscreen.io.image import load_mask
from skinscreen.spec import ModelSpec


class Block(nn.Module):
    """Residual dilated 3x3 conv block (BatchNorm folds away in ONNX)."""

    def __init__(self, c: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.gelu(self.bn(self.conv(x)))


class LocaliserHead(nn.Module):
    """``(embedding (B,256,64,64), valid (B,1,64,64)) -> logits (B,1,64,64)``.

    A 1x1 reduction at 64x64 to ``c`` channels, then residual dilated convolutions on a 32x32
    grid with a global context vector, upsampled back to 64x64. ``c`` = 32: about 0.16 GFLOP,
    56 k parameters; ``c`` = 128 (the shipped head): about 1.8 GFLOP, 0.79 M parameters.
    """

    def __init__(self, c_in: int = 256, c: int = 32, dilations: tuple[int, ...] = (1, 2, 4, 8, 1)):
        super().__init__()
        ys, xs = torch.meshgrid(
            (torch.arange(GRID) + 0.5) / GRID, (torch.arange(GRID) + 0.5) / GRID, indexing="ij"
        )
        self.register_buffer("coords", torch.stack([xs, ys])[None] * 2 - 1, persistent=False)
        self.reduce = nn.Sequential(
            nn.Conv2d(c_in + 3, c, 1, bias=False), nn.BatchNorm2d(c), nn.GELU()
        )
        self.context = nn.Linear(c, c)
        self.blocks = nn.Sequential(*(Block(c, d) for d in dilations))
        self.out = nn.Conv2d(c, 1, 1)

    def forward(self, embedding: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b = embedding.shape[0]
        x = torch.cat([embedding * valid, valid, self.coords.expand(b, -1, -1, -1)], 1)
        f = F.avg_pool2d(self.reduce(x), 2)  # the blocks run on a 32x32 grid
        v = F.avg_pool2d(valid, 2)
        g = (f * v).sum((2, 3)) / v.sum((2, 3)).clamp_min(1.0)
        f = f + self.context(g)[:, :, None, None]
        logits = self.out(self.blocks(f))
        return F.interpolate(logits, scale_factor=2.0, mode="bilinear", align_corners=False)


def valid_map(h: int, w: int, size: int = 256) -> np.ndarray:
    """``(64, 64)`` float32 share of each cell on the photo, for a resized photo of ``(h, w)``
    pixels padded bottom/right to ``size`` (the runtime's own function)."""
    return cell_share(h, w, size)


def target_map(mask: np.ndarray, h: int, w: int, size: int = 256) -> np.ndarray:
    """``(H, W)`` bool expert mask -> ``(64, 64)`` float32 lesion share of each cell, with the
    mask resized to ``(h, w)`` (the resized photo) and padded like the photo."""
    m = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    t = np.zeros((size, size), np.float32)
    t[:h, :w] = m
    return cv2.resize(t, (GRID, GRID), interpolation=cv2.INTER_AREA)


@dataclass
class LocaliserData:
    """Training arrays: ``emb`` (N,256,64,64) float16, ``valid``/``target`` (N,1,64,64) float32,
    ``ids`` photo id per row (views of one photo share the id), ``views`` view index per row."""

    emb: np.ndarray
    valid: np.ndarray
    target: np.ndarray
    ids: list[str]
    views: list[int]


def load_data(cache_root: Path, masks_dir: Path, views: tuple[int, ...] = (0, 1)) -> LocaliserData:
    """Read cached embeddings of ``views`` and the matching expert masks (view 1 is mirrored)."""
    embs, valids, targets, ids, vs = [], [], [], [], []
    for v in views:
        vdir = Path(cache_root) / f"v{v}"
        for img in sorted(vdir.glob("*.img.npy")):
            stem = img.name[: -len(".img.npy")]
            mpath = Path(masks_dir) / f"{stem}.png"
            emb = img.with_name(f"{stem}.emb.npy")
            if not (mpath.is_file() and emb.is_file()):
                continue
            h, w = np.load(img, mmap_mode="r").shape[:2]
            mask = load_mask(mpath)
            if v == 1:
                mask = mask[:, ::-1]
            elif v != 0:
                raise ValueError("only views 0 (photo) and 1 (mirror) have known masks")
            embs.append(np.load(emb))
            valids.append(valid_map(h, w)[None])
            targets.append(target_map(mask, h, w)[None])
            ids.append(stem)
            vs.append(v)
    return LocaliserData(np.stack(embs), np.stack(valids), np.stack(targets), ids, vs)


def loss_fn(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Soft-target BCE on the photo's cells + soft Dice."""
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=valid, reduction="sum")
    bce = bce / valid.sum().clamp_min(1.0)
    p = torch.sigmoid(logits) * valid
    inter = (p * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return bce + dice.mean()


def train_head(
    data: LocaliserData,
    rows: np.ndarray,
    epochs: int = 20,
    batch_size: int = 16,
    lr: float = 3e-3,
    weight_decay: float = 1e-2,
    seed: int = 0,
    progress: bool = True,
) -> tuple[LocaliserHead, list[float]]:
    """Train a head on ``rows`` of ``data`` (AdamW, cosine LR); returns it (eval) and the
    per-epoch mean training loss."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = LocaliserHead()
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(rows) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    curve = []
    bar = tqdm(total=steps, desc="localiser", unit="step", disable=not progress)
    for _ in range(epochs):
        head.train()
        order = rng.permutation(rows)
        total, n = 0.0, 0
        for i in range(0, len(order), batch_size):
            idx = np.sort(order[i : i + batch_size])
            emb = torch.from_numpy(data.emb[idx].astype(np.float32))
            valid = torch.from_numpy(data.valid[idx])
            target = torch.from_numpy(data.target[idx])
            loss = loss_fn(head(emb, valid), target, valid)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{total / n:.4f}")
        curve.append(total / n)
    bar.close()
    return head.eval(), curve


@torch.no_grad()
def predict_maps(head: LocaliserHead, data: LocaliserData, rows: np.ndarray) -> np.ndarray:
    """``(len(rows), 64, 64)`` float32 lesion probabilities."""
    out = []
    for i in range(0, len(rows), 32):
        idx = rows[i : i + 32]
        emb = torch.from_numpy(data.emb[idx].astype(np.float32))
        valid = torch.from_numpy(data.valid[idx])
        out.append(torch.sigmoid(head(emb, valid))[:, 0].numpy())
    return np.concatenate(out)


def export_onnx(head: LocaliserHead, path: Path) -> None:
    """Write the head as ONNX (inputs ``embedding`` (1,256,64,64), ``valid`` (1,1,64,64); output
    ``logits`` (1,1,64,64)), checked against PyTorch on random inputs."""
    import onnxruntime as ort

    head = head.eval()
    emb = torch.randn(1, 256, GRID, GRID)
    valid = torch.from_numpy(valid_map(200, 256))[None, None]
    path = Path(path)
    torch.onnx.export(
        head,
        (emb, valid),
        str(path),
        input_names=["embedding", "valid"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"embedding": emb.numpy(), "valid": valid.numpy()})[0]
    with torch.no_grad():
        ref = head(emb, valid).numpy()
    err = float(np.abs(got - ref).max())
    if err > 1e-3:
        raise RuntimeError(f"localiser ONNX export differs from PyTorch (max |diff| {err:.2e})")


def spec_frame(spec: ModelSpec) -> int:
    """The model frame the head was trained on (the student/teacher input size)."""
    return int(spec.input_size)


def cross_validate(
    data: LocaliserData,
    k: int = 5,
    epochs: int = 10,
    seed: int = 0,
    progress: bool = True,
    log=print,
) -> dict[str, np.ndarray]:
    """Patient-grouped k-fold CV: train on both views of k-1 parts, predict view 0 of the
    held-out part. Returns ``{photo id: (64, 64) out-of-fold probability map}``."""
    from skinscreen.train.finetune import grouped_folds

    row_of = {(i, v): r for r, (i, v) in enumerate(zip(data.ids, data.views, strict=True))}
    ids = sorted(set(data.ids))
    oof: dict[str, np.ndarray] = {}
    for fold, (train_ids, val_ids) in enumerate(grouped_folds(ids, k, seed=seed)):
        train_set = set(train_ids)
        rows = np.array([r for r, i in enumerate(data.ids) if i in train_set])
        if set(val_ids) & train_set:
            raise AssertionError("a photo is in both parts of a fold")
        head, curve = train_head(data, rows, epochs=epochs, seed=seed + fold, progress=progress)
        vrows = np.array([row_of[(i, 0)] for i in val_ids if (i, 0) in row_of])
        for r, m in zip(vrows, predict_maps(head, data, vrows), strict=True):
            oof[data.ids[r]] = m
        log(
            f"fold {fold + 1}/{k}: {len(rows)} training rows, loss {curve[0]:.4f} -> {curve[-1]:.4f}"
        )
    return oof


def head_from_state(state: dict[str, torch.Tensor], width: int) -> LocaliserHead:
    """A :class:`LocaliserHead` of channel ``width`` holding ``state`` (float16 is upcast)."""
    head = LocaliserHead(c=width)
    head.load_state_dict({k: v.float() for k, v in state.items()})
    return head.eval()


def maps_from_fold_heads(
    data: LocaliserData, fold_states: list[dict[str, torch.Tensor]], width: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Out-of-fold view-0 maps of heads trained elsewhere on the same patient-grouped folds
    (:func:`skinscreen.train.localiser_views.cross_validate_bank`), predicted on ``data``'s
    embeddings (the runtime's own). Returns ``{photo id: (64, 64) probabilities}``."""
    from skinscreen.train.finetune import grouped_folds

    row_of = {(i, v): r for r, (i, v) in enumerate(zip(data.ids, data.views, strict=True))}
    folds = grouped_folds(sorted(set(data.ids)), len(fold_states), seed=seed)
    oof: dict[str, np.ndarray] = {}
    for state, (_, val_ids) in zip(fold_states, folds, strict=True):
        head = head_from_state(state, width)
        vrows = np.array([row_of[(i, 0)] for i in val_ids if (i, 0) in row_of])
        for r, m in zip(vrows, predict_maps(head, data, vrows), strict=True):
            oof[data.ids[r]] = m
    return oof


def score_maps(
    maps: dict[str, np.ndarray],
    cache_root: Path,
    masks_dir: Path,
    margins: tuple[float, ...],
    predictor,
    groups: dict[str, str] | None = None,
) -> dict:
    """Prompt the decoder with the box of each map's best region (grown by each margin) on the
    cached view-0 embedding; score against the expert mask at photo resolution.

    Returns ``{margin: {group: {n, dice, jaccard, threshold_jaccard, box_iou, not_found}}}``
    (group ``all`` plus the values of ``groups``, e.g. the modality of each photo).
    """
    from skinscreen.auto.learned import regions_from_map
    from skinscreen.predictor import ImageEncoding
    from skinscreen.preprocess.transforms import (
        box_from_mask,
        box_iou,
        compute_transform,
        expand_box,
    )

    rows: dict[float, list[tuple[str, float, float, float, bool]]] = {m: [] for m in margins}
    for i, prob in sorted(maps.items()):
        gt = load_mask(Path(masks_dir) / f"{i}.png")
        t = compute_transform(predictor.spec, gt.shape)
        emb = np.load(Path(cache_root) / "v0" / f"{i}.emb.npy").astype(np.float32)[None]
        predictor.set_encoding(
            ImageEncoding(np.zeros((1, 1, 3), np.uint8), emb, t, key=f"localiser-cv:{i}")
        )
        regs = regions_from_map(prob, t)
        gt_box = box_from_mask(gt)
        for m in margins:
            if not regs:
                rows[m].append((i, 0.0, 0.0, 0.0, True))
                continue
            box = expand_box(regs[0].box, m, gt.shape)
            logits, _ = predictor.decode_logits(t.apply_boxes(box))
            mask = predictor.postprocess(logits)[0]
            inter = float((mask & gt).sum())
            union = float((mask | gt).sum())
            d = 2 * inter / max(float(mask.sum() + gt.sum()), 1.0)
            rows[m].append((i, d, inter / max(union, 1.0), box_iou(box, gt_box), False))
    out: dict = {}
    for m, rs in rows.items():
        names = ["all"] + sorted(set((groups or {}).values()))
        out[m] = {}
        for g in names:
            sel = [r for r in rs if g == "all" or (groups or {}).get(r[0]) == g]
            if not sel:
                continue
            d = np.array([r[1] for r in sel])
            j = np.array([r[2] for r in sel])
            out[m][g] = {
                "n": len(sel),
                "dice": round(float(d.mean()), 4),
                "jaccard": round(float(j.mean()), 4),
                "threshold_jaccard": round(float(np.where(j >= 0.65, j, 0.0).mean()), 4),
                "box_iou": round(float(np.mean([r[3] for r in sel])), 4),
                "not_found": int(sum(r[4] for r in sel)),
            }
    return out
