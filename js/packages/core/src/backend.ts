// The inference interface: a backend makes sessions from bundle files; a session runs named
// float32 tensors. Plain typed arrays in and out, so the pipeline never sees a runtime's types.
// Implementations: backends/node.ts (onnxruntime-node), backends/web.ts (onnxruntime-web),
// @skinscreen/react-native's ortBackend (onnxruntime-react-native).

/** A float32 tensor: row-major data and its shape. */
export interface FloatTensor {
  data: Float32Array;
  dims: readonly number[];
}

/** One loaded model graph. */
export interface Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, FloatTensor>): Promise<Record<string, FloatTensor>>;
  release?(): Promise<void>;
}

/** What a backend gets to load one file: its bundle-relative path and, where the platform reads
 * files into memory, its (already verified) bytes. */
export interface SessionSource {
  part: string;
  /** Bundle-relative path, as in the manifest. */
  path: string;
  /** The file's bytes when the loader read them (web, Node); absent when the backend loads by
   * path (React Native: onnxruntime-react-native reads the file itself). */
  bytes?: Uint8Array;
}

export interface Backend {
  /** e.g. "onnxruntime-node", "onnxruntime-web", "onnxruntime-react-native". */
  readonly name: string;
  createSession(src: SessionSource): Promise<Session>;
}

/** Minimal structural view of the onnxruntime-common API that onnxruntime-node, -web and
 * -react-native all export (InferenceSession.create, Tensor); lets one adapter serve the three. */
export interface OrtTensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
  readonly type: string;
}
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}

/** Wrap an onnxruntime InferenceSession (any of the three packages) as a Session. */
export function wrapOrtSession(
  session: OrtSessionLike,
  makeTensor: (data: Float32Array, dims: readonly number[]) => OrtTensorLike,
): Session {
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const ortFeeds: Record<string, OrtTensorLike> = {};
      for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = makeTensor(t.data, t.dims);
      const out = await session.run(ortFeeds);
      const res: Record<string, FloatTensor> = {};
      for (const [k, t] of Object.entries(out)) {
        if (t.type !== "float32" || !(t.data instanceof Float32Array)) {
          throw new Error(`output ${k} is ${t.type}, not a float32 CPU tensor`);
        }
        res[k] = { data: t.data, dims: t.dims };
      }
      return res;
    },
    release: () => session.release(),
  };
}
