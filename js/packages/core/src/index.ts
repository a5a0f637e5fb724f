// @skinscreen/core: skinscreen's lesion segmentation pipeline for apps (browsers, React Native,
// Node). No DOM, no runtime import: inference goes through a Backend (./node, ./web, and
// @skinscreen/react-native).

export * from "./errors.js";
export * from "./manifest.js";
export * from "./backend.js";
export * from "./pipeline.js";
export * from "./segmenter.js";
export * from "./live.js";
export { webBackend, fetchBundle, type OrtWebModule, type WebBackendOptions } from "./backends/web.js";
