"""Which sets of weights produced a result, under which licence, and whether it allows
commercial use.

A result (an outline, a report) can come from up to three sets of weights: the model's own
(encoder + decoder), the box check's second decoder (:mod:`skinscreen.box_check`) and
the automatic-mode localiser head (:mod:`skinscreen.auto.learned`). Weights learned from photos
licensed for non-commercial use only (ISIC 2018 CC BY-NC 4.0, the research-only clinical set)
carry that restriction. ``commercial_only`` (``LesionPredictor(commercial_only=True)``,
``--commercial-only``, ``$SKINSCREEN_COMMERCIAL_ONLY=1``) runs only weights whose licence allows
commercial use: it refuses such models and turns off the box check, the learned localiser
(automatic mode then uses the classical localiser) and the outline-quality model.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from skinscreen.errors import SkinscreenError
from skinscreen.spec import ModelSpec

COMMERCIAL_ONLY_ENV = "SKINSCREEN_COMMERCIAL_ONLY"

#: what --commercial-only turns off, in the words a user reads (CLI help, reports, the web page)
COMMERCIAL_ONLY_EFFECT = (
    "only weights whose licence allows commercial use: the box check (a second decoder learned "
    "from non-commercial photos) and the outline-quality score are off, and automatic mode uses "
    "the classical localiser instead of the learned head"
)


@dataclass(frozen=True)
class WeightsUse:
    """One set of weights that took part in a result.

    Attributes:
        role: ``"model"`` (encoder + prompt encoder + mask decoder), ``"box-check decoder"`` or
            ``"localiser"``.
        name: the model or asset name (``litemedsam``, ``litemedsam-boxaug``,
            ``litemedsam-localiser``).
        licence: the licence of the weights, in words.
        commercial_use: whether that licence allows commercial use.
    """

    role: str
    name: str
    licence: str
    commercial_use: bool

    def to_json_dict(self) -> dict:
        return asdict(self)


def commercial_only_default() -> bool:
    """``$SKINSCREEN_COMMERCIAL_ONLY`` as a bool (``1``/``true``/``yes``; default off)."""
    return os.environ.get(COMMERCIAL_ONLY_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def model_weights(spec: ModelSpec) -> WeightsUse:
    """The model's own weights (its encoder, prompt encoder and mask decoder)."""
    return WeightsUse("model", spec.name, spec.weights_licence, spec.commercial_use)


def box_check_weights(check_spec: ModelSpec) -> WeightsUse:
    """The box check's second decoder: the check model's prompt encoder and mask decoder."""
    return WeightsUse(
        "box-check decoder", check_spec.name, check_spec.weights_licence, check_spec.commercial_use
    )


def localiser_weights(name: str, info: dict) -> WeightsUse:
    """The learned localiser head ``name`` with its provenance ``info`` (the asset's JSON); its
    weights derive from its training photos, so it allows commercial use only when the asset
    says so (``commercial_use: true``)."""
    licence = str(info.get("data_licence") or "unknown: the asset records no licence")
    return WeightsUse("localiser", name, licence, bool(info.get("commercial_use", False)))


#: the licence of weights learned from lesions-train (the localiser, the outline-quality model)
#: when their asset records none
LESIONS_TRAIN_LICENCE = (
    "learned from lesions-train photos (ISIC 2018 CC BY-NC 4.0, PAD-UFES-20 CC BY 4.0, Waterloo "
    "research-only): research and non-commercial use"
)


def quality_model_weights(name: str, info: dict) -> WeightsUse:
    """The outline-quality model ``name`` (its asset's content ``info``), which ranks automatic
    candidates and decides abstention; learned from its training photos like the localiser."""
    licence = str(info.get("data_licence") or LESIONS_TRAIN_LICENCE)
    return WeightsUse(
        "outline-quality model", name, licence, bool(info.get("commercial_use", False))
    )


def require_commercial(spec: ModelSpec) -> None:
    """Raise when ``spec``'s weights do not allow commercial use (``--commercial-only``)."""
    if not spec.commercial_use:
        raise SkinscreenError(
            f"model {spec.name!r} is refused by --commercial-only: its weights are licensed for "
            f"non-commercial use ({spec.weights_licence}); use litemedsam, or drop "
            "--commercial-only for research use"
        )
