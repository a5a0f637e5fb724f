"""The web API on the real model (ONNX Runtime, real photos): answers, limits, bad input,
caching and concurrency. No mocks: every request runs the LiteMedSAM bundle."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from skinscreen import DISCLAIMER
from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_mask
from skinscreen.preprocess.transforms import box_from_mask, expand_box

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from skinscreen.web import WebSettings, create_app  # noqa: E402
from skinscreen.web.app import vendor_present  # noqa: E402
from skinscreen.web.cache import LRUCache  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "images" / "ISIC_0012099.jpg"


# -- fixtures and helpers -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def settings(predictor) -> WebSettings:
    """Serve the same verified bundle as the shared predictor, 2 ORT threads (shared machine)."""
    return WebSettings(bundle_dir=predictor.bundle.root, threads=2)


@pytest.fixture(scope="module")
def client(settings):
    app = create_app(settings)
    app.state.service.load()
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def photo_bytes() -> bytes:
    return PHOTO.read_bytes()


def expert_box(mask_path: Path, margin: float = 0.05) -> list[float]:
    truth = load_mask(mask_path)
    return [float(v) for v in expand_box(box_from_mask(truth), margin, truth.shape)]


def post(client, data: bytes | None, box: object = None, features: bool = False, name="p.jpg"):
    files = {"image": (name, data, "image/jpeg")} if data is not None else None
    form = {"features": "true" if features else "false"}
    if box is not None:
        form["box"] = box if isinstance(box, str) else json.dumps(box)
    return client.post("/api/segment", files=files, data=form)


def decode_mask(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("L")) >= 128


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but holds almost no data (a 'bomb' header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# -- status endpoints -----------------------------------------------------------------------------
def test_health_reports_model_and_disclaimer(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["model"] == "litemedsam"
    assert h["bundle_present"] is True and h["model_loaded"] is True
    assert h["disclaimer"] == DISCLAIMER
    assert h["on_device_available"] == vendor_present()


def test_models_lists_served_bundle_and_serves_its_files_read_only(client, predictor):
    models = client.get("/api/models").json()
    served = [m for m in models if m["served"]]
    assert len(served) == 1 and served[0]["name"] == "litemedsam"
    m = served[0]
    parts = {f["part"] for f in m["files"]}
    # encoder + decoder, and the re-prompt pair in bundles exported since it exists
    assert parts in ({"encoder", "decoder"}, {"encoder", "decoder", "prelude", "prompt_decoder"})
    manifest = client.get(m["manifest_url"]).json()
    assert manifest == predictor.bundle.manifest
    for f in m["files"]:
        r = client.get(f["url"])
        assert r.status_code == 200
        assert len(r.content) == f["bytes"]
        assert hashlib.sha256(r.content).hexdigest() == f["sha256"]
    # read-only: no other methods, no other files, no traversal
    assert client.post(m["files"][0]["url"]).status_code == 405
    assert client.put(m["files"][0]["url"]).status_code == 405
    assert client.get("/api/models/litemedsam/onnx-fp32/manifest").status_code == 404
    assert client.get("/api/models/litemedsam/onnx-fp32/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/api/models/medsam-vitb/manifest.json").status_code == 404


def test_openapi_documents_the_segment_form(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/segment"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert set(body["schema"]["properties"]) >= {"image", "box"}
    assert body["schema"]["required"] == ["image"]
    for path in ("/api/health", "/api/models"):
        assert path in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text


def test_security_headers_and_no_cors_wildcard(client):
    r = client.get("/", headers={"Origin": "http://evil.example"})
    assert r.status_code == 200 and "<canvas" in r.text
    assert "access-control-allow-origin" not in r.headers
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert r.headers["cross-origin-opener-policy"] == "same-origin"
    assert r.headers["cross-origin-embedder-policy"] == "require-corp"
    pre = client.options(
        "/api/segment",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in pre.headers


def test_cors_wildcard_is_refused(settings):
    from skinscreen.errors import SkinscreenError

    with pytest.raises(SkinscreenError, match="exact origins"):
        create_app(WebSettings(allowed_origins=("*",)))


def test_page_and_scripts_load_nothing_from_other_hosts(client):
    for path in (
        "/",
        "/static/app.js",
        "/static/ondevice.js",
        "/static/pipeline.js",
        "/static/style.css",
    ):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "http://" not in r.text and "https://" not in r.text, path


# -- segmentation ---------------------------------------------------------------------------------
def test_segment_matches_the_library_and_the_expert(client, predictor, sample_pairs):
    """Each sample photo with a box around its expert mask: the API's mask is the library's
    mask, close to the expert's, and the geometry fields agree with it."""
    scores = []
    for img_path, mask_path in sample_pairs:
        box = expert_box(mask_path, margin=0.0)  # tight: the server grows it by box_margin
        r = post(client, img_path.read_bytes(), box)
        assert r.status_code == 200, r.text
        j = r.json()
        mask = decode_mask(j["mask_png"])
        truth = load_mask(mask_path)
        assert mask.shape == truth.shape
        assert j["image_size"] == [truth.shape[1], truth.shape[0]]
        predictor.set_image(img_path)
        ref = predictor.predict(box=box)
        assert dice(mask, ref.mask) >= 0.999
        assert j["area_px"] == int(mask.sum())
        assert j["area_fraction"] == pytest.approx(mask.mean(), abs=1e-5)
        assert j["box"] == pytest.approx(box, abs=0.01) and j["box_source"] == "user"
        assert j["advisory"] is None
        assert j["box_used"] == pytest.approx(ref.box_used.tolist(), abs=0.01)
        assert j["box_margin"] == predictor.box_margin
        poly = np.asarray(j["polygon"])
        assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 3
        assert poly[:, 0].min() >= 0 and poly[:, 0].max() < truth.shape[1]
        assert poly[:, 1].min() >= 0 and poly[:, 1].max() < truth.shape[0]
        assert j["svg_path"].startswith("M ") and j["svg_path"].endswith(" Z")
        heat = Image.open(io.BytesIO(base64.b64decode(j["heatmap_png"])))
        assert heat.mode == "RGBA" and list(heat.size) == j["heatmap_size"]
        assert max(heat.size) <= 512
        assert j["disclaimer"] == DISCLAIMER
        assert j["image_sha256"] == hashlib.sha256(img_path.read_bytes()).hexdigest()
        assert set(j["timings_ms"]) >= {"encoder", "decoder", "postprocess", "total"}
        scores.append(dice(mask, truth))
    # ISIC_0012143 (seborrheic keratosis, a faint border): 0.68 with the box check (on by
    # default: the box-robust decoder's outline), 0.83 without; the others 0.93-0.96
    assert sorted(scores)[1] >= 0.9 and min(scores) >= 0.65 and np.mean(scores) >= 0.87, scores


def test_reprompt_reuses_the_cached_embedding(client, predictor, sample_pairs):
    img_path, mask_path = sample_pairs[1]
    data = img_path.read_bytes()
    client.app.state.service.cache.clear()
    box = expert_box(mask_path)
    first = post(client, data, box).json()
    assert first["cache_hit"] is False and first["timings_ms"]["encoder"] > 0
    tighter = expert_box(mask_path, margin=0.0)
    second = post(client, data, tighter).json()
    assert second["cache_hit"] is True
    assert second["timings_ms"]["encoder"] == 0 and second["timings_ms"]["load"] == 0
    predictor.set_image(img_path)
    assert dice(decode_mask(second["mask_png"]), predictor.predict(box=tighter).mask) >= 0.999
    assert client.app.state.service.cache.stats()["hits"] >= 1


def test_auto_box(client, photo_bytes):
    r = post(client, photo_bytes, "auto")
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["box_source"] in ("auto", "full-image") and j["area_px"] > 0
    if j["box_source"] == "auto":  # the page shows it: check the outline, or draw a box
        assert "outlined automatically" in j["advisory"]
    # the box field may also be omitted: automatic by default
    r2 = post(client, photo_bytes, None)
    assert r2.status_code == 200 and r2.json()["box_source"] == j["box_source"]


def test_features_when_the_assessment_module_is_present(client, photo_bytes):
    box = expert_box(ROOT / "examples" / "masks" / "ISIC_0012099.png")
    j = post(client, photo_bytes, box, features=True).json()
    from skinscreen.web import assessment

    if not assessment.available():
        assert j["features"] is None and j["assessment_note"]
        return
    f = j["features"]
    assert f["area_px"] == j["area_px"]
    assert f["diameter_max_px"] > 0 and 0 < f["solidity"] <= 1
    assert f["area_mm2"] is None  # no scale known in the web app
    assert isinstance(j["quality"]["warnings"], list)
    assert post(client, photo_bytes, box, features=False).json()["features"] is None


def test_missing_assessment_module_degrades_gracefully(client, photo_bytes, monkeypatch):
    monkeypatch.setitem(sys.modules, "skinscreen.assess", None)  # import now raises ImportError
    r = post(client, photo_bytes, [300, 150, 800, 550], features=True)
    assert r.status_code == 200
    j = r.json()
    assert j["features"] is None and "not installed" in j["assessment_note"]
    assert j["area_px"] > 0


def test_uploads_stay_in_memory(client, monkeypatch):
    """A multi-megabyte upload must not be spooled to a temporary file (photos never hit disk)."""
    import starlette.formparsers as fp

    rolled = []

    class Watch(fp.SpooledTemporaryFile):
        def rollover(self):
            rolled.append(True)
            super().rollover()

    monkeypatch.setattr(fp, "SpooledTemporaryFile", Watch)
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, size=(1200, 1200, 3), dtype=np.uint8)
    data = png_bytes(noisy)
    assert len(data) > 3 * 2**20
    r = post(client, data, [100, 100, 900, 900], name="noise.png")
    assert r.status_code == 200, r.text
    assert not rolled


# -- bad input: always a 4xx with a message, never a 500 -------------------------------------------
def test_missing_file_field(client):
    r = client.post("/api/segment", data={"box": "[1, 2, 3, 4]"}, files={"other": ("x", b"1")})
    assert r.status_code == 422 and "missing file field 'image'" in r.json()["detail"]
    r = client.post("/api/segment", data={"image": "not a file"}, files={"other": ("x", b"1")})
    assert r.status_code == 422 and "file upload" in r.json()["detail"]


def test_not_multipart(client):
    r = client.post("/api/segment", json={"image": "abc"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]


def test_malformed_multipart(client):
    r = client.post(
        "/api/segment",
        content=b"--xyz\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--xyz--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert r.status_code == 400 and "multipart" in r.json()["detail"]


def test_empty_file(client):
    r = post(client, b"", [1, 2, 3, 4])
    assert r.status_code == 422 and "empty" in r.json()["detail"]


def test_truncated_jpeg(client, photo_bytes):
    r = post(client, photo_bytes[: len(photo_bytes) // 2], [300, 150, 800, 550])
    assert r.status_code == 422
    assert "truncated" in r.json()["detail"] or "corrupt" in r.json()["detail"]


def test_text_file_named_jpg(client):
    r = post(client, b"hello, this is not a photo\n" * 20, [1, 2, 30, 40], name="photo.jpg")
    assert r.status_code == 415 and "not an image" in r.json()["detail"]


@pytest.mark.parametrize("size", [(10_000, 8_000), (30_000, 30_000)])
def test_decompression_bomb(client, size):
    r = post(client, png_header_only(*size), [1, 2, 30, 40], name="bomb.png")
    assert r.status_code == 413
    assert "bomb" in r.json()["detail"] or "MP" in r.json()["detail"]


def test_one_pixel_image(client):
    r = post(client, png_bytes(np.zeros((1, 1, 3), np.uint8)), [0, 0, 1, 1], name="dot.png")
    assert r.status_code == 422 and "too small" in r.json()["detail"]


@pytest.mark.parametrize(
    "box, message",
    [
        ([2000, 2000, 2100, 2100], "outside"),
        ([-500, 10, -100, 200], "outside"),
        ([500, 100, 400, 300], "x0 < x1"),
        ([100, 300, 500, 300], "y0 < y1"),
        ("[NaN, 10, 200, 300]", "NaN"),
        ("[1e999, 10, 200, 300]", "NaN or infinity"),
        ("[1, 2, 3]", "4 numbers"),
        ('["a", 2, 3, 4]', "4 numbers"),
        ("[[1, 2], [3, 4]]", "4 numbers"),
        ("1,2,3,4", "not JSON"),
        ("{bad json", "not JSON"),
    ],
)
def test_bad_boxes(client, photo_bytes, box, message):
    r = post(client, photo_bytes, box)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_bad_features_flag(client, photo_bytes):
    r = client.post(
        "/api/segment",
        files={"image": ("p.jpg", photo_bytes, "image/jpeg")},
        data={"box": "auto", "features": "maybe"},
    )
    assert r.status_code == 422 and "features" in r.json()["detail"]


def test_oversized_upload(predictor, photo_bytes):
    """Over the byte limit: 413 whether or not the client declares the length up front."""
    small = create_app(WebSettings(bundle_dir=predictor.bundle.root, max_upload_bytes=100_000))
    with TestClient(small) as c:
        r = post(c, photo_bytes + b"\0" * 200_000, [1, 2, 30, 40])
        assert r.status_code == 413 and "limit" in r.json()["detail"]

        def chunks():
            body = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
            yield body
            for _ in range(100):
                yield b"\0" * 10_000
            yield b"\r\n--b--\r\n"

        r = c.post(
            "/api/segment",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code == 413
        assert not small.state.service.loaded  # refused before any model work
    with TestClient(create_app(WebSettings(bundle_dir=predictor.bundle.root))) as c:
        big = b"\xff\xd8\xff\xe0" + b"\0" * (31 * 2**20)
        r = post(c, big, [1, 2, 30, 40])
        assert r.status_code == 413


def test_pixel_limit(predictor):
    app = create_app(WebSettings(bundle_dir=predictor.bundle.root, max_pixels=500_000))
    with TestClient(app) as c:
        r = post(c, PHOTO.read_bytes(), [300, 150, 800, 550])  # 1024 x 681 = 0.70 MP
        assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_server_still_answers_after_bad_requests(client, photo_bytes):
    assert post(client, b"junk", [1, 2, 3, 4]).status_code == 415
    assert post(client, photo_bytes, [300, 150, 800, 550]).status_code == 200


# -- concurrency ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live_server(settings):
    """The app on a real uvicorn server (own thread, random port)."""
    from dataclasses import replace

    import uvicorn

    # a queue deep enough for the 20 parallel requests below (the default answers 503 beyond 5)
    app = create_app(replace(settings, queue_size=32))
    app.state.service.load()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)


def test_twenty_parallel_requests_all_correct(live_server, predictor, sample_pairs):
    """20 requests at once (4 photos x 5 boxes, some with the assessment) on a real server: all
    succeed and each mask is the one the library gives for that photo and box."""
    url, app = live_server
    app.state.service.cache.clear()
    jobs = []
    for img_path, mask_path in sample_pairs:
        for k, margin in enumerate((0.0, 0.05, 0.1, 0.15, 0.2)):
            jobs.append((img_path, expert_box(mask_path, margin), k == 0))
    assert len(jobs) == 20
    refs = {}
    for img_path, _ in sample_pairs:  # one encoder run per photo
        predictor.set_image(img_path)
        for p, box, _ in jobs:
            if p == img_path:
                refs[(img_path.name, tuple(box))] = predictor.predict(box=box).mask

    def call(job):
        img_path, box, features = job
        with httpx.Client(timeout=300) as c:
            r = c.post(
                f"{url}/api/segment",
                files={"image": (img_path.name, img_path.read_bytes(), "image/jpeg")},
                data={"box": json.dumps(box), "features": str(features).lower()},
            )
        return job, r

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, jobs))
    for (img_path, box, features), r in results:
        assert r.status_code == 200, r.text
        j = r.json()
        assert j["image_sha256"] == hashlib.sha256(img_path.read_bytes()).hexdigest()
        assert j["box"] == pytest.approx(box, abs=0.01)
        mask = decode_mask(j["mask_png"])
        assert dice(mask, refs[(img_path.name, tuple(box))]) >= 0.999
        assert (j["features"] is not None) == (features and j["assessment_note"] == "ok")
    hits = sum(r.json()["cache_hit"] for _, r in results)
    assert hits == 16  # one encoder run per photo, every other request re-used it


# -- cache and CLI --------------------------------------------------------------------------------
def test_lru_cache_bounds():
    c: LRUCache[bytes] = LRUCache(max_entries=3, max_bytes=10, sizeof=len)
    for k in "abc":
        c.put(k, b"xx")
    assert c.get("a") == b"xx"  # a is now most recent
    c.put("d", b"xx")
    assert "b" not in c and "a" in c and len(c) == 3
    c.put("e", b"x" * 8)  # byte bound evicts the oldest until it fits
    assert c.nbytes <= 10 and "e" in c
    c.put("huge", b"x" * 11)  # larger than the cache: not stored
    assert "huge" not in c
    assert c.stats()["hits"] == 1


def test_serve_cli_help_and_missing_bundle(tmp_path):
    exe = Path(sys.executable).parent / "skinscreen"
    out = subprocess.run([exe, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--host" in out.stdout and "127.0.0.1" in out.stdout
    out = subprocess.run(
        [exe, "serve", "--bundle", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("error: no model bundle at")
    out = subprocess.run(
        [exe, "serve", "--cors-origin", "*"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "refusing" in out.stderr
