"""Fine-tune the mask decoder (optionally the prompt encoder) on labelled skin photos.

Training: frozen image embeddings (from the teacher-embedding cache: view 0 = photo, 1 = mirror,
...), expert masks augmented like their view, box prompts jittered by up to 10 % per side as users
draw them, Dice + BCE on the decoder's low-res logits.

Reporting: k-fold cross-validation grouped by patient (PAD-UFES-20 ids
``PAD_PAT_<patient>_<lesion>_<image>`` group by patient; other photos are their own group), so
no photo and no patient is in both the training and the validation part of a fold. Per fold the
base and the fine-tuned decoder are scored on the same held-out photos (view 0, full-resolution
masks after the runtime post-processing, ``gt-box`` and ``gt-box-jitter`` prompts). A fine-tuned
decoder is worth shipping only if it beats the base model in every fold.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from skinscreen.evaluate.dataset import prompt_box, seed_for
from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_mask
from skinscreen.postprocess.mask import clean_mask
from skinscreen.preprocess.transforms import compute_transform, crop_and_resize_logits
from skinscreen.spec import ModelSpec
from skinscreen.train.cache import entry_paths
from skinscreen.train.losses import dice_bce, jittered_model_box, model_space_mask, view_mask

_PAD = re.compile(r"^(PAD_PAT_\d+)_\d+_\d+$")


def group_of(image_id: str) -> str:
    """Patient group of a photo id: ``PAD_PAT_<patient>`` for PAD-UFES-20 ids, else the id."""
    m = _PAD.match(image_id)
    return m.group(1) if m else image_id


def grouped_folds(ids: list[str], k: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """``k`` (train ids, validation ids) splits; every group lands in exactly one validation
    part. Groups are shuffled with ``seed`` and assigned largest first to the smallest fold."""
    groups: dict[str, list[str]] = {}
    for i in sorted(ids):
        groups.setdefault(group_of(i), []).append(i)
    if k < 2 or k > len(groups):
        raise ValueError(f"need 2 <= k <= number of patient groups ({len(groups)}), got {k}")
    names = sorted(groups)
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    names.sort(key=lambda g: -len(groups[g]))  # stable: ties keep the shuffled order
    folds: list[list[str]] = [[] for _ in range(k)]
    for g in names:
        min(folds, key=len).extend(groups[g])
    all_ids = sorted(ids)
    out = []
    for f in folds:
        val = set(f)
        out.append(([i for i in all_ids if i not in val], sorted(f)))
    return out


@dataclass
class Example:
    """One labelled, cached view: embedding file, photo id, view index, expert mask path."""

    emb: Path
    img: Path
    id: str
    view: int
    mask: Path


def cached_examples(root: Path, masks: dict[str, Path], views: int) -> list[Example]:
    """Examples for every photo id in ``masks`` whose views ``0..views-1`` are cached."""
    out = []
    for i, m in sorted(masks.items()):
        for v in range(views):
            emb, img = entry_paths(root, v, i)
            if img.is_file() and emb.is_file():
                out.append(Example(emb, img, i, v, m))
    return out


def _trainable(model, prompt_encoder: bool) -> list[torch.nn.Parameter]:
    for p in model.parameters():
        p.requires_grad_(False)
    mods = [model.mask_decoder] + ([model.prompt_encoder] if prompt_encoder else [])
    params = [p for m in mods for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    return params


def train_decoder(
    base_model,
    spec: ModelSpec,
    examples: list[Example],
    masks_dir_of: dict[str, Path],
    steps: int,
    lr: float = 1e-5,
    prompt_encoder: bool = False,
    seed: int = 0,
    progress: bool = False,
):
    """A copy of ``base_model`` whose decoder was trained ``steps`` single-example steps."""
    from tqdm import tqdm

    model = copy.deepcopy(base_model).train()
    opt = torch.optim.AdamW(_trainable(model, prompt_encoder), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    for step in tqdm(range(steps), desc="finetune", disable=not progress):
        ex = examples[int(torch.randint(len(examples), (1,), generator=gen))]
        m = view_mask(masks_dir_of[ex.id], ex.img, seed)
        if m is None or not m.any():
            continue
        emb = torch.from_numpy(np.load(ex.emb).astype(np.float32))[None]
        rng = np.random.default_rng(seed_for(f"{ex.id}/{ex.view}@{step}", seed))
        box = torch.from_numpy(jittered_model_box(spec, m, rng)).reshape(1, 4)
        logits, _ = model.decode(emb, box)
        target = torch.from_numpy(model_space_mask(spec, m, logits.shape[-1]))[None, None]
        loss = dice_bce(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def score(
    model, spec: ModelSpec, examples: list[Example], prompts=("gt-box", "gt-box-jitter")
) -> dict:
    """Mean Dice per prompt on view-0 examples (full-resolution masks, runtime post-processing)."""
    model.eval()
    res: dict[str, list[float]] = {p: [] for p in prompts}
    for ex in examples:
        if ex.view != 0:
            continue
        truth = load_mask(ex.mask)
        t = compute_transform(spec, truth.shape)
        emb = torch.from_numpy(np.load(ex.emb).astype(np.float32))[None]
        for p in prompts:
            box = prompt_box(p, truth, ex.id)
            bm = torch.from_numpy(t.apply_boxes(box).astype(np.float32)).reshape(1, 4)
            logits, _ = model.decode(emb, bm)
            full = crop_and_resize_logits(logits[0, 0].numpy(), t, spec.low_res_size)
            res[p].append(dice(clean_mask(full > spec.mask_threshold), truth))
    out = {p: float(np.mean(v)) if v else float("nan") for p, v in res.items()}
    out["n"] = len(next(iter(res.values())))
    return out


def cross_validate(
    base_model,
    spec: ModelSpec,
    examples: list[Example],
    k: int,
    steps: int,
    lr: float = 1e-5,
    prompt_encoder: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Grouped k-fold CV of decoder fine-tuning; returns per-fold and mean base/fine-tuned Dice
    and ``beats_base`` (fine-tuned better on gt-box-jitter in every fold)."""
    ids = sorted({e.id for e in examples})
    masks_dir_of = {e.id: e.mask.parent for e in examples}
    folds = []
    for f, (tr, va) in enumerate(grouped_folds(ids, k, seed)):
        trs, vas = set(tr), set(va)
        tr_ex = [e for e in examples if e.id in trs]
        va_ex = [e for e in examples if e.id in vas]
        tuned = train_decoder(
            base_model, spec, tr_ex, masks_dir_of, steps, lr, prompt_encoder, seed + f, progress
        )
        folds.append(
            {
                "fold": f,
                "n_train": len(tr),
                "n_val": len(va),
                "base": score(base_model, spec, va_ex),
                "finetuned": score(tuned, spec, va_ex),
            }
        )
    out: dict = {
        "k": k,
        "steps_per_fold": steps,
        "lr": lr,
        "prompt_encoder": prompt_encoder,
        "folds": folds,
    }
    for p in ("gt-box", "gt-box-jitter"):
        gains = [fo["finetuned"][p] - fo["base"][p] for fo in folds]
        out[f"gain_{p}_mean"] = float(np.mean(gains))
        out[f"gain_{p}_min"] = float(np.min(gains))
        out[f"base_{p}_mean"] = float(np.mean([fo["base"][p] for fo in folds]))
        out[f"finetuned_{p}_mean"] = float(np.mean([fo["finetuned"][p] for fo in folds]))
    out["beats_base"] = bool(out["gain_gt-box-jitter_min"] > 0 and out["gain_gt-box_mean"] > 0)
    return out
