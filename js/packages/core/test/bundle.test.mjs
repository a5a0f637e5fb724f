// Bundle checks of @skinscreen/core: a tampered or truncated model file is refused with a clear
// error before anything runs; a missing or foreign manifest says what to do. And the web page's
// copy of the build is current.

import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import * as core from "../dist/index.js";
import { dirBundle, nodeBackend } from "../dist/node.js";
import { stale } from "../scripts/web-copy.mjs";

const BUNDLE = join(process.env.SKINSCREEN_HOME ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "skinscreen"), "bundles", "litemedsam");

/** A copy of the bundle (links to its files) with `edit(dir, manifest)` applied. */
function variantDir(edit) {
  const dir = mkdtempSync(join(tmpdir(), "skinscreen-js-bundle-"));
  const manifest = JSON.parse(readFileSync(join(BUNDLE, "manifest.json"), "utf8"));
  const files = manifest.variants["onnx-fp32"].files;
  for (const f of Object.values(files)) symlinkSync(join(BUNDLE, f.path), join(dir, f.path));
  edit?.(dir, manifest);
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  return dir;
}

test("a tampered model file is refused, naming the file and the fix", async () => {
  const dir = variantDir((d, m) => {
    const f = m.variants["onnx-fp32"].files.decoder.path;
    rmSync(join(d, f));
    const b = readFileSync(join(BUNDLE, f));
    b[b.length >> 1] ^= 0x01; // one bit
    writeFileSync(join(d, f), b);
  });
  try {
    await assert.rejects(core.LesionSegmenter.open(dirBundle(dir), nodeBackend(), { variant: "onnx-fp32" }), (e) => {
      assert.ok(e instanceof core.BundleError, e);
      assert.match(e.message, /decoder file decoder\.onnx does not match its sha256.*re-export/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a truncated model file is refused by its size", async () => {
  const dir = variantDir((d, m) => {
    const f = m.variants["onnx-fp32"].files.encoder.path;
    rmSync(join(d, f));
    writeFileSync(join(d, f), readFileSync(join(BUNDLE, f)).subarray(0, 1000));
  });
  try {
    await assert.rejects(core.LesionSegmenter.open(dirBundle(dir), nodeBackend(), { variant: "onnx-fp32" }), /encoder file encoder\.onnx is 1000 bytes, the manifest says \d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("no manifest, a newer format, an unknown variant, a pipeline the SDK lacks: clear errors", async () => {
  const empty = mkdtempSync(join(tmpdir(), "skinscreen-js-empty-"));
  const newer = variantDir((d, m) => (m.format_version = 99));
  const cubic = variantDir((d, m) => (m.spec.interpolation = "cubic"));
  try {
    await assert.rejects(core.LesionSegmenter.open(dirBundle(empty), nodeBackend()), (e) => e instanceof core.BundleError && /no bundle at .*skinscreen export/.test(e.message));
    await assert.rejects(core.LesionSegmenter.open(dirBundle(newer), nodeBackend()), /format_version 99/);
    await assert.rejects(core.LesionSegmenter.open(dirBundle(BUNDLE), nodeBackend(), { variant: "coreml-fp16" }), /has no variant coreml-fp16; it has/);
    await assert.rejects(core.LesionSegmenter.open(dirBundle(BUNDLE), nodeBackend(), { variant: "openvino-bf16" }), /is openvino, not ONNX/);
    await assert.rejects(core.LesionSegmenter.open(dirBundle(cubic), nodeBackend()), (e) => e instanceof core.SpecError && /interpolation=cubic/.test(e.message));
  } finally {
    for (const d of [empty, newer, cubic]) rmSync(d, { recursive: true, force: true });
  }
});

test("box rules as Python's validate_box / validate_box_margin", () => {
  assert.deepEqual(core.validateBox([-0.4, 1, 10, 20.3], 100, 20), [0, 1, 10, 20]);
  assert.throws(() => core.validateBox([-40, 0, 50, 50], 100, 100), /lies outside the 100x100 photo/);
  assert.throws(() => core.validateBox([10, 10, 5, 20], 100, 100), /is empty/);
  assert.throws(() => core.validateBox([1, 2, 3], 100, 100), /4 numbers/);
  assert.throws(() => core.validateBox([0, 0, NaN, 5], 100, 100), /NaN/);
  assert.throws(() => core.validateBoxMargin(1.5), /between 0 and 1/);
  assert.deepEqual(core.expandBox([10, 10, 30, 20], 0.5, 35, 100), [0, 5, 35, 25]);
});

test("the web page's copy of the core build is current (make js regenerates it)", () => {
  assert.deepEqual(stale(), []);
});
