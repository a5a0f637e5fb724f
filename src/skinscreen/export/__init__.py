"""Export side of skinscreen: PyTorch model definitions, ONNX export, parity checks, bundles.

Importing this package does not import torch; the functions below import it when called and
raise :class:`skinscreen.errors.MissingExtraError` (with the install line) when it is missing.
The runtime imports :func:`build_default_bundle` lazily, only when a bundle is absent.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def require_torch(what: str = "skinscreen export") -> None:
    """Raise MissingExtraError("export") unless torch and onnx are importable."""
    from skinscreen.errors import MissingExtraError

    for mod in ("torch", "onnx"):
        if importlib.util.find_spec(mod) is None:
            raise MissingExtraError("export", what)


def export_bundle(
    model: str = "litemedsam",
    out_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    parity_images: list[Path] | None = None,
    force: bool = False,
) -> Path:
    """Build the ONNX bundle of ``model`` (see :func:`skinscreen.export.bundle.export_bundle`)."""
    require_torch()
    from skinscreen.export.bundle import export_bundle as _export

    return _export(
        model=model,
        out_dir=out_dir,
        checkpoint=checkpoint,
        parity_images=parity_images,
        force=force,
    )


def build_default_bundle(model: str = "litemedsam", out_dir: str | Path | None = None) -> Path:
    """Export the bundle of ``model`` to ``out_dir`` (default ``paths.bundle_dir(model)``).

    For models whose weights ship with an installed package (LiteMedSAM); others need
    ``skinscreen export --model NAME --checkpoint PATH``.
    """
    require_torch(f"building the '{model}' model bundle")
    return export_bundle(model=model, out_dir=out_dir)


__all__ = ["build_default_bundle", "export_bundle", "require_torch"]
