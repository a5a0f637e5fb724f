"""Small building blocks shared by the encoders and the SAM heads (PyTorch only)."""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an ``(B, C, H, W)`` tensor (eps 1e-6, affine).

    State-dict keys: ``weight`` and ``bias``, both ``(C,)``.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        centred = x - mean
        var = centred.pow(2).mean(dim=1, keepdim=True)
        x = centred / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class FeedForward(nn.Module):
    """Two linear layers with an activation between them (keys ``lin1``, ``lin2``)."""

    def __init__(self, dim: int, hidden: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


def conv_neck(in_chans: int, out_chans: int = 256) -> nn.Sequential:
    """SAM's encoder neck: 1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d (keys ``0`` .. ``3``)."""
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, kernel_size=1, bias=False),
        LayerNorm2d(out_chans),
        nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
        LayerNorm2d(out_chans),
    )


def pad_to_windows(x: torch.Tensor, window: int) -> tuple[torch.Tensor, int, int]:
    """Zero-pad a ``(B, H, W, C)`` tensor at the bottom/right so H and W are multiples of ``window``.

    The padding is computed from the static shape (Python ints), so tracing stays branch-free.
    Returns the padded tensor and the padded (Hp, Wp).
    """
    h, w = int(x.shape[1]), int(x.shape[2])
    pad_b = (window - h % window) % window
    pad_r = (window - w % window) % window
    if pad_b or pad_r:
        x = nn.functional.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    return x, h + pad_b, w + pad_r


def windows_from_grid(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, Hp, Wp, C)`` -> ``(B * nH * nW, window, window, C)`` (row-major window order)."""
    b, hp, wp, c = x.shape
    x = x.reshape(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def grid_from_windows(x: torch.Tensor, window: int, hp: int, wp: int) -> torch.Tensor:
    """Inverse of :func:`windows_from_grid`: ``(B * nH * nW, window, window, C)`` -> ``(B, Hp, Wp, C)``."""
    c = x.shape[-1]
    x = x.reshape(-1, hp // window, wp // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, hp, wp, c)
