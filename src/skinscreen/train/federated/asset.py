"""The result of a federated run: round checkpoints, and the fine-tuned decoder asset with its
provenance, registered as a model like ``litemedsam-boxaug`` and exported through the same
bundle path and parity gates (:func:`skinscreen.export.bundle.export_bundle`).

Files in a run folder::

    checkpoint.safetensors   global parameters after the last finished round (float32)
    checkpoint.json          {"round": r, "history": [...]} (written after the weights)
    decoder.safetensors      prompt encoder + mask decoder as deltas to the base model, in the
                             packaged format of litemedsam-boxaug (int8 rows x float32 scale,
                             vectors float16; skinscreen.export.checkpoint.read_override)
    provenance.json          sites, photo counts, rounds, strategy, DP settings, history
    spec.json                the model spec (name, decoder_weights path and sha256)
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from skinscreen.errors import SkinscreenError


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _save_tensors(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.numpy import save_file

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp), metadata)
    os.replace(tmp, path)


def save_checkpoint_state(out: Path, rnd: int, history: list, params: dict) -> None:
    """Checkpoint after round ``rnd``: weights first, then the JSON that points at them."""
    _save_tensors(out / "checkpoint.safetensors", params, {"round": str(rnd)})
    _atomic_write_text(
        out / "checkpoint.json", json.dumps({"round": rnd, "history": history}, indent=1) + "\n"
    )


def load_checkpoint_state(out: Path) -> dict | None:
    """The last checkpoint in ``out`` (``round``, ``history``, ``params``), or None."""
    from safetensors.numpy import load_file

    j, w = out / "checkpoint.json", out / "checkpoint.safetensors"
    if not (j.is_file() and w.is_file()):
        return None
    state = json.loads(j.read_text(encoding="utf-8"))
    params = load_file(str(w))
    return {"round": int(state["round"]), "history": state["history"], "params": params}


def encode_deltas(params: dict, base: dict) -> dict[str, np.ndarray]:
    """``params - base`` in the packaged delta format: a tensor of 2 or more dims as int8 per
    output row with ``<name>.delta_scale`` (float32, max |delta| / 127 per row), a vector as
    float16. Unchanged tensors are left out."""
    out: dict[str, np.ndarray] = {}
    for k, v in params.items():
        d = np.asarray(v, np.float32) - np.asarray(base[k], np.float32)
        if not np.any(d):
            continue
        if d.ndim >= 2:
            rows = d.reshape(d.shape[0], -1)
            scale = np.abs(rows).max(1) / 127.0
            safe = np.where(scale > 0, scale, 1.0)
            q = np.clip(np.rint(rows / safe[:, None]), -127, 127).astype(np.int8)
            out[k] = q.reshape(d.shape)
            out[f"{k}.delta_scale"] = scale.astype(np.float32)
        else:
            out[k] = d.astype(np.float16)
    return out


def write_asset(out: Path, params: dict, base: dict, provenance: dict) -> Path:
    """Write ``decoder.safetensors`` (deltas), ``provenance.json`` and ``spec.json`` in ``out``."""
    from skinscreen.export.checkpoint import file_sha256

    out = Path(out)
    deltas = encode_deltas(params, base)
    path = out / "decoder.safetensors"
    _save_tensors(path, deltas, {"provenance": json.dumps(_short(provenance))})
    provenance = dict(provenance, decoder_sha256=file_sha256(path))
    _atomic_write_text(out / "provenance.json", json.dumps(provenance, indent=1) + "\n")
    return path


def _short(p: dict) -> dict:
    return {k: v for k, v in p.items() if k != "history"}


def federated_spec(run_dir: Path, name: str = "litemedsam-fed"):
    """The :class:`~skinscreen.spec.ModelSpec` of a federated run's decoder: the base model
    with its prompt encoder and mask decoder replaced by the run's (pinned by sha256)."""
    from skinscreen.export.checkpoint import file_sha256
    from skinscreen.spec import get_spec

    run_dir = Path(run_dir).resolve()
    p = run_dir / "decoder.safetensors"
    prov_path = run_dir / "provenance.json"
    if not (p.is_file() and prov_path.is_file()):
        raise SkinscreenError(
            f"{run_dir}: no decoder.safetensors + provenance.json (run skinscreen federate "
            "simulate/server with --out there first)"
        )
    prov = json.loads(prov_path.read_text(encoding="utf-8"))
    base = get_spec(prov["base_model"])
    dp = prov.get("dp")
    dp_txt = (
        f"site-level DP epsilon {dp['epsilon_total']:g} over {prov['rounds']} rounds"
        if dp
        else "no DP"
    )
    return replace(
        base,
        name=name,
        description=(
            f"{base.name} with its prompt encoder and mask decoder fine-tuned by federated "
            f"learning ({prov['strategy']}, {prov['rounds']} rounds, "
            f"{len(prov.get('site_photos') or [])} sites, {dp_txt}); same encoder."
        ),
        default=False,
        extra={
            "decoder_weights": {
                "path": str(p),
                "sha256": file_sha256(p),
                "licence": (
                    f"{base.checkpoint.licence} base; the fine-tuned parts were learned from "
                    "the participating sites' photos: their licences apply"
                ),
                "provenance": json.dumps(_short(prov)),
            },
            "localiser": base.extra.get("localiser", base.name),
            "federated": _short(prov),
        },
    )


def register_run(run_dir: Path, name: str = "litemedsam-fed"):
    """Register the run's model spec: in this process, and on this machine
    (:func:`skinscreen.spec.local_spec_path`, so the runtime finds the exported bundle's model);
    also written as the run's ``spec.json``."""
    from skinscreen.spec import REGISTRY, local_spec_path, register

    if name in REGISTRY and "federated" not in REGISTRY[name].extra:
        raise SkinscreenError(f"{name} is a built-in model name: choose another --name")
    spec = federated_spec(run_dir, name)
    register(spec)
    text = json.dumps(spec.to_dict(), indent=1) + "\n"
    _atomic_write_text(Path(run_dir) / "spec.json", text)
    dest = local_spec_path(name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(dest, text)
    return spec
