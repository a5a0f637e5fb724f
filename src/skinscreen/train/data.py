"""Photo folders, augmentation and model inputs for distillation and fine-tuning (numpy/OpenCV).

No torch here: the arrays produced are ``(H, W, 3)`` uint8 RGB photos, ``(h, w, 3)`` uint8
resized views and ``(3, S, S)`` float32 model inputs (NCHW without the batch axis), built with
exactly the runtime's pre-processing (:func:`skinscreen.preprocess.transforms.preprocess`).

Augmentation works on the photo, *before* resizing and padding, so padding always stays at the
bottom/right like at inference. A view is fully determined by ``(image id, view index, seed)``:
view 0 is the photo itself, view 1 its horizontal mirror, views >= 2 random mixes of flips,
rotation, scale/crop, colour and lighting drawn from a seeded generator.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from skinscreen.errors import SkinscreenError
from skinscreen.evaluate.dataset import IMAGE_SUFFIXES, seed_for
from skinscreen.preprocess.transforms import compute_transform, normalise, resize_image
from skinscreen.spec import ModelSpec


def list_images(folders: list[Path]) -> list[Path]:
    """Photos (by suffix) in ``folders`` (or their ``images/`` sub-folder), sorted by path.

    Raises :class:`SkinscreenError` when a folder is missing or no photo is found.
    """
    found: list[Path] = []
    for folder in folders:
        folder = Path(folder).expanduser()
        if (folder / "images").is_dir():
            folder = folder / "images"
        if not folder.is_dir():
            raise SkinscreenError(f"data folder {folder} does not exist (pass --data DIR)")
        found += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise SkinscreenError(
            f"no photos ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, folders))}"
        )
    return found


def data_manifest(paths: list[Path]) -> dict:
    """``{"n": N, "sha256_of_list": ..., "files": {name: sha256}}`` of the training photos."""
    files = {}
    for p in paths:
        files[p.name] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    joined = "\n".join(f"{k} {v}" for k, v in sorted(files.items()))
    return {
        "n": len(files),
        "sha256_of_list": hashlib.sha256(joined.encode()).hexdigest(),
        "files": files,
    }


@dataclass(frozen=True)
class AugmentParams:
    """One photo-level augmentation. Angles in degrees, ``scale`` <= 1 keeps that share of the
    shorter side around ``center`` (fractions of W, H); colour factors multiply (1 = unchanged)."""

    hflip: bool = False
    vflip: bool = False
    angle: float = 0.0
    scale: float = 1.0
    center: tuple[float, float] = (0.5, 0.5)
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue_shift: float = 0.0  # OpenCV hue units (0..180 circle)
    gamma: float = 1.0
    channel_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def is_identity(self) -> bool:
        return self == AugmentParams() or self == AugmentParams(hflip=self.hflip)


def view_params(image_id: str, view: int, seed: int = 0) -> AugmentParams:
    """The augmentation of view ``view`` of photo ``image_id`` (deterministic in the seed)."""
    if view == 0:
        return AugmentParams()
    if view == 1:
        return AugmentParams(hflip=True)
    rng = np.random.default_rng(seed_for(f"{image_id}#view{view}", seed))
    return random_params(rng)


def random_params(rng: np.random.Generator) -> AugmentParams:
    """A random augmentation: flips, rotation +-30 deg, crop 70-100 %, colour and lighting."""
    scale = float(rng.uniform(0.7, 1.0))
    margin = (1 - scale) / 2
    return AugmentParams(
        hflip=bool(rng.random() < 0.5),
        vflip=bool(rng.random() < 0.5),
        angle=float(rng.uniform(-30, 30)),
        scale=scale,
        center=(
            float(rng.uniform(0.5 - margin, 0.5 + margin)),
            float(rng.uniform(0.5 - margin, 0.5 + margin)),
        ),
        brightness=float(rng.uniform(0.75, 1.25)),
        contrast=float(rng.uniform(0.75, 1.25)),
        saturation=float(rng.uniform(0.7, 1.3)),
        hue_shift=float(rng.uniform(-6, 6)),
        gamma=float(rng.uniform(0.8, 1.25)),
        channel_gain=tuple(float(g) for g in rng.uniform(0.9, 1.1, size=3)),
    )


def _geometry(a: AugmentParams, h: int, w: int) -> tuple[np.ndarray, tuple[int, int]] | None:
    """2x3 affine (photo -> output) and output (W, H) for rotation + crop, or None if identity."""
    if a.angle == 0.0 and a.scale == 1.0:
        return None
    ow, oh = (int(round(a.scale * w)), int(round(a.scale * h)))
    ow, oh = max(8, ow), max(8, oh)
    cx, cy = a.center[0] * w, a.center[1] * h
    m = cv2.getRotationMatrix2D((cx, cy), a.angle, 1.0)
    m[0, 2] += ow / 2 - cx
    m[1, 2] += oh / 2 - cy
    return m, (ow, oh)


def augment(
    image: np.ndarray,
    a: AugmentParams,
    mask: np.ndarray | None = None,
    *,
    mask_border: str = "zero",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply ``a`` to a ``(H, W, 3)`` uint8 RGB photo (and the same geometry to an ``(H, W)``
    bool mask). Returns the new photo (size changes with the crop) and mask.

    The photo's border (rotation corners, zoom-out) is reflected; ``mask_border`` is ``"zero"``
    (no lesion there) or ``"reflect"`` (the mask reflected like the photo, so labels match)."""
    out = image
    if a.hflip:
        out = out[:, ::-1]
        mask = mask[:, ::-1] if mask is not None else None
    if a.vflip:
        out = out[::-1]
        mask = mask[::-1] if mask is not None else None
    geo = _geometry(a, *out.shape[:2])
    if geo is not None:
        m, size = geo
        out = cv2.warpAffine(
            np.ascontiguousarray(out),
            m,
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        if mask is not None:
            mask = (
                cv2.warpAffine(
                    np.ascontiguousarray(mask, dtype=np.uint8),
                    m,
                    size,
                    flags=cv2.INTER_NEAREST,
                    borderMode=(
                        cv2.BORDER_REFLECT_101 if mask_border == "reflect" else cv2.BORDER_CONSTANT
                    ),
                    borderValue=0,
                )
                > 0
            )
    if (a.saturation, a.hue_shift) != (1.0, 0.0):
        hsv = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + a.hue_shift) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * a.saturation, 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if (a.brightness, a.contrast, a.gamma, a.channel_gain) != (1.0, 1.0, 1.0, (1.0, 1.0, 1.0)):
        x = out.astype(np.float32) / 255.0
        x = x * np.asarray(a.channel_gain, dtype=np.float32) * a.brightness
        x = (x - x.mean()) * a.contrast + x.mean()
        x = np.clip(x, 0, 1) ** a.gamma
        out = (x * 255 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(out), (np.ascontiguousarray(mask) if mask is not None else None)


def resized_view(spec: ModelSpec, image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 photo -> ``(h, w, 3)`` uint8 photo resized by the spec's rule."""
    return resize_image(spec, image, compute_transform(spec, image.shape[:2]))


def model_input(spec: ModelSpec, resized: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` uint8 resized photo -> ``(3, S, S)`` float32: min-max, bottom/right zero pad.

    Identical to :func:`skinscreen.preprocess.transforms.preprocess` once resized.
    """
    s = spec.input_size
    x = normalise(spec, resized)
    out = np.zeros((3, s, s), dtype=np.float32)
    h, w = resized.shape[:2]
    out[:, :h, :w] = x.transpose(2, 0, 1)
    return out
