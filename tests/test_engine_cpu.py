"""The CPU class: one pure classifier of CPU flags, and the per-class variant rule of the runtime
(the fastest variant whose accuracy gate holds on this CPU class), on hand-made manifests."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from skinscreen.engine.cpu import CLASSES, cpu_class, cpu_info, cpu_line, read_flags
from skinscreen.engine.select import choose_engine, cpu_default, gated_on

# flags as /proc/cpuinfo lists them (trimmed)
ZEN3 = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi2"  # AMD EPYC 7003: AVX2 only
SKYLAKE_SP = ZEN3 + " avx512f avx512bw avx512vl avx512cd avx512dq"
CASCADE_LAKE = SKYLAKE_SP + " avx512_vnni"
ZEN4 = CASCADE_LAKE + " avx512_bf16 avx512_vbmi2"  # this dev machine's class
SAPPHIRE_RAPIDS = CASCADE_LAKE + " amx_bf16 amx_int8 amx_tile avx512_fp16"


@pytest.mark.parametrize(
    ("flags", "machine", "want"),
    [
        (ZEN3, "x86_64", "avx2"),
        (SKYLAKE_SP, "x86_64", "avx512"),
        (CASCADE_LAKE, "x86_64", "avx512-vnni"),
        (ZEN4, "x86_64", "avx512-bf16"),
        (SAPPHIRE_RAPIDS, "AMD64", "avx512-bf16"),
        ("fpu sse sse2 avx", "x86_64", "x86-64"),
        ("fp asimd asimddp i8mm bf16", "aarch64", "arm64"),
        ("", "arm64", "arm64"),  # macOS: no /proc/cpuinfo
    ],
)
def test_cpu_class_from_flags(flags, machine, want):
    assert cpu_class(set(flags.split()), machine) == want
    assert want in CLASSES


def test_read_flags_x86_and_arm():
    x86 = f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {ZEN3}\n\nprocessor\t: 1\n"
    assert read_flags(x86) == frozenset(ZEN3.split())
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\n"
    assert read_flags(arm) == {"fp", "asimd", "asimddp"}
    assert read_flags("") == frozenset()


def test_this_machine_is_classified():
    info = cpu_info()
    assert info["isa"] in CLASSES or info["isa"] == info["machine"].lower()
    assert set(info["flags"]) <= set(info["flags"])  # sorted, only the flags that matter
    assert cpu_line(info).startswith(f"CPU {info['isa']} (")


def _gate(passed: bool, isa: str | None, checked: list[str] | None = None) -> dict:
    g = {"passed": passed, "forced": False, "reason": "figures"}
    if isa is not None:
        g.update({"isa": isa, "cpu_flags": [], "isa_checked": checked or [isa]})
    return {"gate": g}


def _manifest(int8_gate: dict | None, default: str = "onnx-int8") -> dict:
    variants = {"onnx-fp32": {"format": "onnx", "precision": "fp32", "accuracy": _gate(1, "avx2")}}
    if int8_gate is not None:
        variants["onnx-int8"] = {"format": "onnx", "precision": "int8", "accuracy": int8_gate}
    variants["onnx-int8w"] = {"format": "onnx", "precision": "int8w", "accuracy": _gate(1, None)}
    return {"model": "litemedsam", "default_variant": default, "variants": variants}


X86_ALL = ["avx512-bf16", "avx512-vnni", "avx512", "avx2", "x86-64"]


def test_int8_gated_on_another_class_is_refused_with_the_command_to_gate_it():
    m = _manifest(_gate(True, "avx512-vnni"))
    key, why, refused = cpu_default(m, "avx512-vnni")
    assert key == "onnx-int8" and "this CPU class" in why
    key, why, refused = cpu_default(m, "avx2")  # the same bundle copied to an AVX2 machine
    assert key == "onnx-fp32"
    assert "gated on avx512-vnni, not on this CPU class (avx2)" in refused["onnx-int8"]
    assert (
        "skinscreen export --model litemedsam --format onnx --precision int8"
        in (refused["onnx-int8"])
    )


def test_isa_exact_int8_recipe_holds_on_every_x86_class_but_not_arm():
    m = _manifest(_gate(True, "avx512-bf16", X86_ALL))
    for isa in X86_ALL:
        assert cpu_default(m, isa)[0] == "onnx-int8", isa
    key, _, refused = cpu_default(m, "arm64")
    assert key == "onnx-fp32" and "x86 only" in refused["onnx-int8"]


def test_refused_and_legacy_gates():
    failed = _manifest(_gate(False, "avx2"))
    failed["gate"] = {"rejected": {"ort-int8": {"gate": {"isa": "avx2", "reason": "mean 0.94"}}}}
    key, _, refused = cpu_default(failed, "avx2")
    assert key == "onnx-fp32" and "accuracy gate failed" in refused["onnx-int8"]
    assert "refused at export on avx2: mean 0.94" == refused["ort-int8"]
    legacy = _manifest(_gate(True, None))  # exported before gates recorded the CPU class
    key, _, refused = cpu_default(legacy, "avx2")
    assert key == "onnx-fp32" and "unrecorded CPU class" in refused["onnx-int8"]
    key, why, _ = cpu_default(legacy, "avx512-vnni")  # VNNI: exact int32 sums
    assert key == "onnx-int8" and "exact on avx512-vnni" in why
    # float arithmetic: a gate holds on every class, recorded or not
    assert gated_on(legacy["variants"]["onnx-int8w"], "arm64").ok
    assert gated_on(legacy["variants"]["onnx-fp32"], "arm64").ok


def test_choose_engine_uses_the_cpu_class_rule():
    m = _manifest(_gate(True, "avx512-vnni"))
    facts = {"openvino_available": False, "cpu_bf16": False}
    assert choose_engine(m, **facts).variant == "onnx-int8"  # no class given: the manifest's
    c = choose_engine(m, isa="avx2", **facts)
    assert c.variant == "onnx-fp32" and "gate holds on avx2" in c.reason
    assert "not onnx-int8" in c.reason
    assert choose_engine(m, isa="avx512-vnni", **facts).variant == "onnx-int8"
    # an explicit variant is the caller's choice on any CPU
    assert choose_engine(m, isa="avx2", variant="onnx-int8", **facts).variant == "onnx-int8"


def test_models_cli_says_what_this_cpu_runs(tmp_path):
    root = tmp_path / "bundles" / "litemedsam"
    root.mkdir(parents=True)
    m = _manifest(_gate(True, "an-other-class"))
    m["variants"]["onnx-fp32"]["files"] = {}
    m["variants"]["onnx-int8"]["files"] = {}
    m["variants"]["onnx-int8w"]["files"] = {}
    (root / "manifest.json").write_text(json.dumps(m))
    env = {"SKINSCREEN_HOME": str(tmp_path), "SKINSCREEN_ENGINE": "onnxruntime"}
    import os

    r = subprocess.run(
        [sys.executable, "-m", "skinscreen", "models", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert r.returncode == 0, r.stderr
    this = json.loads(r.stdout)["bundles"]["litemedsam"]["this_cpu"]
    assert this["isa"] == cpu_info()["isa"] and this["flags"] == cpu_info()["flags"]
    assert this["variant"] == "onnx-fp32" and this["engine"] == "onnxruntime"
    assert "gated on an-other-class" in this["refused"]["onnx-int8"]
    assert f"--out {root}" in this["refused"]["onnx-int8"]


def test_bench_tables_name_the_cpu_class():
    from skinscreen.bench.runner import markdown_table

    table = markdown_table({"cpu": cpu_info(), "pipelines": {}})
    assert table.splitlines()[0] == cpu_line(cpu_info())
