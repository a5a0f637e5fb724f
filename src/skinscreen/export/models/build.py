"""Assemble the segmentation models from their parts (one private builder per architecture)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from skinscreen.errors import SkinscreenError
from skinscreen.export.models.sam_heads import MaskDecoder, PromptEncoder, TwoWayTransformer
from skinscreen.export.models.tinyvit import TinyViTEncoder
from skinscreen.export.models.vit import ViTEncoder
from skinscreen.spec import ModelSpec


class SamModel(nn.Module):
    """Image encoder + prompt encoder + mask decoder with the official attribute names.

    ``forward(image, boxes)``: image ``(B, 3, S, S)`` float32 (pre-processed model input), boxes
    ``(B, 4)`` XYXY in model-input pixels -> (low-res logits ``(B, 1, L, L)``, IoU ``(B, 1)``).
    """

    def __init__(
        self, image_encoder: nn.Module, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder

    def decode(
        self, image_embeddings: torch.Tensor, boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedding ``(B, 256, 64, 64)`` + boxes ``(B, 4)`` XYXY (model-input px) ->
        (``(B, 1, L, L)`` logits, ``(B, 1)`` IoU), single-mask output."""
        sparse, dense = self.prompt_encoder(boxes)
        pe = self.prompt_encoder.dense_positions()
        return self.mask_decoder(image_embeddings, pe, sparse, dense, multimask_output=False)

    def forward(
        self, image: torch.Tensor, boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode(self.image_encoder(image), boxes)


def _heads(input_size: int) -> tuple[PromptEncoder, MaskDecoder]:
    prompt = PromptEncoder(
        embed_dim=256,
        image_embedding_size=(64, 64),
        input_image_size=(input_size, input_size),
        mask_in_chans=16,
    )
    decoder = MaskDecoder(
        transformer_dim=256,
        transformer=TwoWayTransformer(
            depth=2, embedding_dim=256, num_heads=8, mlp_dim=2048, attention_downsample_rate=2
        ),
        num_multimask_outputs=3,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return prompt, decoder


def build_tinyvit_sam() -> SamModel:
    """LiteMedSAM: TinyViT-5M encoder (256 px input), SAM heads."""
    encoder = TinyViTEncoder(
        embed_dims=(64, 128, 160, 320),
        depths=(2, 2, 6, 2),
        num_heads=(2, 4, 5, 10),
        window_sizes=(7, 7, 14, 7),
        mlp_ratio=4.0,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        merge_strides=(2, 2, 1),
    )
    return SamModel(encoder, *_heads(256))


def build_vit_b_sam() -> SamModel:
    """MedSAM / SAM ViT-B: 1024 px input, SAM heads."""
    encoder = ViTEncoder(
        img_size=1024,
        patch_size=16,
        embed_dim=768,
        depth=12,
        num_heads=12,
        window_size=14,
        global_attn_indexes=(2, 5, 8, 11),
        out_chans=256,
    )
    return SamModel(encoder, *_heads(1024))


BUILDERS: dict[str, Callable[[], SamModel]] = {
    "tinyvit": build_tinyvit_sam,
    "vit_b": build_vit_b_sam,
}


def build_model(spec: ModelSpec) -> SamModel:
    """Randomly initialised model for ``spec.encoder`` (call ``.eval()`` and load weights next)."""
    try:
        builder = BUILDERS[spec.encoder]
    except KeyError:
        raise SkinscreenError(
            f"model '{spec.name}' has encoder '{spec.encoder}', which skinscreen cannot build "
            f"(known: {', '.join(sorted(BUILDERS))})"
        ) from None
    return builder()
