"""Box check: a second, box-robust decoder on the same image embedding.

People draw boxes loose or off the lesion. LiteMedSAM's own decoder is the most accurate with a
well-drawn box but takes in the surrounding skin when the box is 20-25% too large; the
``litemedsam-boxaug`` decoder (fine-tuned on such boxes, same encoder) hardly depends on the box
but trims faint borders of well-drawn ones. The box check runs both on the cached embedding and
keeps the model's own mask unless the two masks disagree (Dice below the spec's
``agreement_min``), which mostly happens when the box is loose or shifted; then the box-robust
decoder's mask is used and the result says so. Figures and how the threshold was chosen:
docs/auto.md ("Box check").

Runtime path only (numpy + the engines); never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skinscreen.errors import SkinscreenError

#: ``Segmentation.box_check["decoder"]`` values.
DECODER_DEFAULT = "default"
DECODER_BOX_ROBUST = "box-robust"


def mask_agreement(
    logits_a: np.ndarray, logits_b: np.ndarray, valid_hw: tuple[int, int], threshold: float = 0.0
) -> float:
    """Dice between the masks ``logits > threshold`` of two decoders, over the photo's part of
    the low-res frame.

    Args:
        logits_a, logits_b: ``(L, L)`` float low-res logits of the same photo (L = the spec's
            ``low_res_size``), the photo in the top-left corner (bottom/right padding).
        valid_hw: ``(h, w)``, the photo's part of the low-res frame in low-res pixels (rows,
            columns); the padding beyond it is ignored.
        threshold: the spec's ``mask_threshold``.

    Returns:
        Dice in [0, 1]; 1.0 when both masks are empty.
    """
    if logits_a.shape != logits_b.shape or logits_a.ndim != 2:
        raise ValueError(
            f"logits must be two (L, L) arrays, got {logits_a.shape} and {logits_b.shape}"
        )
    h, w = valid_hw
    a = logits_a[:h, :w] > threshold
    b = logits_b[:h, :w] > threshold
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float((a & b).sum()) / total


@dataclass
class BoxCheckResult:
    """What the box check decided for one box.

    Attributes:
        agreement: Dice between the model's and the box-robust decoder's masks (low-res frame).
        threshold: ``agreement_min``: below it the box-robust mask is used.
        decoder: ``"default"`` (the model's own mask) or ``"box-robust"``.
        check_model: the registry name of the box-robust decoder's model.
    """

    agreement: float
    threshold: float
    decoder: str
    check_model: str

    def to_json_dict(self) -> dict:
        return {
            "agreement": round(self.agreement, 4),
            "threshold": self.threshold,
            "decoder": self.decoder,
            "check_model": self.check_model,
        }


class BoxChecker:
    """The box-robust decoder of a model (decoder-only engine) and its agreement threshold.

    Use :func:`open_box_checker`; :meth:`check` picks between the model's logits and its own.
    """

    def __init__(
        self, engine, check_model: str, agreement_min: float, low_res_size: int, bundle=None
    ):
        self.engine = engine
        self.bundle = bundle  # the check model's Bundle (the web app serves its decoder)
        self.check_model = check_model
        self.agreement_min = float(agreement_min)
        self.low_res_size = int(low_res_size)

    def check(
        self,
        embedding: np.ndarray,
        box_model: np.ndarray,
        logits: np.ndarray,
        iou: float,
        transform,
        mask_threshold: float = 0.0,
    ) -> tuple[np.ndarray, float, BoxCheckResult]:
        """Run the box-robust decoder on ``embedding`` with ``box_model`` (XYXY, model-input
        pixels) and return ``(logits, iou, result)``: the model's own ``logits``/``iou`` when the
        two masks agree, the box-robust decoder's otherwise. ``transform``: the photo's
        :class:`~skinscreen.preprocess.transforms.InputTransform`."""
        other, other_iou = self.engine.decode(embedding, box_model)
        valid = transform.photo_size_in(self.low_res_size)
        agreement = mask_agreement(logits, other, valid, mask_threshold)
        if agreement < self.agreement_min:
            res = BoxCheckResult(
                agreement, self.agreement_min, DECODER_BOX_ROBUST, self.check_model
            )
            return other, other_iou, res
        return (
            logits,
            iou,
            BoxCheckResult(agreement, self.agreement_min, DECODER_DEFAULT, self.check_model),
        )


def open_box_checker(
    bundle,
    engine_name: str,
    threads: int | None,
    want: bool | None,
    check_root: str | Path | None = None,
) -> BoxChecker | None:
    """The box checker for ``bundle``'s model, or None.

    Args:
        bundle: the main model's opened :class:`~skinscreen.engine.bundle.Bundle`.
        engine_name: the main engine (``onnxruntime`` / ``openvino``); the check uses the same
            engine and the same variant.
        want: True: required (the check model's bundle is built if missing; an error when the
            model has no box check or its bundle lacks the variant); None: on when the model has
            a box check and its bundle is already built with this variant, off otherwise (a
            built bundle whose decoder fails its sha256 check is an error either way); False:
            off.
        check_root: the check model's bundle directory (default: the cache).
    """
    if want is False:
        return None
    entry = bundle.spec.extra.get("box_check")
    if not entry:
        if want:
            raise SkinscreenError(
                f"model {bundle.spec.name!r} has no box check; drop --box-check "
                "(it exists for litemedsam)"
            )
        return None
    from skinscreen import paths
    from skinscreen.engine.bundle import MANIFEST, open_bundle, verify_files
    from skinscreen.engine.select import choice_for_bundle, make_engine

    model = entry["model"]
    root = Path(check_root) if check_root is not None else Path(paths.bundle_dir(model))
    if want is None and not (root / MANIFEST).is_file():
        return None
    if want is None:
        # the bundle is there: a malformed manifest is an error, never a silent "check off";
        # only a bundle built without this variant turns the optional check off
        from skinscreen.engine.bundle import read_manifest

        if bundle.variant not in read_manifest(root)["variants"]:
            return None
    check_bundle = open_bundle(  # a broken bundle is an error, never a silent "check off"
        model,
        root=None if check_root is None else root,
        variant=bundle.variant,
        build_if_missing=bool(want),
        verify=False,
    )
    # only the decoder is loaded, so only it is hashed; a tampered or truncated file is an
    # error even when the check was not asked for (the bundle is there, but not what was built)
    verify_files(check_bundle.root, check_bundle.manifest, check_bundle.variant, ("decoder",))
    choice = choice_for_bundle(check_bundle, engine_name)
    engine = make_engine(check_bundle, choice, threads, decoder_only=True)
    return BoxChecker(
        engine, model, entry["agreement_min"], bundle.spec.low_res_size, bundle=check_bundle
    )


__all__ = [
    "BoxCheckResult",
    "BoxChecker",
    "DECODER_BOX_ROBUST",
    "DECODER_DEFAULT",
    "mask_agreement",
    "open_box_checker",
]
