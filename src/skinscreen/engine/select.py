"""Which inference engine runs a bundle: ONNX Runtime or OpenVINO.

``engine="auto"`` (the default) picks OpenVINO bf16 only when all three hold:

1. the ``openvino`` package is importable (``pip install "skinscreen[fast]"``),
2. the bundle's manifest has an ``openvino-bf16`` variant whose accuracy gate passed (measured at
   export against the fp32 PyTorch model, not forced), and
3. OpenVINO's CPU plugin reports native bf16 on this CPU (AVX512-BF16 or AMX).

Otherwise it runs the manifest's ``default_variant`` in ONNX Runtime. An explicit ``variant``
decides the engine by its format (``openvino-*`` -> OpenVINO, anything else -> ONNX Runtime).
``engine="openvino"`` asks for OpenVINO explicitly: the gated ``openvino-bf16`` variant on a bf16
CPU, else the ``onnx-fp32`` files at fp32 (``variant="openvino-bf16"`` runs bf16 even when its gate
failed and it was written with ``--force``, like any explicitly chosen variant).
``engine="onnxruntime"`` never uses OpenVINO.

:func:`choose_engine` is pure (every fact is an argument); :func:`open_for_engine` gathers the
facts, checking the CPU only when the answer depends on it (importing openvino costs ~0.2 s).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skinscreen.engine.bundle import Bundle, open_bundle, verify_files
from skinscreen.engine.cpu import cpu_info
from skinscreen.errors import BundleError, MissingExtraError, SkinscreenError

ENGINES = ("auto", "onnxruntime", "openvino")
ENGINE_ENV = "SKINSCREEN_ENGINE"
OPENVINO_VARIANT = "openvino-bf16"
OPENVINO_FP32_FALLBACK = "onnx-fp32"


@dataclass(frozen=True)
class EngineChoice:
    """The engine and variant a predictor runs.

    Attributes:
        engine: ``"onnxruntime"`` or ``"openvino"``.
        variant: manifest variant key whose files are loaded.
        precision: the variant's precision (``"fp32"``, ``"int8"``, ``"fp16"``, ``"bf16"``;
            ``"int8w"``: int8 weight storage, float32 arithmetic; ``"int8w16"``: the same with
            float16 convolution weights).
        reason: one line saying why (shown by ``skinscreen models`` and in bench output).
    """

    engine: str
    variant: str
    precision: str
    reason: str

    @property
    def label(self) -> str:
        """``"openvino-bf16"``, ``"onnxruntime onnx-int8"``: engine and precision in one word."""
        if self.engine == "openvino":
            return f"openvino-{self.precision}"
        return f"onnxruntime {self.variant}"


def default_engine() -> str:
    """``$SKINSCREEN_ENGINE`` or ``"auto"``."""
    return os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"


def gate_passed(variant_info: dict) -> bool:
    """True when the variant's accuracy gate passed without ``--force``."""
    gate = variant_info.get("accuracy", {}).get("gate", {})
    return bool(gate.get("passed", False)) and not gate.get("forced", False)


def _is_openvino(variant_info: dict) -> bool:
    return variant_info.get("engine") == "openvino" or variant_info.get("format") == "openvino"


# Fastest first on x86 CPUs (BENCHMARKS.md); the export's CPU default follows the same order.
CPU_PREFERENCE = (
    "onnx-int8",
    "ort-int8",
    "onnx-fp32",
    "ort-fp32",
    "onnx-int8w",  # fp32 arithmetic plus a DequantizeLinear per weight: for size, not speed
    "ort-int8w",
    "onnx-int8w16",
    "ort-int8w16",
    "onnx-fp16",
    "ort-fp16",
)
X86_CLASSES = ("avx512-bf16", "avx512-vnni", "avx512", "avx2", "x86-64")
VNNI_CLASSES = ("avx512-bf16", "avx512-vnni")  # u8 x s8 dot products summed exactly in int32
# precisions whose arithmetic is float (fp32 / fp16 storage): one gate holds on every CPU class
FLOAT_PRECISIONS = ("fp32", "fp16", "int8w", "int8w16")


@dataclass(frozen=True)
class CpuVerdict:
    """Whether a variant's gate result holds on a CPU class (:func:`gated_on`)."""

    ok: bool
    reason: str


def regate_command(manifest: dict, key: str, root: str | Path | None = None) -> str:
    """The command that rebuilds variant ``key`` and gates it on this machine's CPU."""
    fmt, _, precision = key.partition("-")
    out = f" --out {root}" if root is not None else ""
    which = "--format openvino" if fmt == "openvino" else f"--format {fmt} --precision {precision}"
    return f"skinscreen export --model {manifest.get('model', 'litemedsam')} {which}{out}"


def gated_on(info: dict, isa: str) -> CpuVerdict:
    """Does variant ``info``'s accuracy gate hold on CPU class ``isa``
    (:func:`skinscreen.engine.cpu.cpu_class`)?

    Yes when it passed (not forced) and: its arithmetic is float (:data:`FLOAT_PRECISIONS`:
    rounding differs by ISA only in summation order), or it was measured on ``isa``, or
    ``isa`` is among the classes its recipe is exact on (``gate.isa_checked``, e.g. the 7-bit
    INT8 recipe on every x86 class). A gate without a recorded class (bundles exported before
    ``isa``) holds for float variants, ``openvino-bf16`` (whose native-bf16 check is made at run
    time) and, on VNNI classes only, INT8.
    """
    gate = info.get("accuracy", {}).get("gate")
    precision = info.get("precision", "fp32")
    if gate is None:
        return CpuVerdict(True, "no gate record")
    if not gate.get("passed", False) or gate.get("forced", False):
        return CpuVerdict(False, f"accuracy gate failed: {gate.get('reason', '?')}")
    on = gate.get("isa")
    if precision in FLOAT_PRECISIONS:
        return CpuVerdict(True, f"gate passed{f' on {on}' if on else ''} (float arithmetic)")
    if on == isa:
        return CpuVerdict(True, f"gate passed on this CPU class ({isa})")
    if isa in gate.get("isa_checked", ()):
        return CpuVerdict(
            True, f"gate passed on {on}; its integer arithmetic is exact on {isa} as well"
        )
    if on is None:
        if precision == "bf16":
            return CpuVerdict(True, "gate passed (CPU class not recorded)")
        if precision == "int8" and isa in VNNI_CLASSES:
            # exported before isa records (full-range int8 weights): VNNI kernels add u8 x s8
            # products exactly in int32, so this CPU computes the exact integer results
            return CpuVerdict(
                True, f"gate passed on an unrecorded CPU class; INT8 is exact on {isa} (VNNI)"
            )
        return CpuVerdict(False, "gated on an unrecorded CPU class (exported before isa records)")
    where = "x86 only" if on in X86_CLASSES and isa == "arm64" else on
    return CpuVerdict(False, f"gated on {where}, not on this CPU class ({isa})")


def cpu_default(
    manifest: dict, isa: str, preference: tuple[str, ...] = CPU_PREFERENCE
) -> tuple[str, str, dict[str, str]]:
    """(variant, reason, refused) for a CPU of class ``isa``: the first variant of
    ``preference`` in the bundle whose gate holds on that class (:func:`gated_on`), else
    ``onnx-fp32``. ``refused``: ``{variant: why}`` for the faster ones passed over, and for
    the variants the gate refused at export (``manifest["gate"]["rejected"]``)."""
    variants = manifest["variants"]
    refused: dict[str, str] = {}
    for k, acc in (manifest.get("gate", {}).get("rejected") or {}).items():
        g = acc.get("gate", {})
        refused[k] = f"refused at export on {g.get('isa', '?')}: {g.get('reason', '?')}"
    for key in preference:
        if key not in variants:
            continue
        v = gated_on(variants[key], isa)
        if v.ok:
            why = f"{key}: fastest variant whose gate holds on {isa}; {v.reason}"
            skipped = [k for k in preference if k in refused]
            if skipped:
                why += f"; not {', '.join(skipped)} (see skinscreen models)"
            return key, why, refused
        refused[key] = f"{v.reason}; to gate it here: {regate_command(manifest, key)}"
    return "onnx-fp32", f"onnx-fp32: no faster variant gated on {isa}", refused


def choose_engine(
    manifest: dict,
    *,
    variant: str | None = None,
    engine: str = "auto",
    openvino_available: bool,
    cpu_bf16: bool | Callable[[], bool],
    isa: str | None = None,
) -> EngineChoice:
    """Decide engine and variant from explicit facts (no imports, no model runs).

    Args:
        manifest: the bundle's ``manifest.json`` dict.
        variant: variant the caller asked for (None: let the engine rule decide).
        engine: ``auto``, ``onnxruntime`` or ``openvino``.
        openvino_available: whether ``import openvino`` would work.
        cpu_bf16: whether the CPU has native bf16 (or a callable asked only when needed).
        isa: this CPU's class (:func:`skinscreen.engine.cpu.cpu_class`): the ONNX Runtime
            default is then the fastest variant gated on that class (:func:`cpu_default`)
            instead of the manifest's ``default_variant`` (the exporting machine's).

    Raises :class:`SkinscreenError` for impossible requests (unknown engine, an OpenVINO variant
    with ``engine="onnxruntime"``, an INT8/FP16 variant with ``engine="openvino"``) and
    :class:`MissingExtraError` when OpenVINO is asked for but not installed.
    """
    if engine not in ENGINES:
        raise SkinscreenError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    variants = manifest["variants"]
    if variant is not None and variant not in variants:
        raise BundleError(f"bundle has no variant {variant!r}; available: {', '.join(variants)}")

    def bf16() -> bool:
        return bool(cpu_bf16() if callable(cpu_bf16) else cpu_bf16)

    def ort(key: str, reason: str) -> EngineChoice:
        return EngineChoice("onnxruntime", key, variants[key].get("precision", "fp32"), reason)

    def ov(key: str, reason: str) -> EngineChoice:
        precision = "bf16" if _is_openvino(variants[key]) else "fp32"
        return EngineChoice("openvino", key, precision, reason)

    default = manifest["default_variant"]
    why_default = ""
    if isa is not None:
        default, why_default, _ = cpu_default(manifest, isa)
        why_default = f" ({why_default})"
    if engine == "onnxruntime":
        key = variant or default
        if _is_openvino(variants[key]):
            raise SkinscreenError(
                f"variant {key} runs only in OpenVINO: drop --engine onnxruntime or pick another "
                "--variant"
            )
        return ort(key, "engine onnxruntime requested" + ("" if variant else why_default))

    if engine == "openvino":
        if not openvino_available:
            raise MissingExtraError("fast", "--engine openvino")
        if variant is not None:
            info = variants[variant]
            if _is_openvino(info):
                if not bf16():
                    raise SkinscreenError(
                        f"variant {variant} needs a CPU with native bf16 (AVX512-BF16 or AMX); "
                        "use --variant onnx-fp32 --engine openvino for fp32"
                    )
                return ov(variant, "engine openvino requested")
            if info.get("format", "onnx") == "onnx" and info.get("precision") == "fp32":
                return ov(variant, "engine openvino requested (fp32 files run at fp32)")
            raise SkinscreenError(
                f"engine openvino runs {OPENVINO_VARIANT} or {OPENVINO_FP32_FALLBACK}, not "
                f"{variant}: drop --variant or use --engine onnxruntime"
            )
        info = variants.get(OPENVINO_VARIANT)
        if info is not None and gate_passed(info) and bf16():
            return ov(OPENVINO_VARIANT, "engine openvino requested; CPU has bf16, gate passed")
        if OPENVINO_FP32_FALLBACK not in variants:
            raise BundleError(f"bundle has no {OPENVINO_FP32_FALLBACK} files for OpenVINO")
        if info is None:
            why = f"no {OPENVINO_VARIANT} variant"
        elif not gate_passed(info):
            why = f"{OPENVINO_VARIANT} did not pass the accuracy gate"
        else:
            why = "this CPU has no native bf16"
        return ov(OPENVINO_FP32_FALLBACK, f"engine openvino requested; {why}: fp32")

    # auto
    if variant is not None:
        if _is_openvino(variants[variant]):
            if not openvino_available:
                raise MissingExtraError("fast", f"variant {variant}")
            if not bf16():
                raise SkinscreenError(
                    f"variant {variant} needs a CPU with native bf16 (AVX512-BF16 or AMX); pick "
                    "another --variant"
                )
            return ov(variant, f"variant {variant} requested")
        return ort(variant, f"variant {variant} requested")
    info = variants.get(OPENVINO_VARIANT)
    if info is None:
        return ort(default, f"bundle has no {OPENVINO_VARIANT} variant{why_default}")
    if not gate_passed(info):
        return ort(default, f"{OPENVINO_VARIANT} did not pass the accuracy gate{why_default}")
    if not openvino_available:
        return ort(
            default, f'openvino is not installed (pip install "skinscreen[fast]"){why_default}'
        )
    if not bf16():
        return ort(default, f"this CPU has no native bf16{why_default}")
    return ov(OPENVINO_VARIANT, "openvino installed, CPU has bf16, gate passed")


def open_for_engine(
    model: str | None = "litemedsam",
    *,
    root: str | Path | None = None,
    variant: str | None = None,
    engine: str | None = None,
    build_if_missing: bool = True,
) -> tuple[Bundle, EngineChoice]:
    """Open (and sha256-verify) the bundle files of the variant the engine rule picks."""
    from skinscreen.engine import openvino as ovmod

    engine = engine or default_engine()
    first = open_bundle(
        model, root=root, variant=variant, build_if_missing=build_if_missing, verify=False
    )
    choice = choose_engine(
        first.manifest,
        variant=variant,
        engine=engine,
        openvino_available=ovmod.openvino_available(),
        cpu_bf16=ovmod.cpu_supports_bf16,
        isa=cpu_info()["isa"],
    )
    verify_files(first.root, first.manifest, choice.variant)
    return Bundle(root=first.root, manifest=first.manifest, variant=choice.variant), choice


def choice_for_bundle(bundle: Bundle, engine: str | None = None) -> EngineChoice:
    """The engine for an already opened bundle (its variant is fixed)."""
    from skinscreen.engine import openvino as ovmod

    return choose_engine(
        bundle.manifest,
        variant=bundle.variant,
        engine=engine or default_engine(),
        openvino_available=ovmod.openvino_available(),
        cpu_bf16=ovmod.cpu_supports_bf16,
    )


def reprompt_paths(bundle: Bundle) -> dict[str, Path]:
    """The variant's re-prompt pair as ``{"prelude_path": ..., "prompt_decoder_path": ...}``, or
    ``{}`` for bundles without it (written before it existed; ORT-format/CoreML variants)."""
    files = bundle.variant_info["files"]
    if "prelude" in files and "prompt_decoder" in files:
        return {
            "prelude_path": bundle.file("prelude"),
            "prompt_decoder_path": bundle.file("prompt_decoder"),
        }
    return {}


def make_engine(
    bundle: Bundle,
    choice: EngineChoice,
    threads: int | None = None,
    *,
    reprompt: bool = False,
    decoder_only: bool = False,
):
    """Create the engine for ``choice`` on ``bundle``'s files: encoder, decoder and, with
    ``reprompt`` and when the variant lists them, the re-prompt pair (two more graphs in memory
    and a prelude per photo: worth it where boxes change on one photo, not for one mask).
    ``decoder_only``: load the decoder alone (a second decoder on another model's embeddings,
    e.g. the box check; its ``encode`` raises)."""
    enc = None if decoder_only else bundle.file("encoder")
    dec = bundle.file("decoder")
    fast = reprompt_paths(bundle) if reprompt else {}
    if choice.engine == "openvino":
        from skinscreen.engine.openvino import OpenVinoEngine

        return OpenVinoEngine(enc, dec, threads=threads, precision=choice.precision, **fast)
    from skinscreen.engine.onnx import OnnxEngine

    config = bundle.manifest["variants"][bundle.variant].get("onnxruntime_session_config")
    return OnnxEngine(enc, dec, threads=threads, session_config=config, **fast)
