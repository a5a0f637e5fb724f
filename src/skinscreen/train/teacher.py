"""Teachers for distillation: the image encoder whose embeddings the student learns to reproduce.

- ``litemedsam`` (default): built with the export side's builder and its verified, strictly
  loaded weights (:func:`skinscreen.export.reference.load_model`).
- ``medsam-vitb``: MedSAM ViT-B from a user checkpoint (``--teacher-checkpoint``), 1024 px input.

For embedding caches on a CPU the teacher can also run from the exported ONNX bundle (same
numbers as PyTorch within the bundle's parity record, about twice as fast here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from skinscreen.errors import SkinscreenError
from skinscreen.spec import ModelSpec, get_spec

TEACHERS = ("litemedsam", "medsam-vitb")
STUDENT_INPUT_SIZE = 256


def student_input_spec(teacher: ModelSpec) -> ModelSpec:
    """Pre-processing of the student: the teacher's rules at 256 px (LiteMedSAM: identical)."""
    return replace(teacher, input_size=STUDENT_INPUT_SIZE)


@dataclass
class Teacher:
    """A frozen SAM-family model: ``encode`` for embeddings, ``decode`` for masks.

    ``model`` is the full :class:`skinscreen.export.models.build.SamModel` (eval, no grad).
    """

    spec: ModelSpec
    model: torch.nn.Module
    source: str
    onnx_encoder: object | None = None

    @torch.no_grad()
    def encode(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Model inputs ``(B, 3, S, S)`` float32 (teacher's S) -> ``(B, 256, 64, 64)`` float32."""
        if self.onnx_encoder is not None:
            xs = x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
            outs = [
                self.onnx_encoder.run(None, {"image": xs[i : i + 1]})[0] for i in range(len(xs))
            ]
            return torch.from_numpy(np.concatenate(outs))
        xt = torch.as_tensor(x, dtype=torch.float32)
        dev = next(self.model.parameters()).device
        return self.model.image_encoder(xt.to(dev))


def load_teacher(
    name: str = "litemedsam",
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    use_onnx_bundle: bool = False,
) -> Teacher:
    """Load the frozen teacher ``name`` (one of :data:`TEACHERS`) on ``device``.

    ``use_onnx_bundle``: encode with the model's exported ONNX bundle when it exists (CPU
    caches); the PyTorch model is still loaded for the decoder.
    """
    if name not in TEACHERS:
        raise SkinscreenError(f"unknown teacher '{name}': choose one of {', '.join(TEACHERS)}")
    spec = get_spec(name)
    if spec.checkpoint.kind == "user" and checkpoint is None:
        raise SkinscreenError(
            f"teacher '{name}' needs its weights: pass --teacher-checkpoint PATH "
            f"({spec.checkpoint.provenance})"
        )
    from skinscreen.export.reference import load_model

    model = load_model(spec, checkpoint).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    source = (
        str(checkpoint) if checkpoint else f"{spec.checkpoint.distribution}:{spec.checkpoint.path}"
    )
    onnx_encoder = None
    if use_onnx_bundle and str(device) == "cpu":
        from skinscreen import paths
        from skinscreen.engine.bundle import open_bundle

        root = paths.bundle_dir(name)
        if (root / "manifest.json").is_file():
            from skinscreen.export.onnx_export import ort_session

            # fp32: the teacher's own numbers (the default variant may be quantised)
            bundle = open_bundle(name, root=root, variant="onnx-fp32")
            onnx_encoder = ort_session(bundle.file("encoder"), threads=2)
            source += " (encoder via its ONNX bundle)"
    return Teacher(spec=spec, model=model, source=source, onnx_encoder=onnx_encoder)
