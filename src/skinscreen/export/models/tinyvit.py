"""TinyViT image encoder as used by LiteMedSAM (PyTorch only; written for skinscreen).

Architecture (Wu et al., "TinyViT", ECCV 2022, as adapted by MobileSAM and then LiteMedSAM):

- ``patch_embed``: two 1x1 conv+BN layers with GELU between them (LiteMedSAM keeps the full
  input resolution here: stride 1, where TinyViT/MobileSAM use 3x3 stride-2 convolutions);
- ``layers.0``: MBConv blocks (1x1 expand, 3x3 depthwise, 1x1 project, residual, GELU);
- ``layers.1..3``: windowed self-attention blocks with learned relative-position biases, a 3x3
  depthwise "local" conv and an MLP; windows are zero-padded at the bottom/right and the padded
  tokens take part in attention (no mask), exactly as the original;
- each stage but the last ends with a patch-merging conv block (stride 2, or 1 for the last);
- ``neck``: SAM's 1x1 conv / LayerNorm2d / 3x3 conv / LayerNorm2d to 256 channels.

For a ``(B, 3, 256, 256)`` input the stage resolutions are 256, 128, 64, 64 and the output is the
``(B, 256, 64, 64)`` image embedding. State-dict keys follow the official checkpoint
(``patch_embed.seq.0.c.weight``, ``layers.1.blocks.0.attn.attention_biases``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from skinscreen.export.models.common import (
    conv_neck,
    grid_from_windows,
    pad_to_windows,
    windows_from_grid,
)


class ConvBN(nn.Module):
    """Bias-free conv followed by BatchNorm (keys ``c.weight``, ``bn.*``). NCHW in, NCHW out."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.c = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.c(x))


class PatchEmbed(nn.Module):
    """Stem: 1x1 ConvBN (3 -> C/2), GELU, 1x1 ConvBN (C/2 -> C); resolution unchanged."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(ConvBN(in_chans, dim // 2), nn.GELU(), ConvBN(dim // 2, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, 3x3 depthwise, 1x1 project, + input, GELU (NCHW)."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, kernel=3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv1(x))
        y = self.act(self.conv2(y))
        return self.act(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """Stage transition: 1x1 ConvBN, GELU, 3x3 depthwise ConvBN (stride s), GELU, 1x1 ConvBN."""

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, kernel=3, stride=stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        return self.conv3(x)


def relative_offset_index(window: int) -> torch.Tensor:
    """``(N, N)`` int64 index (N = window**2) into a bias table of ``window**2`` offsets.

    Token i at (yi, xi) and token j at (yj, xj) share the bias of offset
    (|yi - yj|, |xi - xj|), stored at ``|dy| * window + |dx|`` (the order in which the official
    implementation first meets each offset).
    """
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    dy = (ys[:, None] - ys[None, :]).abs()
    dx = (xs[:, None] - xs[None, :]).abs()
    return dy * window + dx


class WindowAttention(nn.Module):
    """Multi-head attention over the tokens of one window, with a learned offset bias.

    Keys: ``norm`` (pre-LayerNorm), ``qkv`` (per head [q, k, v] chunks), ``proj``,
    ``attention_biases`` ``(heads, window**2)``. Input/output ``(B', N, C)`` with N = window**2.
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("attention_bias_idxs", relative_offset_index(window), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, n, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=3)  # (B', h, N, d) each
        bias = self.attention_biases[:, self.attention_bias_idxs]  # (h, N, N)
        attn = (q @ k.transpose(-2, -1)) * self.scale + bias
        out = attn.softmax(dim=-1) @ v  # (B', h, N, d)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class TokenMlp(nn.Module):
    """Pre-LayerNorm MLP (keys ``norm``, ``fc1``, ``fc2``), GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention + residual, 3x3 depthwise local conv, MLP + residual. NCHW in/out."""

    def __init__(
        self, dim: int, num_heads: int, window: int, mlp_ratio: float, local_conv_size: int
    ) -> None:
        super().__init__()
        self.window = window
        self.attn = WindowAttention(dim, num_heads, window)
        self.mlp = TokenMlp(dim, int(dim * mlp_ratio))
        self.local_conv = ConvBN(dim, dim, kernel=local_conv_size, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ws = self.window
        grid = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        padded, hp, wp = pad_to_windows(grid, ws)
        win = windows_from_grid(padded, ws).reshape(-1, ws * ws, c)
        win = self.attn(win).reshape(-1, ws, ws, c)
        attended = grid_from_windows(win, ws, hp, wp)[:, :h, :w, :]
        grid = grid + attended
        x = self.local_conv(grid.permute(0, 3, 1, 2))
        tokens = x.permute(0, 2, 3, 1)
        tokens = tokens + self.mlp(tokens)
        return tokens.permute(0, 3, 1, 2)


class ConvStage(nn.Module):
    """Stage 0: MBConv blocks then an optional patch merging (keys ``blocks.i``, ``downsample``)."""

    def __init__(
        self, dim: int, depth: int, expand_ratio: float, downsample: nn.Module | None
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x) if self.downsample is not None else x


class AttentionStage(nn.Module):
    """Stages 1..3: TinyViT blocks then an optional patch merging."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window: int,
        mlp_ratio: float,
        local_conv_size: int,
        downsample: nn.Module | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, num_heads, window, mlp_ratio, local_conv_size) for _ in range(depth)
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x) if self.downsample is not None else x


class TinyViTEncoder(nn.Module):
    """LiteMedSAM image encoder: ``(B, 3, S, S)`` in [0, 1] -> ``(B, 256, S/4, S/4)`` embedding.

    Args:
        embed_dims: channels of the four stages.
        depths: blocks per stage.
        num_heads: attention heads of stages 1..3 (index 0 unused).
        window_sizes: attention window side of stages 1..3 (index 0 unused).
        merge_strides: stride of the patch merging after stages 0, 1, 2.
    """

    def __init__(
        self,
        in_chans: int = 3,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        local_conv_size: int = 3,
        merge_strides: Sequence[int] = (2, 2, 1),
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        n = len(depths)
        layers: list[nn.Module] = []
        for i in range(n):
            merge = (
                PatchMerging(embed_dims[i], embed_dims[i + 1], merge_strides[i])
                if i < n - 1
                else None
            )
            if i == 0:
                layers.append(ConvStage(embed_dims[0], depths[0], mbconv_expand_ratio, merge))
            else:
                layers.append(
                    AttentionStage(
                        embed_dims[i],
                        depths[i],
                        num_heads[i],
                        window_sizes[i],
                        mlp_ratio,
                        local_conv_size,
                        merge,
                    )
                )
        self.layers = nn.ModuleList(layers)
        self.neck = conv_neck(embed_dims[-1], out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)
