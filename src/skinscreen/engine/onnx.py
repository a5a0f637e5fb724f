"""ONNX Runtime sessions for bundle encoder/decoder graphs (CPU by default)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from skinscreen.errors import BundleError


def default_threads() -> int:
    """Intra-op threads: ``$SKINSCREEN_THREADS`` or the number of CPUs available to us."""
    env = os.environ.get("SKINSCREEN_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def make_session(
    path: str | Path,
    *,
    threads: int | None = None,
    providers: list[str] | None = None,
    config: dict[str, str] | None = None,
):
    """Create an ``onnxruntime.InferenceSession`` with full graph optimisation.

    Requested providers that this onnxruntime build lacks are dropped with a warning naming the
    available ones (CPU is always available). ``config``: session configuration entries
    (``SessionOptions.add_session_config_entry``) that a variant's manifest entry asks for, e.g.
    ``{"session.disable_quant_qdq": "1"}`` so that ``onnx-int8w``'s weight ``DequantizeLinear``
    nodes are folded into float32 weights at load.
    """
    import onnxruntime as ort

    from skinscreen._offline import quiet_onnxruntime

    quiet_onnxruntime(ort)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    for key, value in (config or {}).items():
        opts.add_session_config_entry(str(key), str(value))
    available = ort.get_available_providers()
    wanted = providers or ["CPUExecutionProvider"]
    chosen = [p for p in wanted if p in available]
    missing = [p for p in wanted if p not in available]
    if missing:
        import warnings

        warnings.warn(
            f"onnxruntime providers {missing} are not available (have {available}); using {chosen or ['CPUExecutionProvider']}",
            stacklevel=2,
        )
    try:
        return ort.InferenceSession(
            str(path), sess_options=opts, providers=chosen or ["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise BundleError(f"cannot load {path} in onnxruntime: {e}") from None


class OnnxEngine:
    """Encoder + decoder sessions for one bundle variant, plus the optional re-prompt pair.

    ``encode(x)``: ``(1, 3, S, S)`` float32 -> embedding ``(1, C, h, w)`` float32.
    ``prelude(emb)``: the image-side decoder tensors of one embedding (a dict of arrays, about
    27 MB for LiteMedSAM), or None when the bundle has no re-prompt pair (older bundles).
    ``decode(emb, box, prelude=None)``: embedding and a ``(1, 4)`` XYXY box in model-input pixels
    -> (low-res logits ``(L, L)`` float32, predicted IoU float); with a ``prelude`` of the same
    embedding it runs the cheap prompt decoder, otherwise the plain decoder (same result up to
    float rounding).

    Args:
        prelude_path, prompt_decoder_path: the bundle's re-prompt pair (both or neither).
        session_config: the variant's ``onnxruntime_session_config`` manifest entry, if any.
    """

    def __init__(
        self,
        encoder_path: Path | None,
        decoder_path: Path,
        *,
        threads: int | None = None,
        prelude_path: Path | None = None,
        prompt_decoder_path: Path | None = None,
        session_config: dict[str, str] | None = None,
    ):
        self.encoder = None
        if encoder_path is not None:  # None: a decoder-only engine (the box check's decoder)
            self.encoder = make_session(encoder_path, threads=threads, config=session_config)
            self._enc_in = self.encoder.get_inputs()[0].name
            self._enc_dtype = (
                np.float16 if "float16" in self.encoder.get_inputs()[0].type else np.float32
            )
        self.decoder = make_session(decoder_path, threads=threads, config=session_config)
        self._dec_in = [i.name for i in self.decoder.get_inputs()]
        self.prelude_session = self.prompt_session = None
        if prelude_path is not None and prompt_decoder_path is not None:
            self.prelude_session = make_session(prelude_path, threads=threads)
            self.prompt_session = make_session(prompt_decoder_path, threads=threads)
            self._pre_out = [o.name for o in self.prelude_session.get_outputs()]

    @property
    def has_reprompt(self) -> bool:
        """True when the bundle's re-prompt pair (prelude + prompt decoder) is loaded."""
        return self.prelude_session is not None

    def encode(self, x: np.ndarray) -> np.ndarray:
        if self.encoder is None:
            raise BundleError("this engine was opened decoder-only; it cannot encode photos")
        out = self.encoder.run(None, {self._enc_in: x.astype(self._enc_dtype, copy=False)})[0]
        return out.astype(np.float32, copy=False)

    def prelude(self, embedding: np.ndarray) -> dict[str, np.ndarray] | None:
        """Image-side decoder tensors of ``embedding`` (run once per image), or None."""
        if self.prelude_session is None:
            return None
        emb = np.ascontiguousarray(embedding, dtype=np.float32)
        outs = self.prelude_session.run(None, {"image_embeddings": emb})
        return dict(zip(self._pre_out, outs, strict=True))

    def decode(
        self,
        embedding: np.ndarray,
        box_model: np.ndarray,
        prelude: dict[str, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, float]:
        box = np.asarray(box_model, dtype=np.float32).reshape(1, 4)
        if prelude is not None and self.prompt_session is not None:
            logits, iou = self.prompt_session.run(None, {**prelude, "boxes": box})[:2]
        else:
            feeds = {self._dec_in[0]: embedding, self._dec_in[1]: box}
            logits, iou = self.decoder.run(None, feeds)[:2]
        return logits[0, 0].astype(np.float32, copy=False), float(np.asarray(iou).ravel()[0])
