"""The CPU class a variant was gated on and the one it runs on.

INT8 and bf16 arithmetic differ by instruction set (ONNX Runtime's x86 u8 x s8 kernels saturate
in int16 without VNNI; bf16 is native only with AVX512-BF16 or AMX), so a gate result holds for
the CPU class it was measured on. :func:`cpu_class` is the one definition of that class;
:func:`cpu_info` reads this machine's flags once.

Classes (fastest ISA first): ``avx512-bf16`` (AVX512-BF16 or AMX-BF16), ``avx512-vnni``,
``avx512`` (AVX-512 without VNNI), ``avx2`` (AVX2 + FMA), ``x86-64`` (older x86), ``arm64``
(aarch64: Apple Silicon, Graviton, phones), else the machine name.
"""

from __future__ import annotations

import contextlib
import platform
from functools import cache
from pathlib import Path

# flags that decide the class or the kernels ONNX Runtime / OpenVINO pick (what the manifest keeps)
X86_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
    "avx512_fp16",
)
ARM_FLAGS = ("asimd", "asimddp", "i8mm", "bf16", "sve", "fphp", "asimdhp")
CLASSES = ("avx512-bf16", "avx512-vnni", "avx512", "avx2", "x86-64", "arm64")


def cpu_class(flags: frozenset[str] | set[str] | list[str], machine: str) -> str:
    """The CPU class of a machine from its ``/proc/cpuinfo`` ``flags`` (or ``Features`` on
    ARM) and ``platform.machine()`` (e.g. ``x86_64``, ``AMD64``, ``aarch64``, ``arm64``).

    >>> cpu_class({"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"}, "x86_64")
    'avx512-bf16'
    >>> cpu_class({"avx", "avx2", "fma", "f16c"}, "x86_64")
    'avx2'
    >>> cpu_class(set(), "arm64")
    'arm64'
    """
    m = machine.lower()
    if m in ("aarch64", "arm64", "armv8", "armv8l"):
        return "arm64"
    if m not in ("x86_64", "amd64", "x64", "i686", "i386", "x86"):
        return m or "unknown"
    f = {s.lower() for s in flags}
    if "avx512f" in f and ({"avx512_bf16", "amx_bf16"} & f):
        return "avx512-bf16"
    if "avx512f" in f and "avx512_vnni" in f:
        return "avx512-vnni"
    if "avx512f" in f:
        return "avx512"
    if "avx2" in f and "fma" in f:
        return "avx2"
    return "x86-64"


def read_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU flags in the text of ``/proc/cpuinfo`` (x86 ``flags``, ARM ``Features``)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


@cache
def cpu_info() -> dict:
    """This machine's CPU: ``{"isa", "machine", "flags", "model"}`` (``flags``: the
    :data:`X86_FLAGS` / :data:`ARM_FLAGS` it has, sorted). Linux reads ``/proc/cpuinfo``; other
    systems give the machine only (macOS arm64 -> ``arm64``; x86 without flags -> ``x86-64``)."""
    machine = platform.machine()
    text = ""
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    flags = read_flags(text)
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")),
        platform.processor() or machine,
    )
    known = ARM_FLAGS if cpu_class(flags, machine) == "arm64" else X86_FLAGS
    return {
        "isa": cpu_class(flags, machine),
        "machine": machine,
        "flags": sorted(f for f in flags if f in known),
        "model": model,
    }


def cpu_line(info: dict | None = None) -> str:
    """``"CPU avx512-bf16 (AMD EPYC ...; avx2 avx512_bf16 ...)"``: the line at the top of tables."""
    info = info or cpu_info()
    return f"CPU {info['isa']} ({info['model']}; flags {' '.join(info['flags']) or 'none read'})"
