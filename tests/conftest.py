"""Shared fixtures: the sample photos in examples/, the shared data sets, and one predictor."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Every test (and every CLI child process) runs ONNX Runtime unless it asks for an engine, so
# figures do not depend on whether this machine's bundle has a gated OpenVINO variant;
# tests/test_engine_openvino.py clears this to test the auto rule itself.
os.environ["SKINSCREEN_ENGINE"] = "onnxruntime"

# tests are an application of the library, as the CLI is: a missing default bundle is built on
# first use (the runtime itself never builds one: skinscreen.engine.bundle.set_bundle_builder)
from skinscreen.cli.common import build_missing_bundle  # noqa: E402
from skinscreen.engine.bundle import set_bundle_builder  # noqa: E402

set_bundle_builder(build_missing_bundle)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sample_pairs() -> list[tuple[Path, Path]]:
    """(photo, expert mask) pairs shipped in examples/ (ISIC 2017, CC0)."""
    images = sorted((EXAMPLES / "images").glob("*.jpg"))
    pairs = [(p, EXAMPLES / "masks" / f"{p.stem}.png") for p in images]
    assert pairs and all(m.exists() for _, m in pairs)
    return pairs


def shared_dir(name: str) -> Path:
    """A shared data set folder, or skip the test when it is absent (outside this workplace)."""
    d = SHARED_DATA / name
    if not (d / "images").is_dir():
        pytest.skip(f"shared data set {d} is absent (only available in the development workplace)")
    return d


@pytest.fixture(scope="session")
def predictor():
    """One LiteMedSAM predictor (ONNX Runtime, the manifest's default variant) for the whole
    session; builds the bundle if needed. Pinned to ONNX Runtime so figures do not depend on
    whether this machine's bundle has a gated OpenVINO variant (tests/test_engine_openvino.py
    covers that engine)."""
    from skinscreen.predictor import LesionPredictor

    return LesionPredictor("litemedsam", engine="onnxruntime")


@pytest.fixture(scope="session")
def sample_image() -> np.ndarray:
    from skinscreen.io.image import load_image

    return load_image(EXAMPLES / "images" / "ISIC_0012099.jpg")
