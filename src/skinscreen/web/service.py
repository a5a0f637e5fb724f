"""The segmentation service behind ``POST /api/segment``: one predictor, a lock, an LRU.

Thread model: FastAPI runs :meth:`SegmentService.segment` in its thread pool. The predictor is
stateful (``set_encoding`` then ``predict``) and its ONNX Runtime sessions are shared, so the
encoder/decoder section runs under one lock; rendering PNGs and the assessment run outside it.
Encodings are cached in memory by the sha256 of the uploaded bytes, so re-prompting the same photo
with a new box runs only the decoder. Nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import threading
import time

from fastapi import HTTPException

from skinscreen.disclaimer import DISCLAIMER
from skinscreen.engine.bundle import Bundle
from skinscreen.errors import BundleError, ImageError, PromptError, SkinscreenError
from skinscreen.web import assessment, render
from skinscreen.web.cache import LRUCache
from skinscreen.web.guard import public_message
from skinscreen.web.settings import WebSettings
from skinscreen.web.upload import check_image_header


def _user_message(e: Exception) -> str:
    """The error text with the library's ``<N bytes>:`` source label replaced by 'the photo'."""
    msg = str(e)
    if msg.startswith("<") and "bytes>: " in msg:
        msg = "the photo: " + msg.split("bytes>: ", 1)[1]
    return msg


def _encoding_bytes(enc) -> int:
    """Memory of a cached encoding: photo, embedding and the decoder prelude (~27 MB)."""
    prelude = sum(a.nbytes for a in (enc.prelude or {}).values())
    return int(enc.image.nbytes + enc.embedding.nbytes + prelude)


class SegmentService:
    """Owns the model (loaded on first use or by :meth:`load`) and the encoding cache."""

    def __init__(self, settings: WebSettings):
        self.settings = settings
        self._lock = threading.Lock()  # predictor state + ORT sessions
        self._load_lock = threading.Lock()
        self._bundle: Bundle | None = None
        self._engine: str | None = None  # "onnxruntime" | "openvino", picked with the bundle
        self._predictor = None
        self.cache: LRUCache = LRUCache(
            settings.cache_entries, settings.cache_bytes, _encoding_bytes
        )

    # -- model ---------------------------------------------------------------------------------
    @property
    def bundle(self) -> Bundle:
        """The verified model bundle (sha256-checked once, then kept)."""
        with self._load_lock:
            if self._bundle is None:
                from skinscreen.engine.select import open_for_engine

                s = self.settings
                self._bundle, choice = open_for_engine(
                    s.model,
                    root=s.bundle_dir,
                    variant=s.variant,
                    engine=s.engine,
                    build_if_missing=False,
                )
                self._engine = choice.engine
            return self._bundle

    def predictor(self):
        """The :class:`~skinscreen.predictor.LesionPredictor` (created on first call)."""
        bundle = self.bundle
        with self._load_lock:
            if self._predictor is None:
                from skinscreen.predictor import LesionPredictor

                # plain decoder, as the CLI: the re-prompt pair's fp32 prompt decoder differs
                # from the INT8 variant's decoder by a few boundary pixels, and the page's mask
                # must equal what `skinscreen segment` gives for the same photo and box
                self._predictor = LesionPredictor(
                    bundle.model,
                    bundle=bundle,
                    threads=self.settings.threads,
                    engine=self._engine,
                    box_check=self.settings.box_check,
                    commercial_only=self.settings.commercial_only,
                )
            return self._predictor

    @property
    def engine(self) -> str:
        """The inference engine in use (``onnxruntime`` or ``openvino``)."""
        _ = self.bundle
        return self._engine or "onnxruntime"

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    def load(self) -> None:
        """Load the model now (``skinscreen serve`` does this before it starts listening)."""
        self.predictor()

    # -- segmentation --------------------------------------------------------------------------
    def segment(self, data: bytes, box: object | None, features: bool = True) -> dict:
        """Segment the photo ``data`` (encoded bytes) with ``box`` (photo pixels XYXY, or None
        for automatic) and build the JSON response; ``features=False`` skips the assessment.
        Raises HTTPException with 4xx codes for bad input and 503 when the model bundle is
        unusable."""
        try:
            predictor = self.predictor()
        except BundleError as e:
            raise HTTPException(503, f"model not available: {public_message(str(e))}") from None
        t0 = time.perf_counter()
        key = hashlib.sha256(data).hexdigest()
        timings: dict[str, float] = {"hash": (time.perf_counter() - t0) * 1e3}
        hit = key in self.cache
        if not hit:  # header check outside the lock: refuse bombs and non-images early
            check_image_header(data, self.settings.max_pixels)
        try:
            with self._lock:
                enc = self.cache.get(key)
                hit = enc is not None
                if enc is None:
                    from skinscreen.io.image import load_image

                    t1 = time.perf_counter()
                    image = load_image(data, max_pixels=self.settings.max_pixels)
                    t2 = time.perf_counter()
                    enc = predictor.encode(image)
                    enc.timings_ms["load"] = (t2 - t1) * 1e3
                    self.cache.put(key, enc)
                predictor.set_encoding(enc)
                try:
                    seg = predictor.predict(box=box)
                finally:
                    predictor.reset_image()
        except (ImageError, PromptError) as e:
            raise HTTPException(422, _user_message(e)) from None
        except BundleError as e:
            raise HTTPException(503, f"model not available: {public_message(str(e))}") from None
        except SkinscreenError as e:  # e.g. no lesion found automatically
            raise HTTPException(422, str(e)) from None

        for k in ("load", "preprocess", "encoder"):
            timings[k] = 0.0 if hit else float(enc.timings_ms.get(k, 0.0))
        for k in ("auto", "decoder", "postprocess"):
            if k in seg.timings_ms:
                timings[k] = float(seg.timings_ms[k])

        t3 = time.perf_counter()
        heat, heat_size = render.heatmap_png(seg.probability, self.settings.heatmap_max_side)
        mask_b64 = render.mask_png(seg.mask)
        t4 = time.perf_counter()
        if features:
            feats, quality, note = assessment.run(
                enc.image, seg.mask, jpeg_quality=assessment.jpeg_quality(data)
            )
        else:
            feats, quality, note = None, None, "not requested (features=false)"
        t5 = time.perf_counter()
        timings["render"] = (t4 - t3) * 1e3
        timings["assess"] = (t5 - t4) * 1e3
        timings["total"] = (t5 - t0) * 1e3

        advisory = None
        if seg.box_source == "auto":  # automatic outlines fail more often: say so, with the tone
            from skinscreen.report.build import automatic_outline_warning

            advisory = automatic_outline_warning((feats or {}).get("skin_tone"))
        h, w = seg.mask.shape
        out = seg.to_json_dict()
        out.update(
            {
                "image_sha256": key,
                "image_size": [int(w), int(h)],
                "area_fraction": round(seg.area_px / float(w * h), 6),
                "mask_png": mask_b64,
                "heatmap_png": heat,
                "heatmap_size": heat_size,
                "features": feats,
                "quality": quality,
                "assessment_note": note,
                "advisory": advisory,
                "cache_hit": hit,
                "timings_ms": {k: round(v, 2) for k, v in timings.items()},
                "disclaimer": DISCLAIMER,
            }
        )
        return out
