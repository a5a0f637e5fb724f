"""Export-time form of the TinyViT encoder: the same modules, weights and arithmetic as
:class:`~skinscreen.export.models.tinyvit.TinyViTEncoder`, arranged so that the exported graph
moves less data (PyTorch only; used by :class:`~skinscreen.export.onnx_export.EncoderGraph`).

The eager encoder keeps every stage NCHW and converts to channels-last and back around each
attention, local conv and MLP. OpenVINO's CPU plugin keeps 4-D tensors in its own channels-last
layout, so each of those logical permutes became a full element-by-element transpose or reorder,
and the q/k/v split ran in a reference kernel. Here:

- the attention stages carry their tokens as ``(B, H*W, C)`` from the first block to the last
  (rank 3: no 4-D layout is imposed on them); only the window partition and the 3x3 depthwise
  local conv see 4-D views, and the permutes around that conv are exactly the NHWC <-> NCHW
  views the plugin's convolution wants, so they cost nothing there;
- q, k and v are three linears over row slices of the official ``qkv`` weight (per head
  ``[q, k, v]`` chunks), each reshaped straight into heads: no split node, and the q / v permutes
  fold into OpenVINO's fused attention.

Every output element is the same sum of the same products as the eager encoder (fp32 PyTorch
gives identical results). The wrappers hold the original submodules under the original attribute
names, so ``state_dict()`` keys are the official ones and the exported node names keep their
``/image_encoder/layers.i/blocks.j/...`` scopes (the INT8 rules match on them).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from skinscreen.export.models.tinyvit import (
    AttentionStage,
    TinyViTBlock,
    TinyViTEncoder,
    WindowAttention,
)


class TokenWindowAttention(nn.Module):
    """:class:`WindowAttention` with q, k, v as three linears. ``(B', N, C)`` in and out."""

    def __init__(self, attn: WindowAttention) -> None:
        super().__init__()
        self.num_heads = attn.num_heads
        self.head_dim = attn.head_dim
        self.scale = attn.scale
        self.norm = attn.norm
        self.qkv = attn.qkv
        self.proj = attn.proj
        self.attention_biases = attn.attention_biases
        self.register_buffer("attention_bias_idxs", attn.attention_bias_idxs, persistent=False)

    def _heads(self, y: torch.Tensor, part: int) -> torch.Tensor:
        """Linear ``part`` (0 q, 1 k, 2 v) of ``y`` ``(B', N, C)`` -> ``(B', N, heads, d)``."""
        b, n, c = y.shape
        h, d = self.num_heads, self.head_dim
        weight = self.qkv.weight.reshape(h, 3, d, c)[:, part].reshape(h * d, c)
        bias = self.qkv.bias.reshape(h, 3, d)[:, part].reshape(h * d)
        return F.linear(y, weight, bias).reshape(b, n, h, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        y = self.norm(x)
        q = self._heads(y, 0).transpose(1, 2)  # (B', h, N, d)
        k_t = self._heads(y, 1).permute(0, 2, 3, 1)  # (B', h, d, N)
        v = self._heads(y, 2).transpose(1, 2)  # (B', h, N, d)
        bias = self.attention_biases[:, self.attention_bias_idxs]  # (h, N, N)
        attn = (q @ k_t) * self.scale + bias
        out = attn.softmax(dim=-1) @ v  # (B', h, N, d)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class TokenBlock(nn.Module):
    """:class:`TinyViTBlock` on ``(B, H*W, C)`` tokens (row-major grid); same output."""

    def __init__(self, block: TinyViTBlock) -> None:
        super().__init__()
        self.window = block.window
        self.attn = TokenWindowAttention(block.attn)
        self.mlp = block.mlp
        self.local_conv = block.local_conv

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        ws = self.window
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        hp, wp = h + pad_b, w + pad_r
        grid = x.reshape(b, h, w, c)
        if pad_b or pad_r:  # static shapes: the traced graph has no branch
            grid = F.pad(grid, (0, 0, 0, pad_r, 0, pad_b))
        win = grid.reshape(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        win = self.attn(win.reshape(-1, ws * ws, c))
        back = win.reshape(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        x = x + back.reshape(b, hp, wp, c)[:, :h, :w, :].reshape(b, h * w, c)
        conv = self.local_conv(x.reshape(b, h, w, c).permute(0, 3, 1, 2))
        x = conv.permute(0, 2, 3, 1).reshape(b, h * w, c)
        return x + self.mlp(x)


class TokenStage(nn.Module):
    """:class:`AttentionStage` with its blocks on tokens; NCHW in and out."""

    def __init__(self, stage: AttentionStage) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(TokenBlock(blk) for blk in stage.blocks)
        self.downsample = stage.downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = (int(s) for s in x.shape)
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        for blk in self.blocks:
            x = blk(x, h, w)
        x = x.reshape(b, h, w, c).permute(0, 3, 1, 2)
        return self.downsample(x) if self.downsample is not None else x


class TokenTinyViT(nn.Module):
    """``encoder``'s export form: ``(B, 3, S, S)`` -> ``(B, 256, S/4, S/4)``, same values and
    the same ``state_dict()`` keys (the modules are shared, not copied)."""

    def __init__(self, encoder: TinyViTEncoder) -> None:
        super().__init__()
        self.patch_embed = encoder.patch_embed
        self.layers = nn.ModuleList(
            TokenStage(layer) if isinstance(layer, AttentionStage) else layer
            for layer in encoder.layers
        )
        self.neck = encoder.neck

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)


def export_form(encoder: nn.Module) -> nn.Module:
    """The export form of ``encoder``: :class:`TokenTinyViT` for a TinyViT encoder, else
    ``encoder`` itself."""
    return TokenTinyViT(encoder) if isinstance(encoder, TinyViTEncoder) else encoder
