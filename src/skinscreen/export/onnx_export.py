"""Trace-only wrappers and the ONNX export of the encoder and decoder graphs (needs torch, onnx).

The graphs have fixed names and static shapes (batch 1), no Python control flow, opset 17:

- encoder: ``image`` ``(1, 3, S, S)`` float32 -> ``image_embeddings`` ``(1, 256, 64, 64)``;
- decoder: ``image_embeddings`` ``(1, 256, 64, 64)`` + ``boxes`` ``(1, 4)`` float32 XYXY in
  model-input pixels -> ``low_res_logits`` ``(1, 1, L, L)`` + ``iou_predictions`` ``(1, 1)``;
- the re-prompt pair, the same decoder split exactly into an image-side part run once per image
  and a cheap part run per box (:mod:`skinscreen.export.models.reprompt`):
  prelude: ``image_embeddings`` -> the tensors named in
  :data:`~skinscreen.export.models.reprompt.PRELUDE_OUTPUTS`; prompt decoder: those tensors +
  ``boxes`` -> ``low_res_logits`` + ``iou_predictions`` (same names and shapes as the decoder).

Each export ends with an onnxruntime smoke test (shapes, finiteness, closeness to PyTorch).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skinscreen.errors import BundleError
from skinscreen.export.models.build import SamModel
from skinscreen.export.models.reprompt import (
    PRELUDE_OUTPUTS,
    DecoderPrelude,
    PromptDecoder,
    prelude_shapes,
)
from skinscreen.export.models.tinyvit_tokens import export_form
from skinscreen.spec import ModelSpec

OPSET = 17
ENCODER_INPUTS = ["image"]
ENCODER_OUTPUTS = ["image_embeddings"]
DECODER_INPUTS = ["image_embeddings", "boxes"]
DECODER_OUTPUTS = ["low_res_logits", "iou_predictions"]


class EncoderGraph(nn.Module):
    """``image`` ``(1, 3, S, S)`` -> ``image_embeddings`` ``(1, 256, 64, 64)``.

    With ``token_layout`` (the default) a TinyViT encoder is traced in its export form
    (:mod:`skinscreen.export.models.tinyvit_tokens`: same weights and arithmetic, far fewer
    layout conversions in the exported graph); other encoders are traced as they are.
    """

    def __init__(self, model: SamModel, token_layout: bool = True) -> None:
        super().__init__()
        encoder = model.image_encoder
        self.image_encoder = export_form(encoder) if token_layout else encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)


class DecoderGraph(nn.Module):
    """Box prompt + mask decoder, single-mask output.

    Only mask 0 and its IoU are computed (:meth:`MaskDecoder.predict_first`: the other mask
    tokens' hypernetwork MLPs, about 0.42 M parameters, are not in the graph). The dense
    positional encoding of the embedding grid is precomputed as a constant.
    """

    def __init__(self, model: SamModel) -> None:
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        with torch.no_grad():
            self.register_buffer("image_pe", model.prompt_encoder.dense_positions().clone())

    def forward(
        self, image_embeddings: torch.Tensor, boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sparse = self.prompt_encoder.embed_boxes(boxes)
        dense = self.prompt_encoder.dense_no_mask(1)
        return self.mask_decoder.predict_first(image_embeddings, self.image_pe, sparse, dense)


def io_spec(spec: ModelSpec) -> dict:
    """The manifest's ``io`` section for ``spec`` (names, shapes, dtypes of every graph)."""
    s, (c, h, w), low = spec.input_size, spec.embedding_shape, spec.low_res_size
    emb = {"name": "image_embeddings", "shape": [1, c, h, w], "dtype": "float32"}
    feats = [
        {"name": k, "shape": v, "dtype": "float32"}
        for k, v in prelude_shapes(spec.embedding_shape).items()
    ]
    decoder_outputs = [
        {"name": "low_res_logits", "shape": [1, 1, low, low], "dtype": "float32"},
        {"name": "iou_predictions", "shape": [1, 1], "dtype": "float32"},
    ]
    return {
        "encoder": {
            "inputs": [{"name": "image", "shape": [1, 3, s, s], "dtype": "float32"}],
            "outputs": [emb],
        },
        "decoder": {
            "inputs": [emb, {"name": "boxes", "shape": [1, 4], "dtype": "float32"}],
            "outputs": decoder_outputs,
        },
        "prelude": {"inputs": [emb], "outputs": feats},
        "prompt_decoder": {
            "inputs": [*feats, {"name": "boxes", "shape": [1, 4], "dtype": "float32"}],
            "outputs": decoder_outputs,
        },
    }


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
) -> None:
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about constant shapes are expected
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def ort_session(path: Path, threads: int = 2):
    """A CPU onnxruntime session with at most ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _smoke(
    path: Path, feeds: dict[str, np.ndarray], expected: list[np.ndarray], atol: float
) -> None:
    """Run ``path`` once in onnxruntime; check output shapes, finiteness and closeness to torch."""
    import onnx

    onnx.checker.check_model(str(path))
    outs = ort_session(path).run(None, feeds)
    for got, want in zip(outs, expected, strict=True):
        if got.shape != want.shape or not np.isfinite(got).all():
            raise BundleError(
                f"ONNX smoke test failed for {path.name}: output {got.shape}, want {want.shape}"
            )
        diff = float(np.abs(got - want).max())
        if diff > atol:
            raise BundleError(
                f"ONNX smoke test failed for {path.name}: max |onnx - torch| = {diff:.3g} > {atol}"
            )


def export_encoder(model: SamModel, spec: ModelSpec, path: Path) -> Path:
    """Write the encoder graph to ``path`` and smoke-test it on a random input."""
    s = spec.input_size
    x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(0))
    graph = EncoderGraph(model).eval()
    _export(graph, (x,), path, ENCODER_INPUTS, ENCODER_OUTPUTS)
    with torch.no_grad():
        want = graph(x).numpy()
    _smoke(path, {"image": x.numpy()}, [want], atol=1e-2)
    return path


def export_decoder(model: SamModel, spec: ModelSpec, path: Path) -> Path:
    """Write the decoder graph to ``path`` and smoke-test it on a random embedding and a box."""
    c, h, w = spec.embedding_shape
    emb = torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(0))
    s = float(spec.input_size)
    boxes = torch.tensor([[0.2 * s, 0.25 * s, 0.7 * s, 0.8 * s]], dtype=torch.float32)
    graph = DecoderGraph(model).eval()
    _export(graph, (emb, boxes), path, DECODER_INPUTS, DECODER_OUTPUTS)
    with torch.no_grad():
        want = [t.numpy() for t in graph(emb, boxes)]
    _smoke(path, {"image_embeddings": emb.numpy(), "boxes": boxes.numpy()}, want, atol=1e-2)
    return path


def export_reprompt(model: SamModel, spec: ModelSpec, prelude: Path, prompt: Path) -> None:
    """Write the re-prompt pair (prelude and prompt decoder graphs) and smoke-test it against the
    plain decoder graph (PyTorch) on a random embedding and a box."""
    c, h, w = spec.embedding_shape
    emb = torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(0))
    s = float(spec.input_size)
    boxes = torch.tensor([[0.2 * s, 0.25 * s, 0.7 * s, 0.8 * s]], dtype=torch.float32)
    pre = DecoderPrelude(model.prompt_encoder, model.mask_decoder).eval()
    dec = PromptDecoder(model.prompt_encoder, model.mask_decoder).eval()
    _export(pre, (emb,), prelude, ["image_embeddings"], PRELUDE_OUTPUTS)
    with torch.no_grad():
        feats = pre(emb)
        want = [t.numpy() for t in DecoderGraph(model).eval()(emb, boxes)]
    _export(dec, (*feats, boxes), prompt, [*PRELUDE_OUTPUTS, "boxes"], DECODER_OUTPUTS)
    got = ort_session(prelude).run(None, {"image_embeddings": emb.numpy()})
    feeds = dict(zip(PRELUDE_OUTPUTS, got, strict=True))
    _smoke(prompt, {**feeds, "boxes": boxes.numpy()}, want, atol=1e-2)
