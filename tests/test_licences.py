"""Licences of the weights behind a result, and --commercial-only (real bundles, sample photos)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from skinscreen.errors import SkinscreenError
from skinscreen.predictor import LesionPredictor
from skinscreen.spec import get_spec

from .conftest import EXAMPLES

PHOTO = EXAMPLES / "images" / "ISIC_0012099.jpg"
BOX = [400, 150, 610, 450]  # tight on the lesion (the README's example)


@pytest.fixture(scope="module")
def commercial():
    return LesionPredictor("litemedsam", engine="onnxruntime", commercial_only=True)


def test_specs_say_which_weights_allow_commercial_use():
    assert get_spec("litemedsam").commercial_use
    assert get_spec("medsam-vitb").commercial_use
    for name in ("litemedsam-boxaug", "skinscreen-student-v1"):
        spec = get_spec(name)
        assert not spec.commercial_use
        assert "non-commercial" in spec.weights_licence


def test_default_outline_lists_every_weight_with_its_licence(predictor):
    predictor.set_image(PHOTO)
    seg = predictor.predict(box=BOX).to_json_dict()
    roles = [w["role"] for w in seg["weights"]]
    assert roles[0] == "model" and seg["weights"][0]["name"] == "litemedsam"
    assert seg["weights"][0]["licence"] == "Apache-2.0" and seg["weights"][0]["commercial_use"]
    if predictor.box_checker is not None:  # the default pipeline where the check bundle is built
        assert seg["box_check"] is not None
        assert roles[:2] == ["model", "box-check decoder"]
        assert set(roles[2:]) <= {"outline-quality model"}
        assert seg["weights"][1]["name"] == "litemedsam-boxaug"
        assert seg["commercial_use"] is False
    assert seg["commercial_only"] is False


def test_automatic_outline_names_the_learned_localiser(predictor):
    predictor.set_image(PHOTO)
    seg = predictor.predict()
    weights = {w["role"]: w for w in seg.to_json_dict()["weights"]}
    if seg.auto["method"].startswith("learned"):
        assert not weights["localiser"]["commercial_use"]
        assert "CC BY-NC" in weights["localiser"]["licence"]
    else:
        assert "localiser" not in weights


def test_commercial_only_runs_no_non_commercial_weights(commercial):
    assert commercial.box_checker is None
    commercial.set_image(PHOTO)
    drawn = commercial.predict(box=BOX).to_json_dict()
    auto = commercial.predict().to_json_dict()
    for seg in (drawn, auto):
        assert seg["commercial_only"] is True and seg["commercial_use"] is True
        assert [w["role"] for w in seg["weights"]] == ["model"]
        assert "box_check" not in seg
    assert auto["auto"]["method"].startswith("classical")
    assert all(c["method"] != "learned" for c in auto["auto"]["candidates"])


def test_commercial_only_refuses_non_commercial_models_and_the_box_check():
    with pytest.raises(SkinscreenError, match="non-commercial"):
        LesionPredictor("litemedsam-boxaug", commercial_only=True)
    with pytest.raises(SkinscreenError, match="exclude each other"):
        LesionPredictor("litemedsam", commercial_only=True, box_check=True)


def test_assess_cli_commercial_only_report_says_so(tmp_path):
    out = tmp_path / "report"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "skinscreen",
            "assess",
            str(PHOTO),
            "--box",
            ",".join(map(str, BOX)),
            "--commercial-only",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads((out / f"{PHOTO.stem}.json").read_text())
    seg = report["segmentation"]
    assert seg["commercial_only"] is True and seg["commercial_use"] is True
    assert [w["name"] for w in seg["weights"]] == ["litemedsam"]
    assert seg["box_check"] is None and seg["engine"] == "onnxruntime"
    page = (out / f"{PHOTO.stem}.html").read_text()
    assert "Weights and licences" in page and "commercial use allowed" in page
    assert "non-commercial use only" not in page


def test_web_api_answer_lists_the_weights_and_commercial_only(predictor):
    from fastapi.testclient import TestClient

    from skinscreen.web import WebSettings, create_app

    settings = WebSettings(bundle_dir=predictor.bundle.root, threads=2, commercial_only=True)
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/api/segment",
            files={"image": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")},
            data={"box": json.dumps(BOX), "features": "false"},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["commercial_only"] is True and body["commercial_use"] is True
    assert [w["name"] for w in body["weights"]] == ["litemedsam"]
    assert body["box_check"] is None
