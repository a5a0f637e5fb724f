"""The web live-preview tracker (web/static/live.js) in Node with the real model (onnxruntime-web).

A synthetic hand-held clip (static, then a pan) is handed frame by frame to ``LiveTracker.step``
with ``OnDeviceModel`` (web/static/ondevice.js) running the bundle's encoder and decoder in
WebAssembly; the outlines it returns are scored against the clip's exact truth. Skips when Node
or the vendored onnxruntime-web is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinscreen.stream import motion as mo
from skinscreen.stream.bench import frame_dice, initial_box
from skinscreen.stream.synthetic import Segment, clip_from_files

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "skinscreen" / "web" / "static"
SCRIPT = (Segment("static", 4), Segment("pan", 8, pan_px=(-36, 14)))

HARNESS = r"""
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
globalThis.self ??= globalThis;
const [staticDir, dataDir, bundleDir] = process.argv.slice(2);
const url = (p) => pathToFileURL(p).href;
const ort = await import(url(`${staticDir}/vendor/ort.wasm.min.mjs`));
const { OnDeviceModel } = await import(url(`${staticDir}/ondevice.js`));
const { LiveTracker } = await import(url(`${staticDir}/live.js`));
ort.env.wasm.wasmPaths = `${staticDir}/vendor/`;
ort.env.wasm.numThreads = 1;
const meta = JSON.parse(readFileSync(`${dataDir}/meta.json`, "utf8"));
const manifest = JSON.parse(readFileSync(`${bundleDir}/manifest.json`, "utf8"));
const files = manifest.variants[meta.variant].files;
const opts = { executionProviders: ["wasm"] };
const encoder = await ort.InferenceSession.create(readFileSync(`${bundleDir}/${files.encoder.path}`), opts);
const decoder = await ort.InferenceSession.create(readFileSync(`${bundleDir}/${files.decoder.path}`), opts);
const model = new OnDeviceModel(manifest, encoder, decoder, {});
const raw = readFileSync(`${dataDir}/frames.rgba`);
const { w, h, n, box } = meta;
const tracker = new LiveTracker(model, { box });
for (let i = 0; i < n; i++) {
  const rgba = new Uint8ClampedArray(raw.buffer, raw.byteOffset + i * w * h * 4, w * h * 4);
  const r = await tracker.step(rgba, w, h);
  const s = 64 / w;
  console.log(JSON.stringify({ ...r, shift_px: [tracker.shift[0] / s, tracker.shift[1] / s] }));
}
"""


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("Node.js is not installed (needed to run web/static/live.js)")
    if not (STATIC / "vendor" / "ort.wasm.min.mjs").exists():
        pytest.skip("onnxruntime-web is not vendored in web/static/vendor")
    return exe


def test_live_js_tracks_a_panning_clip_with_the_on_device_model(node, predictor, tmp_path):
    stem = "ISIC_0012206"
    clip = clip_from_files(
        ROOT / "examples" / "images" / f"{stem}.jpg",
        ROOT / "examples" / "masks" / f"{stem}.png",
        SCRIPT,
    )
    h, w = clip.frames[0].shape[:2]
    rgba = np.stack([np.dstack([f, np.full((h, w), 255, np.uint8)]) for f in clip.frames])
    (tmp_path / "frames.rgba").write_bytes(np.ascontiguousarray(rgba).tobytes())
    meta = {
        "w": w, "h": h, "n": len(clip), "box": [float(v) for v in initial_box(clip)],
        "variant": predictor.bundle.variant,
    }  # fmt: skip
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "harness.mjs").write_text(HARNESS)
    proc = subprocess.run(
        [node, str(tmp_path / "harness.mjs"), str(STATIC), str(tmp_path), str(predictor.bundle.root)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(clip)

    assert results[0]["encoder_ran"] and results[0]["reason"] == "init"
    runs = sum(r["encoder_ran"] for r in results)
    assert runs <= 3, [r["reason"] for r in results]
    assert all(r["state"] == "tracking" for r in results)
    dice = []
    for r, truth in zip(results, clip.masks, strict=True):
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(np.array(r["polygon"])).astype(np.int32)], 1)
        dice.append(frame_dice(m.astype(bool), truth))
    assert min(dice) >= 0.85, [round(d, 3) for d in dice]

    # the pan measured by block matching follows the true camera motion (pure translation)
    key = 0
    for i, r in enumerate(results):
        if r["encoder_ran"]:
            key = i
            continue
        true = mo.compose(clip.affines[i], mo.invert(clip.affines[key]))[:, 2]
        assert np.abs(np.array(r["shift_px"]) - true).max() < 2.0, (i, r["shift_px"], true)
