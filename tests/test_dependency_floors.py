"""The dependency-floor check (scripts/check_floors.py, also run by make test) passes here and
flags a floor below a known fix."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location(
        "check_floors", ROOT / "scripts" / "check_floors.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_floors_and_lock_are_at_or_above_the_known_fixes():
    assert _module().problems() == []


def test_a_floor_below_a_fix_is_flagged(tmp_path):
    mod = _module()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["Pillow>=10.3", "h11"]\n'
        '[project.optional-dependencies]\nweb = ["python-multipart>=0.0.9"]\n'
    )
    (tmp_path / "requirements.lock").write_text("starlette==0.40.0 \\\n    --hash=sha256:00\n")
    mod.ROOT = tmp_path
    found = "\n".join(mod.problems())
    assert "pillow: 'Pillow>=10.3' allows versions below" in found
    assert "h11: 'h11' allows versions below" in found
    assert "python-multipart" in found and "starlette: not declared" in found
    assert "requirements.lock pins 0.40.0" in found


def test_no_torch_load_without_weights_only():
    for path in (ROOT / "src").rglob("*.py"):
        text = path.read_text()
        assert "weights_only=False" not in text, path
