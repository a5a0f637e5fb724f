"""End-to-end: the page's Live camera mode in a real headless Chromium with a fake camera.

Chromium plays a .y4m clip as its camera (``--use-file-for-fake-video-capture``): 30 frames of
320x240 cut from examples/images/ISIC_0012099.jpg with a known slow pan (there and back, so the
loop is seamless), so the expert mask of every frame is known. The test opens live mode, drags a
box on the video, waits for the outline (live.js + onnxruntime-web), reads the tracked state back
from ``window.__skinscreenLive`` and scores it; then "Capture" must bring the frame into the normal
photo flow. Without Debian's chromium or onnxruntime-web these tests skip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_image, load_mask
from skinscreen.preprocess.transforms import box_from_mask

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "images" / "ISIC_0012099.jpg"
MASK = ROOT / "examples" / "masks" / "ISIC_0012099.png"
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
CLIP_WH = (320, 240)
SCALED_WH = (360, 240)  # the photo (1024x681) resized to this, then 320x240 windows cut from it
N_FRAMES = 30
PAN_PX = 16  # largest horizontal offset of the window (px of the 360x240 scaled photo)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install -y chromium); e2e web tests need it",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")

from skinscreen.web.app import vendor_present  # noqa: E402

from .test_web_e2e import server  # noqa: E402,F401  (the same live uvicorn fixture)

needs_vendor = pytest.mark.skipif(
    not vendor_present(), reason="onnxruntime-web missing: scripts/fetch_web_vendor.sh"
)


# -- the fake camera clip -------------------------------------------------------------------------
def pan_offsets() -> list[int]:
    """Window x offset of each frame: 0 -> PAN_PX -> 0 (triangle), integer px."""
    half = N_FRAMES // 2
    up = [round(PAN_PX * k / half) for k in range(half)]
    down = [round(PAN_PX * (half - k) / half) for k in range(N_FRAMES - half)]
    return up + down


def clip_frames() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(RGB frames HxWx3 uint8, expert masks HxW bool) of the panned clip, CLIP_WH each."""
    img = cv2.resize(load_image(PHOTO), SCALED_WH, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(load_mask(MASK).astype(np.uint8), SCALED_WH, interpolation=cv2.INTER_NEAREST)
    w, h = CLIP_WH
    frames, masks = [], []
    for ox in pan_offsets():
        frames.append(np.ascontiguousarray(img[:h, ox : ox + w]))
        masks.append(mask[:h, ox : ox + w].astype(bool))
    return frames, masks


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> None:
    """YUV4MPEG2 file: text header, then per frame b'FRAME\\n' + I420 planes."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    frames, masks = clip_frames()
    path = tmp_path_factory.mktemp("camera") / "lesion-pan.y4m"
    write_y4m(path, frames)
    return path, masks


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


def launch(playwright, extra_args: list[str]):
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS + extra_args, headless=True
    )


def open_page(browser, url):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.evaluate("() => window.skinscreen.ready")
    return ctx, page, errors


def drag_on_live(page, frame_wh, box) -> None:
    bb = page.locator("#live-stage").bounding_box()
    w, h = frame_wh

    def xy(x, y):
        return bb["x"] + x / w * bb["width"], bb["y"] + y / h * bb["height"]

    x0, y0 = xy(box[0], box[1])
    x1, y1 = xy(box[2], box[3])
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()


def polygon_mask(polygon, wh) -> np.ndarray:
    w, h = wh
    out = np.zeros((h, w), np.uint8)
    pts = np.round(np.asarray(polygon, dtype=np.float64)).astype(np.int32)
    cv2.fillPoly(out, [pts], 1)
    return out.astype(bool)


# -- tests ----------------------------------------------------------------------------------------
@needs_vendor
def test_live_camera_outline_tracks_the_lesion(server, playwright, clip, tmp_path):
    """Fake camera -> live mode -> box on the video: the outline drawn over the video matches the
    expert mask of the frame (Dice >= 0.7), several frames are processed, FPS is reported, and
    Capture hands the frame to the photo flow."""
    y4m, masks = clip
    browser = launch(
        playwright,
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}",
        ],
    )
    try:
        ctx, page, errors = open_page(browser, server)
        page.click("#live-btn")
        page.wait_for_function("() => window.__skinscreenLive.state === 'waiting'")
        size = page.evaluate(
            "() => [window.__skinscreenLive.width, window.__skinscreenLive.height]"
        )
        assert tuple(size) == CLIP_WH
        assert page.is_visible("#live-video") and not page.is_visible("#stage")

        # Box around the lesion in the middle of the pan range, with a margin.
        mid = masks[N_FRAMES // 4]
        x0, y0, x1, y1 = box_from_mask(mid)
        m = 0.1 * max(x1 - x0, y1 - y0)
        box = [max(0, x0 - m), max(0, y0 - m), min(CLIP_WH[0], x1 + m), min(CLIP_WH[1], y1 + m)]
        drag_on_live(page, CLIP_WH, box)
        page.wait_for_function(
            "() => window.__skinscreenLive.frames >= 8 && window.__skinscreenLive.polygon.length > 2"
        )
        page.wait_for_timeout(4000)
        live = page.evaluate("() => ({...window.__skinscreenLive})")
        assert live["state"] == "tracking"
        assert live["frames"] > 1 and live["encoderRuns"] >= 1
        assert live["fps"] > 0
        # the slow pan is followed without the model on most frames
        assert live["trackedFrames"] >= 1 and live["encoderRuns"] < live["frames"] / 2
        assert page.inner_text("#live-fps").endswith("FPS")
        drawn = polygon_mask(live["polygon"], CLIP_WH)
        # The clip loops at its own pace: score against the frame the outline fits best (all
        # frames are within PAN_PX px of each other).
        scores = [dice(drawn, t) for t in masks]
        best = max(scores)
        print(
            f"live: {live['frames']} frames, {live['trackedFps']:.1f} FPS between encoder runs "
            f"(tracked frame {live['trackMs']:.1f} ms), {live['fpsSinceStart']:.2f} FPS since the "
            f"box, {live['encoderRuns']} encoder runs (last {live['encoderMs']:.0f} ms), "
            f"{live['dropped']} dropped, Dice {best:.3f} (frame {int(np.argmax(scores))})"
        )
        assert best >= 0.7

        # The overlay canvas really has the outline drawn (teal fill), not just state.
        painted = page.evaluate(
            """() => { const c = document.getElementById('live-overlay');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"""
        )
        assert painted > 0.5 * drawn.sum()

        page.screenshot(path=str(tmp_path / "live.png"))  # for a look when debugging
        page.click("#live-capture")
        page.wait_for_selector("#stage[data-state=done]")
        assert not page.is_visible("#live")
        cap = page.evaluate(
            """() => { const s = window.skinscreen.state;
            return {w: s.photo.w, h: s.photo.h, name: s.photo.name, box: s.box, area: s.result.area_px}; }"""
        )
        assert (cap["w"], cap["h"]) == CLIP_WH and cap["name"].endswith(".png")
        assert cap["area"] > 0.5 * min(t.sum() for t in masks)
        assert page.evaluate("() => window.__skinscreenLive.active") is False
        assert not errors, errors
        ctx.close()
    finally:
        browser.close()


def test_live_camera_unavailable_shows_a_clear_message(server, playwright):
    """No camera permission (headless Chromium without the fake-media flags denies it): a
    one-line message in the error box, the photo stage stays usable."""
    browser = launch(playwright, ["--deny-permission-prompts"])
    try:
        ctx, page, errors = open_page(browser, server)
        page.click("#live-btn")
        page.wait_for_selector("#error:not([hidden])")
        text = page.inner_text("#error-text")
        print(f"camera unavailable message: {text}")
        assert "camera" in text.lower() or "on-device" in text.lower(), text
        assert page.is_visible("#stage") and not page.is_visible("#live")
        assert page.evaluate("() => window.__skinscreenLive.active") is False
        assert not errors, errors
        ctx.close()
    finally:
        browser.close()
