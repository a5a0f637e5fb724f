// Camera frames -> RGBImage (packedFrame) and the tracker's motion estimate on a known pan.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as core from "../dist/index.js";

test("packedFrame: padded BGRA/RGBA rows -> packed RGB, mirrored when asked", () => {
  const w = 3, h = 2, stride = 16; // 12 bytes of pixels + 4 bytes padding per row
  const buf = new Uint8Array(stride * h).fill(99);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) buf.set([10 * x, 100 + y, 200, 255], y * stride + 4 * x); // B, G, R, A
  const img = core.packedFrame(buf, w, h, stride, "bgra");
  assert.deepEqual([img.width, img.height, img.channels], [3, 2, 3]);
  assert.deepEqual(Array.from(img.data.subarray(0, 6)), [200, 100, 0, 200, 100, 10]);
  const rgba = core.packedFrame(buf.buffer, w, h, stride, "rgba", true);
  assert.deepEqual(Array.from(rgba.data.subarray(0, 3)), [20, 100, 200]); // mirrored: last pixel first
  assert.throws(() => core.packedFrame(new Uint8Array(10), w, h, stride, "rgba"), /too small/);
});

test("estimateShift finds a known pan of a textured frame to a fraction of a thumbnail pixel", () => {
  const w = 320, h = 240;
  const frame = (ox) => {
    const d = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const v = 128 + 60 * Math.sin((x + ox) / 9) * Math.cos(y / 13) + 40 * Math.sin((x + ox + y) / 23);
      d.set([v, v, v], 3 * (y * w + x));
    }
    return { data: d, width: w, height: h, channels: 3 };
  };
  const a = core.grayThumb(frame(0));
  const b = core.grayThumb(frame(20)); // content moves 20 px to the left
  const s = core.estimateShift(a, b);
  assert.ok(Math.abs(s.dx / a.s - -20) < 2.5 && Math.abs(s.dy) < 0.5, JSON.stringify(s));
});
