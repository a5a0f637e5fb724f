// The stateful segmenter: encode a photo once, prompt it many times (LesionPredictor in
// skinscreen/predictor.py, box prompts only: automatic mode and test-time flips stay in Python).

import type { Backend, FloatTensor, Session } from "./backend.js";
import { BundleError, SkinscreenError } from "./errors.js";
import { type BundleFile, type Manifest, type ModelSpec, type Variant, parseManifest, pickVariant, sha256Hex, verifyFile } from "./manifest.js";
import {
  type Box,
  type InputTransform,
  type Polygon,
  type RGBImage,
  boxMargin as manifestBoxMargin,
  boxToModel,
  checkSpec,
  expandBox,
  maskAgreement,
  maskArea,
  outerPolygon,
  postprocess,
  preprocess,
  svgPath,
  validateBox,
  validateBoxMargin,
} from "./pipeline.js";

/** Where a bundle's files come from: a directory on disk, a URL prefix, an app's assets. */
export interface BundleSource {
  /** Human-readable location for messages (a path or URL). */
  readonly location: string;
  /** The text of a bundle-relative file (manifest.json). */
  readText(path: string): Promise<string>;
  /** The bytes of a bundle-relative file; omit where the backend loads files by path itself
   * (then sizes and sha256s cannot be checked here: say so to your users, or check at install). */
  readBytes?(path: string): Promise<Uint8Array>;
  /** Lower-case hex sha256 of file bytes, where the platform has no WebCrypto (Node's crypto,
   * expo-crypto...); default: WebCrypto, or no check (SegmenterInfo.verified says so). */
  sha256?(bytes: Uint8Array): Promise<string | null>;
}

export interface OpenOptions {
  /** Bundle variant (default: the manifest's default when it is ONNX). */
  variant?: string;
  /** Load the re-prompt pair (prelude + prompt decoder) and run the prelude in encode(), so each
   * box costs only the prompt decoder (interactive use). Default false, as in Python. */
  reprompt?: boolean;
  /** Check each file's size and sha256 against the manifest before loading (default true; needs
   * readBytes and WebCrypto, see SegmenterInfo.verified). */
  verify?: boolean;
  /** The box check: the bundle of the model's box-robust decoder (spec.extra.box_check.model,
   * litemedsam-boxaug for litemedsam), same variant. Omitted: no box check. */
  boxCheck?: BundleSource;
}

export interface SegmenterInfo {
  model: string;
  variant: string;
  backend: string;
  /** Bytes of the files loaded. */
  bytes: number;
  /** Per loaded file: true = sha256 checked, false = not checked (the platform cannot hash or the
   * source gives no bytes). A mismatch never gets here: it throws BundleError. */
  verified: Record<string, boolean>;
  reprompt: boolean;
  boxCheck: string | null;
}

/** Everything predict() needs about one photo: keep it to re-prompt without the encoder. */
export interface Encoding {
  transform: InputTransform;
  embedding: FloatTensor;
  /** The re-prompt prelude's tensors (about 27 MB for LiteMedSAM), or null. */
  prelude: Record<string, FloatTensor> | null;
  timingsMs: Record<string, number>;
}

export interface BoxCheckResult {
  agreement: number;
  threshold: number;
  decoder: "default" | "box-robust";
  check_model: string;
}

/** One lesion mask and what an app draws and reports (Segmentation in Python). */
export interface Segmentation {
  /** (height x width) 0/1 mask in photo pixels. */
  mask: Uint8Array;
  width: number;
  height: number;
  polygon: Polygon;
  svgPath: string;
  areaPx: number;
  /** The box as given (clipped to the photo). */
  box: Box;
  /** The box that prompted the decoder: box grown by boxMargin per side, clipped. */
  boxUsed: Box;
  boxMargin: number;
  iouPrediction: number;
  boxCheck: BoxCheckResult | null;
  timingsMs: Record<string, number>;
}

export interface PredictOptions {
  /** Grow the box by this fraction of its width/height per side (default: the manifest's). */
  boxMargin?: number;
  /** Largest component and hole fill (default true). */
  clean?: boolean;
  /** false: skip the box check for this call (e.g. a tracker's machine-made boxes). */
  boxCheck?: boolean;
}

const now = (): number => (globalThis.performance ?? Date).now();

async function loadSession(
  source: BundleSource,
  backend: Backend,
  part: string,
  file: BundleFile,
  verify: boolean,
  model: string,
): Promise<{ session: Session; verified: boolean }> {
  let bytes: Uint8Array | undefined;
  let verified = false;
  if (source.readBytes) {
    try {
      bytes = await source.readBytes(file.path);
    } catch (e) {
      throw new BundleError(`${model}: cannot read ${part} file ${file.path} from ${source.location}: ${(e as Error).message}`);
    }
    if (verify) verified = await verifyFile(part, file, bytes, model, source.sha256 ?? sha256Hex);
  }
  try {
    const session = await backend.createSession({ part, path: file.path, ...(bytes ? { bytes } : {}) });
    return { session, verified };
  } catch (e) {
    throw new BundleError(`${model}: ${backend.name} cannot load ${part} file ${file.path}: ${(e as Error).message}`);
  }
}

function out(res: Record<string, FloatTensor>, s: Session, i: number): FloatTensor {
  const t = res[s.outputNames[i]];
  if (!t) throw new SkinscreenError(`the model gave no output ${s.outputNames[i]}`);
  return t;
}

export class LesionSegmenter {
  readonly manifest: Manifest;
  readonly spec: ModelSpec;
  readonly info: SegmenterInfo;
  private readonly encoder: Session;
  private readonly decoder: Session;
  private readonly prelude: Session | null;
  private readonly promptDecoder: Session | null;
  private readonly check: { session: Session; model: string; agreementMin: number } | null;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    manifest: Manifest,
    info: SegmenterInfo,
    sessions: { encoder: Session; decoder: Session; prelude: Session | null; promptDecoder: Session | null },
    check: LesionSegmenter["check"],
  ) {
    this.manifest = manifest;
    this.spec = manifest.spec;
    this.info = info;
    this.encoder = sessions.encoder;
    this.decoder = sessions.decoder;
    this.prelude = sessions.prelude;
    this.promptDecoder = sessions.promptDecoder;
    this.check = check;
  }

  /** Read the manifest, check the files and create the sessions. */
  static async open(source: BundleSource, backend: Backend, opts: OpenOptions = {}): Promise<LesionSegmenter> {
    let text: string;
    try {
      text = await source.readText("manifest.json");
    } catch (e) {
      throw new BundleError(
        `no bundle at ${source.location}: cannot read manifest.json (${(e as Error).message}); build one with skinscreen export --model litemedsam`,
      );
    }
    const manifest = parseManifest(text, `${source.location}/manifest.json`);
    checkSpec(manifest.spec);
    const [variantName, variant] = pickVariant(manifest, opts.variant);
    const verify = opts.verify !== false;
    const parts: Array<keyof Variant["files"]> = ["encoder", "decoder"];
    const reprompt = !!opts.reprompt;
    if (reprompt) {
      if (!variant.files.prelude || !variant.files.prompt_decoder) {
        throw new BundleError(`variant ${variantName} of ${manifest.model} has no re-prompt pair (prelude + prompt_decoder): re-export it, or open with reprompt: false`);
      }
      parts.push("prelude", "prompt_decoder");
    }
    const sessions: Record<string, Session> = {};
    const verified: Record<string, boolean> = {};
    let bytes = 0;
    for (const part of parts) {
      const file = variant.files[part] as BundleFile;
      const r = await loadSession(source, backend, String(part), file, verify, manifest.model);
      sessions[part] = r.session;
      verified[file.path] = r.verified;
      bytes += file.bytes;
    }
    let check: LesionSegmenter["check"] = null;
    if (opts.boxCheck) {
      const entry = manifest.spec.extra?.box_check;
      if (!entry) throw new BundleError(`model ${manifest.model} has no box check; drop the boxCheck option`);
      const cm = parseManifest(await opts.boxCheck.readText("manifest.json"), `${opts.boxCheck.location}/manifest.json`);
      if (cm.model !== entry.model) {
        throw new BundleError(`the box check bundle at ${opts.boxCheck.location} is ${cm.model}, ${manifest.model} needs ${entry.model}`);
      }
      const [, cv] = pickVariant(cm, variantName);
      const file = cv.files.decoder as BundleFile;
      const r = await loadSession(opts.boxCheck, backend, "box check decoder", file, verify, cm.model);
      verified[`${cm.model}/${file.path}`] = r.verified;
      bytes += file.bytes;
      check = { session: r.session, model: entry.model, agreementMin: entry.agreement_min };
    }
    const info: SegmenterInfo = {
      model: manifest.model,
      variant: variantName,
      backend: backend.name,
      bytes,
      verified,
      reprompt,
      boxCheck: check ? check.model : null,
    };
    return new LesionSegmenter(
      manifest,
      info,
      {
        encoder: sessions.encoder,
        decoder: sessions.decoder,
        prelude: sessions.prelude ?? null,
        promptDecoder: sessions.prompt_decoder ?? null,
      },
      check,
    );
  }

  /** The default margin of user boxes (the manifest's preprocessing.box_margin). */
  get boxMargin(): number {
    return manifestBoxMargin(this.manifest);
  }

  /** Sessions run one call at a time (onnxruntime sessions are not re-entrant on every platform). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Preprocess and encode an EXIF-upright photo, and run the re-prompt prelude when it is loaded
   * (`prelude: false` skips it: one box per photo, e.g. a tracker's key frames). */
  encode(img: RGBImage, opts: { prelude?: boolean } = {}): Promise<Encoding> {
    return this.serial(async () => {
      const t0 = now();
      const { input, dims, transform } = preprocess(this.spec, img);
      const t1 = now();
      const res = await this.encoder.run({ [this.encoder.inputNames[0]]: { data: input, dims } });
      const embedding = out(res, this.encoder, 0);
      const t2 = now();
      const timingsMs: Record<string, number> = { preprocess: t1 - t0, encoder: t2 - t1 };
      let prelude: Record<string, FloatTensor> | null = null;
      if (this.prelude && opts.prelude !== false) {
        prelude = await this.prelude.run({ [this.prelude.inputNames[0]]: embedding });
        timingsMs.prelude = now() - t2;
      }
      return { transform, embedding, prelude, timingsMs };
    });
  }

  /** Raw decoder call: XYXY box in model-input pixels -> low-res logits (L x L) and IoU; the
   * prompt decoder on the encoding's prelude when there is one, else the plain decoder. */
  decodeLogits(enc: Encoding, boxModel: Float32Array): Promise<{ logits: Float32Array; iou: number }> {
    return this.serial(() => this.decode(enc, boxModel));
  }

  private async decode(enc: Encoding, boxModel: Float32Array): Promise<{ logits: Float32Array; iou: number }> {
    const boxes: FloatTensor = { data: boxModel, dims: [1, 4] };
    let s: Session;
    let res: Record<string, FloatTensor>;
    if (enc.prelude && this.promptDecoder) {
      s = this.promptDecoder;
      res = await s.run({ ...enc.prelude, boxes });
    } else {
      s = this.decoder;
      res = await s.run({ [s.inputNames[0]]: enc.embedding, [s.inputNames[1]]: boxes });
    }
    const logits = out(res, s, 0).data;
    const iou = s.outputNames.length > 1 ? out(res, s, 1).data[0] : Number.NaN;
    return { logits, iou };
  }

  /** Segment the photo of `enc` inside a user box (XYXY photo pixels), as predict() in Python. */
  predict(enc: Encoding, box: ArrayLike<number>, opts: PredictOptions = {}): Promise<Segmentation> {
    return this.serial(async () => {
      const t0 = now();
      const [h, w] = enc.transform.originalSize;
      const given = validateBox(box, w, h);
      const margin = validateBoxMargin(opts.boxMargin ?? this.boxMargin);
      const used = margin ? expandBox(given, margin, w, h) : given;
      const boxModel = boxToModel(enc.transform, used);
      let { logits, iou } = await this.decode(enc, boxModel);
      const t1 = now();
      let boxCheck: BoxCheckResult | null = null;
      if (this.check && opts.boxCheck !== false) {
        const c = this.check.session;
        const res = await c.run({ [c.inputNames[0]]: enc.embedding, [c.inputNames[1]]: { data: boxModel, dims: [1, 4] } });
        const other = out(res, c, 0).data;
        const agreement = maskAgreement(logits, other, enc.transform, this.spec.low_res_size, this.spec.mask_threshold);
        const robust = agreement < this.check.agreementMin;
        if (robust) {
          logits = other;
          iou = c.outputNames.length > 1 ? out(res, c, 1).data[0] : Number.NaN;
        }
        boxCheck = {
          agreement: Math.round(agreement * 1e4) / 1e4,
          threshold: this.check.agreementMin,
          decoder: robust ? "box-robust" : "default",
          check_model: this.check.model,
        };
      }
      const t2 = now();
      const { mask } = postprocess(this.manifest, logits, enc.transform, opts.clean !== false);
      const polygon = outerPolygon(mask, w, h);
      const t3 = now();
      return {
        mask,
        width: w,
        height: h,
        polygon,
        svgPath: svgPath(polygon),
        areaPx: maskArea(mask),
        box: given,
        boxUsed: used,
        boxMargin: margin,
        iouPrediction: iou,
        boxCheck,
        timingsMs: {
          ...enc.timingsMs,
          decoder: t1 - t0,
          ...(boxCheck ? { box_check: t2 - t1 } : {}),
          postprocess: t3 - t2,
        },
      };
    });
  }

  /** Free the sessions' native memory. */
  async release(): Promise<void> {
    for (const s of [this.encoder, this.decoder, this.prelude, this.promptDecoder, this.check?.session]) {
      await s?.release?.();
    }
  }
}
