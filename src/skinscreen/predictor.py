"""The stateful lesion predictor: encode a photo once, prompt it many times.

Runtime path only: onnxruntime (or OpenVINO, see :mod:`skinscreen.engine.select`) + numpy +
OpenCV. It never imports torch.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skinscreen.box_check import open_box_checker
from skinscreen.engine.bundle import Bundle
from skinscreen.engine.select import choice_for_bundle, make_engine, open_for_engine
from skinscreen.errors import (
    NoLesionFoundError,
    PromptError,
    SkinscreenError,
    UnreliableOutlineError,
)
from skinscreen.io.image import ImageSource, load_image
from skinscreen.licences import (
    box_check_weights,
    commercial_only_default,
    model_weights,
    quality_model_weights,
    require_commercial,
)
from skinscreen.postprocess.mask import clean_mask, outer_contour, sigmoid, svg_path
from skinscreen.preprocess.transforms import (
    InputTransform,
    crop_and_resize_logits,
    expand_box,
    flip_box,
    flip_image,
    preprocess,
)
from skinscreen.spec import get_spec

#: the mirror images test-time flips add to the photo: ``(horizontal, vertical)``
TTA_FLIPS: tuple[tuple[bool, bool], ...] = ((True, False), (False, True), (True, True))


@dataclass
class ImageEncoding:
    """Everything ``predict`` needs about one photo: cache it to re-prompt without the encoder.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB photo (EXIF-upright).
        embedding: ``(1, C, h, w)`` float32 image embedding.
        transform: original <-> model-input mapping.
        key: sha256 of the photo's pixels (for caches).
        timings_ms: ``load``/``preprocess``/``encoder`` (and ``prelude``) times.
        prelude: the image-side decoder tensors of ``embedding`` (the bundle's re-prompt
            prelude, run once per photo; about 27 MB for LiteMedSAM) so each box only runs the
            cheap prompt decoder; None for bundles without the re-prompt pair (plain decoder).
        flip: ``(horizontal, vertical)``: how ``image`` is mirrored from the photo (test-time
            flip views; ``(False, False)`` for the photo itself).
        views: the encodings of the photo's mirror images (:data:`TTA_FLIPS`) when the
            predictor averages over them (``LesionPredictor(tta=True)``); empty otherwise.
    """

    image: np.ndarray
    embedding: np.ndarray
    transform: InputTransform
    key: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    prelude: dict[str, np.ndarray] | None = None
    flip: tuple[bool, bool] = (False, False)
    views: tuple[ImageEncoding, ...] = ()


@dataclass
class Segmentation:
    """One predicted lesion mask and what the app needs to draw and report it.

    Coordinates are original photo pixels; boxes are XYXY and the polygon ``[x, y]`` ordered.
    ``box`` is the box as given (user) or found (auto); ``box_used`` the box that prompted the
    decoder: ``box`` grown by ``box_margin`` of its width/height per side and clipped to the photo
    (user boxes only; equal to ``box`` otherwise).
    """

    mask: np.ndarray  # (H, W) bool
    probability: np.ndarray  # (H, W) float32 in [0, 1]
    polygon: np.ndarray  # (N, 2) float
    svg_path: str
    area_px: int
    box: np.ndarray  # (4,) XYXY
    box_source: str
    iou_prediction: float
    model: str
    variant: str
    timings_ms: dict[str, float]
    auto: dict | None = None
    engine: str = "onnxruntime"  # "onnxruntime" | "openvino"
    box_used: np.ndarray | None = None  # (4,) XYXY; None: same as box
    box_margin: float = 0.0
    box_check: dict | None = None  # BoxCheckResult.to_json_dict(); None: no check ran
    tta_views: int = 1  # outlines averaged: 1, or 4 with test-time flips
    weights: list[dict] = field(default_factory=list)  # licences.WeightsUse.to_json_dict()
    commercial_only: bool = False  # only weights whose licence allows commercial use ran
    #: the outline-quality estimate (:mod:`skinscreen.outline_quality`): predicted_jaccard,
    #: p_failure, check_outline, drivers, signals; None when not computed
    outline_quality: dict | None = None

    def to_json_dict(self) -> dict:
        """JSON-ready summary (no pixel arrays)."""
        d = {
            "model": self.model,
            "variant": self.variant,
            "engine": self.engine,
            "box": [round(float(v), 2) for v in self.box],
            "box_source": self.box_source,
            "box_margin": round(float(self.box_margin), 4),
            "box_used": [
                round(float(v), 2) for v in (self.box if self.box_used is None else self.box_used)
            ],
            "polygon": [[round(float(x), 1), round(float(y), 1)] for x, y in self.polygon],
            "svg_path": self.svg_path,
            "area_px": self.area_px,
            "image_size": [int(self.mask.shape[1]), int(self.mask.shape[0])],
            "iou_prediction": round(self.iou_prediction, 4),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
        if self.auto is not None:
            d["auto"] = self.auto
        if self.box_check is not None:
            d["box_check"] = self.box_check
        if self.tta_views > 1:
            d["tta_views"] = self.tta_views
        d["weights"] = self.weights
        d["commercial_use"] = all(w["commercial_use"] for w in self.weights)
        d["commercial_only"] = self.commercial_only
        if self.outline_quality is not None:
            d["outline_quality"] = self.outline_quality
        return d


def validate_box(box: object, size_hw: tuple[int, int]) -> np.ndarray:
    """Check a user box ``[x0, y0, x1, y1]`` (photo pixels) and return it as float64 ``(4,)``.

    Rules: four finite numbers, ``x0 < x1`` and ``y0 < y1``, inside the photo
    (``0 <= x0``, ``x1 <= W``, ``0 <= y0``, ``y1 <= H``, half a pixel of tolerance).
    """
    h, w = size_hw
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise PromptError(f"box {box!r} is not four numbers x0,y0,x1,y1") from None
    if b.size != 4:
        raise PromptError(f"box must have 4 numbers x0,y0,x1,y1, got {b.size}")
    if not np.isfinite(b).all():
        raise PromptError(f"box {b.tolist()} contains NaN or infinity")
    x0, y0, x1, y1 = b
    if x1 <= x0 or y1 <= y0:
        raise PromptError(f"box {b.tolist()} is empty: need x0 < x1 and y0 < y1 (XYXY order)")
    tol = 0.5
    if x0 < -tol or y0 < -tol or x1 > w + tol or y1 > h + tol:
        raise PromptError(
            f"box {b.tolist()} lies outside the {w}x{h} photo: need 0 <= x0 < x1 <= {w} and "
            f"0 <= y0 < y1 <= {h} (EXIF-upright photo pixels)"
        )
    return np.clip(b, 0, [w, h, w, h])


def validate_box_margin(margin: object) -> float:
    """Check a box margin (fraction of the box's width/height added per side): a finite number in
    [0, 1]; returns it as float."""
    try:
        m = float(margin)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PromptError(f"box margin {margin!r} is not a number (e.g. 0.1 for 10%)") from None
    if not np.isfinite(m) or not 0.0 <= m <= 1.0:
        raise PromptError(
            f"box margin {m} must be between 0 and 1: the fraction of the box's width/height "
            "added on each side (0 turns it off)"
        )
    return m


class LesionPredictor:
    """Segment skin lesions with a box prompt (or automatically), SAM-predictor style.

    ``set_image`` runs the encoder once; ``predict`` runs only the decoder and post-processing,
    so re-prompting the same photo with a new box is cheap.

    Args:
        model: registry name (default ``litemedsam``).
        variant: bundle variant (default: the manifest's ``default_variant``).
        bundle_dir: explicit bundle directory (default: the cache; a missing one is built on
            first use where the application installed a builder, as the CLI does
            (:func:`skinscreen.engine.bundle.set_bundle_builder`), else an error that names the
            command to run: ``skinscreen export``).
        threads: intra-op threads of the engine (default: all available CPUs).
        engine: ``"auto"`` (default, or ``$SKINSCREEN_ENGINE``), ``"onnxruntime"`` or
            ``"openvino"``. Auto runs the gated ``openvino-bf16`` variant in OpenVINO when the
            package is installed and the CPU has bf16, else ``variant`` in ONNX Runtime
            (:mod:`skinscreen.engine.select`). ``engine_choice`` says what was picked and why.
        reprompt: load the bundle's re-prompt pair and run its prelude in ``set_image``, so
            every box costs only the prompt decoder (interactive use: the web page, an app
            where the user moves the box). Off by default: for one mask per photo the plain
            decoder is faster and needs about 190 MB less memory.
        box_check: run the model's box-robust second decoder on every drawn box and use its
            mask when the two masks disagree (:mod:`skinscreen.box_check`; LiteMedSAM:
            ``litemedsam-boxaug``'s decoder, one more decoder run per box). None (default): on
            when the model has one, its bundle is built (``make bundle`` builds it) and
            ``reprompt`` is off; True: required (built if missing); False: off.
            ``box_checker`` is the loaded check or None.
        tta: test-time flips: ``set_image`` also encodes the photo's three mirror images
            (:data:`TTA_FLIPS`) and ``predict`` averages the four outlines' probabilities
            (each view prompted with the box mirrored, its box check included). Four encoder
            runs per photo; mirroring the photo then no longer changes the outline. Measured on
            the 98 dev photos (docs/robustness.md): Dice 0.912 -> 0.918 with the expert's box.
            Off by default (a phone needs the single run).
        commercial_only: run only weights whose licence allows commercial use
            (:mod:`skinscreen.licences`): a model learned from non-commercial photos is refused,
            the box check is off and automatic mode uses the classical localiser. None
            (default): ``$SKINSCREEN_COMMERCIAL_ONLY``.
        quality: estimate every outline's quality (:mod:`skinscreen.outline_quality`: a
            predicted Jaccard with an expert's outline and a calibrated probability that it is
            a failure, ``Segmentation.outline_quality``) and, in automatic mode, choose among
            the candidate boxes by it. Costs one check-decoder run and the localiser head per
            outline (tens of ms). None (default): on when the model ships a quality model.
        abstain: automatic mode only, with ``quality``: when the chosen outline's failure
            probability reaches the model's operating point, ``predict()`` raises an
            :class:`~skinscreen.errors.UnreliableOutlineError` ("no reliable outline, please
            draw a box") instead of returning a likely failure. Default False: the outline is answered and flagged (``check_outline``); ``skinscreen segment/assess --auto`` and ``evaluate`` abstain.
    """

    def __init__(
        self,
        model: str = "litemedsam",
        *,
        variant: str | None = None,
        bundle_dir: str | Path | None = None,
        threads: int | None = None,
        bundle: Bundle | None = None,
        engine: str | None = None,
        reprompt: bool = False,
        box_check: bool | None = None,
        tta: bool = False,
        commercial_only: bool | None = None,
        quality: bool | None = None,
        abstain: bool = False,
    ):
        self.commercial_only = (
            commercial_only_default() if commercial_only is None else bool(commercial_only)
        )
        if self.commercial_only:
            require_commercial(get_spec(model) if bundle is None else bundle.spec)
            if box_check:
                raise SkinscreenError(
                    "--box-check and --commercial-only exclude each other: the box check's "
                    "decoder was learned from non-commercial photos"
                )
            box_check = False
        if bundle is None:
            bundle, choice = open_for_engine(model, root=bundle_dir, variant=variant, engine=engine)
        else:
            choice = choice_for_bundle(bundle, engine)
        self.bundle = bundle
        self.engine_choice = choice
        self.spec = self.bundle.spec
        self.engine = make_engine(self.bundle, choice, threads, reprompt=reprompt)
        if box_check is None and reprompt:
            box_check = False  # interactive: off unless asked (it doubles the per-box cost)
        self.box_checker = open_box_checker(self.bundle, choice.engine, threads, box_check)
        self.tta = bool(tta)
        self.quality_model = None
        if self.commercial_only:
            if quality:
                raise SkinscreenError(
                    "quality=True and --commercial-only exclude each other: the outline-quality "
                    "model was learned from non-commercial photos"
                )
            quality = False
        if quality is None or quality:
            from skinscreen.outline_quality import load_quality_model

            self.quality_model = load_quality_model(self.spec.name)
            if quality and self.quality_model is None:
                raise SkinscreenError(
                    f"quality=True but the package ships no outline-quality model for "
                    f"{self.spec.name!r}"
                )
        self.abstain = bool(abstain)
        self._enc: ImageEncoding | None = None

    # -- image ---------------------------------------------------------------------------------
    def encode(self, src: ImageSource, *, box: object | None = None) -> ImageEncoding:
        """Load, preprocess and encode a photo without changing the predictor's state (and its
        mirror images, as ``views``, when the predictor uses test-time flips).

        ``box``: the user box that will prompt it, checked against the photo's size once it is
        read and before the encoder runs (a bad box costs no encoder run); None: not checked.
        """
        t0 = time.perf_counter()
        image = (
            src
            if isinstance(src, np.ndarray)
            and src.dtype == np.uint8
            and src.ndim == 3
            and src.shape[2] == 3
            else load_image(src)
        )
        if box is not None and not (isinstance(box, str) and box == "auto"):
            validate_box(box, image.shape[:2])
        enc = self._encode_array(image, "", t0)
        enc.key = hashlib.sha256(np.ascontiguousarray(image).data).hexdigest()  # (not timed)
        if self.tta:
            t1 = time.perf_counter()
            enc.views = tuple(
                self._encode_array(
                    flip_image(image, h, v), f"{enc.key}:flip-{h:d}{v:d}", flip=(h, v)
                )
                for h, v in TTA_FLIPS
            )
            enc.timings_ms["tta_encoder"] = (time.perf_counter() - t1) * 1e3
        return enc

    def _encode_array(
        self,
        image: np.ndarray,
        key: str,
        t0: float | None = None,
        flip: tuple[bool, bool] = (False, False),
    ) -> ImageEncoding:
        """Preprocess and encode an ``(H, W, 3)`` uint8 RGB array (``key``: the photo's sha256,
        tagged for a mirror view, which is not hashed again; ``t0``: when loading began)."""
        t1 = time.perf_counter()
        t0 = t1 if t0 is None else t0
        x, transform = preprocess(self.spec, image)
        t2 = time.perf_counter()
        emb = self.engine.encode(x)
        t3 = time.perf_counter()
        prelude = self._prelude(emb)
        t4 = time.perf_counter()
        timings = {
            "load": (t1 - t0) * 1e3,
            "preprocess": (t2 - t1) * 1e3,
            "encoder": (t3 - t2) * 1e3,
        }
        if prelude is not None:
            timings["prelude"] = (t4 - t3) * 1e3
        return ImageEncoding(
            image=image,
            embedding=emb,
            transform=transform,
            key=key,
            timings_ms=timings,
            prelude=prelude,
            flip=flip,
        )

    def _prelude(self, embedding: np.ndarray) -> dict[str, np.ndarray] | None:
        """The engine's image-side decoder tensors for ``embedding``, or None (no re-prompt pair
        in the bundle, or an engine without one)."""
        run = getattr(self.engine, "prelude", None)
        return run(embedding) if run is not None else None

    def set_image(self, src: ImageSource, *, box: object | None = None) -> ImageEncoding:
        """Encode a photo (path, bytes, PIL image or array) and make it the current image;
        ``box``: the box that will prompt it, validated before the encoder runs."""
        self._enc = None
        self._enc = self.encode(src, box=box)
        return self._enc

    def set_encoding(self, enc: ImageEncoding) -> None:
        """Make a previously computed encoding current (no encoder run)."""
        self._enc = enc

    def reset_image(self) -> None:
        self._enc = None

    @property
    def encoding(self) -> ImageEncoding:
        if self._enc is None:
            raise SkinscreenError("no image set: call set_image(photo) before predict()")
        return self._enc

    @property
    def image(self) -> np.ndarray:
        return self.encoding.image

    @property
    def box_margin(self) -> float:
        """Default margin for user boxes: the bundle's ``preprocessing.box_margin`` (the model
        spec's ``box_margin``)."""
        return self.bundle.box_margin

    # -- prompts -------------------------------------------------------------------------------
    def decode_logits(self, box_model: np.ndarray) -> tuple[np.ndarray, float]:
        """Raw decoder call: XYXY box in model-input pixels -> (low-res logits ``(L, L)``, IoU).

        Runs the prompt decoder on the encoding's cached prelude when there is one (an exact
        rewrite of the decoder with a third of its arithmetic, about 2x faster), else the plain
        decoder (bundles without the re-prompt pair, encodings built by hand without a
        prelude)."""
        return self._decode(self.encoding, box_model)

    def _decode(self, enc: ImageEncoding, box_model: np.ndarray) -> tuple[np.ndarray, float]:
        if enc.prelude is None:
            return self.engine.decode(enc.embedding, box_model)
        return self.engine.decode(enc.embedding, box_model, enc.prelude)

    def predict(
        self,
        box: object | None = None,
        *,
        clean: bool = True,
        box_margin: float | None = None,
        box_check: bool | None = None,
        abstain: bool | None = None,
    ) -> Segmentation:
        """Segment the current photo.

        Args:
            box: ``[x0, y0, x1, y1]`` in original photo pixels, or None for the automatic box
                (``skinscreen.auto``).
            clean: keep the largest component and fill holes (the spec's post-processing).
            box_margin: grow a user ``box`` by this fraction of its width/height on every side
                (clipped to the photo) before prompting; None: :attr:`box_margin` (the spec's,
                0.05 for LiteMedSAM); 0.0 prompts with the box as given. Automatic boxes are
                never grown.
            box_check: None: run the box check on a drawn box when this predictor loaded one
                (:attr:`box_checker`); False: not for this call (e.g. a tracker's machine-made
                boxes); True: required (an error without a loaded check).
            abstain: automatic mode with a quality model: raise
                :class:`~skinscreen.errors.UnreliableOutlineError` instead of returning a
                likely failure; None: the predictor's ``abstain``.
        """
        enc = self.encoding
        if box_check and self.box_checker is None:
            raise SkinscreenError(
                "box_check=True but this predictor has no box check: create it with "
                "LesionPredictor(box_check=True) (litemedsam; its litemedsam-boxaug bundle is built "
                "if missing)"
            )
        t0 = time.perf_counter()
        if box is None:
            return self._predict_auto(clean, t0, self.abstain if abstain is None else abstain)
        box_orig = validate_box(box, enc.image.shape[:2])
        margin = validate_box_margin(self.box_margin if box_margin is None else box_margin)
        box_used = expand_box(box_orig, margin, enc.image.shape[:2]) if margin else box_orig
        seg = self._segment(box_orig, box_used, margin, "user", box_check is not False, clean, t0)
        if self.quality_model is not None:
            self._add_quality(seg)
        return seg

    def _segment(
        self,
        box_orig: np.ndarray,
        box_used: np.ndarray,
        margin: float,
        source: str,
        check_box: bool,
        clean: bool,
        t0: float,
        auto_info: dict | None = None,
    ) -> Segmentation:
        """Decode ``box_used`` (XYXY photo pixels) on the current photo (box check when
        ``check_box`` and one is loaded; test-time views averaged) -> a Segmentation."""
        enc = self.encoding
        t1 = time.perf_counter()
        box_model = enc.transform.apply_boxes(box_used)
        logits, iou = self.decode_logits(box_model)
        t_check = time.perf_counter()
        check = None
        weights = [model_weights(self.spec).to_json_dict()]
        if check_box and self.box_checker is not None:
            logits, iou, check = self.box_checker.check(
                enc.embedding, box_model, logits, iou, enc.transform, self.spec.mask_threshold
            )
            weights.append(box_check_weights(get_spec(check.check_model)).to_json_dict())
        if auto_info is not None and "weights" in auto_info:
            weights.append(auto_info.pop("weights"))
        t2 = time.perf_counter()
        if enc.views:
            checked = check is not None
            mask, prob, poly, iou = self._average_views(logits, iou, box_used, checked, clean)
        else:
            mask, prob, poly = self.postprocess(logits, clean=clean)
        t3 = time.perf_counter()
        timings = dict(enc.timings_ms)
        if auto_info is not None:
            timings["auto"] = (t1 - t0) * 1e3
        timings["decoder"] = (t_check - t1) * 1e3
        if check is not None:
            timings["box_check"] = (t2 - t_check) * 1e3
        timings["tta_decoder" if enc.views else "postprocess"] = (t3 - t2) * 1e3
        return Segmentation(
            mask=mask,
            probability=prob,
            polygon=poly,
            svg_path=svg_path(poly),
            area_px=int(mask.sum()),
            box=box_orig,
            box_source=source,
            iou_prediction=iou,
            model=self.spec.name,
            variant=self.bundle.variant,
            timings_ms=timings,
            auto=auto_info,
            engine=self.engine_choice.engine,
            box_used=box_used,
            box_margin=margin,
            box_check=None if check is None else check.to_json_dict(),
            tta_views=1 + len(enc.views),
            weights=weights,
            commercial_only=self.commercial_only,
        )

    def _add_quality(self, seg: Segmentation, rank: int = 0) -> None:
        """Attach the outline-quality estimate to ``seg`` (timed as ``outline_quality``)."""
        from skinscreen.outline_quality import outline_signals

        t = time.perf_counter()
        signals = outline_signals(self, seg, rank=rank)
        seg.outline_quality = self.quality_model.assess(signals)
        qm = self.quality_model
        use = quality_model_weights(str(qm.info.get("name", "outline-quality")), qm.info)
        if use.to_json_dict() not in seg.weights:
            seg.weights.append(use.to_json_dict())
        seg.timings_ms["outline_quality"] = (time.perf_counter() - t) * 1e3

    def _predict_auto(self, clean: bool, t0: float, abstain: bool) -> Segmentation:
        """Automatic mode: the localiser's candidates; with a quality model, each candidate's
        outline is estimated and the one with the highest predicted Jaccard is answered (or,
        with ``abstain``, none when even it is a likely failure)."""
        box_orig, auto_info = self._auto_box()
        source = auto_info.pop("box_source", "auto")
        qm = self.quality_model
        cands = auto_info.get("candidates") or []
        if qm is None or source != "auto" or not cands:
            seg = self._segment(box_orig, box_orig, 0.0, source, False, clean, t0, auto_info)
            if qm is not None:
                self._add_quality(seg)
            return seg
        choose = bool(qm.info.get("choose_candidates", True))
        n = min(len(cands), int(qm.info.get("max_candidates", 4))) if choose else 1
        best: Segmentation | None = None
        for rank in range(n):
            b = np.asarray(cands[rank]["box"], dtype=np.float64)
            seg = self._segment(b, b, 0.0, source, False, clean, t0, dict(auto_info))
            self._add_quality(seg, rank)
            seg.outline_quality["candidate_rank"] = rank
            if best is None or (
                seg.outline_quality["predicted_jaccard"] > best.outline_quality["predicted_jaccard"]
            ):
                best = seg
        rank = best.outline_quality["candidate_rank"]
        best.auto = dict(best.auto, chosen_candidate=rank, chosen_by="outline_quality")
        best.auto.update(method=cands[rank]["method"], score=cands[rank]["score"])
        if abstain and best.outline_quality["check_outline"]:
            q = best.outline_quality
            raise UnreliableOutlineError(
                "no reliable outline, please draw a box: the automatic outline is likely wrong "
                f"(predicted Jaccard with an expert {q['predicted_jaccard']:.2f}, failure "
                f"probability {q['p_failure']:.2f} >= {q['threshold']:.2f}); draw a box with "
                "--box X0,Y0,X1,Y1",
                segmentation=best,
            )
        return best

    def postprocess(self, low_res_logits: np.ndarray, *, clean: bool = True):
        """Low-res logits -> (mask ``(H, W)`` bool, probability ``(H, W)``, polygon ``(N, 2)``)."""
        full = crop_and_resize_logits(
            low_res_logits, self.encoding.transform, self.spec.low_res_size
        )
        mask = full > self.spec.mask_threshold
        if clean:
            mask = clean_mask(mask)
        return mask, sigmoid(full), outer_contour(mask)

    def _average_views(
        self,
        logits: np.ndarray,
        iou: float,
        box_used: np.ndarray,
        checked: bool,
        clean: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Test-time flips: the photo's low-res ``logits`` and each mirror view's (prompted with
        ``box_used``, XYXY photo pixels, mirrored; box check when ``checked``) -> photo-size
        probabilities mirrored back and averaged -> (mask, probability, polygon, mean IoU)."""
        enc = self.encoding
        size_hw = enc.image.shape[:2]
        low = self.spec.low_res_size
        prob = sigmoid(crop_and_resize_logits(logits, enc.transform, low))
        ious = [iou]
        for view in enc.views:
            h, v = view.flip
            box_model = view.transform.apply_boxes(flip_box(box_used, size_hw, h, v))
            view_logits, view_iou = self._decode(view, box_model)
            if checked:
                view_logits, view_iou, _ = self.box_checker.check(
                    view.embedding,
                    box_model,
                    view_logits,
                    view_iou,
                    view.transform,
                    self.spec.mask_threshold,
                )
            view_prob = sigmoid(crop_and_resize_logits(view_logits, view.transform, low))
            prob += flip_image(view_prob, h, v)
            ious.append(view_iou)
        prob /= 1 + len(enc.views)
        mask = prob > float(sigmoid(np.array([self.spec.mask_threshold], np.float32))[0])
        if clean:
            mask = clean_mask(mask)
        return mask, prob.astype(np.float32), outer_contour(mask), float(np.mean(ious))

    def _auto_box(self) -> tuple[np.ndarray, dict]:
        """Automatic box for the current image (see :mod:`skinscreen.auto`)."""
        try:
            from skinscreen.auto import auto_box
        except ImportError:
            auto_box = None
        if auto_box is None:
            h, w = self.encoding.image.shape[:2]
            return np.array([0.0, 0.0, float(w), float(h)]), {
                "box_source": "full-image",
                "note": "no automatic localiser installed; the whole photo was used as the box",
            }
        box, info = auto_box(self.encoding.image, self)
        info = dict(info or {})
        info.setdefault("box_source", "auto")
        if box is None:
            raise NoLesionFoundError(
                "no lesion found automatically in this photo; draw a box with --box X0,Y0,X1,Y1"
            )
        return np.asarray(box, dtype=np.float64), info


__all__ = [
    "LesionPredictor",
    "Segmentation",
    "ImageEncoding",
    "validate_box",
    "validate_box_margin",
]
