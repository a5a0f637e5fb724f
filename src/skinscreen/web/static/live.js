// Live camera preview: the lesion outline drawn over the camera video, at the rate this device
// sustains. A frame that arrives while the model is still busy is skipped (counted as dropped),
// never queued, so the outline does not lag behind the picture.
//
// Same strategy as the Python LesionTracker (skinscreen.stream), reduced to what runs cheaply in
// a browser:
//   - every frame gets a small gray thumbnail; the camera's pan since the previous frame is found
//     by block matching (coarse-to-fine, mean absolute difference of zero-mean thumbnails) and
//     added up since the last *key frame* (the last frame the encoder ran on);
//   - while the key frame, shifted by that pan, still matches the current frame (residual below
//     `changeThreshold` gray levels) the key's outline is shifted: no model call at all;
//   - otherwise (content changed, zoom/roll, `maxSkip` frames passed) the encoder and decoder run
//     on this frame with the key's box shifted by the pan as the prompt;
//   - when the shifted box leaves the frame the lesion is "lost"; it is looked for again (one
//     encoder run) when the box is predicted back in view.
// Pan only: zoom and roll are caught by the residual and cost an encoder run.
//
// Works with OnDeviceModel (ondevice.js: encode(rgba, w, h), predict(enc, box)) or any object
// with those two methods. Coordinates: frame pixels, boxes XYXY [x0, y0, x1, y1].
// A screening aid, never a diagnosis.

import { svgPath } from "./pipeline.js";

/** Gray thumbnail (box-filter average) of an RGBA frame (w x h): {data, w, h, s}. */
export function grayThumb(rgba, w, h, width = 64) {
  const s = Math.min(1, width / w);
  const tw = Math.max(8, Math.round(w * s));
  const th = Math.max(8, Math.round(h * s));
  const sum = new Float32Array(tw * th);
  const cnt = new Float32Array(tw * th);
  const fx = tw / w;
  const fy = th / h;
  for (let y = 0; y < h; y++) {
    const row = Math.min(th - 1, Math.floor(y * fy)) * tw;
    for (let x = 0; x < w; x++) {
      const k = row + Math.min(tw - 1, Math.floor(x * fx));
      const i = (y * w + x) * 4;
      sum[k] += 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
      cnt[k] += 1;
    }
  }
  let mean = 0;
  for (let k = 0; k < sum.length; k++) {
    sum[k] /= cnt[k];
    mean += sum[k];
  }
  mean /= sum.length;
  for (let k = 0; k < sum.length; k++) sum[k] -= mean; // zero mean: brightness changes cancel
  return { data: sum, w: tw, h: th, s: tw / w };
}

function half(t) {
  const w = Math.floor(t.w / 2);
  const h = Math.floor(t.h / 2);
  const d = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 2 * y * t.w + 2 * x;
      d[y * w + x] = 0.25 * (t.data[i] + t.data[i + 1] + t.data[i + t.w] + t.data[i + t.w + 1]);
    }
  }
  return { data: d, w, h, s: t.s / 2 };
}

/**
 * Mean |a(x, y) - b(x + dx, y + dy)| over the overlap (integer shift), or Infinity when the
 * overlap is below `minOverlap` of the thumbnail.
 */
export function shiftedDifference(a, b, dx, dy, minOverlap = 0.3) {
  const x0 = Math.max(0, -dx);
  const x1 = Math.min(a.w, b.w - dx);
  const y0 = Math.max(0, -dy);
  const y1 = Math.min(a.h, b.h - dy);
  const n = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  if (n < minOverlap * a.w * a.h) return Infinity;
  let total = 0;
  for (let y = y0; y < y1; y++) {
    const ra = y * a.w;
    const rb = (y + dy) * b.w + dx;
    for (let x = x0; x < x1; x++) total += Math.abs(a.data[ra + x] - b.data[rb + x]);
  }
  return total / n;
}

function searchShift(a, b, cx, cy, radius) {
  let best = { dx: cx, dy: cy, cost: Infinity };
  const costs = new Map();
  for (let dy = cy - radius; dy <= cy + radius; dy++) {
    for (let dx = cx - radius; dx <= cx + radius; dx++) {
      const c = shiftedDifference(a, b, dx, dy, 0.5);
      costs.set(`${dx},${dy}`, c);
      if (c < best.cost) best = { dx, dy, cost: c };
    }
  }
  best.costs = costs;
  return best;
}

function parabola(cm, c0, cp) {
  const d = cm - 2 * c0 + cp;
  return Number.isFinite(d) && d > 1e-9 ? Math.max(-0.5, Math.min(0.5, (0.5 * (cm - cp)) / d)) : 0;
}

/**
 * Translation (dx, dy) in thumbnail pixels that moves `a`'s content onto `b`'s: coarse search on
 * half-size thumbnails over +-maxShift, +-1 refinement at full size, parabolic sub-pixel fit.
 * Returns {dx, dy, residual} (residual: mean absolute gray difference at the best shift).
 */
export function estimateShift(a, b, maxShift = 10) {
  const ha = half(a);
  const hb = half(b);
  const r = Math.max(1, Math.ceil(maxShift / 2));
  const coarse = searchShift(ha, hb, 0, 0, r);
  const fine = searchShift(a, b, 2 * coarse.dx, 2 * coarse.dy, 1);
  const at = (dx, dy) =>
    fine.costs.get(`${dx},${dy}`) ?? shiftedDifference(a, b, dx, dy, 0.5);
  const sx = parabola(at(fine.dx - 1, fine.dy), fine.cost, at(fine.dx + 1, fine.dy));
  const sy = parabola(at(fine.dx, fine.dy - 1), fine.cost, at(fine.dx, fine.dy + 1));
  return { dx: fine.dx + sx, dy: fine.dy + sy, residual: fine.cost };
}

function clipBox(b, w, h) {
  return [Math.max(0, b[0]), Math.max(0, b[1]), Math.min(w, b[2]), Math.min(h, b[3])];
}

function boxArea(b) {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

/** Frame loop state: feed RGBA frames with step(), get the outline to draw. */
export class LiveTracker {
  /**
   * @param model OnDeviceModel-like: encode(rgba, w, h) and predict(enc, box).
   * @param opts.box the lesion's XYXY box in the first frame (default: the whole frame).
   */
  constructor(model, opts = {}) {
    this.model = model;
    this.opts = {
      thumbWidth: 64,
      changeThreshold: 6, // gray levels, mean |difference| after alignment
      maxShift: 10, // thumbnail pixels per frame
      maxSkip: 30, // most frames in a row without the encoder
      lostFraction: 0.3, // share of the box inside the frame below which the lesion is lost
      minAreaFraction: 0.001,
      retryEvery: 5, // frames between encoder runs while nothing is found
      ...opts,
    };
    this.box = opts.box ? [...opts.box] : null;
    this.key = null; // {thumb, polygon, box, index}
    this.prev = null;
    this.shift = [0, 0]; // thumbnail px, key -> current
    this.state = "starting";
    this.index = 0;
    this.nextTry = 0; // no encoder run before this frame index after a failed one
    this.encoderRuns = 0;
  }

  /** The user drew a new box (frame pixels of the last frame shown): used on the next step. */
  setBox(box) {
    this.box = [...box];
    this.key = null;
  }

  /** Process one RGBA frame (w x h); resolves to what to draw. */
  async step(rgba, w, h) {
    const o = this.opts;
    const t0 = performance.now();
    const thumb = grayThumb(rgba, w, h, o.thumbWidth);
    let residual = null;
    let reason = null;
    let box = null;
    if (this.key === null) {
      reason = this.index >= this.nextTry ? "init" : null;
      box = clipBox(this.box ?? [0, 0, w, h], w, h);
    } else {
      const d = estimateShift(this.prev, thumb, o.maxShift);
      this.shift = [this.shift[0] + d.dx, this.shift[1] + d.dy];
      const [ox, oy] = [this.shift[0] / thumb.s, this.shift[1] / thumb.s];
      const k = this.key.box;
      const moved = [k[0] + ox, k[1] + oy, k[2] + ox, k[3] + oy];
      const inside = boxArea(clipBox(moved, w, h)) / Math.max(1, boxArea(moved));
      residual = shiftedDifference(
        this.key.thumb, thumb, Math.round(this.shift[0]), Math.round(this.shift[1]),
      );
      if (inside < o.lostFraction) {
        this.state = "lost";
      } else if (this.state === "lost") {
        reason = this.index >= this.nextTry ? "reacquire" : null;
      } else if (!(residual <= o.changeThreshold)) {
        reason = "content";
      } else if (this.index - this.key.index >= o.maxSkip) {
        reason = "refresh";
      }
      box = clipBox(moved, w, h);
    }
    this.prev = thumb;
    const out = { index: this.index, encoder_ran: false, reason, residual, box: null };
    if ((this.state === "lost" || this.key === null) && reason === null) {
      Object.assign(out, { state: "lost", polygon: [], svg_path: "" });
    } else if (reason === null) {
      // unchanged view: shift the key's outline, no model call
      const [ox, oy] = [this.shift[0] / thumb.s, this.shift[1] / thumb.s];
      const polygon = this.key.polygon.map(([x, y]) => [x + ox, y + oy]);
      Object.assign(out, { state: "tracking", polygon, svg_path: svgPath(polygon), box });
    } else {
      const enc = await this.model.encode(rgba, w, h);
      const seg = await this.model.predict(enc, box);
      this.encoderRuns += 1;
      out.encoder_ran = true;
      if (seg.area_px < o.minAreaFraction * w * h) {
        this.state = "lost";
        this.nextTry = this.index + o.retryEvery;
        Object.assign(out, { state: "lost", polygon: [], svg_path: "" });
      } else {
        this.key = { thumb, polygon: seg.polygon, box, index: this.index };
        this.shift = [0, 0];
        this.state = "tracking";
        Object.assign(out, {
          state: "tracking", polygon: seg.polygon, svg_path: seg.svg_path, box,
          area_px: seg.area_px, iou_prediction: seg.iou_prediction,
        });
      }
    }
    out.timings_ms = { total: performance.now() - t0 };
    this.index += 1;
    return out;
  }
}

/** Ask for the rear camera and play it in `video` (resolves once frames flow). */
export async function openCamera(video, constraints = { facingMode: "environment" }) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: constraints, audio: false });
  video.srcObject = stream;
  video.muted = true;
  video.playsInline = true;
  await video.play();
  return stream;
}

/**
 * Run the preview: every video frame is handed to a LiveTracker unless the previous one is
 * still being processed (then it is dropped); the outline is drawn on `canvas` (laid over the
 * video, any size). onResult(result) gets each result plus {fps, dropped}. Returns {stop()}.
 */
export function startLivePreview(video, canvas, model, { box = null, onResult = null } = {}) {
  const tracker = new LiveTracker(model, { box });
  const grab = document.createElement("canvas");
  const gctx = grab.getContext("2d", { willReadFrequently: true });
  const ctx = canvas.getContext("2d");
  let busy = false;
  let stopped = false;
  let dropped = 0;
  let processed = 0;
  const t0 = performance.now();
  const schedule = () =>
    video.requestVideoFrameCallback
      ? video.requestVideoFrameCallback(tick)
      : requestAnimationFrame(tick);
  async function tick() {
    if (stopped) return;
    schedule();
    if (busy) {
      dropped += 1;
      return;
    }
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) return;
    busy = true;
    try {
      grab.width = w;
      grab.height = h;
      gctx.drawImage(video, 0, 0, w, h);
      const r = await tracker.step(gctx.getImageData(0, 0, w, h).data, w, h);
      processed += 1;
      r.fps = processed / ((performance.now() - t0) / 1000);
      r.dropped = dropped;
      drawOutline(ctx, canvas, r, w, h);
      onResult?.(r);
    } finally {
      busy = false;
    }
  }
  schedule();
  return {
    tracker,
    stop() {
      stopped = true;
    },
  };
}

/** Teal fill + outline of result.svg_path, scaled from frame pixels to the canvas. */
export function drawOutline(ctx, canvas, result, w, h) {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!result.svg_path) return;
  ctx.save();
  ctx.scale(canvas.width / w, canvas.height / h);
  const path = new Path2D(result.svg_path);
  ctx.fillStyle = "rgba(0, 220, 200, 0.3)";
  ctx.fill(path);
  ctx.lineWidth = Math.max(2, w / 300);
  ctx.strokeStyle = "rgb(0, 220, 200)";
  ctx.stroke(path);
  ctx.restore();
}
