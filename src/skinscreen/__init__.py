"""skinscreen: offline skin-lesion segmentation and screening (MedSAM family on ONNX Runtime).

A screening aid, never a diagnosis.

Heavy modules are imported lazily so that ``import skinscreen`` and ``skinscreen --version`` stay
instant. The runtime path (predictor, engine, post-processing) never imports torch.
"""

# first: telemetry opt-outs must be in os.environ before any dependency is imported
import skinscreen._offline  # noqa: F401  (isort: skip)
from skinscreen._version import __version__
from skinscreen.disclaimer import DISCLAIMER

__all__ = ["__version__", "DISCLAIMER", "LesionPredictor"]


def __getattr__(name: str):
    if name == "LesionPredictor":
        from skinscreen.predictor import LesionPredictor

        return LesionPredictor
    raise AttributeError(name)
