// @skinscreen/core vs skinscreen's Python runtime, through onnxruntime-node, on the bundle the
// Python side exported (the default cache, or $SKINSCREEN_HOME) and the sample photos in
// examples/. test/python_reference.py writes the Python outputs to a temp dir first.
//
// Photos are decoded with sharp (libvips + libjpeg-turbo), the core applies the EXIF
// orientation (jpegOrientation + orient), as skinscreen.io.image does with Pillow.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync, copyFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import * as core from "../dist/index.js";
import { dirBundle, nodeBackend } from "../dist/node.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../../..");
let ref; // reference dir
let own = false;
let bundles;
let cases;
let seg; // the LesionSegmenter
const encodings = new Map(); // photo -> Encoding (one encoder run per photo)

function python() {
  if (process.env.SKINSCREEN_PYTHON) return process.env.SKINSCREEN_PYTHON;
  const venv = join(repo, ".venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

before(async () => {
  if (process.env.SKINSCREEN_JS_REF) {
    ref = process.env.SKINSCREEN_JS_REF; // a reference dir written before (development)
  } else {
    ref = mkdtempSync(join(tmpdir(), "skinscreen-js-ref-"));
    own = true;
    const env = { ...process.env, PYTHONPATH: [join(repo, "src"), process.env.PYTHONPATH].filter(Boolean).join(":") };
    execFileSync(python(), [join(here, "python_reference.py"), ref], { env, stdio: ["ignore", "inherit", "inherit"] });
  }
  bundles = JSON.parse(readFileSync(join(ref, "bundles.json"), "utf8"));
  cases = JSON.parse(readFileSync(join(ref, "cases.json"), "utf8")).map((n) => JSON.parse(readFileSync(join(ref, `${n}.json`), "utf8")));
  // one segmenter with everything loaded; each mode below picks its path per call
  seg = await core.LesionSegmenter.open(dirBundle(bundles.litemedsam), nodeBackend(), {
    variant: "onnx-fp32",
    reprompt: true,
    boxCheck: dirBundle(bundles["litemedsam-boxaug"]),
  });
});

after(async () => {
  await seg?.release();
  if (own) rmSync(ref, { recursive: true, force: true });
});

/** Decode a JPEG as the runtime would: pixels from sharp (no auto-rotation), EXIF by the core. */
async function decode(path) {
  const bytes = new Uint8Array(readFileSync(path));
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const img = { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels };
  return core.orient(img, core.jpegOrientation(bytes));
}

function readU8(p) {
  const b = readFileSync(p);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}
function readF32(p) {
  const b = readFileSync(p);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

const results = [];

test("decoding: sharp + the core's EXIF orientation give Pillow's upright pixels", async () => {
  for (const c of cases) {
    const img = await decode(join(ref, `${c.name}.jpg`));
    assert.deepEqual([img.width, img.height], [c.width, c.height], c.name);
    const py = readU8(join(ref, `${c.name}.rgb.u8`));
    let maxd = 0;
    let n = 0;
    for (let i = 0; i < py.length; i++) {
      const d = Math.abs(py[i] - img.data[i]);
      if (d > maxd) maxd = d;
      if (d) n++;
    }
    console.log(`# decode ${c.name}: ${n} of ${py.length} values differ from Pillow, max ${maxd}`);
    assert.ok(maxd <= 2, `${c.name}: decoded pixels differ from Pillow's by up to ${maxd}`);
  }
});

test("preprocessing: the model input equals Python's (on the same pixels)", async () => {
  const spec = seg.spec;
  for (const c of cases) {
    // the Pillow pixels: isolates preprocessing from JPEG decoding
    const rgb = { data: readU8(join(ref, `${c.name}.rgb.u8`)), width: c.width, height: c.height, channels: 3 };
    const { input, transform } = core.preprocess(spec, rgb);
    const py = readF32(join(ref, `${c.name}.input.f32`));
    assert.equal(input.length, py.length);
    let maxd = 0;
    for (let i = 0; i < py.length; i++) maxd = Math.max(maxd, Math.abs(py[i] - input[i]));
    console.log(`# preprocess ${c.name}: max |JS - Python| ${maxd} (resized ${transform.resizedSize})`);
    assert.equal(maxd, 0, `${c.name}: model inputs differ by up to ${maxd}`);
  }
});

for (const mode of ["plain", "check", "reprompt"]) {
  test(`masks, polygon and SVG path vs Python (${mode === "plain" ? "decoder" : mode === "check" ? "decoder + box check" : "re-prompt pair"})`, async () => {
    for (const c of cases) {
      const img = await decode(join(ref, `${c.name}.jpg`));
      const key = readFileSync(join(ref, `${c.name}.jpg`)).toString("base64");
      if (!encodings.has(key)) encodings.set(key, await seg.encode(img));
      const full = encodings.get(key);
      // plain / check: the plain decoder (no prelude); reprompt: the prompt decoder on the prelude
      const enc = mode === "reprompt" ? full : { ...full, prelude: null };
      const opts = mode === "check" ? {} : { boxCheck: false };
      const want = c[mode];
      if (want.error) {
        await assert.rejects(seg.predict(enc, c.box, opts), (e) => e instanceof core.PromptError && /outside/.test(e.message), c.name);
        console.log(`# ${mode} ${c.name}: refused like Python: ${want.error_type}`);
        continue;
      }
      const got = await seg.predict(enc, c.box, opts);
      const pyMask = readU8(join(ref, `${c.name}.${mode}.mask.u8`));
      const d = core.dice(got.mask, pyMask);
      let diff = 0;
      for (let i = 0; i < pyMask.length; i++) diff += got.mask[i] !== pyMask[i] ? 1 : 0;
      results.push({ mode, name: c.name, dice: d, diff, mask: got.mask });
      console.log(`# ${mode} ${c.name}: Dice ${d.toFixed(6)}, ${diff} pixels differ, area ${got.areaPx} vs ${want.area_px}, polygon ${got.polygon.length} vs ${want.polygon.length} points`);
      assert.ok(d >= 0.999, `${mode} ${c.name}: mask Dice vs Python ${d}`);
      for (let i = 0; i < 4; i++) assert.ok(Math.abs(got.boxUsed[i] - want.box_used[i]) < 1e-9, `${c.name}: box_used`);
      assert.equal(got.boxCheck === null, !want.box_check, `${c.name}: box check ran`);
      if (want.box_check) {
        assert.equal(got.boxCheck.decoder, want.box_check.decoder, `${c.name}: box check decision`);
        assert.ok(Math.abs(got.boxCheck.agreement - want.box_check.agreement) <= 2e-3, `${c.name}: box check agreement`);
      }
      if (diff === 0) {
        assert.deepEqual(got.polygon, want.polygon, `${c.name}: polygon`);
        assert.equal(got.svgPath, want.svg_path, `${c.name}: SVG path`);
        assert.equal(got.areaPx, want.area_px);
      } else {
        // a few differing pixels (float rounding of the logits) can move the Douglas-Peucker
        // vertices near them by up to its tolerance: each vertex of one outline lies within that
        // tolerance (+1 px) of the other outline's edges
        const tol = Math.max(1, 0.0015 * core.perimeter(core.traceBoundary(got.mask, got.width, got.height))) + 1;
        const h = hausdorff(got.polygon, want.polygon);
        console.log(`#   outline distance ${h.toFixed(2)} px (tolerance ${tol.toFixed(2)})`);
        assert.ok(h <= tol, `${c.name}: polygons differ by ${h} px`);
      }
    }
  });
}

/** Symmetric distance between two closed polygons: farthest vertex from the other's edges. */
function hausdorff(a, b) {
  const seg = (p, q, r) => {
    const [px, py] = p, [qx, qy] = q, [rx, ry] = r;
    const dx = rx - qx, dy = ry - qy;
    const l2 = dx * dx + dy * dy;
    const t = l2 ? Math.max(0, Math.min(1, ((px - qx) * dx + (py - qy) * dy) / l2)) : 0;
    return Math.hypot(px - qx - t * dx, py - qy - t * dy);
  };
  const one = (u, v) => Math.max(...u.map((p) => Math.min(...v.map((q, i) => seg(p, q, v[(i + 1) % v.length])))));
  if (!a.length || !b.length) return a.length === b.length ? 0 : Infinity;
  return Math.max(one(a, b), one(b, a));
}

test("summary, and Dice vs the expert masks (for the record)", async () => {
  assert.ok(results.length > 0);
  console.log(`# parity: min Dice vs Python ${Math.min(...results.map((r) => r.dice)).toFixed(6)} over ${results.length} masks, ${results.filter((r) => r.diff === 0).length} identical`);
  for (const c of cases.filter((c) => c.expert)) {
    const { data, info } = await sharp(readFileSync(c.expert)).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [c.width, c.height]);
    const truth = Uint8Array.from(data, (v) => (v > 0 ? 1 : 0));
    const r = results.find((r) => r.mode === "check" && r.name === c.name);
    const d = core.dice(r.mask, truth);
    console.log(`# ${c.name}: JS mask Dice vs expert ${d.toFixed(4)} (box check, expert box)`);
    assert.ok(d > 0.5, `${c.name}: Dice vs expert ${d}`); // a sanity floor: the figures are for the record
  }
});
