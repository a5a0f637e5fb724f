// On-device mode: the bundle's encoder and decoder run in this browser with onnxruntime-web
// (WebAssembly). The runtime files come from /static/vendor (installed from npm at set-up time
// and served by skinscreen itself), the model files from /api/models/...: the photo never leaves
// the device.
import * as ort from "./vendor/ort.wasm.min.mjs";
import * as pipeline from "./pipeline.js";

ort.env.wasm.wasmPaths = new URL("./vendor/", import.meta.url).href;
ort.env.wasm.numThreads = self.crossOriginIsolated
  ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1))
  : 1;
ort.env.logLevel = "error";

async function fetchBytes(url, expectedBytes, onProgress) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not load ${url}: HTTP ${res.status}`);
  if (!res.body || !expectedBytes) return new Uint8Array(await res.arrayBuffer());
  const out = new Uint8Array(expectedBytes);
  const reader = res.body.getReader();
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.length > out.length) throw new Error(`${url} is larger than the manifest says`);
    out.set(value, n);
    n += value.length;
    onProgress?.(n);
  }
  if (n !== expectedBytes) throw new Error(`${url}: got ${n} bytes, manifest says ${expectedBytes}`);
  return out;
}

async function sha256Hex(bytes) {
  if (!self.crypto?.subtle) return null; // not a secure context (plain HTTP on a LAN address)
  const d = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The served model, loaded into onnxruntime-web sessions. */
export class OnDeviceModel {
  constructor(manifest, encoder, decoder, info, check = null) {
    this.manifest = manifest;
    this.spec = manifest.spec;
    this.encoder = encoder;
    this.decoder = decoder;
    this.info = info;
    // the box check (skinscreen.box_check): {session, model, agreementMin} or null
    this.check = check;
    this.queue = Promise.resolve(); // ORT sessions run one call at a time
  }

  /**
   * Download manifest + encoder + decoder of the served model (from GET /api/models) and create
   * the sessions. onProgress(fraction in [0, 1]).
   */
  static async load(onProgress) {
    const models = await (await fetch("/api/models")).json();
    const served = models.find((m) => m.served);
    if (!served) throw new Error("the server has no model bundle to send: run skinscreen export");
    const manifest = await (await fetch(served.manifest_url)).json();
    pipeline.checkSpec(manifest.spec);
    const files = Object.fromEntries(served.files.map((f) => [f.part, f]));
    for (const part of ["encoder", "decoder"]) {
      if (!files[part]) throw new Error(`the bundle has no ${part} file`);
    }
    // the served model's box check: a second, box-robust decoder (same embedding)
    if (served.box_check) files.check = served.box_check.file;
    const parts = Object.keys(files).filter((p) => ["encoder", "decoder", "check"].includes(p));
    const total = parts.reduce((n, p) => n + files[p].bytes, 0);
    const done = Object.fromEntries(parts.map((p) => [p, 0]));
    const progress = (part) => (n) => {
      done[part] = n;
      onProgress?.(Object.values(done).reduce((a, b) => a + b, 0) / total);
    };
    const t0 = performance.now();
    const loaded = await Promise.all(
      parts.map((p) => fetchBytes(files[p].url, files[p].bytes, progress(p))),
    );
    const bytesOf = Object.fromEntries(parts.map((p, i) => [p, loaded[i]]));
    let verified = false;
    for (const part of parts) {
      const digest = await sha256Hex(bytesOf[part]);
      if (digest !== null && digest !== files[part].sha256) {
        throw new Error(`${part} file does not match its sha256 in the manifest`);
      }
      verified = digest !== null;
    }
    const t1 = performance.now();
    const opts = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
    const encoder = await ort.InferenceSession.create(bytesOf.encoder, opts);
    const decoder = await ort.InferenceSession.create(bytesOf.decoder, opts);
    let check = null;
    if (bytesOf.check) {
      check = {
        session: await ort.InferenceSession.create(bytesOf.check, opts),
        model: served.box_check.model,
        agreementMin: served.box_check.agreement_min,
      };
    }
    const t2 = performance.now();
    const info = {
      model: manifest.model,
      variant: served.variant,
      bytes: total,
      sha256_verified: verified,
      threads: ort.env.wasm.numThreads,
      box_check: check ? check.model : null,
      timings_ms: { download: t1 - t0, session: t2 - t1 },
    };
    return new OnDeviceModel(manifest, encoder, decoder, info, check);
  }

  _serial(fn) {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Encode a photo given as RGBA pixels (h x w x 4): the cacheable embedding. */
  encode(rgba, w, h) {
    return this._serial(async () => {
      const t0 = performance.now();
      const { input, transform } = pipeline.preprocess(this.spec, rgba, w, h);
      const s = this.spec.input_size;
      const t1 = performance.now();
      const feeds = { [this.encoder.inputNames[0]]: new ort.Tensor("float32", input, [1, 3, s, s]) };
      const out = await this.encoder.run(feeds);
      const embedding = out[this.encoder.outputNames[0]];
      const t2 = performance.now();
      return { embedding, transform, timings_ms: { preprocess: t1 - t0, encoder: t2 - t1 } };
    });
  }

  /**
   * Decode a user box (photo pixels, XYXY) on an encoding -> mask (h x w Uint8Array 0/1) etc.
   * The box is grown by the manifest's box_margin first (opts.boxMargin overrides it; 0 turns it
   * off), exactly as LesionPredictor.predict() does: box_used is what prompted the decoder.
   */
  predict(enc, box, { boxMargin = null } = {}) {
    return this._serial(async () => {
      const t0 = performance.now();
      const [h0, w0] = enc.transform.originalSize;
      const margin = boxMargin ?? pipeline.boxMargin(this.manifest);
      const prompt = pipeline.promptBox(box, margin, w0, h0);
      const [emb, boxes] = this.decoder.inputNames;
      const feeds = {
        [emb]: enc.embedding,
        [boxes]: new ort.Tensor("float32", pipeline.boxToModel(enc.transform, prompt.used), [1, 4]),
      };
      const out = await this.decoder.run(feeds);
      let logits = out[this.decoder.outputNames[0]].data;
      let iou = this.decoder.outputNames[1] ? out[this.decoder.outputNames[1]].data[0] : NaN;
      const t1 = performance.now();
      let boxCheck = null;
      if (this.check) {
        // as LesionPredictor.predict(): the box-robust decoder's mask where the two disagree
        const c = this.check.session;
        const cfeeds = { [c.inputNames[0]]: feeds[emb], [c.inputNames[1]]: feeds[boxes] };
        const cout = await c.run(cfeeds);
        const clogits = cout[c.outputNames[0]].data;
        const agreement = pipeline.maskAgreement(
          logits, clogits, enc.transform, this.spec.low_res_size, this.spec.mask_threshold,
        );
        const robust = agreement < this.check.agreementMin;
        if (robust) {
          logits = clogits;
          iou = c.outputNames[1] ? cout[c.outputNames[1]].data[0] : NaN;
        }
        boxCheck = {
          agreement: Math.round(agreement * 1e4) / 1e4,
          threshold: this.check.agreementMin,
          decoder: robust ? "box-robust" : "default",
          check_model: this.check.model,
        };
      }
      const tc = performance.now();
      const { mask, crop } = pipeline.postprocess(this.manifest, logits, enc.transform);
      const [h, w] = enc.transform.originalSize;
      const polygon = pipeline.outerPolygon(mask, w, h);
      let area = 0;
      for (let i = 0; i < mask.length; i++) area += mask[i];
      const t2 = performance.now();
      return {
        mask,
        width: w,
        height: h,
        crop,
        polygon,
        svg_path: pipeline.svgPath(polygon),
        area_px: area,
        box_used: prompt.used,
        box_margin: prompt.margin,
        iou_prediction: iou,
        box_check: boxCheck,
        timings_ms: {
          decoder: t1 - t0,
          ...(boxCheck ? { box_check: tc - t1 } : {}),
          postprocess: t2 - tc,
        },
      };
    });
  }
}
