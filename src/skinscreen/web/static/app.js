// skinscreen page: photo -> box -> outline, heatmap and assessment, in server or on-device mode.
// No build step: plain ES modules served by `skinscreen serve`.
import * as pipeline from "./pipeline.js";

const $ = (id) => document.getElementById(id);
const WORK_MAX = 2048; // longest side of the on-screen canvases (photo pixels are kept separately)
const FILL = [0, 190, 255, 95]; // translucent mask fill (RGBA)
const MIN_BOX_CSS_PX = 6;

const state = {
  health: null,
  mode: "server", // "server" | "device"
  photo: null, // {id, file, name, bitmap, w, h}
  work: null, // {w, h, scale}: canvas size and canvas px per photo px
  box: null, // [x0, y0, x1, y1] photo pixels
  result: null,
  seq: 0,
  photoSeq: 0,
  device: { model: null, loading: null, encoding: null, encodingFor: -1, encodingPromise: null },
};

let readyResolve;
const ready = new Promise((r) => {
  readyResolve = r;
});
window.skinscreen = {
  state,
  pipeline,
  ready,
  // hooks for livemode.js (Live camera): the photo flow and the on-device model
  loadPhoto,
  ensureDeviceModel,
  setBusy,
  useBox: (box) => {
    state.box = box;
    drawBox(box);
    return segment(box);
  },
};

// -- small UI helpers ---------------------------------------------------------------------------
function setStatus(text) {
  $("status").textContent = text;
}
function setBusy(text) {
  $("busy").hidden = !text;
  if (text) $("busy-text").textContent = text;
}
function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
function clearError() {
  $("error").hidden = true;
}
function fmtMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}
function b64ToBytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function download(blob, filename) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
function baseName() {
  return (state.photo?.name || "photo").replace(/\.[^.]+$/, "") || "photo";
}

// -- photo ----------------------------------------------------------------------------------------
async function loadPhoto(file) {
  if (!file) return;
  clearError();
  let bitmap;
  try {
    // EXIF orientation applied like the server (ImageOps.exif_transpose); no colour management,
    // so the pixels match what Pillow decodes.
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image", colorSpaceConversion: "none" });
  } catch {
    showError(`This browser cannot open “${file.name}” as a photo: use a JPEG or PNG.`);
    return;
  }
  if (bitmap.width < 16 || bitmap.height < 16) {
    showError(`The photo is ${bitmap.width}x${bitmap.height} px: too small to segment (at least 16 px a side).`);
    return;
  }
  const id = ++state.photoSeq;
  state.seq++; // drop answers for the previous photo
  state.photo = { id, file, name: file.name || "photo.jpg", bitmap, w: bitmap.width, h: bitmap.height };
  state.box = null;
  state.result = null;
  state.device.encoding = null;
  state.device.encodingFor = -1;
  state.device.encodingPromise = null;

  const scale = Math.min(1, WORK_MAX / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * scale));
  const h = Math.max(1, Math.round(bitmap.height * scale));
  state.work = { w, h, scale: w / bitmap.width };
  for (const id of ["photo-layer", "heatmap-layer", "mask-layer"]) {
    const c = $(id);
    c.width = w;
    c.height = h;
  }
  const ctx = $("photo-layer").getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, w, h);
  const svg = $("vector-layer");
  svg.setAttribute("viewBox", `0 0 ${bitmap.width} ${bitmap.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  $("contour").setAttribute("d", "");
  $("box-rect").setAttribute("visibility", "hidden");
  const stage = $("stage");
  stage.classList.remove("empty");
  stage.dataset.state = "photo";
  resetResultPanel();
  $("auto-btn").disabled = state.mode !== "server";
  setStatus(`${state.photo.name}: ${bitmap.width} x ${bitmap.height} px. Drag a box around the lesion.`);
  if (state.mode === "device") prepareDevice().catch((e) => showError(e.message));
}

function resetResultPanel() {
  for (const id of ["heatmap-toggle", "fill-toggle", "download-mask", "download-report"]) $(id).disabled = true;
  $("fact-area").textContent = "–";
  $("fact-box").textContent = "–";
  $("fact-time").textContent = "–";
  $("assessment-note").textContent = "Segment a lesion to see its measurements.";
  $("assessment-table").hidden = true;
  $("assessment-all").hidden = true;
  $("quality-warnings").hidden = true;
  $("mask-layer").getContext("2d").clearRect(0, 0, state.work?.w || 0, state.work?.h || 0);
  $("heatmap-layer").getContext("2d").clearRect(0, 0, state.work?.w || 0, state.work?.h || 0);
}

// -- box drawing (pointer events: mouse, touch and pen alike) -------------------------------------
let drag = null;

function toPhoto(e) {
  const r = $("stage").getBoundingClientRect();
  const x = ((e.clientX - r.left) / r.width) * state.photo.w;
  const y = ((e.clientY - r.top) / r.height) * state.photo.h;
  return [Math.min(Math.max(x, 0), state.photo.w), Math.min(Math.max(y, 0), state.photo.h)];
}

function drawBox(box) {
  const rect = $("box-rect");
  if (!box) {
    rect.setAttribute("visibility", "hidden");
    return;
  }
  const [x0, y0, x1, y1] = box;
  rect.setAttribute("x", Math.min(x0, x1));
  rect.setAttribute("y", Math.min(y0, y1));
  rect.setAttribute("width", Math.abs(x1 - x0));
  rect.setAttribute("height", Math.abs(y1 - y0));
  rect.setAttribute("visibility", "visible");
}

function onPointerDown(e) {
  if (!state.photo || (e.pointerType === "mouse" && e.button !== 0)) return;
  e.preventDefault();
  $("stage").setPointerCapture(e.pointerId);
  const [x, y] = toPhoto(e);
  drag = { id: e.pointerId, x0: x, y0: y, x1: x, y1: y };
  drawBox([x, y, x, y]);
}
function onPointerMove(e) {
  if (!drag || e.pointerId !== drag.id) return;
  e.preventDefault();
  [drag.x1, drag.y1] = toPhoto(e);
  drawBox([drag.x0, drag.y0, drag.x1, drag.y1]);
}
function onPointerUp(e) {
  if (!drag || e.pointerId !== drag.id) return;
  const d = drag;
  drag = null;
  const r = $("stage").getBoundingClientRect();
  const minPx = (MIN_BOX_CSS_PX / r.width) * state.photo.w;
  const box = [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1), Math.max(d.y0, d.y1)];
  if (box[2] - box[0] < minPx || box[3] - box[1] < minPx) {
    drawBox(state.box); // a tap, not a box
    return;
  }
  state.box = box.map((v) => Math.round(v * 10) / 10);
  drawBox(state.box);
  segment(state.box);
}
function onPointerCancel() {
  drag = null;
  drawBox(state.box);
}

// -- segmentation ---------------------------------------------------------------------------------
async function segment(box) {
  if (!state.photo) return;
  const seq = ++state.seq;
  const stage = $("stage");
  clearError();
  stage.dataset.state = "busy";
  setBusy(state.mode === "device" ? "Segmenting on this device…" : "Segmenting…");
  try {
    const r = state.mode === "device" ? await segmentOnDevice(box) : await segmentOnServer(box, false);
    if (seq !== state.seq) return;
    await showResult(r);
    stage.dataset.seq = String(seq);
    stage.dataset.mode = r.mode;
    stage.dataset.state = "done";
    if (r.mode === "server" && r.area_px > 0) fetchAssessment(r, seq);
  } catch (err) {
    if (seq !== state.seq) return;
    console.error(err);
    showError(err.message || String(err));
    stage.dataset.state = "error";
    setStatus("Segmentation failed.");
  } finally {
    if (seq === state.seq) setBusy(null);
  }
}

async function postSegment(box, features) {
  const fd = new FormData();
  fd.append("image", state.photo.file, state.photo.name);
  fd.append("box", box === "auto" ? "auto" : JSON.stringify(box));
  fd.append("features", features ? "true" : "false");
  const t0 = performance.now();
  let res;
  try {
    res = await fetch("/api/segment", { method: "POST", body: fd });
  } catch {
    throw new Error("Cannot reach the skinscreen server: is `skinscreen serve` still running?");
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const detail = body?.detail;
    const msg = typeof detail === "string" ? detail : detail ? JSON.stringify(detail) : res.statusText;
    throw new Error(`Server (${res.status}): ${msg}`);
  }
  body.roundtrip_ms = performance.now() - t0;
  return body;
}

/** Mask first (features=false: fast), the assessment follows in fetchAssessment(). */
async function segmentOnServer(box, features) {
  const body = await postSegment(box, features);
  const maskBlob = new Blob([b64ToBytes(body.mask_png)], { type: "image/png" });
  const maskSource = await createImageBitmap(maskBlob);
  const heatmap = await createImageBitmap(new Blob([b64ToBytes(body.heatmap_png)], { type: "image/png" }));
  return {
    ...body,
    mode: "server",
    mask_png: undefined,
    heatmap_png: undefined,
    maskSource,
    maskBlob,
    heatmap,
    assessment_pending: !features && body.area_px > 0,
  };
}

/** Second request on the cached photo: the lesion features and photo quality for the panel. */
async function fetchAssessment(r, seq) {
  try {
    const body = await postSegment(r.box, true);
    if (seq !== state.seq || state.result !== r) return;
    r.features = body.features;
    r.quality = body.quality;
    r.assessment_note = body.assessment_note;
    r.timings_ms.assess = body.timings_ms.assess;
  } catch (err) {
    if (seq !== state.seq || state.result !== r) return;
    r.features = null;
    r.assessment_note = err.message;
  }
  r.assessment_pending = false;
  renderAssessment(r);
  $("assessment-card").dataset.state = "done";
}

// -- on-device ------------------------------------------------------------------------------------
async function ensureDeviceModel() {
  if (state.device.model) return state.device.model;
  if (!state.device.loading) {
    state.device.loading = (async () => {
      const { OnDeviceModel } = await import("./ondevice.js");
      return OnDeviceModel.load((f) => setBusy(`Loading the model into this browser… ${Math.round(f * 100)}%`));
    })();
    state.device.loading.catch(() => {
      state.device.loading = null;
    });
  }
  setBusy("Loading the model into this browser…");
  state.device.model = await state.device.loading;
  return state.device.model;
}

function photoRGBA(photo) {
  const c = new OffscreenCanvas(photo.w, photo.h);
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(photo.bitmap, 0, 0);
  return ctx.getImageData(0, 0, photo.w, photo.h).data;
}

async function ensureDeviceEncoding() {
  const photo = state.photo;
  if (state.device.encodingFor === photo.id && state.device.encoding) return { enc: state.device.encoding, hit: true };
  if (!state.device.encodingPromise || state.device.encodingPromiseFor !== photo.id) {
    const model = await ensureDeviceModel();
    state.device.encodingPromiseFor = photo.id;
    state.device.encodingPromise = model.encode(photoRGBA(photo), photo.w, photo.h);
  }
  const enc = await state.device.encodingPromise;
  if (state.photo?.id === photo.id) {
    state.device.encoding = enc;
    state.device.encodingFor = photo.id;
  }
  return { enc, hit: false };
}

/** Load the model and encode the current photo ahead of the first box. */
async function prepareDevice() {
  if (!state.photo) {
    await ensureDeviceModel();
    setBusy(null);
    return;
  }
  const seq = state.seq;
  setBusy("Preparing the photo on this device…");
  try {
    await ensureDeviceEncoding();
  } finally {
    if (seq === state.seq) setBusy(null);
  }
}

const INFERNO = [
  [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
  [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164],
];
function inferno(p) {
  const t = Math.min(Math.max(p, 0), 1) * (INFERNO.length - 1);
  const i = Math.min(Math.floor(t), INFERNO.length - 2);
  const f = t - i;
  return INFERNO[i].map((a, k) => Math.round(a + (INFERNO[i + 1][k] - a) * f));
}

/** Heatmap of the cropped low-res logits (same colours and opacity rule as the server's). */
function heatmapCanvas(crop) {
  const c = new OffscreenCanvas(crop.w, crop.h);
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(crop.w, crop.h);
  for (let i = 0; i < crop.data.length; i++) {
    const p = 1 / (1 + Math.exp(-crop.data[i]));
    const p8 = Math.round(p * 255);
    const [r, g, b] = inferno(p);
    img.data.set([r, g, b, p8 >= 5 ? Math.floor(60 + (p8 * 160) / 255) : 0], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

/** (h, w) 0/1 mask -> opaque black/white canvas at photo size (drawn and downloaded). */
function maskCanvas(mask, w, h) {
  const c = new OffscreenCanvas(w, h);
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(w, h);
  const d = img.data;
  for (let i = 0, j = 0; i < mask.length; i++, j += 4) {
    const v = mask[i] ? 255 : 0;
    d[j] = d[j + 1] = d[j + 2] = v;
    d[j + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

async function segmentOnDevice(box) {
  if (box === "auto") throw new Error("Automatic lesion finding runs on the server: draw a box, or switch off on-device mode.");
  const t0 = performance.now();
  const model = await ensureDeviceModel();
  setBusy("Segmenting on this device…");
  const { enc, hit } = await ensureDeviceEncoding();
  const p = await model.predict(enc, box);
  const t1 = performance.now();
  const maskSource = maskCanvas(p.mask, p.width, p.height);
  return {
    mode: "device",
    model: model.info.model,
    variant: model.info.variant,
    box,
    box_source: "user",
    box_used: p.box_used,
    box_margin: p.box_margin,
    polygon: p.polygon,
    svg_path: p.svg_path,
    area_px: p.area_px,
    area_fraction: p.area_px / (p.width * p.height),
    image_size: [p.width, p.height],
    iou_prediction: p.iou_prediction,
    box_check: p.box_check,
    features: null,
    assessment_note:
      "The assessment runs on the server. Switch off on-device mode to see it (the photo then goes to this computer's skinscreen server, nowhere else).",
    cache_hit: hit,
    timings_ms: {
      preprocess: hit ? 0 : enc.timings_ms.preprocess,
      encoder: hit ? 0 : enc.timings_ms.encoder,
      decoder: p.timings_ms.decoder,
      ...(p.timings_ms.box_check !== undefined ? { box_check: p.timings_ms.box_check } : {}),
      postprocess: p.timings_ms.postprocess,
      total: t1 - t0,
    },
    threads: model.info.threads,
    encoding_ms: enc.timings_ms, // when this photo was encoded (possibly before the box)
    maskSource,
    maskBlob: null,
    heatmap: heatmapCanvas(p.crop),
    disclaimer: state.health?.disclaimer,
  };
}

// -- drawing and panel ----------------------------------------------------------------------------
/** Draw the photo-sized mask onto the work-sized mask layer as a translucent fill. */
function drawMask(r) {
  const { w, h } = state.work;
  const tmp = new OffscreenCanvas(w, h);
  const tctx = tmp.getContext("2d", { willReadFrequently: true });
  tctx.imageSmoothingEnabled = false; // nearest: the mask stays binary
  tctx.drawImage(r.maskSource, 0, 0, w, h);
  const src = tctx.getImageData(0, 0, w, h).data;
  const ctx = $("mask-layer").getContext("2d");
  const img = ctx.createImageData(w, h);
  const d = img.data;
  for (let j = 0; j < d.length; j += 4) {
    if (src[j] > 127) {
      d[j] = FILL[0];
      d[j + 1] = FILL[1];
      d[j + 2] = FILL[2];
      d[j + 3] = FILL[3];
    }
  }
  ctx.putImageData(img, 0, 0);
}

async function showResult(r) {
  state.result = r;
  if (Array.isArray(r.box)) {
    state.box = r.box;
    drawBox(r.box);
  }
  drawMask(r);
  $("mask-layer").hidden = !$("fill-toggle").checked;
  $("contour").setAttribute("d", r.svg_path || "");
  const hctx = $("heatmap-layer").getContext("2d");
  hctx.clearRect(0, 0, state.work.w, state.work.h);
  hctx.imageSmoothingEnabled = true;
  hctx.drawImage(r.heatmap, 0, 0, state.work.w, state.work.h);
  $("heatmap-layer").hidden = !$("heatmap-toggle").checked;
  for (const id of ["heatmap-toggle", "fill-toggle", "download-mask", "download-report"]) $(id).disabled = false;

  const pct = (100 * r.area_fraction).toFixed(1);
  $("fact-mode").textContent = r.mode === "device" ? `on-device (WebAssembly, ${r.threads} thread${r.threads > 1 ? "s" : ""})` : "server";
  $("fact-area").textContent = r.area_px ? `${r.area_px.toLocaleString()} px (${pct}% of photo)` : "no lesion found in the box";
  const grown = r.box_margin ? `, grown ${Math.round(100 * r.box_margin)}% per side` : "";
  const robust =
    r.box_check?.decoder === "box-robust" ? "; box check: the box-robust outline is shown" : "";
  $("fact-box").textContent = `${r.box.map((v) => Math.round(v)).join(", ")} (${r.box_source}${grown}${robust})`;
  const t = r.timings_ms;
  const parts = [];
  if (t.encoder) parts.push(`encoder ${fmtMs(t.encoder)}`);
  parts.push(`decoder ${fmtMs(t.decoder)}`);
  if (r.cache_hit) parts.push("cached photo");
  const total = r.mode === "server" ? r.roundtrip_ms : t.total;
  $("fact-time").textContent = `${fmtMs(total)} (${parts.join(", ")})`;
  renderAssessment(r);
  setStatus(
    r.area_px
      ? "Outline ready. Drag a new box to refine it."
      : "Nothing segmented inside this box: try a box that frames the whole lesion.",
  );
}

function fmtValue(v) {
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString() : Number(v.toPrecision(4)).toString();
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (v === null || v === undefined) return "–";
  if (Array.isArray(v)) return v.length > 6 ? `${v.length} values` : v.map(fmtValue).join(", ");
  return String(v).replaceAll(";", ", ").replaceAll("_", " ");
}

function flatten(obj, prefix = "", rows = []) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, rows);
    else rows.push([key, v]);
  }
  return rows;
}

/** Headline features (key, label); the full list is under "All measurements". */
const KEY_FEATURES = [
  ["diameter_max_mm", "Largest diameter (mm)"],
  ["diameter_max_px", "Largest diameter (px)"],
  ["asymmetry_count", "Asymmetric axes (of 2)"],
  ["color_asymmetry_count", "Axes with colour asymmetry (of 2)"],
  ["border_abrupt_count", "Abrupt border octants (of 8)"],
  ["color_count", "Colours"],
  ["colors_present", "Colours present"],
  ["solidity", "Solidity"],
  ["skin_tone", "Skin tone (ITA)"],
];

function fillTable(table, rows) {
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const [k, v] of rows) {
    const tr = document.createElement("tr");
    const a = document.createElement("td");
    const b = document.createElement("td");
    a.textContent = k;
    b.textContent = fmtValue(v);
    tr.append(a, b);
    body.append(tr);
  }
  table.hidden = !rows.length;
}

function renderAssessment(r) {
  const warnings = $("quality-warnings");
  warnings.replaceChildren();
  const oq = r.outline_quality;
  const check = oq?.check_outline
    ? `Check this outline: it is likely wrong (predicted overlap with an expert's outline ${Math.round(oq.predicted_jaccard * 100)}%, failure probability ${Math.round(oq.p_failure * 100)}%). Draw or adjust the box if it does not follow the lesion's edge.`
    : null;
  $("assessment-card").dataset.outlineCheck = oq ? String(!!oq.check_outline) : "";
  for (const w of [check, r.advisory, ...(r.quality?.warnings || [])].filter(Boolean)) {
    const li = document.createElement("li");
    li.textContent = w;
    if (w === check) li.className = "check-outline";
    warnings.append(li);
  }
  warnings.hidden = !warnings.children.length;
  $("assessment-card").dataset.state = r.assessment_pending ? "busy" : "done";
  const show = !r.assessment_pending && !!r.features;
  $("assessment-all").hidden = !show;
  $("assessment-table").hidden = !show;
  if (r.assessment_pending) {
    $("assessment-note").textContent = "Measuring the lesion…";
    return;
  }
  if (!r.features) {
    $("assessment-note").textContent =
      r.mode === "device" ? r.assessment_note : `Assessment unavailable: ${r.assessment_note || "not installed"}.`;
    return;
  }
  const f = r.features;
  const key = KEY_FEATURES.filter(([k]) => f[k] !== null && f[k] !== undefined && f[k] !== "").map(([k, label]) => [
    label,
    k === "skin_tone" && f.ita_deg != null ? `${f.skin_tone} (${Math.round(f.ita_deg)}°)` : f[k],
  ]);
  fillTable($("assessment-table"), key);
  const all = flatten(f)
    .filter(([, v]) => v !== null && v !== "")
    .map(([k, v]) => [k.replaceAll("_", " "), v]);
  fillTable($("assessment-all-table"), all.slice(0, 80));
  $("assessment-note").textContent = "Measurements of the outlined region (a screening aid, not a diagnosis).";
}

// -- downloads ------------------------------------------------------------------------------------
async function downloadMask() {
  const r = state.result;
  if (!r) return;
  const blob = r.maskBlob || (await r.maskSource.convertToBlob({ type: "image/png" }));
  download(blob, `${baseName()}-mask.png`);
}

function downloadReport() {
  const r = state.result;
  if (!r) return;
  const report = {
    generator: `skinscreen ${state.health?.version || ""} web app`.trim(),
    created: new Date().toISOString(),
    mode: r.mode,
    model: r.model,
    variant: r.variant,
    photo: { name: state.photo.name, width: state.photo.w, height: state.photo.h },
    box: r.box,
    box_source: r.box_source,
    box_margin: r.box_margin ?? 0,
    box_used: r.box_used ?? r.box,
    area_px: r.area_px,
    area_fraction: r.area_fraction,
    iou_prediction: r.iou_prediction,
    polygon: r.polygon,
    svg_path: r.svg_path,
    features: r.features,
    quality: r.quality,
    assessment_note: r.assessment_note,
    timings_ms: r.timings_ms,
    disclaimer: state.health?.disclaimer || $("disclaimer").textContent.trim(),
  };
  download(new Blob([JSON.stringify(report, null, 2)], { type: "application/json" }), `${baseName()}-report.json`);
}

// -- mode switch ----------------------------------------------------------------------------------
async function setMode(device) {
  state.mode = device ? "device" : "server";
  $("fact-mode").textContent = device ? "on-device" : "server";
  $("auto-btn").disabled = device || !state.photo;
  if (!device) {
    if (state.box) segment(state.box);
    return;
  }
  try {
    if (state.box) {
      await segment(state.box);
    } else {
      await prepareDevice();
    }
  } catch (e) {
    showError(`On-device mode is unavailable: ${e.message}`);
    $("ondevice-toggle").checked = false;
    state.mode = "server";
    $("fact-mode").textContent = "server";
    setBusy(null);
  }
}

// -- start ----------------------------------------------------------------------------------------
async function init() {
  for (const id of ["camera-input", "file-input"]) {
    $(id).addEventListener("change", (e) => {
      loadPhoto(e.target.files[0]);
      e.target.value = ""; // choosing the same file again still fires
    });
  }
  const stage = $("stage");
  stage.addEventListener("pointerdown", onPointerDown);
  stage.addEventListener("pointermove", onPointerMove);
  stage.addEventListener("pointerup", onPointerUp);
  stage.addEventListener("pointercancel", onPointerCancel);
  $("auto-btn").addEventListener("click", () => segment("auto"));
  $("heatmap-toggle").addEventListener("change", (e) => {
    $("heatmap-layer").hidden = !e.target.checked;
  });
  $("fill-toggle").addEventListener("change", (e) => {
    $("mask-layer").hidden = !e.target.checked;
  });
  $("download-mask").addEventListener("click", downloadMask);
  $("download-report").addEventListener("click", downloadReport);
  $("error-close").addEventListener("click", clearError);
  $("ondevice-toggle").addEventListener("change", (e) => setMode(e.target.checked));

  try {
    const health = await (await fetch("/api/health")).json();
    state.health = health;
    $("disclaimer").textContent = health.disclaimer;
    const toggle = $("ondevice-toggle");
    if (!health.on_device_available) {
      toggle.disabled = true;
      toggle.parentElement.title =
        "On-device mode needs onnxruntime-web: run scripts/fetch_web_vendor.sh, then restart the server.";
    }
    if (!health.bundle_present) showError(`No model on the server: ${health.bundle_error}`);
  } catch {
    showError("Cannot reach the skinscreen server: start it with `skinscreen serve`.");
  }
  readyResolve(true);
}

init();
