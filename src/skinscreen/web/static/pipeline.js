// Pre- and post-processing of the on-device mode: the same steps as skinscreen's Python runtime
// (skinscreen/preprocess/transforms.py, skinscreen/postprocess/mask.py), driven by the bundle
// manifest's spec. Pure functions on typed arrays, no DOM, so tests can call them directly.
//
// Conventions (as in Python): images are H x W, row-major; boxes are XYXY [x0, y0, x1, y1];
// "original" = photo pixels (EXIF-upright), "model input" = resized + bottom/right padded S x S.

/** Python's round(): halves to even. */
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Check that this module implements the manifest's pre/post-processing; throws otherwise. */
export function checkSpec(spec) {
  const problems = [];
  if (!["longest_side", "stretch"].includes(spec.resize)) problems.push(`resize=${spec.resize}`);
  if (spec.interpolation !== "area") problems.push(`interpolation=${spec.interpolation}`);
  if (spec.normalisation !== "minmax") problems.push(`normalisation=${spec.normalisation}`);
  if (problems.length) {
    throw new Error(
      `on-device mode supports area resizing with min-max normalisation; this model needs ${problems.join(", ")}: use server mode`,
    );
  }
}

/**
 * Mapping original (H, W) -> model input (S x S), as compute_transform() in Python.
 * sx, sy multiply original x / y to give model-input coordinates.
 */
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
    let sx2 = Math.min(Math.floor(fsx2), ssize - 1);
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
  const r = Math.round(v);
  const t = Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  return t < 0 ? 0 : t > 255 ? 255 : t;
}

/**
 * Resize an RGBA photo (Uint8ClampedArray, h x w x 4) to RGB (Uint8Array, nh x nw x 3) like
 * cv2.resize(..., interpolation=cv2.INTER_AREA): weighted area averages when shrinking,
 * OpenCV's area-flavoured bilinear when enlarging.
 */
export function resizeAreaRGB(rgba, w, h, nw, nh) {
  const out = new Uint8Array(nh * nw * 3);
  if (nw === w && nh === h) {
    for (let i = 0, j = 0; i < w * h; i++, j += 3) {
      out[j] = rgba[4 * i];
      out[j + 1] = rgba[4 * i + 1];
      out[j + 2] = rgba[4 * i + 2];
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
      for (let i = 0; i < nw * 3; i++) out[dy * nw * 3 + i] = sat8(sum[i]);
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
      const row = sy * w * 4;
      for (let t = 0; t < xt.di.length; t++) {
        const s = row + xt.si[t] * 4;
        const d = xt.di[t] * 3;
        const a = xt.alpha[t];
        buf[d] += rgba[s] * a;
        buf[d + 1] += rgba[s + 1] * a;
        buf[d + 2] += rgba[s + 2] * a;
      }
      for (let i = 0; i < nw * 3; i++) sum[i] += beta * buf[i];
    }
    flush(prevDy);
    return out;
  }
  // Enlarging: OpenCV's fixed-point path for 8-bit images (11-bit coefficients; the vertical
  // pass as its SIMD kernel computes it), so results match cv2 to the grey level.
  const xt = areaUpTable(w, nw);
  const yt = areaUpTable(h, nh);
  const coef = (f) => {
    const v = Math.fround(f) * 2048;
    return sat16(v);
  };
  const rowW = nw * 3;
  const hrow = (sy) => {
    const r = new Int32Array(rowW);
    for (let dx = 0; dx < nw; dx++) {
      const x0 = xt.sxs[dx];
      const x1 = Math.min(x0 + 1, w - 1);
      const a0 = coef(1 - xt.fxs[dx]);
      const a1 = coef(xt.fxs[dx]);
      for (let c = 0; c < 3; c++) {
        r[dx * 3 + c] = rgba[(sy * w + x0) * 4 + c] * a0 + rgba[(sy * w + x1) * 4 + c] * a1;
      }
    }
    return r;
  };
  const rows = new Map();
  const row = (sy) => {
    if (!rows.has(sy)) rows.set(sy, hrow(sy));
    return rows.get(sy);
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

/** Round half to even, then clamp to the int16 range (OpenCV's saturate_cast<short>(float)). */
function sat16(v) {
  const r = Math.round(v);
  const t = Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  return t < -32768 ? -32768 : t > 32767 ? 32767 : t;
}

/**
 * Photo RGBA (h x w x 4) -> model input Float32Array (1, 3, S, S) and its transform, as
 * preprocess() in Python: area resize, min-max normalise over all channels, zero-pad
 * bottom/right, HWC -> NCHW.
 */
export function preprocess(spec, rgba, w, h) {
  checkSpec(spec);
  const t = computeTransform(spec, h, w);
  const [nh, nw] = t.resizedSize;
  const s = t.inputSize;
  const rgb = resizeAreaRGB(rgba, w, h, nw, nh);
  let lo = 255;
  let hi = 0;
  for (let i = 0; i < rgb.length; i++) {
    const v = rgb[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const d = Math.max(hi - lo, 1e-8);
  const x = new Float32Array(3 * s * s);
  for (let y = 0; y < nh; y++) {
    for (let xx = 0; xx < nw; xx++) {
      const j = (y * nw + xx) * 3;
      for (let c = 0; c < 3; c++) x[c * s * s + y * s + xx] = (rgb[j + c] - lo) / d;
    }
  }
  return { input: x, transform: t };
}

/**
 * The margin user boxes get (fraction of the box's width/height added on each side): the
 * manifest's preprocessing.box_margin, as LesionPredictor.predict() uses by default.
 */
export function boxMargin(manifest) {
  const m = manifest?.preprocessing?.box_margin ?? manifest?.spec?.box_margin ?? 0;
  return Number.isFinite(m) && m > 0 ? m : 0;
}

/**
 * A user's XYXY box (photo pixels) -> the box that prompts the decoder, as predict() in Python:
 * clipped to the w x h photo (validate_box), then grown by `margin` x its width/height on every
 * side and clipped again (expand_box). Returns {given, used, margin}.
 */
export function promptBox(box, margin, w, h) {
  const given = [
    Math.min(Math.max(box[0], 0), w),
    Math.min(Math.max(box[1], 0), h),
    Math.min(Math.max(box[2], 0), w),
    Math.min(Math.max(box[3], 0), h),
  ];
  if (!(margin > 0)) return { given, used: given.slice(), margin: 0 };
  const [x0, y0, x1, y1] = given;
  const dw = (x1 - x0) * margin;
  const dh = (y1 - y0) * margin;
  const used = [Math.max(0, x0 - dw), Math.max(0, y0 - dh), Math.min(w, x1 + dw), Math.min(h, y1 + dh)];
  return { given, used, margin };
}

/** XYXY box in photo pixels -> Float32Array(4) in model-input pixels. */
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

/** The part of the (L x L) low-res logits that covers the photo: {data, w, h}. */
export function cropLogits(logits, t, lowResSize) {
  const f = lowResSize / t.inputSize;
  const [nh, nw] = t.resizedSize;
  const ch = Math.max(1, pyRound(nh * f));
  const cw = Math.max(1, pyRound(nw * f));
  const data = new Float32Array(ch * cw);
  for (let y = 0; y < ch; y++) data.set(logits.subarray(y * lowResSize, y * lowResSize + cw), y * cw);
  return { data, w: cw, h: ch };
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
    const x = a.data[i] > threshold;
    const y = b.data[i] > threshold;
    na += x;
    nb += y;
    both += x && y;
  }
  return na + nb === 0 ? 1 : (2 * both) / (na + nb);
}

/**
 * Cropped logits -> (H, W) Uint8Array mask (1 = logit > threshold) at the photo's size, via the
 * same bilinear resize as crop_and_resize_logits() in Python (computed row by row, so no
 * photo-sized float buffer is needed).
 */
export function logitsToMask(crop, outW, outH, threshold) {
  const { data, w: cw, h: ch } = crop;
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
  constructor(n = 4096) {
    this.a = new Int32Array(n);
    this.n = 0;
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

/** Flood-fill from `seed` over pixels where src === value; marks `mark` with `label`; returns size. */
function flood(src, value, mark, label, w, h, seed, nbrs, stack) {
  let size = 0;
  mark[seed] = label;
  stack.push(seed);
  while (stack.n) {
    const p = stack.pop();
    size++;
    const x = p % w;
    const y = (p - x) / w;
    for (const [dx, dy] of nbrs) {
      const nx = x + dx;
      const ny = y + dy;
      if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
      const q = ny * w + nx;
      if (mark[q] === 0 && src[q] === value) {
        mark[q] = label;
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
      const size = flood(mask, 1, seen, 1, w, h, p, N8, stack);
      if (size > bestSize) {
        bestSize = size;
        best = p;
      }
    }
  }
  const out = new Uint8Array(w * h);
  if (best >= 0) flood(mask, 1, out, 1, w, h, best, N8, stack);
  return out;
}

/** Fill holes: background not 4-connected to the border becomes foreground (scipy's
 * binary_fill_holes with its default structure). Modifies and returns `mask`. */
export function fillHoles(mask, w, h) {
  const outside = new Uint8Array(w * h);
  const stack = new Stack();
  const seed = (p) => {
    if (!mask[p] && !outside[p]) flood(mask, 0, outside, 1, w, h, p, N4, stack);
  };
  for (let x = 0; x < w; x++) {
    seed(x);
    seed((h - 1) * w + x);
  }
  for (let y = 0; y < h; y++) {
    seed(y * w);
    seed(y * w + w - 1);
  }
  for (let p = 0; p < w * h; p++) if (!mask[p] && !outside[p]) mask[p] = 1;
  return mask;
}

/** Threshold, largest component, fill holes: the spec's post-processing. */
export function postprocess(manifest, logits, t) {
  const spec = manifest.spec;
  const post = manifest.postprocessing || {};
  const [h, w] = t.originalSize;
  const crop = cropLogits(logits, t, spec.low_res_size);
  let mask = logitsToMask(crop, w, h, spec.mask_threshold);
  if (post.largest_component !== false) mask = largestComponent(mask, w, h);
  if (post.fill_holes !== false) mask = fillHoles(mask, w, h);
  return { mask, crop };
}

// 8 directions, anticlockwise on screen (y down): E, NE, N, NW, W, SW, S, SE.
const DIRS = [
  [1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1], [0, 1], [1, 1],
];

/**
 * Outer boundary of the (single) region in `mask` as [[x, y], ...] pixel centres, traced with
 * the 8-connected inner-boundary algorithm (Sonka, Hlavac & Boyle, Algorithm 6.6).
 */
export function traceBoundary(mask, w, h) {
  let start = -1;
  for (let p = 0; p < w * h; p++) {
    if (mask[p]) {
      start = p;
      break;
    }
  }
  if (start < 0) return [];
  const at = (x, y) => x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] === 1;
  const x0 = start % w;
  const y0 = (start - x0) / w;
  const pts = [[x0, y0]];
  let [x, y] = [x0, y0];
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
    if (next < 0) return pts; // single pixel
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

function perimeter(pts) {
  let s = 0;
  for (let i = 0; i < pts.length; i++) {
    const [ax, ay] = pts[i];
    const [bx, by] = pts[(i + 1) % pts.length];
    s += Math.hypot(bx - ax, by - ay);
  }
  return s;
}

function douglasPeucker(pts, eps) {
  if (pts.length < 3) return pts.slice();
  const keep = new Uint8Array(pts.length);
  keep[0] = keep[pts.length - 1] = 1;
  const stack = [[0, pts.length - 1]];
  while (stack.length) {
    const [a, b] = stack.pop();
    const [ax, ay] = pts[a];
    const [bx, by] = pts[b];
    const len = Math.hypot(bx - ax, by - ay);
    let far = -1;
    let dmax = eps;
    for (let i = a + 1; i < b; i++) {
      const [px, py] = pts[i];
      const d = len > 0 ? Math.abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / len : Math.hypot(px - ax, py - ay);
      if (d > dmax) {
        dmax = d;
        far = i;
      }
    }
    if (far >= 0) {
      keep[far] = 1;
      stack.push([a, far], [far, b]);
    }
  }
  return pts.filter((_, i) => keep[i]);
}

/** Simplified closed outer polygon like outer_contour() in Python (tolerance 1 px, or 0.15% of
 * the perimeter for large masks). Splits the ring at its farthest point so both halves simplify. */
export function outerPolygon(mask, w, h, tolerance = 1.0) {
  const ring = traceBoundary(mask, w, h);
  if (ring.length < 3) return ring;
  const eps = Math.max(tolerance, 0.0015 * perimeter(ring));
  let far = 0;
  let dmax = -1;
  for (let i = 1; i < ring.length; i++) {
    const d = Math.hypot(ring[i][0] - ring[0][0], ring[i][1] - ring[0][1]);
    if (d > dmax) {
      dmax = d;
      far = i;
    }
  }
  const a = douglasPeucker(ring.slice(0, far + 1), eps);
  const b = douglasPeucker(ring.slice(far).concat([ring[0]]), eps);
  return a.concat(b.slice(1, -1));
}

/** SVG path data "M x y L x y ... Z" (one decimal), as svg_path() in Python. */
export function svgPath(polygon) {
  if (!polygon.length) return "";
  return `M ${polygon.map(([x, y]) => `${x.toFixed(1)} ${y.toFixed(1)}`).join(" L ")} Z`;
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
