"""OpenVINO engine for bundle encoder/decoder graphs (x86 CPUs; optional ``fast`` extra).

OpenVINO reads the bundle's fp32 ONNX files directly (no files of its own). With
``INFERENCE_PRECISION_HINT=bf16`` it runs matrix multiplies and convolutions in bfloat16 on CPUs
that have native bf16 (AVX512-BF16 or AMX); on other CPUs it would emulate or fall back, so
:func:`cpu_supports_bf16` is checked first and precision ``"fp32"`` is used there. Which precision
a bundle may use automatically is decided by the accuracy gate (``openvino-bf16`` variant in the
manifest, see :mod:`skinscreen.engine.select`).

Compiled models are cached under ``$SKINSCREEN_HOME/openvino-cache`` (OpenVINO's ``CACHE_DIR``:
compiled graphs, never images; the newest :data:`CACHE_KEEP` are kept), which shortens the next
process's start by ~0.6 s; ``SKINSCREEN_OPENVINO_CACHE=0`` turns it off. Each graph gets its own
folder, named after the graph file's sha256 (the bundle's hash), the precision, the threads and
the OpenVINO version, with a record (:data:`CACHE_RECORD`) of the compiled blob's sha256: a blob
that no longer matches its record (corrupt or modified) is a :class:`BundleError`, never loaded.

Runtime path: never imports torch.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from skinscreen.engine.onnx import default_threads
from skinscreen.errors import BundleError, MissingExtraError

PRECISIONS = ("bf16", "fp32")
_OV_PRECISION = {"bf16": "bf16", "fp32": "f32"}
CACHE_ENV = "SKINSCREEN_OPENVINO_CACHE"
# OpenVINO names a cached graph after the model file's path and the settings, so bundles in new
# folders (or new thread counts) add blobs: keep the newest few (~6-25 MB each; four graphs per
# bundle and setting with the re-prompt pair).
CACHE_KEEP = 12
CACHE_RECORD = "skinscreen-cache.json"


def openvino_available() -> bool:
    """True when the ``openvino`` package can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


@functools.lru_cache(maxsize=1)
def core():
    """The process-wide ``openvino.Core`` (created once)."""
    try:
        import openvino as ov
    except ImportError:
        raise MissingExtraError("fast", "the OpenVINO engine") from None
    from skinscreen._offline import quiet_openvino_telemetry

    quiet_openvino_telemetry()
    return ov.Core()


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when OpenVINO's CPU plugin reports native bf16 (``OPTIMIZATION_CAPABILITIES``)."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_version() -> str:
    import openvino as ov

    return ov.__version__


def cache_dir() -> Path | None:
    """Where compiled models are cached: ``<skinscreen home>/openvino-cache``; None when
    ``$SKINSCREEN_OPENVINO_CACHE`` is ``0``/``off``/``false``."""
    if os.environ.get(CACHE_ENV, "").strip().lower() in ("0", "off", "false", "no"):
        return None
    from skinscreen import paths

    return paths.home() / "openvino-cache"


def compile_config(precision: str, threads: int, cache: Path | None) -> dict:
    """The CPU plugin settings used for every graph (also recorded in the manifest)."""
    cfg = {
        "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
        "INFERENCE_NUM_THREADS": int(threads),
        "PERFORMANCE_HINT": "LATENCY",
    }
    if cache is not None:
        cfg["CACHE_DIR"] = str(cache)
    return cfg


def cache_key(graph_sha256: str, precision: str, threads: int) -> str:
    """Folder name of one compiled graph: hash of the graph's sha256 and the settings."""
    text = f"{graph_sha256}|{precision}|{threads}|{openvino_version()}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _blob_hashes(folder: Path) -> dict[str, str]:
    from skinscreen.engine.bundle import sha256_file

    return {p.name: sha256_file(p) for p in sorted(folder.glob("*.blob"))}


def check_cache_entry(folder: Path, graph_sha256: str) -> bool:
    """True when ``folder`` holds a recorded compiled graph that matches its record; False when
    there is none yet (unrecorded blobs are removed: they were never checked). Raises
    :class:`BundleError` when a recorded blob was modified."""
    record = folder / CACHE_RECORD
    if not record.is_file():
        for blob in folder.glob("*.blob"):
            with contextlib.suppress(OSError):
                blob.unlink()
        return False
    hint = (
        f"delete the folder ({folder}) to rebuild it, or run with {CACHE_ENV}=0 to skip the cache"
    )
    try:
        info = json.loads(record.read_text())
        blobs = dict(info["blobs"])
        recorded_graph = str(info["graph_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        raise BundleError(
            f"OpenVINO compiled-model cache record {record} is unreadable; {hint}"
        ) from None
    if recorded_graph != graph_sha256:
        raise BundleError(
            f"OpenVINO compiled-model cache {folder} belongs to another graph; {hint}"
        )
    if not blobs or any(not (folder / name).is_file() for name in blobs):
        with contextlib.suppress(OSError):
            record.unlink()
        return check_cache_entry(folder, graph_sha256)
    if _blob_hashes(folder) != blobs:
        raise BundleError(
            f"OpenVINO compiled-model cache {folder} failed its sha256 check (the compiled graph "
            f"is corrupt or was modified); {hint}"
        )
    return True


def compile_graph(path: str | Path, precision: str, threads: int, cache: Path | None):
    """``core().compile_model(path, "CPU", config)`` with a verified compiled-model cache.

    The cache folder of the graph is :func:`cache_key`; a recorded blob is checked against its
    sha256 before OpenVINO may load it (a mismatch is an error). A cache directory that cannot be
    written (read-only home, full disk) is dropped rather than failing.
    """
    if precision not in PRECISIONS:
        raise BundleError(
            f"unknown OpenVINO precision {precision!r}: choose {', '.join(PRECISIONS)}"
        )
    if cache is not None:
        from skinscreen.engine.bundle import sha256_file

        graph_sha = sha256_file(path)
        folder = cache / cache_key(graph_sha, precision, threads)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            folder = None
        if folder is not None:
            recorded = check_cache_entry(folder, graph_sha)  # raises on a modified blob
            try:
                compiled = core().compile_model(
                    str(path), "CPU", compile_config(precision, threads, folder)
                )
            except RuntimeError as e:
                if recorded:
                    raise BundleError(
                        f"OpenVINO could not load its cached graph in {folder} "
                        f"({str(e).splitlines()[0]}); delete that folder to rebuild it"
                    ) from None
                compiled = None  # retried without the cache below
            if compiled is not None:
                if not recorded:
                    with contextlib.suppress(OSError):
                        record = {"graph_sha256": graph_sha, "blobs": _blob_hashes(folder)}
                        tmp = folder / (CACHE_RECORD + ".tmp")
                        tmp.write_text(json.dumps(record, indent=1))
                        os.replace(tmp, folder / CACHE_RECORD)
                with contextlib.suppress(OSError):
                    os.utime(folder)  # pruning keeps the most recently used graphs
                prune_cache(cache)
                return compiled
    try:
        return core().compile_model(str(path), "CPU", compile_config(precision, threads, None))
    except RuntimeError as e:
        raise BundleError(f"cannot load {path} in OpenVINO: {str(e).splitlines()[0]}") from None


def prune_cache(cache: Path, keep: int = CACHE_KEEP) -> None:
    """Keep the ``keep`` newest compiled graphs of ``cache``: graph folders (those holding a
    :data:`CACHE_RECORD` or blobs) and loose ``*.blob`` files of older versions; nothing else
    is touched."""
    try:
        entries = [
            p
            for p in cache.iterdir()
            if (p.is_file() and p.suffix == ".blob")
            or (p.is_dir() and ((p / CACHE_RECORD).exists() or any(p.glob("*.blob"))))
        ]
        entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in entries[keep:]:
        with contextlib.suppress(OSError):  # another process may have removed it already
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()


class OpenVinoEngine:
    """Encoder + decoder (and the optional re-prompt pair) compiled by OpenVINO for the CPU.

    Same interface as :class:`skinscreen.engine.onnx.OnnxEngine`:
    ``encode(x)``: ``(1, 3, S, S)`` float32 -> embedding ``(1, C, h, w)`` float32 (a copy).
    ``prelude(emb)``: image-side decoder tensors (dict of arrays) or None without the pair.
    ``decode(emb, box, prelude=None)``: embedding and a ``(1, 4)`` XYXY box in model-input
    pixels -> (low-res logits ``(L, L)`` float32, predicted IoU float); the prompt decoder when a
    ``prelude`` is given, else the plain decoder.

    Args:
        encoder_path, decoder_path: fp32 ONNX graphs of the bundle.
        threads: ``INFERENCE_NUM_THREADS`` (default :func:`skinscreen.engine.onnx.default_threads`).
        precision: ``"bf16"`` or ``"fp32"`` (``INFERENCE_PRECISION_HINT`` bf16 / f32).
        cache: compiled-model cache directory (default :func:`cache_dir`; None: no cache).
        prelude_path, prompt_decoder_path: the bundle's re-prompt pair (both or neither).
    """

    name = "openvino"

    def __init__(
        self,
        encoder_path: Path | None,
        decoder_path: Path,
        *,
        threads: int | None = None,
        precision: str = "bf16",
        cache: Path | None | str = "default",
        prelude_path: Path | None = None,
        prompt_decoder_path: Path | None = None,
    ):
        threads = threads or default_threads()
        cache_path = cache_dir() if cache == "default" else (Path(cache) if cache else None)
        self.precision = precision
        self.threads = threads
        self.encoder = None
        if encoder_path is not None:  # None: a decoder-only engine (the box check's decoder)
            self.encoder = compile_graph(encoder_path, precision, threads, cache_path)
            self._enc_req = self.encoder.create_infer_request()
            self._enc_in = self.encoder.inputs[0].get_any_name()
        self.decoder = compile_graph(decoder_path, precision, threads, cache_path)
        self._dec_req = self.decoder.create_infer_request()
        self._dec_in = [i.get_any_name() for i in self.decoder.inputs]
        self._pre_req = self._prompt_req = None
        self._bound: dict | None = None
        if prelude_path is not None and prompt_decoder_path is not None:
            prelude = compile_graph(prelude_path, precision, threads, cache_path)
            prompt = compile_graph(prompt_decoder_path, precision, threads, cache_path)
            self._pre_req = prelude.create_infer_request()
            self._prompt_req = prompt.create_infer_request()
            self._pre_out = [o.get_any_name() for o in prelude.outputs]

    @property
    def has_reprompt(self) -> bool:
        """True when the bundle's re-prompt pair (prelude + prompt decoder) is compiled."""
        return self._pre_req is not None

    def encode(self, x: np.ndarray) -> np.ndarray:
        if self.encoder is None:
            raise BundleError("this engine was opened decoder-only; it cannot encode photos")
        out = self._enc_req.infer({self._enc_in: np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(out[0], dtype=np.float32)

    def prelude(self, embedding: np.ndarray) -> dict[str, np.ndarray] | None:
        """Image-side decoder tensors of ``embedding`` (copies; run once per image), or None."""
        if self._pre_req is None:
            return None
        out = self._pre_req.infer({"image_embeddings": np.ascontiguousarray(embedding, np.float32)})
        return {name: np.array(out[i], dtype=np.float32) for i, name in enumerate(self._pre_out)}

    def decode(
        self,
        embedding: np.ndarray,
        box_model: np.ndarray,
        prelude: dict[str, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, float]:
        box = np.asarray(box_model, dtype=np.float32).reshape(1, 4)
        if prelude is not None and self._prompt_req is not None:
            self._bind(prelude)
            out = self._prompt_req.infer({"boxes": box})
        else:
            feeds = {self._dec_in[0]: np.ascontiguousarray(embedding, dtype=np.float32)}
            out = self._dec_req.infer({**feeds, self._dec_in[1]: box})
        logits, iou = out[0], out[1]
        return np.asarray(logits[0, 0], dtype=np.float32), float(np.asarray(iou).ravel()[0])

    def _bind(self, prelude: dict[str, np.ndarray]) -> None:
        """Point the prompt decoder's image-side inputs at ``prelude``'s arrays (shared memory,
        no copy); done once per image, not per box."""
        if self._bound is prelude:
            return
        import openvino as ov

        for name, arr in prelude.items():
            self._prompt_req.set_tensor(name, ov.Tensor(arr, shared_memory=True))
        self._bound = prelude

    def describe(self) -> dict:
        """Engine, version, precision actually compiled and the settings (for reports)."""
        return {
            "engine": "openvino",
            "openvino": openvino_version(),
            "precision": self.precision,
            "inference_precision": (self.encoder or self.decoder)
            .get_property("INFERENCE_PRECISION_HINT")
            .to_string(),
            "threads": self.threads,
        }
