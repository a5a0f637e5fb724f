// Live camera mode: the camera video with the lesion outline drawn over it at the rate this
// device sustains (live.js: block-matched pan, encoder only when the view changed, frames dropped
// while the model is busy), on-device inference only (the OnDeviceModel of on-device mode), so the
// video never leaves the browser. "Capture" freezes the current frame into the normal photo flow.
// Coordinates: video frame pixels, boxes XYXY [x0, y0, x1, y1]. A screening aid, never a diagnosis.
import { openCamera, startLivePreview } from "./live.js";

const $ = (id) => document.getElementById(id);
const MIN_BOX_CSS_PX = 6;

const live = {
  stream: null, // MediaStream while the camera is open
  preview: null, // startLivePreview() handle once a box is drawn
  box: null, // last drawn box, frame pixels
  last: null, // last tracker result
  drag: null,
  prevTracked: null, // time of the previous result when it was a tracked (no model) frame
};
// Read-only view for tests and debugging: frames processed, FPS, last outline.
const stats = {
  active: false, frames: 0, fps: 0, dropped: 0, encoderRuns: 0, state: "off",
  encoderMs: null, trackMs: null, trackedFps: null, trackedFrames: 0, trackedSpanMs: 0, width: 0, height: 0, box: null, polygon: [], areaPx: null,
};
window.__skinscreenLive = stats;

function setLiveStatus(text) {
  $("live-status").textContent = text;
}

/** One-line reason why the camera cannot be used, or null when it may work. */
function cameraBlocker() {
  if (!window.isSecureContext) {
    return "Live camera needs a secure page: open skinscreen at https:// or http://localhost.";
  }
  if (!navigator.mediaDevices?.getUserMedia) return "This browser has no camera access (getUserMedia).";
  return null;
}

/** Human message for a getUserMedia failure. */
function cameraError(e) {
  switch (e?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera permission was denied: allow camera access for this page in the browser settings, then try again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera found on this device: use Take photo or Choose photo instead.";
    case "NotReadableError":
    case "AbortError":
      return "The camera is in use by another app or could not start: close that app and try again.";
    default:
      return `The camera could not be opened: ${e?.message || e}`;
  }
}

function showLiveError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function toFrame(e) {
  const r = $("live-stage").getBoundingClientRect();
  const v = $("live-video");
  const x = ((e.clientX - r.left) / r.width) * v.videoWidth;
  const y = ((e.clientY - r.top) / r.height) * v.videoHeight;
  return [Math.min(Math.max(x, 0), v.videoWidth), Math.min(Math.max(y, 0), v.videoHeight)];
}

function drawLiveBox(box) {
  const rect = $("live-box-rect");
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

const FPS_WINDOW_MS = 2000; // the FPS shown: results in the last 2 s (live.js's r.fps is since start)
const recent = [];

function onResult(r) {
  live.last = r;
  const now = performance.now();
  recent.push(now);
  while (recent.length > 2 && now - recent[0] > FPS_WINDOW_MS) recent.shift();
  const fps = recent.length > 1 ? ((recent.length - 1) * 1000) / (now - recent[0]) : r.fps;
  Object.assign(stats, {
    frames: stats.frames + 1, fps, fpsSinceStart: r.fps, dropped: r.dropped,
    encoderRuns: live.preview?.tracker.encoderRuns ?? 0, state: r.state,
    box: r.box, polygon: r.polygon,
    areaPx: r.area_px ?? stats.areaPx,
  });
  // per-frame cost: with a model call (encoder + decoder) or a tracked, shifted outline
  if (r.encoder_ran) stats.encoderMs = r.timings_ms.total;
  else stats.trackMs = r.timings_ms.total;
  // rate between encoder runs: consecutive tracked results only (an encoder run is a pause)
  if (!r.encoder_ran && live.prevTracked !== null) {
    stats.trackedSpanMs += now - live.prevTracked;
    stats.trackedFrames += 1;
    stats.trackedFps = (1000 * stats.trackedFrames) / stats.trackedSpanMs;
  }
  live.prevTracked = r.encoder_ran ? null : now;
  $("live-fps").textContent = `${fps.toFixed(1)} FPS`;
  drawLiveBox(r.box);
  setLiveStatus(
    r.state === "lost"
      ? "Lesion not in view: point the camera at it, or draw a new box."
      : `Tracking: ${fps.toFixed(1)} FPS, ${r.dropped} frames dropped, encoder ran ${stats.encoderRuns}x.`,
  );
}

async function useBox(box) {
  live.box = box;
  drawLiveBox(box);
  if (live.preview) {
    live.preview.tracker.setBox(box);
    return;
  }
  const app = window.skinscreen;
  setLiveStatus("Loading the model into this browser…");
  let model;
  try {
    model = await app.ensureDeviceModel();
  } catch (e) {
    showLiveError(`Live outline needs on-device mode, which is unavailable: ${e.message}`);
    return;
  } finally {
    app.setBusy(null);
  }
  if (!live.stream) return; // stopped meanwhile
  const canvas = $("live-overlay");
  const v = $("live-video");
  canvas.width = v.videoWidth;
  canvas.height = v.videoHeight;
  recent.length = 0;
  live.preview = startLivePreview(v, canvas, model, { box: live.box, onResult });
  $("live-capture").disabled = false;
  setLiveStatus("Outlining…");
}

function onPointerDown(e) {
  if (!live.stream || (e.pointerType === "mouse" && e.button !== 0)) return;
  e.preventDefault();
  $("live-stage").setPointerCapture(e.pointerId);
  const [x, y] = toFrame(e);
  live.drag = { id: e.pointerId, x0: x, y0: y, x1: x, y1: y };
}
function onPointerMove(e) {
  const d = live.drag;
  if (!d || e.pointerId !== d.id) return;
  e.preventDefault();
  [d.x1, d.y1] = toFrame(e);
  drawLiveBox([d.x0, d.y0, d.x1, d.y1]);
}
function onPointerUp(e) {
  const d = live.drag;
  if (!d || e.pointerId !== d.id) return;
  live.drag = null;
  const r = $("live-stage").getBoundingClientRect();
  const minPx = (MIN_BOX_CSS_PX / r.width) * $("live-video").videoWidth;
  const box = [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1), Math.max(d.y0, d.y1)];
  if (box[2] - box[0] < minPx || box[3] - box[1] < minPx) {
    drawLiveBox(live.last?.box ?? live.box); // a tap, not a box
    return;
  }
  useBox(box.map((v) => Math.round(v * 10) / 10));
}

function stopLive() {
  live.preview?.stop();
  live.preview = null;
  for (const t of live.stream?.getTracks() ?? []) t.stop();
  live.stream = null;
  live.box = null;
  live.last = null;
  live.prevTracked = null;
  const v = $("live-video");
  v.srcObject = null;
  const c = $("live-overlay");
  c.getContext("2d").clearRect(0, 0, c.width, c.height);
  drawLiveBox(null);
  $("live").hidden = true;
  $("live-capture").disabled = true;
  $("live-fps").textContent = "";
  $("stage").hidden = false;
  Object.assign(stats, { active: false, state: "off" });
}

async function startLive() {
  const blocker = cameraBlocker();
  if (blocker) {
    showLiveError(blocker);
    return;
  }
  if (!window.skinscreen.state.health?.on_device_available) {
    showLiveError(
      "Live outline runs on this device and needs onnxruntime-web: run scripts/fetch_web_vendor.sh, then restart the server.",
    );
    return;
  }
  $("error").hidden = true;
  const v = $("live-video");
  try {
    live.stream = await openCamera(v);
  } catch (e) {
    live.stream = null;
    showLiveError(cameraError(e));
    return;
  }
  $("live-stage").style.aspectRatio = `${v.videoWidth} / ${v.videoHeight}`;
  const svg = $("live-vector");
  svg.setAttribute("viewBox", `0 0 ${v.videoWidth} ${v.videoHeight}`);
  svg.setAttribute("preserveAspectRatio", "none");
  $("stage").hidden = true;
  $("live").hidden = false;
  Object.assign(stats, {
    active: true, frames: 0, fps: 0, dropped: 0, encoderRuns: 0, state: "waiting",
    trackedFps: null, trackedFrames: 0, trackedSpanMs: 0,
    width: v.videoWidth, height: v.videoHeight, box: null, polygon: [], areaPx: null,
  });
  setLiveStatus("Drag a box around the lesion on the video.");
  // Warm the model up while the user aims.
  window.skinscreen.ensureDeviceModel().catch(() => {}).finally(() => window.skinscreen.setBusy(null));
}

/** Freeze the current video frame into the photo flow (segmented with the tracked box). */
async function capture() {
  const v = $("live-video");
  const w = v.videoWidth;
  const h = v.videoHeight;
  if (!w || !h) return;
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  c.getContext("2d").drawImage(v, 0, 0, w, h);
  const box = live.last?.state === "tracking" ? live.last.box : live.box;
  const blob = await new Promise((res) => c.toBlob(res, "image/png"));
  stopLive();
  const file = new File([blob], `live-${new Date().toISOString().replace(/[:.]/g, "-")}.png`, { type: "image/png" });
  await window.skinscreen.loadPhoto(file);
  if (box) await window.skinscreen.useBox(box);
}

async function init() {
  await window.skinscreen.ready;
  $("live-btn").addEventListener("click", () => (live.stream ? stopLive() : startLive()));
  $("live-stop").addEventListener("click", stopLive);
  $("live-capture").addEventListener("click", capture);
  const stage = $("live-stage");
  stage.addEventListener("pointerdown", onPointerDown);
  stage.addEventListener("pointermove", onPointerMove);
  stage.addEventListener("pointerup", onPointerUp);
  stage.addEventListener("pointercancel", () => {
    live.drag = null;
    drawLiveBox(live.last?.box ?? live.box);
  });
  $("live-btn").disabled = false;
}

init();
