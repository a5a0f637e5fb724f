// Generated from js/packages/core/src by `make js` (npm run build && npm run web): do not edit.
// Pre- and post-processing: the same steps as skinscreen's Python runtime
// (skinscreen/preprocess/transforms.py, skinscreen/postprocess/mask.py, predictor.py's box rules),
// driven by the bundle manifest. Pure functions on typed arrays; no DOM, no Node, no runtime.
//
// Conventions (as in Python): images are H x W, row-major, interleaved channels; boxes are XYXY
// [x0, y0, x1, y1]; "original" = photo pixels (EXIF-upright), "model input" = resized and
// bottom/right zero-padded S x S.
import { PromptError, SpecError } from "./errors.js";
/** Python's round(): halves to even. */
export function pyRound(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
/** Check that this module implements the spec's pre-processing; throws SpecError otherwise. */
export function checkSpec(spec) {
    const problems = [];
    if (!["longest_side", "stretch"].includes(spec.resize))
        problems.push(`resize=${spec.resize}`);
    if (spec.interpolation !== "area")
        problems.push(`interpolation=${spec.interpolation}`);
    if (spec.normalisation !== "minmax")
        problems.push(`normalisation=${spec.normalisation}`);
    if (problems.length) {
        throw new SpecError(`@skinscreen/core implements area resizing with min-max normalisation; this model needs ${problems.join(", ")}: run it with the Python runtime (skinscreen serve)`);
    }
}
/** Original (H, W) -> model input (S x S), as compute_transform() in Python. */
export function computeTransform(spec, h, w) {
    const s = spec.input_size;
    let nh = s;
    let nw = s;
    if (spec.resize === "longest_side") {
        const scale = s / Math.max(h, w);
        nh = Math.max(1, Math.min(s, Math.trunc(h * scale + 0.5)));
        nw = Math.max(1, Math.min(s, Math.trunc(w * scale + 0.5)));
    }
    return { originalSize: [h, w], resizedSize: [nh, nw], inputSize: s, sx: nw / w, sy: nh / h };
}
/** [h, w] of the photo's part of a square frame of side `frame` (photo_size_in() in Python). */
export function photoSizeIn(t, frame) {
    const f = frame / t.inputSize;
    const [nh, nw] = t.resizedSize;
    return [Math.max(1, pyRound(nh * f)), Math.max(1, pyRound(nw * f))];
}
/** OpenCV's INTER_AREA decimation table for one axis (computeResizeAreaTab). */
function areaTable(ssize, dsize) {
    const scale = 1 / (dsize / ssize);
    const di = [];
    const si = [];
    const alpha = [];
    for (let dx = 0; dx < dsize; dx++) {
        const fsx1 = dx * scale;
        const fsx2 = fsx1 + scale;
        const cell = Math.min(scale, ssize - fsx1);
        const sx2 = Math.min(Math.floor(fsx2), ssize - 1);
        const sx1 = Math.min(Math.ceil(fsx1), sx2);
        if (sx1 - fsx1 > 1e-3) {
            di.push(dx);
            si.push(sx1 - 1);
            alpha.push((sx1 - fsx1) / cell);
        }
        for (let sx = sx1; sx < sx2; sx++) {
            di.push(dx);
            si.push(sx);
            alpha.push(1 / cell);
        }
        if (fsx2 - sx2 > 1e-3) {
            di.push(dx);
            si.push(sx2);
            alpha.push(Math.min(Math.min(fsx2 - sx2, 1), cell) / cell);
        }
    }
    return { di: Int32Array.from(di), si: Int32Array.from(si), alpha: Float32Array.from(alpha) };
}
/** OpenCV's INTER_AREA upscaling coefficients for one axis: source index and weight of sx+1. */
function areaUpTable(ssize, dsize) {
    const inv = dsize / ssize;
    const scale = 1 / inv;
    const sxs = new Int32Array(dsize);
    const fxs = new Float32Array(dsize);
    for (let dx = 0; dx < dsize; dx++) {
        let sx = Math.floor(dx * scale);
        let fx = Math.fround(dx + 1 - (sx + 1) * inv);
        fx = fx <= 0 ? 0 : fx - Math.floor(fx);
        if (sx < 0) {
            sx = 0;
            fx = 0;
        }
        if (sx >= ssize - 1) {
            sx = ssize - 1;
            fx = 0;
        }
        sxs[dx] = sx;
        fxs[dx] = fx;
    }
    return { sxs, fxs };
}
/** Round half to even, then clamp to [0, 255] (OpenCV's saturate_cast<uchar>(float)). */
function sat8(v) {
    const t = pyRound(v);
    return t < 0 ? 0 : t > 255 ? 255 : t;
}
/** Round half to even, then clamp to the int16 range (OpenCV's saturate_cast<short>(float)). */
function sat16(v) {
    const t = pyRound(v);
    return t < -32768 ? -32768 : t > 32767 ? 32767 : t;
}
/**
 * Resize a photo to RGB (Uint8Array, nh x nw x 3) like cv2.resize(..., cv2.INTER_AREA): weighted
 * area averages when shrinking, OpenCV's fixed-point area-flavoured bilinear when enlarging.
 */
export function resizeAreaRGB(img, nw, nh) {
    const { data, width: w, height: h, channels: ch } = img;
    const out = new Uint8Array(nh * nw * 3);
    if (nw === w && nh === h) {
        for (let i = 0, j = 0; i < w * h; i++, j += 3) {
            out[j] = data[ch * i];
            out[j + 1] = data[ch * i + 1];
            out[j + 2] = data[ch * i + 2];
        }
        return out;
    }
    if (w / nw >= 1 && h / nh >= 1) {
        const xt = areaTable(w, nw);
        const yt = areaTable(h, nh);
        const buf = new Float32Array(nw * 3);
        const sum = new Float32Array(nw * 3);
        let prevDy = yt.di[0];
        const flush = (dy) => {
            for (let i = 0; i < nw * 3; i++)
                out[dy * nw * 3 + i] = sat8(sum[i]);
            sum.fill(0);
        };
        for (let k = 0; k < yt.di.length; k++) {
            const dy = yt.di[k];
            if (dy !== prevDy) {
                flush(prevDy);
                prevDy = dy;
            }
            const sy = yt.si[k];
            const beta = yt.alpha[k];
            buf.fill(0);
            const row = sy * w * ch;
            for (let t = 0; t < xt.di.length; t++) {
                const s = row + xt.si[t] * ch;
                const d = xt.di[t] * 3;
                const a = xt.alpha[t];
                // float32 products then float32 sums, as OpenCV's ResizeArea_Invoker (WT = float)
                buf[d] += Math.fround(data[s] * a);
                buf[d + 1] += Math.fround(data[s + 1] * a);
                buf[d + 2] += Math.fround(data[s + 2] * a);
            }
            for (let i = 0; i < nw * 3; i++)
                sum[i] += Math.fround(beta * buf[i]);
        }
        flush(prevDy);
        return out;
    }
    // Enlarging: OpenCV's fixed-point path for 8-bit images (11-bit coefficients; the vertical
    // pass as its SIMD kernel computes it), so results match cv2 to the grey level.
    const xt = areaUpTable(w, nw);
    const yt = areaUpTable(h, nh);
    const coef = (f) => sat16(Math.fround(f) * 2048);
    const rowW = nw * 3;
    const hrow = (sy) => {
        const r = new Int32Array(rowW);
        for (let dx = 0; dx < nw; dx++) {
            const x0 = xt.sxs[dx];
            const x1 = Math.min(x0 + 1, w - 1);
            const a0 = coef(1 - xt.fxs[dx]);
            const a1 = coef(xt.fxs[dx]);
            for (let c = 0; c < 3; c++) {
                r[dx * 3 + c] = data[(sy * w + x0) * ch + c] * a0 + data[(sy * w + x1) * ch + c] * a1;
            }
        }
        return r;
    };
    const rows = new Map();
    const row = (sy) => {
        let r = rows.get(sy);
        if (!r) {
            r = hrow(sy);
            rows.set(sy, r);
        }
        return r;
    };
    for (let dy = 0; dy < nh; dy++) {
        const y0 = yt.sxs[dy];
        const r0 = row(y0);
        const r1 = row(Math.min(y0 + 1, h - 1));
        const b0 = coef(1 - yt.fxs[dy]);
        const b1 = coef(yt.fxs[dy]);
        for (let i = 0; i < rowW; i++) {
            const v = (((r0[i] >> 4) * b0) >> 16) + (((r1[i] >> 4) * b1) >> 16);
            const t = (v + 2) >> 2;
            out[dy * rowW + i] = t < 0 ? 0 : t > 255 ? 255 : t;
        }
    }
    return out;
}
/**
 * Photo -> model input (1, 3, S, S) and its transform, as preprocess() in Python: area resize
 * (longest side), min-max normalise over all channels, zero-pad bottom/right, HWC -> NCHW.
 */
export function preprocess(spec, img) {
    checkSpec(spec);
    const { width: w, height: h } = img;
    const t = computeTransform(spec, h, w);
    const [nh, nw] = t.resizedSize;
    const s = t.inputSize;
    const rgb = resizeAreaRGB(img, nw, nh);
    let lo = 255;
    let hi = 0;
    for (let i = 0; i < rgb.length; i++) {
        const v = rgb[i];
        if (v < lo)
            lo = v;
        if (v > hi)
            hi = v;
    }
    // float32 arithmetic as numpy's: (x - lo) / max(hi - lo, 1e-8)
    const d = Math.fround(Math.max(hi - lo, 1e-8));
    const x = new Float32Array(3 * s * s);
    for (let y = 0; y < nh; y++) {
        for (let xx = 0; xx < nw; xx++) {
            const j = (y * nw + xx) * 3;
            for (let c = 0; c < 3; c++)
                x[c * s * s + y * s + xx] = Math.fround(rgb[j + c] - lo) / d;
        }
    }
    return { input: x, dims: [1, 3, s, s], transform: t };
}
/**
 * Check a user box [x0, y0, x1, y1] (photo pixels) as validate_box() in Python and return it
 * clipped to the photo: four finite numbers, x0 < x1, y0 < y1, inside the w x h photo with half a
 * pixel of tolerance. Throws PromptError otherwise (clampBox() first for boxes a UI lets run
 * past the photo's edge).
 */
export function validateBox(box, w, h) {
    if (box.length !== 4)
        throw new PromptError(`box must have 4 numbers x0,y0,x1,y1, got ${box.length}`);
    const b = Array.from(box, Number);
    if (!b.every(Number.isFinite))
        throw new PromptError(`box [${b}] contains NaN or infinity`);
    const [x0, y0, x1, y1] = b;
    if (x1 <= x0 || y1 <= y0) {
        throw new PromptError(`box [${b}] is empty: need x0 < x1 and y0 < y1 (XYXY order)`);
    }
    const tol = 0.5;
    if (x0 < -tol || y0 < -tol || x1 > w + tol || y1 > h + tol) {
        throw new PromptError(`box [${b}] lies outside the ${w}x${h} photo: need 0 <= x0 < x1 <= ${w} and 0 <= y0 < y1 <= ${h} (EXIF-upright photo pixels)`);
    }
    return clampBox(b, w, h);
}
/** Clip an XYXY box to the w x h photo (for boxes dragged past its edge). */
export function clampBox(box, w, h) {
    const c = (v, hi) => Math.min(Math.max(v, 0), hi);
    return [c(box[0], w), c(box[1], h), c(box[2], w), c(box[3], h)];
}
/** Check a box margin as validate_box_margin() in Python: a finite number in [0, 1]. */
export function validateBoxMargin(margin) {
    if (typeof margin !== "number" || !Number.isFinite(margin) || margin < 0 || margin > 1) {
        throw new PromptError(`box margin ${margin} must be between 0 and 1: the fraction of the box's width/height added on each side (0 turns it off)`);
    }
    return margin;
}
/** The margin user boxes get by default: the manifest's preprocessing.box_margin (or the spec's). */
export function boxMargin(manifest) {
    const m = manifest.preprocessing?.box_margin ?? manifest.spec.box_margin ?? 0;
    return Number.isFinite(m) && m > 0 ? m : 0;
}
/** Grow an XYXY box by `margin` x its width/height on every side, clipped (expand_box()). */
export function expandBox(box, margin, w, h) {
    const [x0, y0, x1, y1] = box;
    const dw = (x1 - x0) * margin;
    const dh = (y1 - y0) * margin;
    return [Math.max(0, x0 - dw), Math.max(0, y0 - dh), Math.min(w, x1 + dw), Math.min(h, y1 + dh)];
}
/** XYXY box in photo pixels -> Float32Array(4) in model-input pixels (apply_boxes()). */
export function boxToModel(t, box) {
    return Float32Array.from([box[0] * t.sx, box[1] * t.sy, box[2] * t.sx, box[3] * t.sy]);
}
/** Bilinear (half-pixel centres) coefficients like cv2 INTER_LINEAR for one axis. */
function linearTable(ssize, dsize) {
    const scale = 1 / (dsize / ssize);
    const sxs = new Int32Array(dsize);
    const fxs = new Float32Array(dsize);
    for (let dx = 0; dx < dsize; dx++) {
        let fx = Math.fround((dx + 0.5) * scale - 0.5);
        let sx = Math.floor(fx);
        fx = Math.fround(fx - sx);
        if (sx < 0) {
            fx = 0;
            sx = 0;
        }
        if (sx >= ssize - 1) {
            fx = 0;
            sx = ssize - 1;
        }
        sxs[dx] = sx;
        fxs[dx] = fx;
    }
    return { sxs, fxs };
}
/** The part of the (L x L) low-res logits that covers the photo. */
export function cropLogits(logits, t, lowResSize) {
    const [ch, cw] = photoSizeIn(t, lowResSize);
    const data = new Float32Array(ch * cw);
    for (let y = 0; y < ch; y++)
        data.set(logits.subarray(y * lowResSize, y * lowResSize + cw), y * cw);
    return { data, width: cw, height: ch };
}
/**
 * Dice between the masks (logits > threshold) of two decoders over the photo's part of the
 * low-res frame: mask_agreement() in skinscreen/box_check.py (1 when both are empty).
 */
export function maskAgreement(logitsA, logitsB, t, lowResSize, threshold) {
    const a = cropLogits(logitsA, t, lowResSize);
    const b = cropLogits(logitsB, t, lowResSize);
    let na = 0;
    let nb = 0;
    let both = 0;
    for (let i = 0; i < a.data.length; i++) {
        const x = a.data[i] > threshold ? 1 : 0;
        const y = b.data[i] > threshold ? 1 : 0;
        na += x;
        nb += y;
        both += x & y;
    }
    return na + nb === 0 ? 1 : (2 * both) / (na + nb);
}
/**
 * Cropped logits -> (H, W) Uint8Array mask (1 = logit > threshold) at the photo's size, via the
 * same bilinear resize as crop_and_resize_logits() in Python (row by row: no photo-sized float
 * buffer).
 */
export function logitsToMask(crop, outW, outH, threshold) {
    const { data, width: cw, height: ch } = crop;
    const xt = linearTable(cw, outW);
    const yt = linearTable(ch, outH);
    const rows = new Float32Array(ch * outW); // horizontal pass, one row per source row
    for (let y = 0; y < ch; y++) {
        const base = y * cw;
        for (let dx = 0; dx < outW; dx++) {
            const sx = xt.sxs[dx];
            const fx = xt.fxs[dx];
            const sx1 = Math.min(sx + 1, cw - 1);
            rows[y * outW + dx] = Math.fround(data[base + sx] * (1 - fx) + data[base + sx1] * fx);
        }
    }
    const mask = new Uint8Array(outW * outH);
    for (let dy = 0; dy < outH; dy++) {
        const sy = yt.sxs[dy];
        const fy = yt.fxs[dy];
        const r0 = sy * outW;
        const r1 = Math.min(sy + 1, ch - 1) * outW;
        const o = dy * outW;
        for (let dx = 0; dx < outW; dx++) {
            const v = Math.fround(rows[r0 + dx] * (1 - fy) + rows[r1 + dx] * fy);
            mask[o + dx] = v > threshold ? 1 : 0;
        }
    }
    return mask;
}
/** Growable Int32 stack for flood fills. */
class Stack {
    a;
    n = 0;
    constructor(size = 4096) {
        this.a = new Int32Array(size);
    }
    push(v) {
        if (this.n === this.a.length) {
            const b = new Int32Array(this.a.length * 2);
            b.set(this.a);
            this.a = b;
        }
        this.a[this.n++] = v;
    }
    pop() {
        return this.a[--this.n];
    }
}
const N8 = [
    [-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1],
];
const N4 = [
    [0, -1], [-1, 0], [1, 0], [0, 1],
];
/** Flood-fill from `seed` over pixels where src === value; marks `mark` with 1; returns size. */
function flood(src, value, mark, w, h, seed, nbrs, stack) {
    let size = 0;
    mark[seed] = 1;
    stack.push(seed);
    while (stack.n) {
        const p = stack.pop();
        size++;
        const x = p % w;
        const y = (p - x) / w;
        for (const [dx, dy] of nbrs) {
            const nx = x + dx;
            const ny = y + dy;
            if (nx < 0 || ny < 0 || nx >= w || ny >= h)
                continue;
            const q = ny * w + nx;
            if (mark[q] === 0 && src[q] === value) {
                mark[q] = 1;
                stack.push(q);
            }
        }
    }
    return size;
}
/** Keep the largest 8-connected component (first in raster order on ties, like OpenCV). */
export function largestComponent(mask, w, h) {
    const seen = new Uint8Array(w * h);
    const stack = new Stack();
    let best = -1;
    let bestSize = 0;
    for (let p = 0; p < w * h; p++) {
        if (mask[p] && !seen[p]) {
            const size = flood(mask, 1, seen, w, h, p, N8, stack);
            if (size > bestSize) {
                bestSize = size;
                best = p;
            }
        }
    }
    const out = new Uint8Array(w * h);
    if (best >= 0)
        flood(mask, 1, out, w, h, best, N8, stack);
    return out;
}
/** Fill holes: background not 4-connected to the border becomes foreground (fill_holes() in
 * Python, scipy's binary_fill_holes). Modifies and returns `mask`. */
export function fillHoles(mask, w, h) {
    const outside = new Uint8Array(w * h);
    const stack = new Stack();
    const seed = (p) => {
        if (!mask[p] && !outside[p])
            flood(mask, 0, outside, w, h, p, N4, stack);
    };
    for (let x = 0; x < w; x++) {
        seed(x);
        seed((h - 1) * w + x);
    }
    for (let y = 0; y < h; y++) {
        seed(y * w);
        seed(y * w + w - 1);
    }
    for (let p = 0; p < w * h; p++)
        if (!mask[p] && !outside[p])
            mask[p] = 1;
    return mask;
}
/** Low-res logits -> the photo's (H, W) 0/1 mask: crop, bilinear resize, threshold, then the
 * manifest's post-processing (largest component, hole fill). */
export function postprocess(manifest, logits, t, clean = true) {
    const spec = manifest.spec;
    const post = manifest.postprocessing ?? {};
    const [h, w] = t.originalSize;
    const crop = cropLogits(logits, t, spec.low_res_size);
    let mask = logitsToMask(crop, w, h, spec.mask_threshold);
    if (clean && post.largest_component !== false)
        mask = largestComponent(mask, w, h);
    if (clean && post.fill_holes !== false)
        mask = fillHoles(mask, w, h);
    return { mask, crop };
}
/** Foreground pixel count of a 0/1 mask (area_px). */
export function maskArea(mask) {
    let n = 0;
    for (let i = 0; i < mask.length; i++)
        n += mask[i] ? 1 : 0;
    return n;
}
// 8 directions, anticlockwise on screen (y down): E, NE, N, NW, W, SW, S, SE.
const DIRS = [
    [1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1], [0, 1], [1, 1],
];
/**
 * Outer boundary of the (single) region in `mask` as [x, y] pixel centres, traced with the
 * 8-connected inner-boundary algorithm (Sonka, Hlavac & Boyle, Algorithm 6.6): the points
 * cv2.findContours(RETR_EXTERNAL, CHAIN_APPROX_NONE) gives.
 */
export function traceBoundary(mask, w, h) {
    let start = -1;
    for (let p = 0; p < w * h; p++) {
        if (mask[p]) {
            start = p;
            break;
        }
    }
    if (start < 0)
        return [];
    const at = (x, y) => x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] === 1;
    const x0 = start % w;
    const y0 = (start - x0) / w;
    const pts = [[x0, y0]];
    let x = x0;
    let y = y0;
    let dir = 7;
    const limit = 4 * w * h + 8;
    for (let iter = 0; iter < limit; iter++) {
        let next = -1;
        const first = dir % 2 === 0 ? (dir + 7) % 8 : (dir + 6) % 8;
        for (let i = 0; i < 8; i++) {
            const d = (first + i) % 8;
            if (at(x + DIRS[d][0], y + DIRS[d][1])) {
                next = d;
                break;
            }
        }
        if (next < 0)
            return pts; // single pixel
        dir = next;
        x += DIRS[dir][0];
        y += DIRS[dir][1];
        const n = pts.length;
        if (n >= 2 && x === pts[1][0] && y === pts[1][1] && pts[n - 1][0] === x0 && pts[n - 1][1] === y0) {
            pts.pop();
            return pts;
        }
        pts.push([x, y]);
    }
    return pts;
}
/** Closed-polygon perimeter (cv2.arcLength(c, True)). */
export function perimeter(pts) {
    let s = 0;
    for (let i = 0; i < pts.length; i++) {
        const [ax, ay] = pts[i];
        const [bx, by] = pts[(i + 1) % pts.length];
        s += Math.hypot(bx - ax, by - ay);
    }
    return s;
}
/**
 * Douglas-Peucker simplification of a closed contour with the steps of cv2.approxPolyDP(c, eps,
 * closed=True), so the vertices come out the same and in the same order: the split points are
 * found by three rounds of "farthest point from the current start", the two halves are simplified
 * depth first, and a last pass drops vertices that lie on an almost straight line.
 */
export function approxPolyClosed(src, epsilon) {
    const n = src.length;
    if (n === 0)
        return [];
    const eps = epsilon * epsilon;
    const dst = [];
    const stack = [];
    let pos = 0;
    let far = 0;
    let leEps = false;
    let start = src[0];
    for (let it = 0; it < 3; it++) {
        let maxd = 0;
        pos = (pos + far) % n;
        start = src[pos];
        for (let j = 1; j < n; j++) {
            const p = src[(pos + j) % n];
            const d = (p[0] - start[0]) ** 2 + (p[1] - start[1]) ** 2;
            if (d > maxd) {
                maxd = d;
                far = j;
            }
        }
        leEps = maxd <= eps;
    }
    if (!leEps) {
        const s0 = pos % n;
        const e0 = (far + s0) % n;
        stack.push([e0, s0], [s0, e0]);
    }
    else {
        dst.push(start);
    }
    while (stack.length) {
        const [s, e] = stack.pop();
        const end = src[e];
        const a = src[s];
        let q = (s + 1) % n;
        let split = s;
        if (q !== e) {
            const dx = end[0] - a[0];
            const dy = end[1] - a[1];
            let maxd = 0;
            while (q !== e) {
                const p = src[q];
                const d = Math.abs((p[1] - a[1]) * dx - (p[0] - a[0]) * dy);
                if (d > maxd) {
                    maxd = d;
                    split = q;
                }
                q = (q + 1) % n;
            }
            leEps = maxd * maxd <= eps * (dx * dx + dy * dy);
        }
        else {
            leEps = true;
        }
        if (leEps)
            dst.push(a);
        else
            stack.push([split, e], [s, split]);
    }
    // clean-up: drop vertices on [almost] straight lines (not axis-parallel ones)
    const count = dst.length;
    let kept = count;
    let r = count - 1;
    const read = () => {
        const p = dst[r];
        r = r + 1 >= count ? 0 : r + 1;
        return p;
    };
    let st = read();
    let w = r;
    let pt = read();
    for (let i = 0; i < count && kept > 2; i++) {
        const en = read();
        const dx = en[0] - st[0];
        const dy = en[1] - st[1];
        const dist = Math.abs((pt[0] - st[0]) * dy - (pt[1] - st[1]) * dx);
        const inner = (pt[0] - st[0]) * (en[0] - pt[0]) + (pt[1] - st[1]) * (en[1] - pt[1]);
        if (dist * dist <= 0.5 * eps * (dx * dx + dy * dy) && dx !== 0 && dy !== 0 && inner >= 0) {
            kept--;
            dst[w] = st = en;
            w = w + 1 >= count ? 0 : w + 1;
            pt = read();
            i++;
            continue;
        }
        dst[w] = st = pt;
        w = w + 1 >= count ? 0 : w + 1;
        pt = en;
    }
    return dst.slice(0, kept);
}
/** Simplified closed outer polygon like outer_contour() in Python: the traced boundary
 * simplified with tolerance 1 px, or 0.15% of its perimeter for large masks. */
export function outerPolygon(mask, w, h, tolerance = 1.0) {
    const ring = traceBoundary(mask, w, h);
    if (ring.length === 0)
        return ring;
    const eps = Math.max(tolerance, 0.0015 * perimeter(ring));
    return approxPolyClosed(ring, eps);
}
/** SVG path data "M x y L x y ... Z" (one decimal), as svg_path() in Python ("" when empty). */
export function svgPath(polygon, decimals = 1) {
    if (!polygon.length)
        return "";
    return `M ${polygon.map(([x, y]) => `${x.toFixed(decimals)} ${y.toFixed(decimals)}`).join(" L ")} Z`;
}
/** Sørensen-Dice of two equal-length 0/1 arrays (1.0 when both are empty). */
export function dice(a, b) {
    let inter = 0;
    let sa = 0;
    let sb = 0;
    for (let i = 0; i < a.length; i++) {
        const x = a[i] ? 1 : 0;
        const y = b[i] ? 1 : 0;
        inter += x & y;
        sa += x;
        sb += y;
    }
    return sa + sb === 0 ? 1 : (2 * inter) / (sa + sb);
}
/** EXIF orientation (1-8) applied to an image, as PIL.ImageOps.exif_transpose: the upright photo. */
export function orient(img, orientation) {
    if (!(orientation >= 2 && orientation <= 8))
        return img;
    const { data, width: w, height: h, channels: ch } = img;
    const swap = orientation >= 5;
    const ow = swap ? h : w;
    const oh = swap ? w : h;
    const out = new Uint8Array(ow * oh * ch);
    for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
            // source pixel (sx, sy) of output (x, y)
            let sx;
            let sy;
            switch (orientation) {
                case 2:
                    sx = w - 1 - x;
                    sy = y;
                    break; // mirror horizontal
                case 3:
                    sx = w - 1 - x;
                    sy = h - 1 - y;
                    break; // rotate 180
                case 4:
                    sx = x;
                    sy = h - 1 - y;
                    break; // mirror vertical
                case 5:
                    sx = y;
                    sy = x;
                    break; // transpose
                case 6:
                    sx = y;
                    sy = h - 1 - x;
                    break; // rotate 90 CW to view
                case 7:
                    sx = w - 1 - y;
                    sy = h - 1 - x;
                    break; // transverse
                default:
                    sx = w - 1 - y;
                    sy = x;
                    break; // 8: rotate 90 CCW to view
            }
            const s = (sy * w + sx) * ch;
            const d = (y * ow + x) * ch;
            for (let c = 0; c < ch; c++)
                out[d + c] = data[s + c];
        }
    }
    return { data: out, width: ow, height: oh, channels: ch };
}
/** The EXIF orientation tag (1-8) of a JPEG file's bytes; 1 when absent or unreadable. */
export function jpegOrientation(bytes) {
    if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8)
        return 1;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let p = 2;
    while (p + 4 <= bytes.length) {
        if (bytes[p] !== 0xff)
            return 1;
        const marker = bytes[p + 1];
        if (marker === 0xda || marker === 0xd9)
            return 1; // start of scan / end: no APP1 before it
        const len = dv.getUint16(p + 2);
        if (marker === 0xe1 && p + 10 <= bytes.length && dv.getUint32(p + 4) === 0x45786966) {
            const t = p + 10; // TIFF header
            if (t + 8 > bytes.length)
                return 1;
            const le = dv.getUint16(t) === 0x4949;
            const u16 = (o) => dv.getUint16(o, le);
            const ifd = t + dv.getUint32(t + 4, le);
            if (ifd + 2 > bytes.length)
                return 1;
            const n = u16(ifd);
            for (let i = 0; i < n; i++) {
                const e = ifd + 2 + 12 * i;
                if (e + 12 > bytes.length)
                    return 1;
                if (u16(e) === 0x0112) {
                    const v = u16(e + 8);
                    return v >= 1 && v <= 8 ? v : 1;
                }
            }
            return 1;
        }
        p += 2 + len;
    }
    return 1;
}
