"""SAM prompt encoder, two-way transformer and mask decoder (PyTorch only; written for skinscreen).

Follows Kirillov et al., "Segment Anything" (2023). State-dict keys are the official ones
(``prompt_encoder.pe_layer.positional_encoding_gaussian_matrix``,
``mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight``, ...), so the
LiteMedSAM and MedSAM checkpoints load strictly. Only box prompts are implemented (skinscreen has
no point or mask prompts); the mask-prompt layers exist so the official weights load.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from skinscreen.export.models.common import FeedForward, LayerNorm2d


class RandomFourierPositions(nn.Module):
    """Positional encoding with random spatial frequencies (buffer
    ``positional_encoding_gaussian_matrix`` ``(2, C/2)``).

    A point (x, y) normalised to [0, 1] maps to ``[sin(2 pi p G), cos(2 pi p G)]`` with
    ``p = 2 (x, y) - 1``: a ``C``-vector.
    """

    def __init__(self, num_pos_feats: int = 128) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def encode(self, coords01: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` [x, y] in [0, 1] -> ``(..., C)``."""
        proj = (2.0 * coords01 - 1.0) @ self.positional_encoding_gaussian_matrix
        proj = 2.0 * math.pi * proj
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """Dense encoding of an h x w grid of cell centres: ``(C, h, w)``."""
        g = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(h, device=g.device, dtype=g.dtype) + 0.5) / h
        xs = (torch.arange(w, device=g.device, dtype=g.dtype) + 0.5) / w
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return self.encode(torch.stack([xx, yy], dim=-1)).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    """Encodes box prompts into sparse tokens; the dense prompt is the learned "no mask" vector.

    Args:
        embed_dim: token width (256).
        image_embedding_size: (h, w) of the image embedding (64, 64).
        input_image_size: (H, W) of the model input in pixels (256 LiteMedSAM, 1024 ViT-B).
        mask_in_chans: hidden channels of the (unused here) mask-prompt branch.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        image_embedding_size: tuple[int, int] = (64, 64),
        input_image_size: tuple[int, int] = (256, 256),
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.pe_layer = RandomFourierPositions(embed_dim // 2)
        # 0/1: negative/positive point, 2/3: box top-left/bottom-right corner.
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_positions(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid: ``(1, C, h, w)``."""
        return self.pe_layer.grid(*self.image_embedding_size).unsqueeze(0)

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """XYXY boxes ``(B, 4)`` in model-input pixels -> corner tokens ``(B, 2, C)``.

        Corners are shifted to pixel centres (+0.5) and divided by the input size (x by W, y by H).
        """
        h, w = self.input_image_size
        corners = (boxes.reshape(-1, 2, 2) + 0.5) / torch.tensor(
            [w, h], dtype=boxes.dtype, device=boxes.device
        )
        tokens = self.pe_layer.encode(corners)
        corner_kind = torch.cat(
            [self.point_embeddings[2].weight, self.point_embeddings[3].weight], dim=0
        )  # (2, C)
        return tokens + corner_kind

    def dense_no_mask(self, batch: int) -> torch.Tensor:
        """Dense prompt without a mask prompt: ``(B, C, h, w)`` copies of ``no_mask_embed``."""
        h, w = self.image_embedding_size
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)

    def forward(self, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes ``(B, 4)`` XYXY -> (sparse ``(B, 2, C)``, dense ``(B, C, h, w)``)."""
        return self.embed_boxes(boxes), self.dense_no_mask(boxes.shape[0])


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections to ``dim // downsample_rate``."""

    def __init__(self, dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        inner = dim // downsample_rate
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q ``(B, Nq, dim)``, k/v ``(B, Nk, dim)`` -> ``(B, Nq, dim)``."""
        q, k, v = (
            self._heads(self.q_proj(q)),
            self._heads(self.k_proj(k)),
            self._heads(self.v_proj(v)),
        )
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        out = attn.softmax(dim=-1) @ v  # (B, h, Nq, d)
        b, h, n, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * d))


class TwoWayBlock(nn.Module):
    """Tokens attend to themselves, tokens attend to the image, MLP, image attends to tokens.

    Each step adds a residual and a LayerNorm (``norm1`` .. ``norm4``). The first block of the
    transformer feeds its self-attention the raw tokens (no positional encoding added).
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_dim: int, downsample_rate: int, skip_first_pe: bool
    ) -> None:
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate)
        self.skip_first_pe = skip_first_pe

    def forward(
        self,
        tokens: torch.Tensor,
        image: torch.Tensor,
        token_pe: torch.Tensor,
        image_pe: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_pe:
            tokens = self.self_attn(tokens, tokens, tokens)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens)
        tokens = self.norm1(tokens)

        q, k = tokens + token_pe, image + image_pe
        tokens = self.norm2(tokens + self.cross_attn_token_to_image(q, k, image))
        tokens = self.norm3(tokens + self.mlp(tokens))

        q, k = tokens + token_pe, image + image_pe
        image = self.norm4(image + self.cross_attn_image_to_token(k, q, tokens))
        return tokens, image


class TwoWayTransformer(nn.Module):
    """SAM's two-way transformer between prompt tokens and image-embedding tokens."""

    def __init__(
        self,
        depth: int = 2,
        embedding_dim: int = 256,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayBlock(embedding_dim, num_heads, mlp_dim, attention_downsample_rate, i == 0)
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image/image_pe ``(B, C, h, w)``, tokens ``(B, T, C)`` ->
        (tokens ``(B, T, C)``, image tokens ``(B, h*w, C)``)."""
        image = image.flatten(2).transpose(1, 2)
        image_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, image = layer(queries, image, tokens, image_pe)
        attn = self.final_attn_token_to_image(queries + tokens, image + image_pe, image)
        return self.norm_final_attn(queries + attn), image


class MLP(nn.Module):
    """``num_layers`` linear layers (keys ``layers.i``), ReLU between them."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int, num_layers: int) -> None:
        super().__init__()
        dims = [dim_in] + [hidden] * (num_layers - 1) + [dim_out]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = torch.relu(x)
        return x


class MaskDecoder(nn.Module):
    """Predicts mask logits at 4x the embedding resolution, plus an IoU estimate per mask.

    Output tokens: one IoU token and ``num_multimask_outputs + 1`` mask tokens; mask 0 is the
    single-mask output used for box prompts.
    """

    def __init__(
        self,
        transformer_dim: int = 256,
        transformer: TwoWayTransformer | None = None,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        d = transformer_dim
        self.transformer = transformer if transformer is not None else TwoWayTransformer()
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, d)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, d)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(d, d // 4, kernel_size=2, stride=2),
            LayerNorm2d(d // 4),
            nn.GELU(),
            nn.ConvTranspose2d(d // 4, d // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(d, d, d // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(d, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def _tokens_and_upscaled(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two-way transformer over [IoU, mask tokens, prompt tokens] and the image, then the
        image stream upscaled: (output tokens ``(B, 1 + M + T, C)``, ``(B, C/8, 4h, 4w)``)."""
        b = sparse.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
        src = image_embeddings + dense
        pos = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, img = self.transformer(src, pos, tokens)
        return hs, self.output_upscaling(img.transpose(1, 2).reshape(b, c, h, w))

    def predict_all(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One prompt per image. image_embeddings/dense ``(B, C, h, w)``, image_pe ``(1, C, h, w)``,
        sparse ``(B, T, C)`` -> (mask logits ``(B, M, 4h, 4w)``, IoU ``(B, M)``), M = all mask tokens."""
        hs, up = self._tokens_and_upscaled(image_embeddings, image_pe, sparse, dense)
        b = hs.shape[0]
        iou_out = hs[:, 0, :]
        mask_out = hs[:, 1 : 1 + self.num_mask_tokens, :]
        hyper = torch.stack(
            [mlp(mask_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # (B, M, C/8)
        _, cu, hu, wu = up.shape
        masks = (hyper @ up.reshape(b, cu, hu * wu)).reshape(b, -1, hu, wu)
        return masks, self.iou_prediction_head(iou_out)

    def predict_first(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask 0 and its IoU only (the single-mask output of box prompts): the same arithmetic
        as ``predict_all(...)[k][:, 0:1]`` without the other mask tokens' hypernetwork MLPs and
        mask products. Every token still enters the transformer (tokens attend to each other);
        only the unused outputs are not computed. Shapes as :meth:`predict_all` with M = 1."""
        hs, up = self._tokens_and_upscaled(image_embeddings, image_pe, sparse, dense)
        b = hs.shape[0]
        hyper = self.output_hypernetworks_mlps[0](hs[:, 1:2, :])  # (B, 1, C/8)
        _, cu, hu, wu = up.shape
        mask = (hyper @ up.reshape(b, cu, hu * wu)).reshape(b, 1, hu, wu)
        return mask, self.iou_prediction_head(hs[:, 0, :])[:, 0:1]

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        multimask_output: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`predict_all`, keeping mask 0 (single) or masks 1..3 (multimask)."""
        masks, iou = self.predict_all(image_embeddings, image_pe, sparse, dense)
        sl = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, sl], iou[:, sl]
