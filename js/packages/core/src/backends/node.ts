// onnxruntime-node backend (Node: tests, servers, desktop tools). Sessions from the verified
// file bytes; threads as the app asks (default: onnxruntime's own).

import * as ort from "onnxruntime-node";
import { type Backend, type OrtSessionLike, type OrtTensorLike, wrapOrtSession } from "../backend.js";

export interface NodeBackendOptions {
  /** Intra-op threads (default: onnxruntime's choice, all cores). */
  threads?: number;
}

export function nodeBackend(opts: NodeBackendOptions = {}): Backend {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
  };
  return {
    name: "onnxruntime-node",
    async createSession(src) {
      const s = src.bytes ? await ort.InferenceSession.create(src.bytes, sessionOptions) : await ort.InferenceSession.create(src.path, sessionOptions);
      return wrapOrtSession(s as unknown as OrtSessionLike, (d, dims) => new ort.Tensor("float32", d, dims) as unknown as OrtTensorLike);
    },
  };
}
