"""Learned lesion localiser (runtime, ONNX Runtime; no torch).

A small convolutional head (the shipped one: 0.79 M parameters, 3.2 MB), trained on lesions-train
(``skinscreen train-localiser``, :mod:`skinscreen.train.localiser` and, for training on many
augmented views on a GPU, :mod:`skinscreen.train.localiser_views`), reads the image embedding the
encoder already computed and predicts a coarse lesion probability map on the embedding grid;
connected regions of that map become ranked candidate boxes. Cost: one small ONNX run (about
1.8 GFLOP, tens of ms on 2 cores), no second encoder run.

Coordinates: the map is ``(64, 64)`` over the model's padded square frame (``input_size`` px,
one cell = ``input_size / 64`` px); boxes are returned XYXY in original photo pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from skinscreen.errors import BundleError, SkinscreenError
from skinscreen.preprocess.transforms import InputTransform

GRID = 64
#: a cell counts as lesion when its probability is at least this
PROB_THRESHOLD = 0.5
#: regions whose probability mass (sum over 256-frame pixels) is below this are ignored
MIN_MASS_PX = 12.0


@dataclass(frozen=True)
class LearnedRegion:
    """One region of the localiser's map.

    Attributes:
        box: ``(4,)`` float64 XYXY box in photo pixels.
        score: probability mass of the region (sum of probabilities over its 256-frame pixels).
        peak: highest probability in the region, in [0, 1].
        area_frac: region area as a share of the photo.
    """

    box: np.ndarray
    score: float
    peak: float
    area_frac: float


#: sha256 of each shipped localiser file; a file that differs is refused (retraining it? put the
#: new file's ``sha256sum`` here)
LOCALISER_SHA256: dict[str, str] = {
    "litemedsam-localiser.onnx": "6c6192a18a2ad75a5268ae355d63b2dbd8c400f878d837d6c071f213bd949842",
    "litemedsam-localiser.json": "e0b060020cf1b64e170b96185dd57205b01cabeacb06eb717db72d89caf94074",
}


def _verified_asset(path: Path) -> None:
    """Refuse a localiser file whose sha256 is not the pinned one (or that has no pin)."""
    from skinscreen.engine.bundle import sha256_file

    expected = LOCALISER_SHA256.get(path.name)
    if expected is None:
        raise BundleError(f"the localiser file {path} has no pinned sha256 in LOCALISER_SHA256")
    if sha256_file(path) != expected:
        raise BundleError(
            f"the localiser file {path} failed its sha256 check (modified or corrupt): "
            "reinstall skinscreen, or use a box (--box) instead of automatic mode"
        )


def _asset(name: str) -> Path:
    return Path(str(resources.files("skinscreen") / "assets" / name))


@dataclass
class LearnedLocaliser:
    """The shipped localiser head for one model (``<model>-localiser.onnx`` + ``.json``)."""

    model: str
    session: object
    info: dict

    def probability_map(self, embedding: np.ndarray, t: InputTransform) -> np.ndarray:
        """``(1, 256, 64, 64)`` float32 embedding -> ``(64, 64)`` float32 probabilities."""
        if embedding.shape[-2:] != (GRID, GRID):
            raise SkinscreenError(
                f"the localiser needs a {GRID}x{GRID} embedding, got {embedding.shape}"
            )
        valid = valid_map(t)
        logits = self.session.run(
            None,
            {"embedding": embedding.astype(np.float32, copy=False), "valid": valid[None, None]},
        )[0]
        return (1.0 / (1.0 + np.exp(-logits[0, 0]))).astype(np.float32) * (valid > 0)

    def regions(self, embedding: np.ndarray, t: InputTransform) -> list[LearnedRegion]:
        """Candidate regions, largest probability mass first (empty: nothing found)."""
        return regions_from_map(self.probability_map(embedding, t), t)


def valid_map(t: InputTransform) -> np.ndarray:
    """``(64, 64)`` float32 share of each embedding cell that lies on the photo."""
    return cell_share(*t.resized_size, t.input_size)


def cell_share(h: int, w: int, size: int) -> np.ndarray:
    """``(64, 64)`` float32 share of each cell on the photo, for a photo resized to ``(h, w)``
    and padded bottom/right to ``size`` px (training uses the same function)."""
    v = np.zeros((size, size), np.float32)
    v[:h, :w] = 1.0
    return cv2.resize(v, (GRID, GRID), interpolation=cv2.INTER_AREA)


def regions_from_map(
    prob: np.ndarray, t: InputTransform, threshold: float = PROB_THRESHOLD
) -> list[LearnedRegion]:
    """``(64, 64)`` probabilities on the padded frame -> regions with photo-pixel XYXY boxes.

    The map is upsampled (bilinear) to the frame, cut to the photo's part, thresholded; each
    connected region gives its tight box, scaled back by the resize factor of ``t``.
    """
    s = t.input_size
    h, w = t.resized_size
    up = cv2.resize(prob, (s, s), interpolation=cv2.INTER_LINEAR)[:h, :w]
    binary = (up >= threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    out: list[LearnedRegion] = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        sel = labels == i
        mass = float(up[sel].sum())
        if mass < MIN_MASS_PX:
            continue
        box_frame = np.array([x, y, x + bw, y + bh], dtype=np.float64)
        box = t.invert_boxes(box_frame[None])[0]
        H, W = t.original_size
        box = np.clip(box, 0, [W, H, W, H])
        out.append(LearnedRegion(box, mass, float(up[sel].max()), float(area) / (h * w)))
    out.sort(key=lambda r: -r.score)
    return out


@lru_cache(maxsize=4)
def load_localiser(model: str = "litemedsam") -> LearnedLocaliser | None:
    """The packaged localiser for ``model``, or None when the package ships none for it."""
    onnx_path = _asset(f"{model}-localiser.onnx")
    meta_path = _asset(f"{model}-localiser.json")
    if not onnx_path.is_file():
        return None
    _verified_asset(onnx_path)
    info: dict = {}
    if meta_path.is_file():
        _verified_asset(meta_path)
        info = json.loads(meta_path.read_text())
    from skinscreen.engine.onnx import default_threads, make_session

    session = make_session(onnx_path, threads=default_threads())
    return LearnedLocaliser(model=model, session=session, info=info)
