"""Box-prompted Dice of an encoder + the teacher's decoder on photos with expert masks (PyTorch).

Same pre- and post-processing as the runtime (resize/normalise/pad, crop + bilinear resize of the
logits, threshold, largest component, holes filled) and the same prompts as
``skinscreen evaluate`` (``gt-box``, ``gt-box-jitter`` from
:func:`skinscreen.evaluate.dataset.prompt_box`), so the figures are comparable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from skinscreen.evaluate.dataset import Pair, find_pairs, prompt_box
from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_image, load_mask
from skinscreen.postprocess.mask import clean_mask
from skinscreen.preprocess.transforms import crop_and_resize_logits, preprocess
from skinscreen.spec import ModelSpec


@torch.no_grad()
def box_dice(
    encoder: torch.nn.Module,
    decoder_model: torch.nn.Module,
    spec: ModelSpec,
    pairs: list[Pair],
    prompts: tuple[str, ...] = ("gt-box",),
    device: torch.device | str = "cpu",
) -> dict:
    """Mean Dice per prompt: ``{"gt-box": 0.9, ..., "n": N}``.

    Args:
        encoder: ``(1, 3, S, S)`` -> ``(1, 256, 64, 64)`` (eval mode is set here).
        decoder_model: a :class:`~skinscreen.export.models.build.SamModel` (its ``decode``).
        spec: pre/post-processing constants of ``encoder``'s input.
        pairs: photos with expert masks.
    """
    was_training = encoder.training
    encoder.eval()
    scores: dict[str, list[float]] = {p: [] for p in prompts}
    for pair in pairs:
        rgb, truth = load_image(pair.image), load_mask(pair.mask)
        x, t = preprocess(spec, rgb)
        emb = encoder(torch.from_numpy(x).to(device))
        for prompt in prompts:
            box = prompt_box(prompt, truth, pair.id)
            bm = torch.as_tensor(t.apply_boxes(box).astype(np.float32).reshape(1, 4), device=device)
            logits, _ = decoder_model.decode(emb, bm)
            full = crop_and_resize_logits(logits[0, 0].float().cpu().numpy(), t, spec.low_res_size)
            scores[prompt].append(dice(clean_mask(full > spec.mask_threshold), truth))
    encoder.train(was_training)
    out: dict = {p: float(np.mean(v)) for p, v in scores.items()}
    out["n"] = len(pairs)
    return out


def dev_pairs(images: Path, masks: Path, limit: int | None = None) -> list[Pair]:
    """Photo/mask pairs of a folder (first ``limit`` by name when given)."""
    pairs = find_pairs(Path(images), Path(masks))
    return pairs[:limit] if limit else pairs
