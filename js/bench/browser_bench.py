"""In-browser speed of @skinscreen/core: photo -> outline in headless Chromium (onnxruntime-web,
WebAssembly SIMD; threads when the page is cross-origin isolated), per model and variant.

A benchmark, not a test. Serves a one-page harness on 127.0.0.1 (COOP/COEP headers, so
onnxruntime-web may use threads), the core's web build (src/skinscreen/web/static/core), the
vendored onnxruntime-web and the exported bundles, and reports JSON lines: load (fetch + sha256 +
sessions), encoder (median of runs after a warm-up), decoder + post-processing per box, and
photo -> outline (preprocess + encoder + first box).

Usage (Debian's chromium, the project venv):
    PYTHONPATH=src .venv/bin/python js/bench/browser_bench.py [--threads 4] [--runs 3]
        [--models litemedsam,litemedsam-boxaug] [--variants onnx-fp32,onnx-int8]
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright import sync_api

from skinscreen import paths

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "skinscreen" / "web" / "static"
PHOTO = ROOT / "examples" / "images" / "ISIC_0012099.jpg"

PAGE = """<!doctype html><meta charset="utf-8"><title>skinscreen browser bench</title>
<script type="module">
import * as ort from "/vendor/ort.wasm.min.mjs";
import * as core from "/core/index.js";
ort.env.wasm.wasmPaths = new URL("/vendor/", location.href).href;
window.bench = async ({ model, variant, threads, runs, box }) => {
  ort.env.wasm.numThreads = self.crossOriginIsolated ? threads : 1;
  const bmp = await createImageBitmap(await (await fetch("/photo.jpg")).blob());
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  const img = { data: ctx.getImageData(0, 0, bmp.width, bmp.height).data, width: bmp.width, height: bmp.height, channels: 4 };
  const t0 = performance.now();
  const seg = await core.LesionSegmenter.open(core.fetchBundle(`/bundles/${model}`), core.webBackend(ort), { variant });
  const load = performance.now() - t0;
  const enc = [], dec = [], total = [];
  for (let i = 0; i <= runs; i++) {
    const a = performance.now();
    const e = await seg.encode(img);
    const b = performance.now();
    const s = await seg.predict(e, box);
    const d = performance.now();
    if (i > 0) { enc.push(b - a); dec.push(d - b); total.push(d - a); }  // run 0: warm-up
    if (i === runs) window.last = { area_px: s.areaPx, points: s.polygon.length };
  }
  const med = (v) => v.slice().sort((x, y) => x - y)[v.length >> 1];
  await seg.release();
  return { model, variant, threads: ort.env.wasm.numThreads, cross_origin_isolated: self.crossOriginIsolated,
           load_ms: load, encoder_ms: med(enc), decoder_postprocess_ms: med(dec), photo_to_outline_ms: med(total),
           bytes: seg.info.bytes, sha256_verified: Object.values(seg.info.verified).every(Boolean), ...window.last };
};
window.ready = true;
</script>"""


class Handler(SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--models", default="litemedsam")
    ap.add_argument("--variants", default="onnx-fp32,onnx-int8")
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None or not (STATIC / "vendor" / "ort.wasm.min.mjs").exists():
        print(
            "needs Debian's chromium and the vendored onnxruntime-web (make demo)", file=sys.stderr
        )
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        (site / "index.html").write_text(PAGE)
        (site / "core").symlink_to(STATIC / "core")
        (site / "vendor").symlink_to((STATIC / "vendor").resolve())
        (site / "bundles").symlink_to(paths.bundles_dir())
        (site / "photo.jpg").symlink_to(PHOTO)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=tmp))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_port}/index.html"
        try:
            with sync_api.sync_playwright() as p:
                b = p.chromium.launch(
                    executable_path=chromium,
                    args=["--headless", "--no-sandbox", "--disable-gpu"],
                    headless=True,
                )
                page = b.new_page()
                page.set_default_timeout(600_000)
                page.goto(url)
                page.wait_for_function("window.ready === true")
                for model in args.models.split(","):
                    for variant in args.variants.split(","):
                        r = page.evaluate(
                            "(a) => window.bench(a)",
                            {
                                "model": model,
                                "variant": variant,
                                "threads": args.threads,
                                "runs": args.runs,
                                "box": [400, 150, 610, 450],
                            },
                        )
                        r = {k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()}
                        print(json.dumps(r), flush=True)
                b.close()
        finally:
            httpd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
