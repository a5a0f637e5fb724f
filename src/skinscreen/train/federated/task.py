"""What is federated and how a site trains it: the prompt encoder + mask decoder on top of the
frozen encoder (the parts ``litemedsam-boxaug`` fine-tunes), on the site's cached embeddings.

Parameters travel as a flat ``{"prompt_encoder.<k>" | "mask_decoder.<k>": float32 array}`` dict
(the keys of the base model's state dict, the format of the packaged decoder deltas). Local
training is :func:`skinscreen.train.finetune.train_decoder`'s recipe (Dice + BCE on the
low-res logits, expert boxes jittered 10 % per side, AdamW) plus FedProx's proximal term
``mu / 2 * ||w - w_global||^2`` when the server asks for it.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from skinscreen.evaluate.dataset import seed_for
from skinscreen.spec import ModelSpec
from skinscreen.train.finetune import Example, score
from skinscreen.train.losses import dice_bce, jittered_model_box, model_space_mask, view_mask

PARTS = ("prompt_encoder", "mask_decoder")


@functools.lru_cache(maxsize=2)
def teacher_for(model: str):
    """The frozen teacher (PyTorch decoder, ONNX encoder when the bundle exists), loaded once
    per process (a ClientApp process serves every round of a run)."""
    from skinscreen.train.teacher import load_teacher

    torch.set_num_threads(1)
    return load_teacher(model, use_onnx_bundle=True)


def get_parameters(model) -> dict[str, np.ndarray]:
    """The federated parameters of ``model`` as float32 arrays (buffers included)."""
    return {
        f"{part}.{k}": v.detach().cpu().float().numpy().copy()
        for part in PARTS
        for k, v in getattr(model, part).state_dict().items()
    }


def set_parameters(model, params: dict[str, np.ndarray]) -> None:
    """Load ``params`` (exactly the keys of :func:`get_parameters`) into ``model``."""
    for part in PARTS:
        mod = getattr(model, part)
        own = mod.state_dict()
        pre = f"{part}."
        got = {k[len(pre) :]: v for k, v in params.items() if k.startswith(pre)}
        if set(got) != set(own):
            missing = sorted(set(own) - set(got))[:3]
            extra = sorted(set(got) - set(own))[:3]
            raise ValueError(f"{part}: parameter keys differ (missing {missing}, extra {extra})")
        mod.load_state_dict(
            {k: torch.from_numpy(np.asarray(v)).to(own[k].dtype) for k, v in got.items()}
        )


def _example_loss(model, spec: ModelSpec, ex: Example, seed: int, jitter_key: str | None):
    m = view_mask(ex.mask.parent, ex.img, seed)
    if m is None or not m.any():
        return None
    emb = torch.from_numpy(np.load(ex.emb).astype(np.float32))[None]
    rng = np.random.default_rng(seed_for(jitter_key or ex.id, seed))
    amount = 0.10 if jitter_key else 0.0
    box = torch.from_numpy(jittered_model_box(spec, m, rng, amount)).reshape(1, 4)
    logits, _ = model.decode(emb, box)
    target = torch.from_numpy(model_space_mask(spec, m, logits.shape[-1]))[None, None]
    return dice_bce(logits, target)


@torch.no_grad()
def eval_loss(model, spec: ModelSpec, examples: list[Example], seed: int = 0) -> float:
    """Mean Dice + BCE over ``examples`` with their tight expert boxes (no jitter)."""
    model.eval()
    losses = [_example_loss(model, spec, ex, seed, None) for ex in examples]
    losses = [float(x) for x in losses if x is not None]
    return float(np.mean(losses)) if losses else float("nan")


def local_train(
    model,
    spec: ModelSpec,
    examples: list[Example],
    steps: int,
    lr: float,
    proximal_mu: float = 0.0,
    seed: int = 0,
    tag: str = "",
) -> float:
    """Train ``model``'s prompt encoder + mask decoder in place for ``steps`` single-example
    steps; returns the mean training loss. ``tag`` (e.g. the round) varies box jitter and the
    photo order between calls."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for part in PARTS for p in getattr(model, part).parameters()]
    for p in params:
        p.requires_grad_(True)
    anchor = [p.detach().clone() for p in params] if proximal_mu > 0 else None
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed_for(f"order{tag}", seed))
    model.train()
    seen = []
    for step in range(steps):
        ex = examples[int(torch.randint(len(examples), (1,), generator=gen))]
        loss = _example_loss(model, spec, ex, seed, f"{ex.id}/{ex.view}@{tag}/{step}")
        if loss is None:
            continue
        seen.append(float(loss.detach()))
        if anchor is not None:
            prox = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor, strict=True))
            loss = loss + proximal_mu / 2 * prox
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    for p in params:
        p.requires_grad_(False)
    return float(np.mean(seen)) if seen else float("nan")


def dice_scores(model, spec: ModelSpec, examples: list[Example]) -> dict:
    """Held-out Dice (full resolution, runtime post-processing) for ``gt-box`` and
    ``gt-box-jitter`` prompts (:func:`skinscreen.train.finetune.score`)."""
    if not examples:
        return {"gt-box": float("nan"), "gt-box-jitter": float("nan"), "n": 0}
    return score(model, spec, examples)
