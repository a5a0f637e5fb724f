"""User-facing errors. Each message says what went wrong and how to fix it.

The CLI turns any :class:`SkinscreenError` into a one-line message on stderr and exit code 1.
"""


class SkinscreenError(Exception):
    """Base class for errors caused by input, configuration or model files (not bugs)."""


class ImageError(SkinscreenError):
    """The image could not be read, or is unsafe or unusable (too large, too small, corrupt)."""


class PromptError(SkinscreenError):
    """A box or other prompt is malformed or outside the image."""


class NoLesionFoundError(PromptError):
    """Automatic mode found no lesion in the photo (it does not invent one): draw a box."""


class UnreliableOutlineError(NoLesionFoundError):
    """Automatic mode found a lesion but its outline is likely wrong (the outline-quality model's
    failure probability is at or above its operating point): it abstains and asks for a box.

    ``segmentation``: the outline it would have given (for evaluation; not shown to users)."""

    def __init__(self, message: str, segmentation=None):
        super().__init__(message)
        self.segmentation = segmentation


class BundleError(SkinscreenError):
    """A model bundle is missing, incomplete or tampered with."""


class MissingExtraError(SkinscreenError):
    """An optional dependency group is needed for this command."""

    def __init__(self, extra: str, what: str):
        super().__init__(
            f"{what} needs the '{extra}' extra: pip install \"skinscreen[{extra}]\""
            + (" (torch must be torch==2.13.0)" if extra == "export" else "")
        )
        self.extra = extra
