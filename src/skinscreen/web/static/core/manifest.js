// Generated from js/packages/core/src by `make js` (npm run build && npm run web): do not edit.
// A bundle's manifest.json (written by `skinscreen export`): the fields this SDK reads, and the
// checks it makes before running anything (format, variant, files and their sha256).
import { BundleError } from "./errors.js";
/** Manifest format versions this SDK reads. */
export const FORMAT_VERSIONS = [1];
/** Parse and check a manifest.json text (or object); throws BundleError with what to do. */
export function parseManifest(src, where = "manifest.json") {
    let m = src;
    if (typeof src === "string") {
        try {
            m = JSON.parse(src);
        }
        catch (e) {
            throw new BundleError(`${where} is not valid JSON (${e.message}): re-export the bundle with skinscreen export`);
        }
    }
    const o = m;
    if (!o || typeof o !== "object")
        throw new BundleError(`${where} is not a JSON object`);
    if (!FORMAT_VERSIONS.includes(o.format_version)) {
        throw new BundleError(`${where}: format_version ${String(o.format_version)} is not one this SDK reads (${FORMAT_VERSIONS.join(", ")}): update @skinscreen/core or re-export the bundle`);
    }
    for (const k of ["model", "spec", "variants", "default_variant"]) {
        if (o[k] === undefined)
            throw new BundleError(`${where} has no "${k}": re-export the bundle with skinscreen export`);
    }
    for (const k of ["input_size", "low_res_size", "mask_threshold"]) {
        if (typeof o.spec[k] !== "number")
            throw new BundleError(`${where}: spec.${k} is missing or not a number`);
    }
    return o;
}
/** ONNX variants this SDK can run (onnxruntime on every platform). */
export function onnxVariants(m) {
    return Object.entries(m.variants)
        .filter(([, v]) => v.format === "onnx")
        .map(([k]) => k);
}
/** The variant to run: `name`, else the manifest's default when it is ONNX, else onnx-fp32. */
export function pickVariant(m, name) {
    const onnx = onnxVariants(m);
    const want = name ?? (onnx.includes(m.default_variant) ? m.default_variant : onnx[0]);
    const v = want === undefined ? undefined : m.variants[want];
    if (!v) {
        throw new BundleError(`bundle ${m.model} has no variant ${String(want)}; it has ${Object.keys(m.variants).join(", ")} (ONNX: ${onnx.join(", ") || "none"})`);
    }
    if (v.format !== "onnx") {
        throw new BundleError(`variant ${want} of ${m.model} is ${v.format}, not ONNX: pick one of ${onnx.join(", ")}`);
    }
    for (const part of ["encoder", "decoder"]) {
        if (!v.files[part])
            throw new BundleError(`variant ${want} of ${m.model} has no ${part} file in its manifest`);
    }
    return [want, v];
}
/** Lower-case hex sha256 with WebCrypto (browsers in a secure context, Node >= 19, Deno, Bun);
 * null where the platform has none (React Native without a crypto polyfill, plain-HTTP pages). */
export async function sha256Hex(bytes) {
    const subtle = globalThis.crypto?.subtle;
    if (!subtle)
        return null;
    const d = await subtle.digest("SHA-256", bytes);
    return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}
/** Check a file's size and sha256 against its manifest entry; throws BundleError when they differ.
 * Returns true when the hash was checked, false when the platform cannot hash (size still is). */
export async function verifyFile(part, file, bytes, model = "the bundle", hash = sha256Hex) {
    if (bytes.length !== file.bytes) {
        throw new BundleError(`${model}: ${part} file ${file.path} is ${bytes.length} bytes, the manifest says ${file.bytes}: the file is truncated or not the exported one; re-export the bundle (skinscreen export --model ${model})`);
    }
    const digest = await hash(bytes);
    if (digest === null)
        return false;
    if (digest !== file.sha256) {
        throw new BundleError(`${model}: ${part} file ${file.path} does not match its sha256 in manifest.json (got ${digest.slice(0, 12)}..., expected ${file.sha256.slice(0, 12)}...): the file was changed or damaged; re-export the bundle (skinscreen export --model ${model})`);
    }
    return true;
}
