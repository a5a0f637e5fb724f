"""Model bundles on disk: ``manifest.json`` plus encoder/decoder files, verified by sha256."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skinscreen import paths
from skinscreen.errors import BundleError, SkinscreenError
from skinscreen.spec import ModelSpec, get_spec

MANIFEST = "manifest.json"
# Parts a variant may list that apps can do without: the re-prompt pair (fp32, shared by every
# ONNX variant; the Python runtime runs it instead of the decoder when present).
OPTIONAL_PARTS = ("prelude", "prompt_decoder")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def bundle_path(root: str | Path, rel: object) -> Path:
    """``root / rel`` for a path written in a manifest, refused unless it names a file inside
    ``root``: relative, and no ``..`` that climbs out of the folder. (A symlink the user put in
    the folder is followed; what it holds is still checked against the manifest's sha256.)"""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        raise BundleError(f"bundle {root}: manifest file path {rel!r} is not a file name")
    norm = os.path.normpath(rel)
    if os.path.isabs(rel) or norm == ".." or norm.startswith(".." + os.sep) or norm == ".":
        raise BundleError(
            f"bundle {root}: manifest path {rel!r} points outside the bundle folder; refusing it "
            "(a bundle's files must live inside its folder)"
        )
    return Path(root) / norm


def _rebuild_hint(model: str) -> str:
    return f"rebuild it with: skinscreen export --model {model} --force"


@dataclass(frozen=True)
class Bundle:
    """A verified model bundle: its directory, manifest and the chosen variant's file paths."""

    root: Path
    manifest: dict
    variant: str

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def spec(self) -> ModelSpec:
        return get_spec(self.model)

    @property
    def box_margin(self) -> float:
        """Margin added to user boxes (fraction per side): the manifest's
        ``preprocessing.box_margin`` (filled in from the spec by :func:`read_manifest` for
        bundles written before it existed)."""
        return float(self.manifest["preprocessing"]["box_margin"])

    @property
    def variant_info(self) -> dict:
        return self.manifest["variants"][self.variant]

    def file(self, part: str) -> Path:
        """Path of ``part`` (``"encoder"`` or ``"decoder"``) in the chosen variant."""
        return bundle_path(self.root, self.variant_info["files"][part]["path"])

    def size_bytes(self, variant: str | None = None, *, optional: bool = True) -> int:
        """Bytes of a variant's files; ``optional=False`` leaves out :data:`OPTIONAL_PARTS` (what
        an app must ship)."""
        files = self.manifest["variants"][variant or self.variant]["files"]
        return sum(int(f["bytes"]) for p, f in files.items() if optional or p not in OPTIONAL_PARTS)


def read_manifest(root: str | Path) -> dict:
    """Parse ``root/manifest.json``; raises :class:`BundleError` when missing or malformed.

    A manifest written before ``preprocessing.box_margin`` existed gets the model spec's value
    (0.0 for models not in the registry), so the runtime, the web page (which is sent this
    manifest) and apps agree on the box that prompts the decoder.
    """
    p = Path(root) / MANIFEST
    if not p.is_file():
        raise BundleError(f"no model bundle at {root} (missing {MANIFEST})")
    try:
        m = json.loads(p.read_text())
        if not isinstance(m, dict) or not isinstance(m["variants"][m["default_variant"]], dict):
            raise TypeError("not a manifest object")
        if not isinstance(m.get("preprocessing", {}), dict):
            raise TypeError("preprocessing is not an object")
    except (ValueError, KeyError, TypeError, OSError, RecursionError) as e:
        raise BundleError(
            f"{p} is malformed ({e}); rebuild the bundle with skinscreen export --force"
        ) from None
    pre = m.setdefault("preprocessing", {})
    if "box_margin" not in pre:
        try:
            pre["box_margin"] = get_spec(str(m.get("model", ""))).box_margin
        except SkinscreenError:  # a model this version does not know: no margin
            pre["box_margin"] = 0.0
    return m


def verify_files(
    root: Path, manifest: dict, variant: str, parts: tuple[str, ...] | None = None
) -> None:
    """Check every file of ``variant`` (or only ``parts`` of it, e.g. ``("decoder",)``) exists
    with the recorded size and sha256."""
    model = manifest.get("model", "?")
    for part, info in manifest["variants"][variant]["files"].items():
        if parts is not None and part not in parts:
            continue
        f = bundle_path(root, info.get("path") if isinstance(info, dict) else None)
        try:
            size, digest = int(info["bytes"]), str(info["sha256"])
        except (KeyError, TypeError, ValueError):
            raise BundleError(
                f"bundle {root}: the manifest entry of {part} has no valid bytes/sha256, so it "
                f"cannot be verified; {_rebuild_hint(model)}"
            ) from None
        if not f.exists():
            raise BundleError(
                f"bundle {root}: {part} file {info['path']} is missing; {_rebuild_hint(model)}"
            )
        if f.is_dir():  # a package folder (Core ML .mlpackage): apps check it, we never load it
            continue
        if f.stat().st_size != size:
            raise BundleError(
                f"bundle {root}: {info['path']} has {f.stat().st_size} bytes, manifest says "
                f"{size}: the file was modified or truncated; {_rebuild_hint(model)}"
            )
        if sha256_file(f) != digest:
            raise BundleError(
                f"bundle {root}: sha256 mismatch for {info['path']}: the file was modified "
                f"(tampered or corrupt); {_rebuild_hint(model)}"
            )


def open_bundle(
    model: str | None = None,
    *,
    root: str | Path | None = None,
    variant: str | None = None,
    build_if_missing: bool = True,
    verify: bool = True,
) -> Bundle:
    """Find, (optionally build) and verify a bundle.

    Args:
        model: registry name; defaults to the manifest's model when ``root`` is given, else
            ``litemedsam``.
        root: bundle directory; defaults to ``skinscreen.paths.bundle_dir(model)``.
        variant: variant key (e.g. ``"onnx-fp32"``); defaults to the manifest's default.
        build_if_missing: when the default bundle is absent and the ``export`` extra (torch) is
            installed, build it now; otherwise raise with the exact command to run.
    """
    if root is None:
        model = model or "litemedsam"
        root = paths.bundle_dir(model)
        if not (Path(root) / MANIFEST).is_file():
            _build_or_explain(model, Path(root), build_if_missing)
    root = Path(root)
    manifest = read_manifest(root)
    if model is not None and manifest["model"] != model:
        raise BundleError(f"bundle {root} holds model {manifest['model']!r}, not {model!r}")
    variant = variant or manifest["default_variant"]
    if variant not in manifest["variants"]:
        raise BundleError(
            f"bundle {root} has no variant {variant!r}; available: {', '.join(manifest['variants'])}"
        )
    if verify:
        verify_files(root, manifest, variant)
    return Bundle(root=root, manifest=manifest, variant=variant)


#: ``(model, root) -> None``: builds a missing default bundle. The runtime never builds one
#: itself (building needs the lab, :mod:`skinscreen.export`, and torch); the application layer
#: installs a builder (the CLI does, see :func:`skinscreen.cli.common.build_missing_bundle`).
BundleBuilder = Callable[[str, Path], None]
_builder: BundleBuilder | None = None


def set_bundle_builder(builder: BundleBuilder | None) -> None:
    """Install the function that builds a missing default bundle on first use (None: missing
    bundles are an error naming the command that builds them)."""
    global _builder
    _builder = builder


def _build_or_explain(model: str, root: Path, build: bool) -> None:
    import importlib.util

    has_torch = importlib.util.find_spec("torch") is not None
    buildable = get_spec(model).checkpoint.kind in ("package", "repo")
    if build and has_torch and buildable and _builder is not None:
        _builder(model, root)
        return
    how = f"skinscreen export --model {model}"
    if not has_torch:
        how = f'pip install "skinscreen[export]" (torch==2.13.0), then {how}'
    raise BundleError(f"no {model} bundle at {root}: build it once with: {how}")


def list_bundles() -> list[Path]:
    """Directories under the bundles dir that hold a manifest."""
    d = paths.bundles_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if (p / MANIFEST).is_file())
