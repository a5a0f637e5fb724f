"""PyTorch reference predictor: the same pre- and post-processing as the ONNX runtime, with the
PyTorch model in the middle. Used for parity checks and as a benchmark baseline (needs torch).

Usage::

    ref = TorchReference(LITEMEDSAM)
    ref.set_image(rgb)                              # (H, W, 3) uint8 RGB
    logits, iou = ref.predict_logits(box_model)     # box XYXY in model-input pixels
    mask = ref.predict_mask(box)                    # box XYXY in original pixels -> (H, W) bool
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from skinscreen.export.checkpoint import load_checkpoint
from skinscreen.export.models.build import SamModel, build_model
from skinscreen.postprocess.mask import clean_mask
from skinscreen.preprocess.transforms import InputTransform, crop_and_resize_logits, preprocess
from skinscreen.spec import ModelSpec


def load_model(spec: ModelSpec, checkpoint: str | Path | None = None) -> SamModel:
    """Build the model of ``spec`` in eval mode and strictly load its verified weights."""
    model = build_model(spec).eval()
    load_checkpoint(model, spec, checkpoint)
    return model


class TorchReference:
    """Stateful like the runtime predictor: encode once with :meth:`set_image`, prompt many times.

    Args:
        spec: model spec (pre/post-processing constants).
        model: an already loaded model; otherwise it is built and loaded from ``checkpoint``.
        checkpoint: user checkpoint path (default: the spec's packaged weights).
        threads: torch intra-op threads (at most 2 on shared machines).
    """

    def __init__(
        self,
        spec: ModelSpec,
        model: SamModel | None = None,
        checkpoint: str | Path | None = None,
        threads: int | None = 2,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.spec = spec
        self.model = model if model is not None else load_model(spec, checkpoint)
        self.model.eval()
        self.embedding: torch.Tensor | None = None
        self.transform: InputTransform | None = None

    @torch.no_grad()
    def set_image(self, rgb: np.ndarray) -> np.ndarray:
        """Pre-process ``(H, W, 3)`` uint8 RGB and encode it; returns the ``(1, 256, 64, 64)``
        float32 embedding (also kept for :meth:`predict_logits`)."""
        x, self.transform = preprocess(self.spec, rgb)
        self.embedding = self.model.image_encoder(torch.from_numpy(x))
        return self.embedding.numpy()

    @torch.no_grad()
    def predict_logits(self, box_model: np.ndarray) -> tuple[np.ndarray, float]:
        """Box ``(4,)`` XYXY in model-input pixels -> (low-res logits ``(L, L)`` float32, IoU)."""
        if self.embedding is None:
            raise RuntimeError("call set_image() before predict_logits()")
        boxes = torch.as_tensor(np.asarray(box_model, dtype=np.float32).reshape(1, 4))
        logits, iou = self.model.decode(self.embedding, boxes)
        return logits[0, 0].numpy(), float(iou[0, 0])

    def predict_mask(self, box: np.ndarray, clean: bool = True) -> np.ndarray:
        """Box ``(4,)`` XYXY in original pixels -> ``(H, W)`` bool mask (logits > threshold,
        resized like the runtime; largest component and holes filled when ``clean``)."""
        if self.transform is None:
            raise RuntimeError("call set_image() before predict_mask()")
        logits, _ = self.predict_logits(self.transform.apply_boxes(box))
        full = crop_and_resize_logits(logits, self.transform, self.spec.low_res_size)
        mask = full > self.spec.mask_threshold
        return clean_mask(mask) if clean else mask

    def reset_image(self) -> None:
        self.embedding = None
        self.transform = None
