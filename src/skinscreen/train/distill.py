"""Decoupled distillation (MobileSAM style): the student encoder learns the teacher's embeddings.

Loss: mean squared error between student and teacher ``(B, 256, 64, 64)`` embeddings; the prompt
encoder and mask decoder are the teacher's, unchanged. Two data modes:

- *cached* (default, CPU-friendly): batches drawn from the teacher-embedding cache
  (:mod:`skinscreen.train.cache`), a fixed set of views per photo;
- *online* (``online=True``, for a GPU): every batch is a fresh random augmentation of random
  photos, and the teacher runs on it.

An optional end-to-end stage (``e2e_steps``) follows: box-prompted masks from the student
embedding through the frozen teacher decoder, Dice + BCE against the expert masks of the
training photos (jittered boxes), plus the embedding MSE.

Checkpoints hold model, optimiser, scheduler, every RNG state and the step, so a resumed run
continues exactly where it stopped (a test checks identical weights). The run stops at
``steps`` or after ``minutes`` of wall time, whichever comes first.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from skinscreen.errors import SkinscreenError
from skinscreen.train.cache import cached_entries
from skinscreen.train.data import augment, model_input, random_params, resized_view
from skinscreen.train.student import RepStudent, build_student, init_neck_from_teacher
from skinscreen.train.teacher import Teacher, student_input_spec

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.jsonl"


@dataclass
class DistillConfig:
    """Every setting of a run (stored in the checkpoint; a resume must use the same)."""

    student: str = "repvit-s"
    teacher: str = "litemedsam"
    steps: int = 20000
    batch_size: int = 4
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 50
    seed: int = 0
    online: bool = False
    e2e_steps: int = 0
    e2e_weight: float = 1.0
    save_every: int = 50
    eval_every: int = 0
    refresh_every: int = 0  # re-list the cache every N steps (a cache still being filled)
    snapshot_every: int = 0  # keep the student weights of every N-th step (learning curve)
    max_entries: int = 0  # train on the first N cached (view, photo) entries only (0: all)
    extra: dict = field(default_factory=dict)


def select_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU (at most 2 threads on shared machines)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SkinscreenError("--device cuda was asked for but no CUDA GPU is visible")
    if name == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    return torch.device(name)


def lr_factor(step: int, cfg: DistillConfig) -> float:
    """Linear warm-up then cosine decay to 1 % over ``cfg.steps`` (+ e2e steps)."""
    total = max(1, cfg.steps + cfg.e2e_steps)
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    p = min(1.0, (step - cfg.warmup) / max(1, total - cfg.warmup))
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p))


def _numpy_state_plain(st: tuple) -> tuple:
    kind, keys, pos, has_gauss, cached = st
    return (str(kind), [int(v) for v in keys], int(pos), int(has_gauss), float(cached))


def _rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        # plain ints and lists (no numpy pickles), so resume can load with weights_only=True
        "numpy": _numpy_state_plain(np.random.get_state()),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class CachedBatches:
    """Batches from a teacher-embedding cache: indices drawn with a seeded torch Generator whose
    state is part of the checkpoint. Returns (inputs ``(B, 3, 256, 256)``, targets
    ``(B, 256, 64, 64)``) float32 and the entry paths."""

    def __init__(self, root: Path, spec, seed: int, limit: int = 0) -> None:
        self.root, self.spec, self.limit = root, spec, limit
        self.gen = torch.Generator().manual_seed(seed)
        self.refresh()

    def refresh(self) -> None:
        """List the complete cache entries (sorted by view, then photo; the first ``limit``)."""
        entries = cached_entries(self.root)
        if not entries:
            raise SkinscreenError(
                f"the teacher-embedding cache {self.root} is empty: build it first "
                "(skinscreen distill --cache-only ...) or use --online"
            )
        if self.limit:
            if len(entries) < self.limit:
                raise SkinscreenError(
                    f"the cache {self.root} holds {len(entries)} entries, the run needs the "
                    f"first {self.limit}: fill it first (skinscreen distill --cache-only)"
                )
            entries = entries[: self.limit]
        self.entries = entries

    def next(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, list[Path]]:
        idx = torch.randint(len(self.entries), (batch,), generator=self.gen).tolist()
        xs, ys, imgs = [], [], []
        for i in idx:
            emb, img = self.entries[i]
            xs.append(model_input(self.spec, np.load(img)))
            ys.append(np.load(emb).astype(np.float32))
            imgs.append(img)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)), imgs


class OnlineBatches:
    """Fresh random augmentations of random photos, teacher embeddings computed per batch."""

    def __init__(self, images: list[Path], teacher: Teacher, seed: int) -> None:
        from skinscreen.io.image import load_image

        self.images, self.teacher, self.load = images, teacher, load_image
        self.sspec = student_input_spec(teacher.spec)
        self.gen = torch.Generator().manual_seed(seed)

    def next(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, list[Path]]:
        idx = torch.randint(len(self.images), (batch,), generator=self.gen).tolist()
        seeds = torch.randint(2**62, (batch,), generator=self.gen).tolist()
        xs, txs = [], []
        for i, s in zip(idx, seeds, strict=True):
            photo, _ = augment(self.load(self.images[i]), random_params(np.random.default_rng(s)))
            small = resized_view(self.sspec, photo)
            xs.append(model_input(self.sspec, small))
            big = (
                small
                if self.teacher.spec.input_size == self.sspec.input_size
                else resized_view(self.teacher.spec, photo)
            )
            txs.append(model_input(self.teacher.spec, big))
        y = self.teacher.encode(np.stack(txs)).float().cpu()
        return torch.from_numpy(np.stack(xs)), y, [self.images[i] for i in idx]


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Distiller:
    """One distillation run in directory ``out`` (checkpoint, history, config).

    Args:
        cfg: run settings.
        out: run directory (created).
        teacher: the frozen teacher (its decoder is used for the e2e stage and evaluation).
        device: training device.
        cache_root: teacher-embedding cache (cached mode).
        images: training photos (online mode and the e2e stage).
        masks_dir: expert masks of ``images`` (e2e stage), matched by stem.
        evaluator: callable ``(student) -> dict`` run every ``cfg.eval_every`` steps.
    """

    def __init__(
        self,
        cfg: DistillConfig,
        out: Path,
        teacher: Teacher,
        device: torch.device,
        cache_root: Path | None = None,
        images: list[Path] | None = None,
        masks_dir: Path | None = None,
        evaluator=None,
    ) -> None:
        self.cfg, self.out, self.teacher, self.device = cfg, Path(out), teacher, device
        self.out.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed)
        self.sspec = student_input_spec(teacher.spec)
        self.student: RepStudent = build_student(cfg.student)
        self.neck_from_teacher = init_neck_from_teacher(self.student, teacher.model.image_encoder)
        self.student.to(device)
        self.opt = torch.optim.AdamW(
            self.student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, cfg))
        if cfg.online:
            if not images:
                raise SkinscreenError("online distillation needs training photos (--data DIR)")
            self.batches = OnlineBatches(images, teacher, cfg.seed)
        else:
            if cache_root is None:
                raise SkinscreenError("cached distillation needs a cache directory (--cache-dir)")
            self.batches = CachedBatches(cache_root, self.sspec, cfg.seed, cfg.max_entries)
        self.masks_dir = masks_dir
        self.evaluator = evaluator
        self.step = 0
        self.history: list[dict] = []

    # -- checkpoints ---------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT

    def state(self) -> dict:
        return {
            "config": asdict(self.cfg),
            "step": self.step,
            "model": self.student.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "data_rng": self.batches.gen.get_state(),
            "rng": _rng_state(),
            "history": self.history,
        }

    def save(self) -> Path:
        _save_atomic(self.state(), self.checkpoint_path)
        return self.checkpoint_path

    def snapshot(self) -> Path:
        """Keep the current student weights as ``snapshots/step_XXXXXXX.pt``."""
        d = self.out / "snapshots"
        d.mkdir(exist_ok=True)
        p = d / f"step_{self.step:07d}.pt"
        _save_atomic(
            {"step": self.step, "arch": self.cfg.student, "model": self.student.state_dict()}, p
        )
        return p

    def resume(self, path: Path | None = None) -> bool:
        """Load the checkpoint (default ``out/checkpoint.pt``) if present; returns whether it
        did. Raises when its config differs from this run's in anything but the budget."""
        p = Path(path) if path else self.checkpoint_path
        if not p.is_file():
            return False
        st = torch.load(p, map_location="cpu", weights_only=True)
        old = dict(st["config"])
        new = asdict(self.cfg)
        budget = {
            "steps",
            "save_every",
            "eval_every",
            "refresh_every",
            "e2e_steps",
            "snapshot_every",
        }
        diff = [k for k in new if k not in budget and old.get(k) != new[k]]
        if diff:
            raise SkinscreenError(
                f"checkpoint {p} was made with different settings ({', '.join(diff)}); "
                "use the same flags or a new --out"
            )
        self.student.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.batches.gen.set_state(st["data_rng"])
        _set_rng_state(st["rng"])
        self.step = int(st["step"])
        self.history = list(st["history"])
        with (self.out / HISTORY).open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.history)
        return True

    def _log(self, rec: dict) -> None:
        self.history.append(rec)
        with (self.out / HISTORY).open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")

    # -- training ------------------------------------------------------------------------------
    def train_step(self) -> float:
        """One optimiser step on one batch; returns the embedding MSE."""
        self.student.train()
        x, y, imgs = self.batches.next(self.cfg.batch_size)
        x, y = x.to(self.device), y.to(self.device)
        pred = self.student(x)
        loss = F.mse_loss(pred, y)
        total = loss
        if self.step >= self.cfg.steps and self.masks_dir is not None:
            total = loss + self.cfg.e2e_weight * self._mask_loss(pred, imgs)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        self.sched.step()
        self.step += 1
        return float(loss.detach())

    def _mask_loss(self, emb: torch.Tensor, imgs: list[Path]) -> torch.Tensor:
        """Dice + BCE of decoder masks from the student embedding vs expert masks (cached views
        0/1 only: the mask of view v is re-derived with the same augmentation)."""
        from skinscreen.train.losses import box_prompt_masks

        return box_prompt_masks(
            self.teacher, self.sspec, emb, imgs, self.masks_dir, self.cfg.seed, self.step
        )

    def run(
        self, minutes: float | None = None, progress: bool = True, until_step: int | None = None
    ) -> dict:
        """Train until ``steps + e2e_steps`` (or ``until_step``, to pause at an exact step) or
        ``minutes`` of wall time; saves at the end."""
        from tqdm import tqdm

        cfg = self.cfg
        total = cfg.steps + cfg.e2e_steps
        t0 = time.monotonic()
        bar = tqdm(
            total=total,
            initial=self.step,
            desc="distill",
            unit="step",
            disable=not progress,
            dynamic_ncols=True,
        )
        ema = None
        if cfg.snapshot_every and self.step == 0:
            self.snapshot()
        try:
            stop = total if until_step is None else min(total, until_step)
            while self.step < stop:
                if minutes is not None and time.monotonic() - t0 > minutes * 60:
                    break
                if (
                    cfg.refresh_every
                    and self.step % cfg.refresh_every == 0
                    and isinstance(self.batches, CachedBatches)
                ):
                    self.batches.refresh()
                loss = self.train_step()
                ema = loss if ema is None else 0.9 * ema + 0.1 * loss
                self._log(
                    {
                        "step": self.step,
                        "loss": loss,
                        "lr": self.sched.get_last_lr()[0],
                        "time": time.time(),
                    }
                )
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", ema=f"{ema:.4f}")
                if cfg.save_every and self.step % cfg.save_every == 0:
                    self.save()
                if cfg.snapshot_every and self.step % cfg.snapshot_every == 0:
                    self.snapshot()
                if (
                    self.evaluator is not None
                    and cfg.eval_every
                    and self.step % cfg.eval_every == 0
                ):
                    self.save()
                    res = self.evaluator(self.student)
                    self._log({"step": self.step, "eval": res, "time": time.time()})
                    bar.write(f"step {self.step}: {json.dumps(res)}")
        finally:
            bar.close()
            self.save()
        return {"step": self.step, "loss_ema": ema, "finished": self.step >= total}
