// onnxruntime-web backend (browsers, WebAssembly). The app passes the onnxruntime-web module it
// loaded (import * as ort from "onnxruntime-web", or the page's vendored ort.wasm.min.mjs): the
// core never imports a runtime, so one build serves bundlers, plain <script type=module> pages
// and Metro (which cannot bundle onnxruntime-web's ESM build; serve its files as assets).

import type * as ortTypes from "onnxruntime-common";
import type { BundleSource } from "../segmenter.js";
import { type Backend, type OrtSessionLike, type OrtTensorLike, wrapOrtSession } from "../backend.js";

/** The parts of the onnxruntime-web module this backend uses. */
export interface OrtWebModule {
  InferenceSession: { create(bytes: Uint8Array, options?: ortTypes.InferenceSession.SessionOptions): Promise<ortTypes.InferenceSession> };
  Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => ortTypes.Tensor;
}

export interface WebBackendOptions {
  /** Execution providers in order of preference (default ["wasm"]; "webgpu" where available). */
  executionProviders?: ortTypes.InferenceSession.SessionOptions["executionProviders"];
}

/** A Backend on onnxruntime-web: sessions from the file bytes the loader fetched and verified. */
export function webBackend(ort: OrtWebModule, opts: WebBackendOptions = {}): Backend {
  const sessionOptions: ortTypes.InferenceSession.SessionOptions = {
    executionProviders: opts.executionProviders ?? ["wasm"],
    graphOptimizationLevel: "all",
  };
  return {
    name: "onnxruntime-web",
    async createSession(src) {
      if (!src.bytes) throw new Error(`onnxruntime-web loads models from bytes: give the bundle source a readBytes (${src.path})`);
      const s = await ort.InferenceSession.create(src.bytes, sessionOptions);
      return wrapOrtSession(s as unknown as OrtSessionLike, (d, dims) => new ort.Tensor("float32", d, dims) as unknown as OrtTensorLike);
    },
  };
}

/** A BundleSource over HTTP: files at `baseUrl` + bundle-relative path (fetch). `urls` overrides
 * per file (e.g. the skinscreen server's /api/models/... file URLs). */
export function fetchBundle(
  baseUrl: string,
  urls: Record<string, string> = {},
  onProgress?: (path: string, bytes: number) => void,
): BundleSource & { readBytes(path: string): Promise<Uint8Array> } {
  const url = (p: string): string => urls[p] ?? `${baseUrl.replace(/\/+$/, "")}/${p}`;
  const f = (globalThis as unknown as { fetch: FetchLike }).fetch;
  return {
    location: baseUrl,
    async readText(p: string): Promise<string> {
      const r = await f(url(p));
      if (!r.ok) throw new Error(`HTTP ${r.status} for ${url(p)}`);
      return r.text();
    },
    async readBytes(p: string): Promise<Uint8Array> {
      const r = await f(url(p));
      if (!r.ok) throw new Error(`HTTP ${r.status} for ${url(p)}`);
      if (!r.body || !onProgress) return new Uint8Array(await r.arrayBuffer());
      const chunks: Uint8Array[] = [];
      let n = 0;
      const reader = r.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || !value) break;
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

/** The parts of fetch() used here (declared locally: the core builds without the DOM library). */
type FetchLike = (url: string) => Promise<{
  ok: boolean;
  status: number;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
  body: { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }> } } | null;
}>;
