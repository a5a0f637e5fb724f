// Generated from js/packages/core/src by `make js` (npm run build && npm run web): do not edit.
// The inference interface: a backend makes sessions from bundle files; a session runs named
// float32 tensors. Plain typed arrays in and out, so the pipeline never sees a runtime's types.
// Implementations: backends/node.ts (onnxruntime-node), backends/web.ts (onnxruntime-web),
// @skinscreen/react-native's ortBackend (onnxruntime-react-native).
/** Wrap an onnxruntime InferenceSession (any of the three packages) as a Session. */
export function wrapOrtSession(session, makeTensor) {
    return {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        async run(feeds) {
            const ortFeeds = {};
            for (const [k, t] of Object.entries(feeds))
                ortFeeds[k] = makeTensor(t.data, t.dims);
            const out = await session.run(ortFeeds);
            const res = {};
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
