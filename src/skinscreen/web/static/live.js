// Live camera preview: the lesion outline drawn over the camera video, at the rate this device
// sustains. A frame that arrives while the model is still busy is skipped (counted as dropped),
// never queued, so the outline does not lag behind the picture.
//
// The tracker is @skinscreen/core's LiveTracker (js/packages/core/src/live.ts): the strategy of
// the Python LesionTracker (skinscreen.stream), reduced to what runs cheaply in JavaScript:
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

import * as core from "./core/index.js";

export const { shiftedDifference, estimateShift } = core;

/** Gray thumbnail (box-filter average) of an RGBA frame (w x h): {data, w, h, s}. */
export function grayThumb(rgba, w, h, width = 64) {
  return core.grayThumb({ data: rgba, width: w, height: h, channels: 4 }, width);
}

/** The core's tracker on an OnDeviceModel-like model (encode(rgba, w, h), predict(enc, box)),
 * fed RGBA frames: step(rgba, w, h). */
export class LiveTracker extends core.LiveTracker {
  constructor(model, opts = {}) {
    super(
      {
        encode: (f) => model.encode(f.data, f.width, f.height),
        predict: async (enc, box) => {
          const s = await model.predict(enc, box);
          return {
            polygon: s.polygon,
            svgPath: s.svg_path,
            areaPx: s.area_px,
            iouPrediction: s.iou_prediction,
          };
        },
      },
      opts,
    );
  }

  /** Process one RGBA frame (w x h); resolves to what to draw. */
  step(rgba, w, h) {
    return super.step({ data: rgba, width: w, height: h, channels: 4 });
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
