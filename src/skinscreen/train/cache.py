"""Teacher-embedding cache: pay the teacher once per (photo, view), train many epochs on it.

Layout (outside the repository; default ``$SKINSCREEN_HOME/distill-cache``)::

    <cache>/<teacher>-seed<seed>/v<view>/<stem>.emb.npy   (256, 64, 64) float16 teacher embedding
    <cache>/<teacher>-seed<seed>/v<view>/<stem>.img.npy   (h, w, 3) uint8 student view (resized)

An entry is complete when its ``.img.npy`` exists (written last, each file by temp + rename).
Views follow :func:`skinscreen.train.data.view_params` (0 = photo, 1 = mirror, >= 2 random);
photos are cached view-major so training can start on view 0 while later views are computed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from skinscreen import paths
from skinscreen.io.image import load_image
from skinscreen.train.data import augment, model_input, resized_view, view_params
from skinscreen.train.teacher import Teacher, student_input_spec


def default_cache_dir() -> Path:
    return paths.home() / "distill-cache"


def cache_root(cache_dir: Path, teacher: str, seed: int) -> Path:
    return Path(cache_dir) / f"{teacher}-seed{seed}"


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def entry_paths(root: Path, view: int, stem: str) -> tuple[Path, Path]:
    d = root / f"v{view}"
    return d / f"{stem}.emb.npy", d / f"{stem}.img.npy"


def cached_entries(root: Path) -> list[tuple[Path, Path]]:
    """All complete ``(emb, img)`` pairs under ``root``, sorted (view, stem)."""
    out = []
    if not root.is_dir():
        return out
    for vdir in sorted(
        root.glob("v*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else -1
    ):
        for img in sorted(vdir.glob("*.img.npy")):
            emb = img.with_name(img.name.replace(".img.npy", ".emb.npy"))
            if emb.is_file():
                out.append((emb, img))
    return out


def build_cache(
    teacher: Teacher,
    images: list[Path],
    root: Path,
    views: int,
    seed: int = 0,
    progress: bool = True,
) -> int:
    """Compute the missing entries of ``views`` views of ``images``; returns how many were added."""
    from tqdm import tqdm

    sspec = student_input_spec(teacher.spec)
    todo = [
        (v, p)
        for v in range(views)
        for p in images
        if not entry_paths(root, v, p.stem)[1].is_file()
    ]
    added = 0
    for v, p in tqdm(todo, desc="teacher embeddings", unit="view", disable=not progress):
        emb_path, img_path = entry_paths(root, v, p.stem)
        emb_path.parent.mkdir(parents=True, exist_ok=True)
        photo, _ = augment(load_image(p), view_params(p.stem, v, seed))
        small = resized_view(sspec, photo)
        tview = (
            small
            if teacher.spec.input_size == sspec.input_size
            else resized_view(teacher.spec, photo)
        )
        emb = teacher.encode(model_input(teacher.spec, tview)[None])[0]
        _save(emb_path, emb.cpu().numpy().astype(np.float16))
        _save(img_path, small)
        added += 1
    return added
