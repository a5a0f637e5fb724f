"""Student image encoders: compact RepViT-style CNNs with a little attention (PyTorch).

``RepStudent`` maps the same ``(B, 3, 256, 256)`` model input as LiteMedSAM to the same
``(B, 256, 64, 64)`` image embedding, so the teacher's prompt encoder and mask decoder are reused
unchanged (decoupled distillation, as in MobileSAM).

Layout (``repvit-s``: channels 64/128/256, depths 2/2/6, neck width 320):

- stem: 3x3 stride-2 conv-BN-GELU, 3x3 stride-2 conv-BN (256 -> 64 px);
- stage 1 (64 px), stage 2 (32 px): RepViT blocks = re-parameterisable depthwise 3x3 token mixer
  (3x3 + 1x1 + identity branches during training, one 3x3 conv after :meth:`fuse`) followed by a
  residual 1x1 expand/project channel mixer;
- stage 3 (16 px): RepViT blocks alternating with multi-head self-attention over the 256 tokens
  (plain MatMul/Softmax, which ONNX Runtime, ORT Mobile and CoreML run well);
- FPN fusion: every stage projected by 1x1 convs to the neck width, upsampled bilinearly to
  64 px and summed, then one RepViT block at 64 px;
- neck: SAM's 1x1 conv / LayerNorm2d / 3x3 conv / LayerNorm2d to 256 channels, initialised from
  the teacher's neck (same shapes as TinyViT's 320-channel neck).

Every Conv+BN pair, every multi-branch depthwise conv and every pre-attention BN folds into a
single conv at export
(:meth:`RepStudent.fuse`); the fused model computes the same function (a test checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from skinscreen.export.models.common import conv_neck


class ConvBN(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d; :meth:`fused` returns the equivalent biased conv."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)
        )

    @torch.no_grad()
    def fused(self) -> nn.Conv2d:
        conv, bn = self[0], self[1]
        w, b = _fold_bn(conv.weight, torch.zeros(conv.out_channels), bn)
        out = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            groups=conv.groups,
            bias=True,
        )
        out.weight.copy_(w)
        out.bias.copy_(b)
        return out


def _fold_bn(
    w: torch.Tensor, b: torch.Tensor, bn: nn.BatchNorm2d
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights/bias of ``bn(conv(x))`` as one conv (eval-mode statistics)."""
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    return w * scale.reshape(-1, 1, 1, 1), (b - bn.running_mean) * scale + bn.bias


class RepDW(nn.Module):
    """Depthwise token mixer: BN(dw3x3(x)) + BN(dw1x1(x)) + BN(x) in training, one dw3x3 conv
    after :meth:`fuse`. ``(B, C, H, W)`` -> same shape."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.dw3 = ConvBN(dim, dim, 3, groups=dim)
        self.dw1 = ConvBN(dim, dim, 1, groups=dim)
        self.idn = nn.BatchNorm2d(dim)
        self.fused: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        return self.dw3(x) + self.dw1(x) + self.idn(x)

    @torch.no_grad()
    def fuse(self) -> None:
        c3, c1 = self.dw3.fused(), self.dw1.fused()
        w = c3.weight.clone()
        w[:, :, 1:2, 1:2] += c1.weight
        ident = torch.zeros_like(w)
        ident[:, :, 1, 1] = 1.0
        wi, bi = _fold_bn(ident, torch.zeros(self.dim), self.idn)
        conv = nn.Conv2d(self.dim, self.dim, 3, 1, 1, groups=self.dim, bias=True)
        conv.weight.copy_(w + wi)
        conv.bias.copy_(c3.bias + c1.bias + bi)
        self.fused = conv
        del self.dw3, self.dw1, self.idn


class FFN(nn.Module):
    """Residual channel mixer: x + BN(1x1(GELU(BN(1x1(x))))) with expansion ``ratio``."""

    def __init__(self, dim: int, ratio: float = 2.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = ConvBN(dim, hidden)
        self.fc2 = ConvBN(hidden, dim)
        nn.init.zeros_(self.fc2[1].weight)  # start as identity: stabler distillation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.gelu(self.fc1(x)))


class RepViTBlock(nn.Module):
    """RepDW token mixer then FFN channel mixer; ``(B, C, H, W)`` -> same shape."""

    def __init__(self, dim: int, ratio: float = 2.0) -> None:
        super().__init__()
        self.mixer = RepDW(dim)
        self.ffn = FFN(dim, ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.mixer(x))


class Attention(nn.Module):
    """Multi-head self-attention over all H*W positions, pre-BN, residual.

    ``(B, C, H, W)`` -> same shape; ``C`` divisible by ``heads``.
    """

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.norm = nn.BatchNorm2d(dim)
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the pre-attention BatchNorm into the qkv projection (eval statistics)."""
        if isinstance(self.norm, nn.Identity):
            return
        bn = self.norm
        scale = bn.weight / (bn.running_var + bn.eps).sqrt()
        shift = bn.bias - bn.running_mean * scale
        w = self.qkv.weight  # (3C, C, 1, 1)
        self.qkv.bias.add_((w[:, :, 0, 0] * shift).sum(1))
        self.qkv.weight.mul_(scale.reshape(1, -1, 1, 1))
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # (B, heads, d, N)
        attn = torch.softmax((q.transpose(-2, -1) @ k) * self.scale, dim=-1)  # (B, heads, N, N)
        out = (v @ attn.transpose(-2, -1)).reshape(b, c, h, w)
        return x + self.proj(out)


class RepStudent(nn.Module):
    """Student encoder: ``(B, 3, 256, 256)`` float32 model input -> ``(B, 256, 64, 64)``.

    Args:
        dims: channels of the 64, 32 and 16 px stages.
        depths: blocks per stage (stage 3 alternates RepViT blocks and attention).
        neck_dim: width of the fused 64 px map fed to the SAM neck (320 = TinyViT's, so the
            teacher's neck weights fit).
        heads: attention heads in stage 3.
        out_chans: embedding channels (256).
    """

    def __init__(
        self,
        dims: Sequence[int] = (48, 96, 192),
        depths: Sequence[int] = (2, 2, 4),
        neck_dim: int = 320,
        heads: int = 4,
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        d1, d2, d3 = dims
        self.stem = nn.Sequential(ConvBN(3, d1 // 2, 3, 2), nn.GELU(), ConvBN(d1 // 2, d1, 3, 2))
        self.stage1 = nn.Sequential(*[RepViTBlock(d1) for _ in range(depths[0])])
        self.down2 = ConvBN(d1, d2, 3, 2)
        self.stage2 = nn.Sequential(*[RepViTBlock(d2) for _ in range(depths[1])])
        self.down3 = ConvBN(d2, d3, 3, 2)
        blocks: list[nn.Module] = []
        for i in range(depths[2]):
            blocks.append(RepViTBlock(d3) if i % 2 == 0 else Attention(d3, heads))
        self.stage3 = nn.Sequential(*blocks)
        self.lat1 = ConvBN(d1, neck_dim)
        self.lat2 = ConvBN(d2, neck_dim)
        self.lat3 = ConvBN(d3, neck_dim)
        self.fuse_block = RepViTBlock(neck_dim, ratio=1.0)
        self.neck = conv_neck(neck_dim, out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.stage1(self.stem(x))
        f2 = self.stage2(self.down2(f1))
        f3 = self.stage3(self.down3(f2))
        size = f1.shape[-2:]
        y = self.lat1(f1)
        y = y + F.interpolate(self.lat2(f2), size=size, mode="bilinear", align_corners=False)
        y = y + F.interpolate(self.lat3(f3), size=size, mode="bilinear", align_corners=False)
        return self.neck(self.fuse_block(y))

    @torch.no_grad()
    def fuse(self) -> RepStudent:
        """Fold every RepDW into one conv and every ConvBN into a biased conv (in place, eval).

        The result computes the same function in eval mode; call before ONNX export."""
        self.eval()
        for m in list(self.modules()):
            if isinstance(m, RepDW) and m.fused is None or isinstance(m, Attention):
                m.fuse()
        _replace_convbn(self)
        return self


def _replace_convbn(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, ConvBN):
            setattr(module, name, child.fused())
        else:
            _replace_convbn(child)


STUDENTS = {
    "repvit-s": {"dims": (64, 128, 256), "depths": (2, 2, 6), "neck_dim": 320, "heads": 8},
    "repvit-xs": {"dims": (32, 64, 128), "depths": (1, 1, 2), "neck_dim": 320, "heads": 4},
}


def build_student(arch: str = "repvit-s") -> RepStudent:
    """A randomly initialised student of architecture ``arch`` (see :data:`STUDENTS`)."""
    from skinscreen.errors import SkinscreenError

    if arch not in STUDENTS:
        raise SkinscreenError(f"unknown student '{arch}': choose one of {', '.join(STUDENTS)}")
    return RepStudent(**STUDENTS[arch])


def init_neck_from_teacher(student: RepStudent, teacher_encoder: nn.Module) -> bool:
    """Copy the teacher's neck weights when shapes match (TinyViT: 320 -> 256). Returns whether
    they were copied."""
    tn = getattr(teacher_encoder, "neck", None)
    if tn is None:
        return False
    src, dst = tn.state_dict(), student.neck.state_dict()
    if src.keys() != dst.keys() or any(src[k].shape != dst[k].shape for k in src):
        return False
    student.neck.load_state_dict(src)
    return True


def count_flops(model: nn.Module, input_size: int = 256) -> int:
    """Floating-point operations (multiply and add counted separately) of one forward pass on
    a ``(1, 3, S, S)`` input, by :class:`torch.utils.flop_counter.FlopCounterMode` (convs,
    matmuls; element-wise ops not counted, as is usual)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, 3, input_size, input_size))
    return int(fc.get_total_flops())
