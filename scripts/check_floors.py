"""Flag dependency floors below a known security fix (run by ``make test``; exit 1 when any).

For every package of :data:`KNOWN_FIXES` that pyproject.toml declares (or must declare: the
transitive web stack is declared directly so that its floor is ours), the lowest version the
declared specifier allows must be at or above the fixed version; every pin in requirements.lock
must be too. Add a row when an advisory appears: ``package: (fixed version, advisory)``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# package -> (first fixed version, advisory); "required": must be declared in pyproject.toml
KNOWN_FIXES: dict[str, tuple[str, str, bool]] = {
    "python-multipart": (
        "0.0.22",
        "CVE-2024-53981 (0.0.18, multipart DoS), CVE-2026-24486 (0.0.22, file path)",
        True,
    ),
    "starlette": (
        "0.49.1",
        "CVE-2025-54121 (0.47.2), CVE-2025-62727 (0.49.1, Range header DoS)",
        True,
    ),
    "pillow": ("12.1.1", "CVE-2025-48379 (11.3.0, DDS), CVE-2026-25990 (12.1.1, PSD write)", True),
    "h11": ("0.16.0", "CVE-2025-43859 (request smuggling)", True),
    "protobuf": ("6.31.1", "CVE-2025-4565 (recursion DoS in the Python parser)", True),
    "torch": ("2.6.0", "CVE-2025-32434 (torch.load RCE even with weights_only=True)", False),
    "onnx": ("1.16.0", "CVE-2024-27318/27319 (external-data path traversal)", False),
    "fastapi": ("0.109.1", "CVE-2024-24762 (form parsing ReDoS)", False),
    "setuptools": ("78.1.1", "CVE-2025-47273 (path traversal in PackageIndex)", False),
}


def _floor(req: Requirement) -> Version | None:
    """Lowest version the specifier allows (None: unbounded below)."""
    lows = [
        Version(s.version.split("+")[0])
        for s in req.specifier
        if s.operator in (">=", "==", "~=", ">", "===")
    ]
    return max(lows) if lows else None


def declared() -> dict[str, list[Requirement]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lines = list(data["project"].get("dependencies", []))
    for extra in data["project"].get("optional-dependencies", {}).values():
        lines += extra
    lines += data.get("build-system", {}).get("requires", [])
    out: dict[str, list[Requirement]] = {}
    for line in lines:
        r = Requirement(line)
        out.setdefault(r.name.lower().replace("_", "-"), []).append(r)
    return out


def locked() -> dict[str, Version]:
    p = ROOT / "requirements.lock"
    if not p.is_file():
        return {}
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", p.read_text(), flags=re.M)
    return {n.lower().replace("_", "-"): Version(v.split("+")[0]) for n, v in pins}


def problems() -> list[str]:
    decl, lock = declared(), locked()
    out = []
    for name, (fixed, advisory, required) in KNOWN_FIXES.items():
        fix = Version(fixed)
        reqs = decl.get(name, [])
        if not reqs and required:
            out.append(
                f"{name}: not declared in pyproject.toml; declare it with >={fixed} ({advisory})"
            )
        for r in reqs:
            low = _floor(r)
            if low is None or low < fix:
                out.append(f"{name}: '{r}' allows versions below {fixed} ({advisory})")
        if name in lock and lock[name] < fix:
            out.append(
                f"{name}: requirements.lock pins {lock[name]} < {fixed} ({advisory}); run make lock"
            )
    return out


def main() -> int:
    found = problems()
    for line in found:
        print(f"dependency floor: {line}", file=sys.stderr)
    if not found:
        print(f"dependency floors: ok ({len(KNOWN_FIXES)} advisories checked)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
