"""SAM ViT-B image encoder as used by MedSAM (PyTorch only; written for skinscreen).

Dosovitskiy et al. ViT with SAM's changes (Kirillov et al. 2023, after Li et al. "ViTDet"):
16x16 patches, absolute position embedding ``pos_embed`` ``(1, 64, 64, 768)``, 12 blocks of which
2, 5, 8, 11 attend globally and the others in 14x14 windows (zero-padded bottom/right), decomposed
relative position biases (``rel_pos_h``/``rel_pos_w``), and the 256-channel conv neck.
``(B, 3, 1024, 1024)`` -> ``(B, 256, 64, 64)``. Keys follow the official checkpoint
(``blocks.0.attn.qkv.weight``, ``blocks.0.attn.rel_pos_h``, ``neck.0.weight``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from skinscreen.export.models.common import (
    FeedForward,
    conv_neck,
    grid_from_windows,
    pad_to_windows,
    windows_from_grid,
)


class RelPosAttention(nn.Module):
    """Multi-head self-attention over an ``(B, H, W, C)`` grid with decomposed relative positions.

    The logit between query (y, x) and key (y', x') gets ``q . Rh[y - y'] + q . Rw[x - x']``.
    ``size`` is the side of the (square) grid it attends over: the window, or the whole grid.
    """

    def __init__(self, dim: int, num_heads: int, size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * size - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * size - 1, head_dim))
        self.register_buffer(
            "rel_idx",
            torch.arange(size)[:, None] - torch.arange(size)[None, :] + (size - 1),
            persistent=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        nh = self.num_heads
        qkv = self.qkv(x).reshape(b, h * w, 3, nh, c // nh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, nh, N, d)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, nh, N, N)
        rh = self.rel_pos_h[self.rel_idx]  # (h, h', d), entry [i, j] = offset i - j
        rw = self.rel_pos_w[self.rel_idx]  # (w, w', d)
        qg = q.reshape(b, nh, h, w, c // nh)
        bias_h = torch.einsum("bnhwd,hkd->bnhwk", qg, rh)  # (B, nh, h, w, h')
        bias_w = torch.einsum("bnhwd,wkd->bnhwk", qg, rw)  # (B, nh, h, w, w')
        attn = attn.reshape(b, nh, h, w, h, w) + bias_h[..., :, None] + bias_w[..., None, :]
        attn = attn.reshape(b, nh, h * w, h * w).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, h, w, c)
        return self.proj(out)


class ViTBlock(nn.Module):
    """Pre-norm transformer block; windowed (``window > 0``) or global attention. ``(B, H, W, C)``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, window: int, grid: int) -> None:
        super().__init__()
        self.window = window
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RelPosAttention(dim, num_heads, window if window > 0 else grid)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        if self.window > 0:
            h, w = int(x.shape[1]), int(x.shape[2])
            padded, hp, wp = pad_to_windows(y, self.window)
            y = self.attn(windows_from_grid(padded, self.window))
            y = grid_from_windows(y, self.window, hp, wp)[:, :h, :w, :]
        else:
            y = self.attn(y)
        x = x + y
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection (key ``proj``): ``(B, 3, H, W)`` -> ``(B, H/p, W/p, C)``."""

    def __init__(self, patch: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class ViTEncoder(nn.Module):
    """SAM ViT image encoder (defaults: ViT-B, 1024 px input, 64x64x256 output embedding)."""

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        window_size: int = 14,
        global_attn_indexes: Sequence[int] = (2, 5, 8, 11),
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            ViTBlock(
                embed_dim,
                num_heads,
                mlp_ratio,
                0 if i in global_attn_indexes else window_size,
                grid,
            )
            for i in range(depth)
        )
        self.neck = conv_neck(embed_dim, out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.neck(x.permute(0, 3, 1, 2))
