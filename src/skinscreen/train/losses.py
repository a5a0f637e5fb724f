"""Mask losses and box-prompted targets shared by the e2e distillation stage and fine-tuning."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from skinscreen.evaluate.dataset import jitter_box, seed_for
from skinscreen.io.image import load_mask
from skinscreen.preprocess.transforms import box_from_mask, compute_transform
from skinscreen.spec import ModelSpec
from skinscreen.train.data import augment, view_params


def dice_bce(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss + binary cross-entropy, averaged over the batch.

    ``logits`` and ``target`` are ``(B, 1, L, L)``; target in {0, 1}."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)
    return bce + (1 - dice).mean()


def model_space_mask(spec: ModelSpec, mask: np.ndarray, size: int) -> np.ndarray:
    """``(H, W)`` bool expert mask -> ``(size, size)`` float32 in the padded model-input frame
    (resized like the photo, nearest neighbour, zero padding bottom/right)."""
    t = compute_transform(spec, mask.shape)
    h, w = t.photo_size_in(size)
    small = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    out = np.zeros((size, size), np.float32)
    out[:h, :w] = small
    return out


def jittered_model_box(
    spec: ModelSpec, mask: np.ndarray, rng: np.random.Generator, amount: float = 0.10
) -> np.ndarray:
    """Tight box of an ``(H, W)`` mask, each side jittered by up to ``amount`` of the box size
    (as users draw boxes), mapped to model-input pixels; ``(4,)`` XYXY float32."""
    box = box_from_mask(mask)
    if box is None:
        h, w = mask.shape
        box = np.array([0.0, 0.0, w, h])
    if amount > 0:
        box = jitter_box(box, mask.shape, rng, amount)
    return compute_transform(spec, mask.shape).apply_boxes(box).astype(np.float32)


def view_mask(masks_dir: Path, img_entry: Path, seed: int) -> np.ndarray | None:
    """Expert mask of a cached view ``.../v<view>/<stem>.img.npy`` with the view's augmentation
    applied (None when the photo has no mask)."""
    stem = img_entry.name.removesuffix(".img.npy")
    view = int(img_entry.parent.name[1:])
    for name in (f"{stem}.png", f"{stem}_segmentation.png"):
        p = Path(masks_dir) / name
        if p.is_file():
            m = load_mask(p)
            _, m = augment(np.zeros((*m.shape, 3), np.uint8), view_params(stem, view, seed), m)
            return m
    return None


def box_prompt_masks(
    teacher,
    spec: ModelSpec,
    emb: torch.Tensor,
    imgs: list[Path],
    masks_dir: Path,
    seed: int,
    step: int,
) -> torch.Tensor:
    """Dice + BCE of the frozen teacher decoder's masks from ``emb`` ``(B, 256, 64, 64)`` with
    jittered expert boxes, against the expert masks of the cached views ``imgs``."""
    losses = []
    for i, img in enumerate(imgs):
        m = view_mask(masks_dir, img, seed)
        if m is None or not m.any():
            continue
        rng = np.random.default_rng(seed_for(f"{img.name}@{step}", seed))
        box = torch.from_numpy(jittered_model_box(spec, m, rng)).reshape(1, 4).to(emb.device)
        logits, _ = teacher.model.decode(emb[i : i + 1], box)
        target = torch.from_numpy(model_space_mask(spec, m, logits.shape[-1]))[None, None].to(
            emb.device
        )
        losses.append(dice_bce(logits, target))
    if not losses:
        return emb.sum() * 0.0
    return torch.stack(losses).mean()
