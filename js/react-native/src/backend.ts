// onnxruntime-react-native backend: sessions from files on the device (the bundle copied into
// the app's documents or assets directory); ORT reads them natively, so no 40 MB JS buffers.
// Written against onnxruntime-react-native 1.24's API (InferenceSession.create(path, options),
// Tensor("float32", data, dims)); not run here: it needs an iOS/Android build.

import { InferenceSession, Tensor } from "onnxruntime-react-native";
import { type Backend, type BundleSource, type OrtSessionLike, type OrtTensorLike, wrapOrtSession } from "@skinscreen/core";

export interface OrtRNOptions {
  /** e.g. ["coreml", "cpu"] on iOS, ["nnapi", "cpu"] or ["xnnpack", "cpu"] on Android (default ["cpu"]). */
  executionProviders?: InferenceSession.SessionOptions["executionProviders"];
  /** The bundle directory as a file path (no file:// prefix), where the files lie. */
  dir: string;
}

export function ortBackend(opts: OrtRNOptions): Backend {
  const options: InferenceSession.SessionOptions = {
    executionProviders: opts.executionProviders ?? ["cpu"],
    graphOptimizationLevel: "all",
  };
  const dir = opts.dir.replace(/\/+$/, "");
  return {
    name: "onnxruntime-react-native",
    async createSession(src) {
      // bytes when the source read them (then sha256 was checked), else ORT reads the path
      const s = src.bytes ? await InferenceSession.create(src.bytes, options) : await InferenceSession.create(`${dir}/${src.path}`, options);
      return wrapOrtSession(s as unknown as OrtSessionLike, (d, dims) => new Tensor("float32", d, dims) as unknown as OrtTensorLike);
    },
  };
}

/** A BundleSource for a directory on the device. `readText` reads a text file (expo-file-system's
 * readAsStringAsync, react-native-fs's readFile...). Without `readBytes` the model files are not
 * hashed on the device: verify them when you install the bundle (the manifest's sha256s). */
export function deviceBundle(dir: string, readText: (path: string) => Promise<string>, readBytes?: (path: string) => Promise<Uint8Array>): BundleSource {
  const d = dir.replace(/\/+$/, "");
  return {
    location: d,
    readText: (p) => readText(`${d}/${p}`),
    ...(readBytes ? { readBytes: (p: string) => readBytes(`${d}/${p}`) } : {}),
  };
}
