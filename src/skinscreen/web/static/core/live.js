// Generated from js/packages/core/src by `make js` (npm run build && npm run web): do not edit.
// Live camera tracking: the lesion outline over a camera stream at the rate the device sustains
// (the strategy of the Python LesionTracker in skinscreen.stream, reduced to what runs cheaply in
// JavaScript; the web page's Live camera mode and @skinscreen/react-native's camera helper run it):
//   - every frame gets a small gray thumbnail; the camera's pan since the previous frame is found
//     by block matching (coarse-to-fine, mean absolute difference of zero-mean thumbnails) and
//     added up since the last *key frame* (the last frame the encoder ran on);
//   - while the key frame, shifted by that pan, still matches the current frame (residual below
//     `changeThreshold` gray levels) the key's outline is shifted: no model call at all;
//   - otherwise (content changed, zoom/roll, `maxSkip` frames passed) the encoder and decoder run
//     on this frame with the key's box shifted by the pan as the prompt;
//   - when the shifted box leaves the frame the lesion is "lost"; it is looked for again (one
//     encoder run) when the box is predicted back in view.
// Pan only: zoom and roll are caught by the residual and cost an encoder run. Frames: RGB(A)
// images; coordinates frame pixels, boxes XYXY. A screening aid, never a diagnosis.
import { svgPath } from "./pipeline.js";
/** Gray thumbnail (box-filter average) of a frame. */
export function grayThumb(frame, width = 64) {
    const { data: px, width: w, height: h, channels: ch } = frame;
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
            const i = (y * w + x) * ch;
            sum[k] += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
            cnt[k] += 1;
        }
    }
    let mean = 0;
    for (let k = 0; k < sum.length; k++) {
        sum[k] /= cnt[k];
        mean += sum[k];
    }
    mean /= sum.length;
    for (let k = 0; k < sum.length; k++)
        sum[k] -= mean; // zero mean: brightness changes cancel
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
/** Mean |a(x, y) - b(x + dx, y + dy)| over the overlap (integer shift), or Infinity when the
 * overlap is below `minOverlap` of the thumbnail. */
export function shiftedDifference(a, b, dx, dy, minOverlap = 0.3) {
    const x0 = Math.max(0, -dx);
    const x1 = Math.min(a.w, b.w - dx);
    const y0 = Math.max(0, -dy);
    const y1 = Math.min(a.h, b.h - dy);
    const n = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
    if (n < minOverlap * a.w * a.h)
        return Infinity;
    let total = 0;
    for (let y = y0; y < y1; y++) {
        const ra = y * a.w;
        const rb = (y + dy) * b.w + dx;
        for (let x = x0; x < x1; x++)
            total += Math.abs(a.data[ra + x] - b.data[rb + x]);
    }
    return total / n;
}
function searchShift(a, b, cx, cy, radius) {
    const best = { dx: cx, dy: cy, cost: Infinity, costs: new Map() };
    for (let dy = cy - radius; dy <= cy + radius; dy++) {
        for (let dx = cx - radius; dx <= cx + radius; dx++) {
            const c = shiftedDifference(a, b, dx, dy, 0.5);
            best.costs.set(`${dx},${dy}`, c);
            if (c < best.cost) {
                best.dx = dx;
                best.dy = dy;
                best.cost = c;
            }
        }
    }
    return best;
}
function parabola(cm, c0, cp) {
    const d = cm - 2 * c0 + cp;
    return Number.isFinite(d) && d > 1e-9 ? Math.max(-0.5, Math.min(0.5, (0.5 * (cm - cp)) / d)) : 0;
}
/** Translation (dx, dy) in thumbnail pixels that moves `a`'s content onto `b`'s: coarse search on
 * half-size thumbnails over +-maxShift, +-1 refinement at full size, parabolic sub-pixel fit;
 * residual: mean absolute gray difference at the best shift. */
export function estimateShift(a, b, maxShift = 10) {
    const r = Math.max(1, Math.ceil(maxShift / 2));
    const coarse = searchShift(half(a), half(b), 0, 0, r);
    const fine = searchShift(a, b, 2 * coarse.dx, 2 * coarse.dy, 1);
    const at = (dx, dy) => fine.costs.get(`${dx},${dy}`) ?? shiftedDifference(a, b, dx, dy, 0.5);
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
const now = () => (globalThis.performance ?? Date).now();
/** Frame loop state: feed frames with step(), get the outline to draw. */
export class LiveTracker {
    model;
    opts;
    box;
    key = null;
    prev = null;
    /** Thumbnail px, key frame -> current frame. */
    shift = [0, 0];
    state = "starting";
    index = 0;
    /** No encoder run before this frame index after a failed one. */
    nextTry = 0;
    encoderRuns = 0;
    constructor(model, opts = {}) {
        this.model = model;
        this.opts = {
            thumbWidth: opts.thumbWidth ?? 64,
            changeThreshold: opts.changeThreshold ?? 6,
            maxShift: opts.maxShift ?? 10,
            maxSkip: opts.maxSkip ?? 30,
            lostFraction: opts.lostFraction ?? 0.3,
            minAreaFraction: opts.minAreaFraction ?? 0.001,
            retryEvery: opts.retryEvery ?? 5,
        };
        this.box = opts.box ? [...opts.box] : null;
    }
    /** The user drew a new box (frame pixels of the last frame shown): used on the next step. */
    setBox(box) {
        this.box = [...box];
        this.key = null;
    }
    /** Process one frame; resolves to what to draw. */
    async step(frame) {
        const o = this.opts;
        const { width: w, height: h } = frame;
        const t0 = now();
        const thumb = grayThumb(frame, o.thumbWidth);
        let residual = null;
        let reason = null;
        let box;
        if (this.key === null || this.prev === null) {
            reason = this.index >= this.nextTry ? "init" : null;
            box = clipBox(this.box ?? [0, 0, w, h], w, h);
        }
        else {
            const d = estimateShift(this.prev, thumb, o.maxShift);
            this.shift = [this.shift[0] + d.dx, this.shift[1] + d.dy];
            const ox = this.shift[0] / thumb.s;
            const oy = this.shift[1] / thumb.s;
            const k = this.key.box;
            const moved = [k[0] + ox, k[1] + oy, k[2] + ox, k[3] + oy];
            const inside = boxArea(clipBox(moved, w, h)) / Math.max(1, boxArea(moved));
            residual = shiftedDifference(this.key.thumb, thumb, Math.round(this.shift[0]), Math.round(this.shift[1]));
            if (inside < o.lostFraction) {
                this.state = "lost";
            }
            else if (this.state === "lost") {
                reason = this.index >= this.nextTry ? "reacquire" : null;
            }
            else if (!(residual <= o.changeThreshold)) {
                reason = "content";
            }
            else if (this.index - this.key.index >= o.maxSkip) {
                reason = "refresh";
            }
            box = clipBox(moved, w, h);
        }
        this.prev = thumb;
        const base = { index: this.index, encoder_ran: false, reason, residual };
        let out;
        if ((this.state === "lost" || this.key === null) && reason === null) {
            out = { ...base, state: "lost", box: null, polygon: [], svg_path: "" };
        }
        else if (reason === null && this.key) {
            // unchanged view: shift the key's outline, no model call
            const ox = this.shift[0] / thumb.s;
            const oy = this.shift[1] / thumb.s;
            const polygon = this.key.polygon.map(([x, y]) => [x + ox, y + oy]);
            out = { ...base, state: "tracking", polygon, svg_path: svgPath(polygon), box };
        }
        else {
            const enc = await this.model.encode(frame);
            const seg = await this.model.predict(enc, box);
            this.encoderRuns += 1;
            if (seg.areaPx < o.minAreaFraction * w * h) {
                this.state = "lost";
                this.nextTry = this.index + o.retryEvery;
                out = { ...base, encoder_ran: true, state: "lost", box: null, polygon: [], svg_path: "" };
            }
            else {
                this.key = { thumb, polygon: seg.polygon, box, index: this.index };
                this.shift = [0, 0];
                this.state = "tracking";
                out = {
                    ...base,
                    encoder_ran: true,
                    state: "tracking",
                    polygon: seg.polygon,
                    svg_path: seg.svgPath,
                    box,
                    area_px: seg.areaPx,
                    iou_prediction: seg.iouPrediction,
                };
            }
        }
        this.index += 1;
        return { ...out, timings_ms: { total: now() - t0 } };
    }
}
/**
 * A camera frame's CPU pixels as an RGBImage: 8-bit RGBA or BGRA rows of `bytesPerRow` bytes
 * (rows may be padded; what VisionCamera's 'rgb' frame output and most camera APIs give) ->
 * tightly packed RGB. `mirrored`: flip left-right (front cameras).
 */
export function packedFrame(bytes, width, height, bytesPerRow, order, mirrored = false) {
    const src = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    if (bytesPerRow < width * 4 || src.length < bytesPerRow * (height - 1) + width * 4) {
        throw new RangeError(`frame buffer of ${src.length} bytes is too small for ${width}x${height} at ${bytesPerRow} bytes per row`);
    }
    const out = new Uint8Array(width * height * 3);
    const [r, b] = order === "rgba" ? [0, 2] : [2, 0];
    for (let y = 0; y < height; y++) {
        const row = y * bytesPerRow;
        for (let x = 0; x < width; x++) {
            const s = row + 4 * (mirrored ? width - 1 - x : x);
            const d = 3 * (y * width + x);
            out[d] = src[s + r];
            out[d + 1] = src[s + 1];
            out[d + 2] = src[s + b];
        }
    }
    return { data: out, width, height, channels: 3 };
}
