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


def learning_curve(
    run_dir: Path,
    teacher,
    pairs: list[Pair],
    prompts: tuple[str, ...] = ("gt-box",),
    every: int = 1,
) -> list[dict]:
    """Dev Dice of every ``every``-th snapshot in ``run_dir/snapshots`` plus the mean training
    loss of the steps since the previous row: ``[{"step", "loss", "gt-box", ...}, ...]``."""
    import json

    from skinscreen.train.student import build_student
    from skinscreen.train.teacher import student_input_spec

    hist = []
    hfile = Path(run_dir) / "history.jsonl"
    if hfile.is_file():
        hist = [json.loads(x) for x in hfile.read_text().splitlines() if x.strip()]
    losses = {h["step"]: h["loss"] for h in hist if "loss" in h}
    spec = student_input_spec(teacher.spec)
    snaps = sorted((Path(run_dir) / "snapshots").glob("step_*.pt"))[::every]
    rows, prev = [], 0
    for snap in snaps:
        st = torch.load(snap, map_location="cpu", weights_only=True)
        student = build_student(st.get("arch") or _arch_of(st["model"]))
        student.load_state_dict(st["model"])
        step = int(st["step"])
        window = [v for s, v in losses.items() if prev < s <= step]
        row = {"step": step, "loss": float(np.mean(window)) if window else None}
        row.update(box_dice(student, teacher.model, spec, pairs, prompts))
        rows.append(row)
        prev = step
    return rows


def _arch_of(state: dict) -> str:
    """Student architecture from its state dict (the stem width tells them apart)."""
    from skinscreen.train.student import STUDENTS

    width = state["stem.2.0.weight"].shape[0]
    for name, kw in STUDENTS.items():
        if kw["dims"][0] == width:
            return name
    raise ValueError(f"unknown student with stem width {width}")
