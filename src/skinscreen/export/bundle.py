"""Build a model bundle: ONNX encoder/decoder, parity check on real photos, ``manifest.json``.

The bundle is written into a temporary directory next to the target and renamed into place only
when everything passed; on any failure nothing is left behind. Format: docs/architecture.md.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from skinscreen import paths
from skinscreen._version import __version__
from skinscreen.errors import BundleError
from skinscreen.evaluate.metrics import dice
from skinscreen.export.checkpoint import file_sha256, locate_checkpoint
from skinscreen.export.onnx_export import (
    OPSET,
    export_decoder,
    export_encoder,
    export_reprompt,
    io_spec,
    ort_session,
)
from skinscreen.export.reference import TorchReference, load_model
from skinscreen.io.image import load_image, load_mask
from skinscreen.modelcard import write_card
from skinscreen.postprocess.mask import clean_mask
from skinscreen.preprocess.transforms import box_from_mask, crop_and_resize_logits, preprocess
from skinscreen.spec import ModelSpec, get_spec

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DEFAULT_VARIANT = "onnx-fp32"
# Parity gates: ONNX Runtime vs PyTorch on the same photos and boxes.
MIN_MASK_DICE = 0.99
MAX_LOGITS_ABS_DIFF = 0.01
# The re-prompt pair is an exact rewrite of the decoder: gate it against the decoder (both ONNX
# Runtime fp32, same embedding) much tighter.
REPROMPT_MIN_MASK_DICE = 0.999
REPROMPT_FILES = {"prelude": "prelude.onnx", "prompt_decoder": "prompt_decoder.onnx"}


@dataclass
class ParityCase:
    """One parity photo: ``image`` path and its expert ``mask`` path (or None). The prompt box is
    the tight XYXY box of the expert mask, or the central 80% of the photo without one."""

    image: Path
    mask: Path | None


@dataclass
class ParityReport:
    images: list[str] = field(default_factory=list)
    embedding_max_abs_diff: float = 0.0
    logits_max_abs_diff: float = 0.0
    mask_dice: list[float] = field(default_factory=list)
    dice_vs_expert: list[float] = field(default_factory=list)
    reprompt_logits_max_abs_diff: float | None = None
    reprompt_mask_dice: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {
            "images": self.images,
            "embedding_max_abs_diff": self.embedding_max_abs_diff,
            "logits_max_abs_diff": self.logits_max_abs_diff,
            "mask_dice_mean": float(np.mean(self.mask_dice)),
            "mask_dice_min": float(np.min(self.mask_dice)),
            "thresholds": {
                "mask_dice_min": MIN_MASK_DICE,
                "logits_max_abs_diff": MAX_LOGITS_ABS_DIFF,
            },
        }
        if self.dice_vs_expert:
            d["dice_vs_expert_mean"] = float(np.mean(self.dice_vs_expert))
            d["dice_vs_expert"] = [round(x, 6) for x in self.dice_vs_expert]
        if self.reprompt_mask_dice:
            d["reprompt"] = {
                "reference": "the decoder graph, onnxruntime fp32, same embedding and box",
                "logits_max_abs_diff": self.reprompt_logits_max_abs_diff,
                "mask_dice_min": float(np.min(self.reprompt_mask_dice)),
                "thresholds": {
                    "mask_dice_min": REPROMPT_MIN_MASK_DICE,
                    "logits_max_abs_diff": MAX_LOGITS_ABS_DIFF,
                },
            }
        return d


def examples_dir() -> Path:
    """``examples/`` of a source checkout, else the two samples packaged in ``skinscreen/samples``."""
    checkout = Path(__file__).resolve().parents[3] / "examples"
    if (checkout / "images").is_dir():
        return checkout
    return Path(__file__).resolve().parents[1] / "samples"


def parity_cases(images: list[Path] | None = None) -> list[ParityCase]:
    """Parity photos: ``images`` (expert masks looked up as ``../masks/<stem>.png``), else the
    shipped samples ``examples/images/*.jpg`` with ``examples/masks/*.png``."""
    if images is None:
        images = sorted((examples_dir() / "images").glob("*.jpg"))
        if not images:
            raise BundleError(
                "no parity photos: the sample photos in examples/images are missing (installed "
                "without the source tree?); pass parity images (e.g. --parity-images DIR)"
            )
    cases = []
    for p in images:
        p = Path(p)
        m = p.parent.parent / "masks" / f"{p.stem}.png"
        cases.append(ParityCase(p, m if m.is_file() else None))
    return cases


def _prompt_box(rgb: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is not None:
        box = box_from_mask(mask)
        if box is not None:
            return box
    h, w = rgb.shape[:2]
    return np.array([0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h])


def run_parity(
    spec: ModelSpec,
    ref: TorchReference,
    encoder: Path,
    decoder: Path,
    cases: list[ParityCase],
    reprompt: dict[str, Path] | None = None,
) -> ParityReport:
    """Compare ONNX Runtime with PyTorch end to end on ``cases``.

    Per photo: embeddings (max abs diff), low-res logits from each side's own embedding (max abs
    diff), full-resolution masks after the runtime post-processing (Dice ORT vs torch), and the
    ORT mask's Dice vs the expert mask when there is one. With ``reprompt`` (``{"prelude": path,
    "prompt_decoder": path}``) also the re-prompt pair vs the decoder graph on the ORT embedding
    (logits max abs diff, mask Dice).
    """
    enc, dec = ort_session(encoder), ort_session(decoder)
    fast = None
    if reprompt is not None:
        fast = (ort_session(reprompt["prelude"]), ort_session(reprompt["prompt_decoder"]))
        rep_diff = 0.0
    rep = ParityReport()
    for case in cases:
        rgb = load_image(case.image)
        truth = load_mask(case.mask) if case.mask is not None else None
        if truth is not None and truth.shape != rgb.shape[:2]:
            raise BundleError(f"{case.mask}: mask size {truth.shape} differs from its photo")
        box = _prompt_box(rgb, truth)
        x, t = preprocess(spec, rgb)
        box_model = t.apply_boxes(box).astype(np.float32).reshape(1, 4)

        emb_ref = ref.set_image(rgb)
        logits_ref, _ = ref.predict_logits(box_model[0])
        emb_ort = enc.run(None, {"image": x})[0]
        logits_ort = dec.run(None, {"image_embeddings": emb_ort, "boxes": box_model})[0][0, 0]

        rep.images.append(case.image.name)
        rep.embedding_max_abs_diff = max(
            rep.embedding_max_abs_diff, float(np.abs(emb_ort - emb_ref).max())
        )
        rep.logits_max_abs_diff = max(
            rep.logits_max_abs_diff, float(np.abs(logits_ort - logits_ref).max())
        )
        masks = [
            clean_mask(crop_and_resize_logits(lg, t, spec.low_res_size) > spec.mask_threshold)
            for lg in (logits_ort, logits_ref)
        ]
        rep.mask_dice.append(dice(masks[0], masks[1]))
        if truth is not None:
            rep.dice_vs_expert.append(dice(masks[0], truth))
        if fast is not None:
            names = [o.name for o in fast[0].get_outputs()]
            feats = dict(zip(names, fast[0].run(None, {"image_embeddings": emb_ort}), strict=True))
            logits_fast = fast[1].run(None, {**feats, "boxes": box_model})[0][0, 0]
            rep_diff = max(rep_diff, float(np.abs(logits_fast - logits_ort).max()))
            rep.reprompt_logits_max_abs_diff = rep_diff
            fast_mask = clean_mask(
                crop_and_resize_logits(logits_fast, t, spec.low_res_size) > spec.mask_threshold
            )
            rep.reprompt_mask_dice.append(dice(fast_mask, masks[0]))
    return rep


def check_parity(rep: ParityReport) -> None:
    """Raise :class:`BundleError` when ONNX and PyTorch disagree beyond the gates."""
    worst = float(np.min(rep.mask_dice))
    if worst < MIN_MASK_DICE or rep.logits_max_abs_diff > MAX_LOGITS_ABS_DIFF:
        raise BundleError(
            f"ONNX export does not match PyTorch: mask Dice min {worst:.4f} (need >= "
            f"{MIN_MASK_DICE}), logits max |diff| {rep.logits_max_abs_diff:.3g} (need <= "
            f"{MAX_LOGITS_ABS_DIFF}); nothing was written. Check the torch/onnxruntime versions."
        )
    if rep.reprompt_mask_dice and (
        min(rep.reprompt_mask_dice) < REPROMPT_MIN_MASK_DICE
        or (rep.reprompt_logits_max_abs_diff or 0.0) > MAX_LOGITS_ABS_DIFF
    ):
        raise BundleError(
            "the re-prompt graphs (prelude + prompt decoder) do not match the decoder graph: "
            f"mask Dice min {min(rep.reprompt_mask_dice):.4f} (need >= "
            f"{REPROMPT_MIN_MASK_DICE}), logits max |diff| "
            f"{rep.reprompt_logits_max_abs_diff:.3g} (need <= {MAX_LOGITS_ABS_DIFF}); nothing "
            "was written"
        )


def _file_entry(path: Path) -> dict:
    return {"path": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size}


def build_manifest(
    spec: ModelSpec, root: Path, rep: ParityReport, checkpoint: Path, checkpoint_sha: str
) -> dict:
    """The ``manifest.json`` dict for a bundle whose ONNX files are in ``root``."""
    import onnx
    import onnxruntime

    parity = rep.to_dict()
    accuracy = {
        "mask_dice_vs_fp32_mean": 1.0,
        "mask_dice_vs_fp32_min": 1.0,
        "n_images": len(rep.images),
        "images": rep.images,
    }
    if "dice_vs_expert_mean" in parity:
        accuracy["dice_vs_expert_mean"] = parity["dice_vs_expert_mean"]
    return {
        "format_version": FORMAT_VERSION,
        "model": spec.name,
        "spec": spec.to_dict(),
        "default_variant": DEFAULT_VARIANT,
        "variants": {
            DEFAULT_VARIANT: {
                "format": "onnx",
                "precision": "fp32",
                "files": {
                    "encoder": _file_entry(root / "encoder.onnx"),
                    "decoder": _file_entry(root / "decoder.onnx"),
                    **{
                        part: _file_entry(root / name)
                        for part, name in REPROMPT_FILES.items()
                        if (root / name).is_file()
                    },
                },
                "accuracy": accuracy,
            }
        },
        "io": io_spec(spec),
        "preprocessing": {
            "resize": spec.resize,
            "input_size": spec.input_size,
            "interpolation": spec.interpolation,
            "normalisation": spec.normalisation,
            "padding": "bottom_right_zeros" if spec.resize == "longest_side" else "none",
            "layout": "NCHW",
            "color": "RGB",
            # user boxes (not automatic ones) grow by this fraction of their width/height per
            # side, clipped to the photo, before they are scaled to the model input
            "box_margin": spec.box_margin,
        },
        "postprocessing": {
            "crop": "resized region",
            "resize": "bilinear half-pixel to original size",
            "threshold_logit": spec.mask_threshold,
            "largest_component": True,
            "fill_holes": True,
        },
        "parity": parity,
        "versions": {
            "skinscreen": __version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "opset": OPSET,
        },
        "checkpoint": {"file": checkpoint.name, "sha256": checkpoint_sha},
        "licence": spec.checkpoint.licence,
        "provenance": spec.checkpoint.provenance,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _check_target(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise BundleError(f"{out} exists and is not a directory: choose another --out")
    if (out / MANIFEST).is_file():
        if not force:
            raise BundleError(f"a bundle already exists at {out}: pass --force to rebuild it")
    elif any(out.iterdir()):
        raise BundleError(
            f"{out} is not empty and holds no skinscreen bundle: choose a new or empty --out"
        )


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``, replacing an existing ``out`` (moved aside first)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{int(time.time() * 1000)}")
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_bundle(
    model: str = "litemedsam",
    out_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    parity_images: list[Path] | None = None,
    force: bool = False,
) -> Path:
    """Export ``model`` to an ONNX bundle in ``out_dir`` (default ``paths.bundle_dir(model)``).

    Loads and verifies the weights (sha256 + strict load), exports the encoder, the decoder and
    the re-prompt pair (prelude + prompt decoder; opset 17, each smoke-tested in onnxruntime),
    checks ONNX vs PyTorch parity on real photos (raises :class:`BundleError` and writes nothing
    when mask Dice < 0.99 or logits differ by more than 0.01, or the re-prompt pair's masks differ
    from the decoder's: Dice < 0.999), then writes ``manifest.json`` and moves the bundle into
    place. Returns its directory.
    """
    spec = get_spec(model)
    if spec.checkpoint.kind == "repo":  # a distilled student whose weights ship in the package
        from skinscreen.train.ship import export_student_bundle

        return export_student_bundle(
            spec.name, out_dir, weights=checkpoint, parity_images=parity_images, force=force
        )
    out = Path(out_dir).expanduser() if out_dir is not None else paths.bundle_dir(spec.name)
    _check_target(out, force)
    cases = parity_cases(parity_images)
    torch.set_num_threads(min(2, torch.get_num_threads()))

    ckpt = locate_checkpoint(spec, checkpoint)
    net = load_model(spec, checkpoint)
    ckpt_sha = file_sha256(ckpt)
    ref = TorchReference(spec, model=net, threads=None)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        encoder = export_encoder(net, spec, tmp / "encoder.onnx")
        decoder = export_decoder(net, spec, tmp / "decoder.onnx")
        fast = {part: tmp / name for part, name in REPROMPT_FILES.items()}
        export_reprompt(net, spec, fast["prelude"], fast["prompt_decoder"])
        rep = run_parity(spec, ref, encoder, decoder, cases, fast)
        check_parity(rep)
        manifest = build_manifest(spec, tmp, rep, ckpt, ckpt_sha)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        write_card(tmp, spec.name)  # MODEL_CARD.md (skinscreen.modelcard)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
