"""End-to-end: the page in a real headless Chromium (Debian's `chromium`, driven by Playwright).

Photo through the file input, a box dragged with mouse (or touch) events, the drawn mask read
back from the canvas and scored against the expert mask; the same in on-device mode
(onnxruntime-web), which must agree with server mode (Dice >= 0.99). No browser download: the
system chromium is used (never `playwright install`); without it these tests skip.

Set SKINSCREEN_WRITE_SCREENSHOTS=1 to refresh docs/screenshots/ (phone and desktop viewports).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinscreen import DISCLAIMER
from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_image, load_mask
from skinscreen.preprocess.transforms import box_from_mask, expand_box, preprocess

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 600_000  # the on-device encoder is slow on a loaded 2-core machine

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install -y chromium); e2e web tests need it",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")

from skinscreen.web import WebSettings, create_app  # noqa: E402
from skinscreen.web.app import vendor_present  # noqa: E402

# Reads a canvas as a 0/1 mask (alpha > 0), base64 of one byte per pixel.
READ_CANVAS = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const n = c.width * c.height, out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = d[4 * i + 3] > 0 ? 1 : 0;
  let s = '';
  for (let i = 0; i < n; i += 8192) s += String.fromCharCode.apply(null, out.subarray(i, i + 8192));
  return {w: c.width, h: c.height, b64: btoa(s)};
}"""


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(predictor):
    import uvicorn

    app = create_app(WebSettings(bundle_dir=predictor.bundle.root, threads=2))
    app.state.service.load()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_page(browser, url, **context_args):
    ctx = browser.new_context(accept_downloads=True, **context_args)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.evaluate("() => window.skinscreen.ready")
    return ctx, page, errors


# -- helpers --------------------------------------------------------------------------------------
def load_photo(page, path: Path) -> None:
    """Pick ``path`` in the file input and wait until the page holds *this* photo (its EXIF-upright
    size), not the previous one still on screen."""
    h, w = load_image(path).shape[:2]
    page.set_input_files("#file-input", str(path))
    page.wait_for_function(
        "([w, h]) => { const p = window.skinscreen && window.skinscreen.state.photo;"
        " return !!p && p.w === w && p.h === h; }",
        arg=[w, h],
    )
    page.wait_for_selector("#stage[data-state=photo]")


def to_page_xy(page, photo_size_wh, x, y):
    bb = page.locator("#stage").bounding_box()
    w, h = photo_size_wh
    return bb["x"] + x / w * bb["width"], bb["y"] + y / h * bb["height"]


def drag_box_mouse(page, photo_size_wh, box) -> None:
    x0, y0 = to_page_xy(page, photo_size_wh, box[0], box[1])
    x1, y1 = to_page_xy(page, photo_size_wh, box[2], box[3])
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()


def drag_box_touch(page, photo_size_wh, box) -> None:
    """A one-finger drag through the DevTools protocol: real touch -> pointer events."""
    cdp = page.context.new_cdp_session(page)
    x0, y0 = to_page_xy(page, photo_size_wh, box[0], box[1])
    x1, y1 = to_page_xy(page, photo_size_wh, box[2], box[3])
    cdp.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]}
    )
    for t in np.linspace(0.1, 1.0, 8):
        pt = {"x": x0 + (x1 - x0) * t, "y": y0 + (y1 - y0) * t}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [pt]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def wait_result(page, mode: str, after_seq: int) -> dict:
    """Wait for a finished result newer than ``after_seq`` drawn in ``mode``; return its summary."""
    page.wait_for_selector(
        f"#stage[data-state=done][data-mode={mode}]:not([data-seq='{after_seq}'])"
    )
    return page.evaluate(
        """() => { const r = window.skinscreen.state.result;
        return {seq: +document.getElementById('stage').dataset.seq, box: r.box, area_px: r.area_px,
                timings_ms: r.timings_ms, cache_hit: r.cache_hit, threads: r.threads || null,
                encoding_ms: r.encoding_ms || null, box_used: r.box_used, box_margin: r.box_margin,
                svg_path: r.svg_path, roundtrip_ms: r.roundtrip_ms || null,
                box_check: r.box_check || null}; }"""
    )


def read_mask_layer(page) -> np.ndarray:
    got = page.evaluate(READ_CANVAS, "mask-layer")
    flat = np.frombuffer(base64.b64decode(got["b64"]), dtype=np.uint8)
    return flat.reshape(got["h"], got["w"]).astype(bool)


def current_seq(page) -> int:
    return int(page.get_attribute("#stage", "data-seq") or 0)


def expert_box(mask_path: Path, margin: float = 0.0) -> list[float]:
    """The expert mask's box grown by ``margin`` (default: tight; the app then grows the drawn
    box by the model's box_margin per side, in both modes)."""
    truth = load_mask(mask_path)
    return [float(v) for v in expand_box(box_from_mask(truth), margin, truth.shape)]


def download(page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    return Path(info.value.path()).read_bytes()


def screenshot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get("SKINSCREEN_WRITE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name))


# -- tests ----------------------------------------------------------------------------------------
def test_server_mode_box_to_overlay(server, browser, predictor, sample_pairs, tmp_path):
    """Desktop viewport, mouse: every sample photo's drawn mask is the library's mask for the
    dragged box, and close to the expert's."""
    ctx, page, errors = open_page(browser, server, viewport={"width": 1280, "height": 860})
    assert DISCLAIMER in page.inner_text("#disclaimer")
    scores = {}
    for img_path, mask_path in sample_pairs:
        truth = load_mask(mask_path)
        load_photo(page, img_path)
        seq = current_seq(page)
        drag_box_mouse(page, truth.shape[::-1], expert_box(mask_path))
        res = wait_result(page, "server", seq)
        drawn = read_mask_layer(page)
        assert drawn.shape == truth.shape  # photos under 2048 px are drawn 1:1
        predictor.set_image(img_path)
        ref_seg = predictor.predict(box=res["box"])
        ref = ref_seg.mask
        assert dice(drawn, ref) >= 0.999
        assert res["box_margin"] == predictor.box_margin
        assert np.allclose(res["box_used"], ref_seg.box_used, atol=0.01)
        assert np.allclose(res["box"], expert_box(mask_path), atol=3.0)  # the drag landed
        assert page.get_attribute("#contour", "d") == res["svg_path"] != ""
        scores[img_path.stem] = dice(drawn, truth)
    print("\ne2e server-mode Dice vs expert:", {k: round(v, 4) for k, v in scores.items()})
    # ISIC_0012143 (a faint border): 0.68 with the box check (on by default: the box-robust
    # decoder's outline), 0.83 without; the others 0.93-0.96
    vals = sorted(scores.values())
    assert vals[0] >= 0.65 and vals[1] >= 0.9 and np.mean(vals) >= 0.87, scores

    # assessment arrives after the mask; heatmap toggles; downloads work
    page.wait_for_selector("#assessment-card[data-state=done]")
    assert page.is_visible("#assessment-table") or "unavailable" in page.inner_text(
        "#assessment-card"
    )
    assert page.is_hidden("#heatmap-layer")
    page.check("#heatmap-toggle")
    assert page.is_visible("#heatmap-layer")
    screenshot(page, tmp_path, "desktop.png")
    page.uncheck("#heatmap-toggle")
    img_path, mask_path = sample_pairs[-1]
    mask_png = np.asarray(Image.open(io.BytesIO(download(page, "#download-mask"))).convert("L"))
    assert mask_png.shape == load_mask(mask_path).shape
    assert dice(mask_png >= 128, read_mask_layer(page)) == 1.0
    report = json.loads(download(page, "#download-report"))
    assert report["disclaimer"] == DISCLAIMER and report["mode"] == "server"
    assert report["area_px"] == int((mask_png >= 128).sum()) and report["svg_path"].startswith("M")

    # a new box on the same photo: the server re-uses the cached embedding
    seq = current_seq(page)
    drag_box_mouse(page, mask_png.shape[::-1], expert_box(mask_path, 0.15))
    res = wait_result(page, "server", seq)
    assert res["cache_hit"] is True and res["timings_ms"]["encoder"] == 0
    print("e2e server re-prompt round trip ms:", round(res["roundtrip_ms"]))
    page.wait_for_selector("#assessment-card[data-state=done]")
    assert "outlined automatically" not in page.inner_text("#assessment-card")

    # "Find lesion": the automatic outline comes with its advisory (check it, or draw a box)
    seq = current_seq(page)
    page.click("#auto-btn")
    wait_result(page, "server", seq)
    page.wait_for_selector("#assessment-card[data-state=done]")
    assert "outlined automatically" in page.inner_text("#quality-warnings")
    assert not errors, errors
    ctx.close()


@pytest.mark.skipif(
    not vendor_present(), reason="onnxruntime-web missing: scripts/fetch_web_vendor.sh"
)
def test_on_device_mode_matches_server_mode(server, browser, predictor, sample_pairs, tmp_path):
    """The in-browser runtime (onnxruntime-web, WASM) gives the server's mask (Dice >= 0.99) on
    the same photo and box, at the photo's full resolution and on the canvas."""
    ctx, page, errors = open_page(browser, server, viewport={"width": 1280, "height": 860})
    page.click("label.switch")  # the on-device switch
    figures = {}
    for img_path, mask_path in sample_pairs[:2]:
        truth = load_mask(mask_path)
        load_photo(page, img_path)
        seq = current_seq(page)
        drag_box_mouse(page, truth.shape[::-1], expert_box(mask_path))
        dev = wait_result(page, "device", seq)
        dev_canvas = read_mask_layer(page)
        dev_full = (
            np.asarray(Image.open(io.BytesIO(download(page, "#download-mask"))).convert("L")) >= 128
        )
        assert dev_full.shape == truth.shape

        predictor.set_image(img_path)
        ref_seg = predictor.predict(box=dev["box"])  # the Python runtime on the same box
        ref = ref_seg.mask
        # the page grew the drawn box by the served manifest's margin, exactly as Python does
        assert dev["box_margin"] == predictor.box_margin > 0
        assert dev["box_used"] == pytest.approx(ref_seg.box_used.tolist(), abs=1e-9)
        d_full = dice(dev_full, ref)
        d_expert = dice(dev_canvas, truth)
        # the page runs the same box check as Python: both decoders, same decision
        assert dev["box_check"]["check_model"] == ref_seg.box_check["check_model"]
        assert dev["box_check"]["decoder"] == ref_seg.box_check["decoder"], dev["box_check"]
        assert abs(dev["box_check"]["agreement"] - ref_seg.box_check["agreement"]) < 0.02

        # re-prompt in the browser: the embedding is kept, only the decoder runs
        seq = current_seq(page)
        drag_box_mouse(page, truth.shape[::-1], expert_box(mask_path, 0.1))
        again = wait_result(page, "device", seq)
        assert again["cache_hit"] is True and again["timings_ms"]["encoder"] == 0

        # switch to server mode: the same box is sent to the server
        seq = current_seq(page)
        page.click("label.switch")
        srv = wait_result(page, "server", seq)
        assert srv["box"] == pytest.approx(again["box"], abs=0.01)
        srv_canvas = read_mask_layer(page)
        seq = current_seq(page)
        page.click("label.switch")
        dev2 = wait_result(page, "device", seq)
        d_modes = dice(read_mask_layer(page), srv_canvas)
        figures[img_path.stem] = {
            "dice_device_vs_python_full_res": round(d_full, 5),
            "dice_device_vs_server_canvas": round(d_modes, 5),
            "dice_device_vs_expert": round(d_expert, 4),
            "preprocess_ms": round(dev["encoding_ms"]["preprocess"]),
            "encoder_ms": round(dev["encoding_ms"]["encoder"]),
            "decoder_ms": round(dev["timings_ms"]["decoder"]),
            "postprocess_ms": round(dev["timings_ms"]["postprocess"]),
            "reprompt_total_ms": round(dev2["timings_ms"]["total"]),
            "threads": dev["threads"],
        }
        # the served variant is onnx-int8: activations are quantised on the fly by two runtimes
        # (WebAssembly here, native x86 in Python), so soft edges can flip; measured with the 5%
        # margin: ISIC_0012099 0.997 / 0.998, the soft-edged ISIC_0012143 0.989 / 0.982
        assert d_full >= 0.98 and d_modes >= 0.975, figures
        assert d_expert >= 0.65, figures  # ISIC_0012143: 0.68 with the box check, 0.83 without
    print("\ne2e on-device figures:", json.dumps(figures, indent=1))
    screenshot(page, tmp_path, "desktop-on-device.png")
    report = json.loads(download(page, "#download-report"))
    assert report["mode"] == "device" and report["disclaimer"] == DISCLAIMER
    assert not errors, errors
    ctx.close()


def test_phone_viewport_touch(server, browser, predictor, sample_pairs, tmp_path):
    """Phone-sized viewport with touch: the page fits the width, a finger drag segments."""
    ctx, page, errors = open_page(
        browser,
        server,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    img_path, mask_path = sample_pairs[0]
    truth = load_mask(mask_path)
    load_photo(page, img_path)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert page.get_attribute("#camera-input", "capture") == "environment"
    seq = current_seq(page)
    drag_box_touch(page, truth.shape[::-1], expert_box(mask_path))
    res = wait_result(page, "server", seq)
    drawn = read_mask_layer(page)
    predictor.set_image(img_path)
    assert dice(drawn, predictor.predict(box=res["box"]).mask) >= 0.999
    d = dice(drawn, truth)
    print(f"\ne2e phone (touch) Dice vs expert {img_path.stem}: {d:.4f}")
    assert d >= 0.80
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.wait_for_selector("#assessment-card[data-state=done]")
    screenshot(page, tmp_path, "phone.png")
    assert not errors, errors
    ctx.close()


def test_unreadable_file_shows_an_error(server, browser, tmp_path):
    ctx, page, _ = open_page(browser, server, viewport={"width": 800, "height": 700})
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo\n" * 10)
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    assert "cannot open" in page.inner_text("#error-text")
    assert page.get_attribute("#stage", "data-state") == "empty"
    ctx.close()


def test_js_preprocessing_matches_python(server, browser, predictor, sample_pairs, tmp_path):
    """pipeline.js on the browser-decoded photo vs skinscreen.preprocess on the Pillow-decoded
    photo: the model inputs agree to within JPEG-decoder rounding. PNGs (lossless, so both sides
    see the same pixels) cover the other resize paths: an exact 2x shrink and an enlargement."""
    ctx, page, _ = open_page(browser, server, viewport={"width": 800, "height": 700})
    spec = predictor.spec.to_dict()
    photo = load_image(sample_pairs[0][0])
    paths = [p for p, _ in sample_pairs[:2]] + [
        ROOT / "examples" / "phone" / "PAD_PAT_1020_111_593.jpg"
    ]
    for name, size in (
        ("half.png", (512, 341)),
        ("small.png", (150, 100)),
        ("odd.png", (333, 517)),
    ):
        Image.fromarray(photo).resize(size, Image.LANCZOS).save(tmp_path / name)
        paths.append(tmp_path / name)
    for img_path in paths:
        load_photo(page, img_path)
        got = page.evaluate(
            """(spec) => {
            const p = window.skinscreen.state.photo;
            const c = new OffscreenCanvas(p.w, p.h);
            const ctx = c.getContext('2d', {willReadFrequently: true});
            ctx.drawImage(p.bitmap, 0, 0);
            const rgba = ctx.getImageData(0, 0, p.w, p.h).data;
            const {input, transform} = window.skinscreen.pipeline.preprocess(spec, rgba, p.w, p.h);
            const bytes = new Uint8Array(input.buffer);
            let s = '';
            for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
            return {b64: btoa(s), resized: transform.resizedSize};
        }""",
            spec,
        )
        js = np.frombuffer(base64.b64decode(got["b64"]), dtype=np.float32).reshape(1, 3, 256, 256)
        py, t = preprocess(predictor.spec, load_image(img_path))
        assert got["resized"] == list(t.resized_size)
        diff = np.abs(js - py)
        print(
            f"\n{img_path.stem}: JS vs Python model input max |diff| {diff.max():.5f}, mean {diff.mean():.6f}"
        )
        assert diff.mean() < 1e-4 and diff.max() <= 0.011
    ctx.close()


def test_js_postprocessing_matches_python(server, browser, predictor, sample_pairs):
    """pipeline.js post-processing on the Python decoder's logits gives the Python mask."""
    ctx, page, _ = open_page(browser, server, viewport={"width": 800, "height": 700})
    manifest = predictor.bundle.manifest
    for img_path, mask_path in sample_pairs:
        predictor.set_image(img_path)
        box = expert_box(mask_path)
        seg = predictor.predict(box=box)
        t = predictor.encoding.transform
        logits, _ = predictor.decode_logits(t.apply_boxes(seg.box_used))  # the grown box
        got = page.evaluate(
            """([manifest, b64, t]) => {
            const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const logits = new Float32Array(raw.buffer);
            const tr = {originalSize: t.original_size, resizedSize: t.resized_size, inputSize: t.input_size};
            const {mask} = window.skinscreen.pipeline.postprocess(manifest, logits, tr);
            let s = '';
            for (let i = 0; i < mask.length; i += 8192) s += String.fromCharCode.apply(null, mask.subarray(i, i + 8192));
            return btoa(s);
        }""",
            [manifest, base64.b64encode(logits.astype(np.float32).tobytes()).decode(), t.to_dict()],
        )
        js = (
            np.frombuffer(base64.b64decode(got), dtype=np.uint8)
            .reshape(seg.mask.shape)
            .astype(bool)
        )
        ref = predictor.postprocess(logits)[0]  # these logits' mask (seg may be the box check's)
        mismatch = int((js != ref).sum())
        print(f"\n{img_path.stem}: JS vs Python post-processing, {mismatch} differing pixels")
        assert mismatch <= 2, (img_path.stem, mismatch)
    ctx.close()


@pytest.mark.skipif(
    not vendor_present(), reason="onnxruntime-web missing: scripts/fetch_web_vendor.sh"
)
def test_exif_rotated_phone_photo_lines_up_in_both_modes(server, browser, sample_pairs, tmp_path):
    """A photo stored sideways with EXIF orientation 6: the browser shows it upright like the
    server reads it, so the dragged box and both modes' masks line up with the upright expert mask."""
    img_path, mask_path = sample_pairs[2]
    image = load_image(img_path)
    truth = load_mask(mask_path)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated 90 degrees counter-clockwise: "rotate 90 CW to view"
    rotated = tmp_path / "sideways.jpg"
    Image.fromarray(np.rot90(image, k=1)).save(rotated, quality=97, exif=exif.tobytes())

    ctx, page, errors = open_page(browser, server, viewport={"width": 1100, "height": 800})
    load_photo(page, rotated)
    size = page.evaluate("() => [window.skinscreen.state.photo.w, window.skinscreen.state.photo.h]")
    assert size == [truth.shape[1], truth.shape[0]]  # upright, as the server sees it
    seq = current_seq(page)
    drag_box_mouse(page, size, expert_box(mask_path))
    wait_result(page, "server", seq)
    server_mask = read_mask_layer(page)
    seq = current_seq(page)
    page.click("label.switch")
    wait_result(page, "device", seq)
    device_mask = read_mask_layer(page)
    d_server, d_device = dice(server_mask, truth), dice(device_mask, truth)
    print(f"\nEXIF-rotated photo Dice vs expert: server {d_server:.4f}, on-device {d_device:.4f}")
    assert d_server >= 0.85 and d_device >= 0.85
    assert dice(server_mask, device_mask) >= 0.99
    assert not errors, errors
    ctx.close()
