export { ortBackend, deviceBundle, type OrtRNOptions } from "./backend";
export { useLesionSegmenter, type LesionSegmenterState } from "./useLesionSegmenter";
export { LesionOverlay, fitContain, type LesionOverlayProps } from "./LesionOverlay";
export { useLiveLesionTracker, trackerModel, type LiveLesionTracker } from "./useLiveLesionTracker";
