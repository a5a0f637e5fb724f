// Generated from js/packages/core/src by `make js` (npm run build && npm run web): do not edit.
// onnxruntime-web backend (browsers, WebAssembly). The app passes the onnxruntime-web module it
// loaded (import * as ort from "onnxruntime-web", or the page's vendored ort.wasm.min.mjs): the
// core never imports a runtime, so one build serves bundlers, plain <script type=module> pages
// and Metro (which cannot bundle onnxruntime-web's ESM build; serve its files as assets).
import { wrapOrtSession } from "../backend.js";
/** A Backend on onnxruntime-web: sessions from the file bytes the loader fetched and verified. */
export function webBackend(ort, opts = {}) {
    const sessionOptions = {
        executionProviders: opts.executionProviders ?? ["wasm"],
        graphOptimizationLevel: "all",
    };
    return {
        name: "onnxruntime-web",
        async createSession(src) {
            if (!src.bytes)
                throw new Error(`onnxruntime-web loads models from bytes: give the bundle source a readBytes (${src.path})`);
            const s = await ort.InferenceSession.create(src.bytes, sessionOptions);
            return wrapOrtSession(s, (d, dims) => new ort.Tensor("float32", d, dims));
        },
    };
}
/** A BundleSource over HTTP: files at `baseUrl` + bundle-relative path (fetch). `urls` overrides
 * per file (e.g. the skinscreen server's /api/models/... file URLs). */
export function fetchBundle(baseUrl, urls = {}, onProgress) {
    const url = (p) => urls[p] ?? `${baseUrl.replace(/\/+$/, "")}/${p}`;
    const f = globalThis.fetch;
    return {
        location: baseUrl,
        async readText(p) {
            const r = await f(url(p));
            if (!r.ok)
                throw new Error(`HTTP ${r.status} for ${url(p)}`);
            return r.text();
        },
        async readBytes(p) {
            const r = await f(url(p));
            if (!r.ok)
                throw new Error(`HTTP ${r.status} for ${url(p)}`);
            if (!r.body || !onProgress)
                return new Uint8Array(await r.arrayBuffer());
            const chunks = [];
            let n = 0;
            const reader = r.body.getReader();
            for (;;) {
                const { done, value } = await reader.read();
                if (done || !value)
                    break;
                chunks.push(value);
                n += value.length;
                onProgress(p, n);
            }
            const out = new Uint8Array(n);
            let o = 0;
            for (const c of chunks) {
                out.set(c, o);
                o += c.length;
            }
            return out;
        },
    };
}
