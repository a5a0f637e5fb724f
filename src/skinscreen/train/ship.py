"""Ship a distilled student: compact fp16 safetensors weights, and its ONNX bundle.

Weights file (``src/skinscreen/assets/<model>.safetensors``): the *unfused* student state dict in
float16 (training can continue from it), with metadata ``arch``, ``teacher``, ``step``. The
bundle pairs the fused student encoder with the teacher's prompt encoder and mask decoder
(LiteMedSAM's, loaded from its verified checkpoint) and goes through the export side's bundle
path: ONNX export with smoke test, ONNX-vs-PyTorch parity gate on real photos, manifest, atomic
move into place.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from skinscreen import paths
from skinscreen.errors import BundleError
from skinscreen.modelcard import write_card
from skinscreen.spec import ModelSpec, get_spec
from skinscreen.train.student import RepStudent, build_student


def assets_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "assets"


def save_student_weights(student: RepStudent, path: Path, metadata: dict[str, str]) -> Path:
    """Write the student's state dict as float16 safetensors (temp file + rename)."""
    from safetensors.torch import save_file

    state = {
        k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach())
        .contiguous()
        .cpu()
        for k, v in student.state_dict().items()
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp), metadata={k: str(v) for k, v in metadata.items()})
    tmp.replace(path)
    return path


def load_student_weights(path: Path) -> tuple[RepStudent, dict[str, str]]:
    """Build the student named in the file's metadata and strictly load its weights (float32)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise BundleError(f"student weights not found: {path} (train one with skinscreen distill)")
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if "arch" not in meta:
        raise BundleError(f"{path} has no 'arch' metadata: not a skinscreen student file")
    student = build_student(meta["arch"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    from skinscreen.export.checkpoint import load_strict

    load_strict(student, state, source=f"student weights {path}")
    return student.eval(), meta


def student_weights_path(spec: ModelSpec) -> Path:
    """Committed weights of a registered student (``checkpoint.kind == "repo"``)."""
    if spec.checkpoint.kind != "repo" or not spec.checkpoint.path:
        raise BundleError(f"model '{spec.name}' is not a distilled student with shipped weights")
    return Path(__file__).resolve().parents[2] / spec.checkpoint.path


def student_sam(student: RepStudent, teacher_name: str = "litemedsam"):
    """SamModel = fused ``student`` encoder + the teacher's prompt encoder and mask decoder."""
    from skinscreen.export.models.build import SamModel
    from skinscreen.export.reference import load_model

    teacher = load_model(get_spec(teacher_name))
    return SamModel(student.fuse(), teacher.prompt_encoder, teacher.mask_decoder).eval()


def export_student_bundle(
    model: str,
    out_dir: Path | None = None,
    weights: Path | None = None,
    parity_images: list[Path] | None = None,
    force: bool = False,
) -> Path:
    """Export registered student ``model`` (weights: its committed file unless ``weights``) to
    an ONNX bundle, with the same parity gate and manifest as the LiteMedSAM bundle."""
    from skinscreen.export import bundle as B
    from skinscreen.export.checkpoint import file_sha256, verify_sha256
    from skinscreen.export.onnx_export import export_decoder, export_encoder, export_reprompt
    from skinscreen.export.reference import TorchReference

    spec = get_spec(model)
    wpath = Path(weights) if weights is not None else student_weights_path(spec)
    if weights is None:
        verify_sha256(wpath, spec.checkpoint.sha256)
    out = Path(out_dir).expanduser() if out_dir is not None else paths.bundle_dir(spec.name)
    B._check_target(out, force)
    cases = B.parity_cases(parity_images)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    student, meta = load_student_weights(wpath)
    net = student_sam(student, meta.get("teacher", "litemedsam"))
    ref = TorchReference(spec, model=net, threads=None)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        enc = export_encoder(net, spec, tmp / "encoder.onnx")
        dec = export_decoder(net, spec, tmp / "decoder.onnx")
        fast = {part: tmp / name for part, name in B.REPROMPT_FILES.items()}
        export_reprompt(net, spec, fast["prelude"], fast["prompt_decoder"])
        rep = B.run_parity(spec, ref, enc, dec, cases, fast)
        B.check_parity(rep)
        manifest = B.build_manifest(spec, tmp, rep, wpath, file_sha256(wpath))
        manifest["student"] = {k: meta[k] for k in sorted(meta)}
        (tmp / B.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        write_card(tmp, spec.name)  # MODEL_CARD.md (skinscreen.modelcard)
        B._swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
