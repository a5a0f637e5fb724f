// Generated from js/packages/core/src by `make js` (npm run build && npm run web): do not edit.
// The stateful segmenter: encode a photo once, prompt it many times (LesionPredictor in
// skinscreen/predictor.py, box prompts only: automatic mode and test-time flips stay in Python).
import { BundleError, SkinscreenError } from "./errors.js";
import { parseManifest, pickVariant, sha256Hex, verifyFile } from "./manifest.js";
import { boxMargin as manifestBoxMargin, boxToModel, checkSpec, expandBox, maskAgreement, maskArea, outerPolygon, postprocess, preprocess, svgPath, validateBox, validateBoxMargin, } from "./pipeline.js";
const now = () => (globalThis.performance ?? Date).now();
async function loadSession(source, backend, part, file, verify, model) {
    let bytes;
    let verified = false;
    if (source.readBytes) {
        try {
            bytes = await source.readBytes(file.path);
        }
        catch (e) {
            throw new BundleError(`${model}: cannot read ${part} file ${file.path} from ${source.location}: ${e.message}`);
        }
        if (verify)
            verified = await verifyFile(part, file, bytes, model, source.sha256 ?? sha256Hex);
    }
    try {
        const session = await backend.createSession({ part, path: file.path, ...(bytes ? { bytes } : {}) });
        return { session, verified };
    }
    catch (e) {
        throw new BundleError(`${model}: ${backend.name} cannot load ${part} file ${file.path}: ${e.message}`);
    }
}
function out(res, s, i) {
    const t = res[s.outputNames[i]];
    if (!t)
        throw new SkinscreenError(`the model gave no output ${s.outputNames[i]}`);
    return t;
}
export class LesionSegmenter {
    manifest;
    spec;
    info;
    encoder;
    decoder;
    prelude;
    promptDecoder;
    check;
    queue = Promise.resolve();
    constructor(manifest, info, sessions, check) {
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
    static async open(source, backend, opts = {}) {
        let text;
        try {
            text = await source.readText("manifest.json");
        }
        catch (e) {
            throw new BundleError(`no bundle at ${source.location}: cannot read manifest.json (${e.message}); build one with skinscreen export --model litemedsam`);
        }
        const manifest = parseManifest(text, `${source.location}/manifest.json`);
        checkSpec(manifest.spec);
        const [variantName, variant] = pickVariant(manifest, opts.variant);
        const verify = opts.verify !== false;
        const parts = ["encoder", "decoder"];
        const reprompt = !!opts.reprompt;
        if (reprompt) {
            if (!variant.files.prelude || !variant.files.prompt_decoder) {
                throw new BundleError(`variant ${variantName} of ${manifest.model} has no re-prompt pair (prelude + prompt_decoder): re-export it, or open with reprompt: false`);
            }
            parts.push("prelude", "prompt_decoder");
        }
        const sessions = {};
        const verified = {};
        let bytes = 0;
        for (const part of parts) {
            const file = variant.files[part];
            const r = await loadSession(source, backend, String(part), file, verify, manifest.model);
            sessions[part] = r.session;
            verified[file.path] = r.verified;
            bytes += file.bytes;
        }
        let check = null;
        if (opts.boxCheck) {
            const entry = manifest.spec.extra?.box_check;
            if (!entry)
                throw new BundleError(`model ${manifest.model} has no box check; drop the boxCheck option`);
            const cm = parseManifest(await opts.boxCheck.readText("manifest.json"), `${opts.boxCheck.location}/manifest.json`);
            if (cm.model !== entry.model) {
                throw new BundleError(`the box check bundle at ${opts.boxCheck.location} is ${cm.model}, ${manifest.model} needs ${entry.model}`);
            }
            const [, cv] = pickVariant(cm, variantName);
            const file = cv.files.decoder;
            const r = await loadSession(opts.boxCheck, backend, "box check decoder", file, verify, cm.model);
            verified[`${cm.model}/${file.path}`] = r.verified;
            bytes += file.bytes;
            check = { session: r.session, model: entry.model, agreementMin: entry.agreement_min };
        }
        const info = {
            model: manifest.model,
            variant: variantName,
            backend: backend.name,
            bytes,
            verified,
            reprompt,
            boxCheck: check ? check.model : null,
        };
        return new LesionSegmenter(manifest, info, {
            encoder: sessions.encoder,
            decoder: sessions.decoder,
            prelude: sessions.prelude ?? null,
            promptDecoder: sessions.prompt_decoder ?? null,
        }, check);
    }
    /** The default margin of user boxes (the manifest's preprocessing.box_margin). */
    get boxMargin() {
        return manifestBoxMargin(this.manifest);
    }
    /** Sessions run one call at a time (onnxruntime sessions are not re-entrant on every platform). */
    serial(fn) {
        const run = this.queue.then(fn, fn);
        this.queue = run.catch(() => undefined);
        return run;
    }
    /** Preprocess and encode an EXIF-upright photo, and run the re-prompt prelude when it is loaded
     * (`prelude: false` skips it: one box per photo, e.g. a tracker's key frames). */
    encode(img, opts = {}) {
        return this.serial(async () => {
            const t0 = now();
            const { input, dims, transform } = preprocess(this.spec, img);
            const t1 = now();
            const res = await this.encoder.run({ [this.encoder.inputNames[0]]: { data: input, dims } });
            const embedding = out(res, this.encoder, 0);
            const t2 = now();
            const timingsMs = { preprocess: t1 - t0, encoder: t2 - t1 };
            let prelude = null;
            if (this.prelude && opts.prelude !== false) {
                prelude = await this.prelude.run({ [this.prelude.inputNames[0]]: embedding });
                timingsMs.prelude = now() - t2;
            }
            return { transform, embedding, prelude, timingsMs };
        });
    }
    /** Raw decoder call: XYXY box in model-input pixels -> low-res logits (L x L) and IoU; the
     * prompt decoder on the encoding's prelude when there is one, else the plain decoder. */
    decodeLogits(enc, boxModel) {
        return this.serial(() => this.decode(enc, boxModel));
    }
    async decode(enc, boxModel) {
        const boxes = { data: boxModel, dims: [1, 4] };
        let s;
        let res;
        if (enc.prelude && this.promptDecoder) {
            s = this.promptDecoder;
            res = await s.run({ ...enc.prelude, boxes });
        }
        else {
            s = this.decoder;
            res = await s.run({ [s.inputNames[0]]: enc.embedding, [s.inputNames[1]]: boxes });
        }
        const logits = out(res, s, 0).data;
        const iou = s.outputNames.length > 1 ? out(res, s, 1).data[0] : Number.NaN;
        return { logits, iou };
    }
    /** Segment the photo of `enc` inside a user box (XYXY photo pixels), as predict() in Python. */
    predict(enc, box, opts = {}) {
        return this.serial(async () => {
            const t0 = now();
            const [h, w] = enc.transform.originalSize;
            const given = validateBox(box, w, h);
            const margin = validateBoxMargin(opts.boxMargin ?? this.boxMargin);
            const used = margin ? expandBox(given, margin, w, h) : given;
            const boxModel = boxToModel(enc.transform, used);
            let { logits, iou } = await this.decode(enc, boxModel);
            const t1 = now();
            let boxCheck = null;
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
    async release() {
        for (const s of [this.encoder, this.decoder, this.prelude, this.promptDecoder, this.check?.session]) {
            await s?.release?.();
        }
    }
}
