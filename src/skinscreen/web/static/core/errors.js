// Generated from js/packages/core/src by `make js` (npm run build && npm run web): do not edit.
// Errors with messages that say how to fix them (skinscreen/errors.py's classes, for apps).
/** Base class of everything @skinscreen/core throws on purpose. */
export class SkinscreenError extends Error {
    constructor(message) {
        super(message);
        this.name = new.target.name;
    }
}
/** A bundle that is missing, incomplete, tampered with or not for this SDK. */
export class BundleError extends SkinscreenError {
}
/** A model spec whose pre/post-processing this SDK does not implement. */
export class SpecError extends SkinscreenError {
}
/** A bad box or box margin. */
export class PromptError extends SkinscreenError {
}
