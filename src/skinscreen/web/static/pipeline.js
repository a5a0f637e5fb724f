// The web page's view of @skinscreen/core (js/packages/core, built into ./core/ by `make js`):
// the pre/post-processing of the on-device mode, with the call signatures the page uses (RGBA
// canvas pixels, crops as {data, w, h}). One implementation of the pipeline: the core's.
import * as core from "./core/index.js";

export const {
  pyRound,
  checkSpec,
  computeTransform,
  boxMargin,
  boxToModel,
  maskAgreement,
  logitsToMask,
  largestComponent,
  fillHoles,
  traceBoundary,
  outerPolygon,
  svgPath,
  dice,
  validateBox,
  expandBox,
  clampBox,
} = core;
export { core };

const rgbaImage = (rgba, w, h) => ({ data: rgba, width: w, height: h, channels: 4 });

/** cv2.INTER_AREA resize of RGBA canvas pixels (h x w x 4) to RGB (nh x nw x 3). */
export function resizeAreaRGB(rgba, w, h, nw, nh) {
  return core.resizeAreaRGB(rgbaImage(rgba, w, h), nw, nh);
}

/** RGBA canvas pixels -> {input: (1, 3, S, S) Float32Array, transform}. */
export function preprocess(spec, rgba, w, h) {
  const { input, transform } = core.preprocess(spec, rgbaImage(rgba, w, h));
  return { input, transform };
}

/** A user's XYXY box (photo pixels, may run past the edge while dragging) -> {given, used,
 * margin}: clipped to the photo, then grown by `margin` per side as LesionPredictor.predict(). */
export function promptBox(box, margin, w, h) {
  const given = core.clampBox(box, w, h);
  if (!(margin > 0)) return { given, used: given.slice(), margin: 0 };
  return { given, used: core.expandBox(given, margin, w, h), margin };
}

/** The photo's part of the low-res logits: {data, w, h}. */
export function cropLogits(logits, t, lowResSize) {
  const c = core.cropLogits(logits, t, lowResSize);
  return { data: c.data, w: c.width, h: c.height };
}

/** Threshold, largest component, fill holes: {mask, crop: {data, w, h}}. */
export function postprocess(manifest, logits, t) {
  const { mask, crop } = core.postprocess(manifest, logits, t);
  return { mask, crop: { data: crop.data, w: crop.width, h: crop.height } };
}
