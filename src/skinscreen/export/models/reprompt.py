"""The SAM mask decoder split into an image-side prelude and a cheap per-prompt decoder.

Hand-written numeric code (no library does this): an exact algebraic rewrite of
:class:`skinscreen.export.models.sam_heads.MaskDecoder` for box prompts without a mask prompt,
single-mask output. Written for skinscreen; the derivation is below and in docs/architecture.md.

Why it is exact. Write the image stream of the two-way transformer as an ``(N, D)`` matrix
(``N = h*w = 4096`` pixels, ``D = 256`` channels) and ``S = image_embedding + no_mask_embed``.
Everything that touches ``S`` alone is prompt-independent. The only prompt-dependent updates of
the image stream are the image->token attentions: ``out = sum_h P_h M_h + b_o`` where ``P_h``
``(N, T)`` are the per-head softmax weights over the ``T = 7`` tokens and ``M_h = V_h W_o,h``
``(T, D)``: a rank <= ``H*T = 56`` term. LayerNorm is a per-row affine map, so after each block
the image stream stays in the form::

    X = a * (S diag(g)) + U B + c          a (N,) row scale, U (N, r), B (r, D), c (D,)

with ``g`` the product of the LayerNorm gains so far. Its row mean and variance follow from
image-only statistics of ``S diag(g)`` (row mean, squared norm, products with fixed weight
matrices) plus ``r``-dimensional terms. Every later linear map ``X W`` is therefore
``a * (S diag(g) W) + U (B W) + c W``, where ``S diag(g) W`` is computed once per image by the
prelude. That covers the key/value/query projections of block 1 and the final attention and the
first ConvTranspose of the output upscaling (kernel 2, stride 2: a per-pixel linear map
``256 -> 64 x 2 x 2``). Only the per-pixel tail (LayerNorm2d + GELU, the second ConvTranspose,
GELU, the hypernetwork product of mask 0) runs at full resolution per prompt.

Per prompt this needs about 0.5 GMAC instead of about 1.7 GMAC. The prelude costs about one
decoder call, once per image.

Layouts: pixels are the last, contiguous axis almost everywhere (``(C, N)``; ``U`` is kept as
``U^T`` ``(r, N)``), so per-pixel softmaxes over the 7 tokens, concatenations and row scalings are
contiguous; attention values are ``(H, N, d)`` (``d = 16`` channels per head) and the
ConvTranspose input ``(N, 256)``. Heads are handled with block-diagonal token matrices
(:func:`_block_diag`): one ``(56, 128) @ (128, N)`` product instead of eight ``(7, 16) @ (16, N)``
ones (8x the multiply-adds, 29 M each, but one well-shaped product and no transposes; under the
load we could measure in, neither form was clearly faster). Pixels are row-major
(``n = y * w + x``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from skinscreen.export.models.sam_heads import Attention, MaskDecoder, PromptEncoder

# Names of the prelude's outputs = the prompt decoder's image-side inputs, in order.
# H heads of d channels (8 x 16), N pixels, D channels (256); "S" is the embedding + no_mask_embed.
PRELUDE_OUTPUTS = [
    "t2i0_k",  # (H*d, N)  block 0 token->image keys ((S + pe) Wk + bk), transposed
    "t2i0_v",  # (H, N, d) block 0 token->image values (S Wv + bv)
    "i2t0_q",  # (H*d, N)  block 0 image->token queries ((S + pe) Wq + bq), transposed
    "r0",  # (H*d, N)      (centred S times block 0's image->token out_proj weight W_o0)^T
    "t2i1_k",  # (H*d, N)  S g1 Wk (block 1 token->image; no bias), transposed
    "t2i1_v",  # (H, N, d) S g1 Wv
    "i2t1_q",  # (H*d, N)  S g1 Wq (block 1 image->token), transposed
    "r1a",  # (H*d, N)     (centred S g1 times g1 * W_o0)^T
    "r1b",  # (H*d, N)     (centred S g1 times W_o1)^T
    "fin_k",  # (H*d, N)   S g1 g2 Wk (final token->image attention), transposed
    "fin_v",  # (H, N, d)  S g1 g2 Wv
    "up",  # (N, 4*C1)     S g1 g2 W_ct1 (first ConvTranspose), columns (dy, dx, c)
    "stats",  # (8, N)     per-pixel image statistics, see DecoderPrelude
]


def prelude_shapes(embedding_shape: tuple[int, int, int], heads: int = 8) -> dict[str, list[int]]:
    """Static shapes of the prelude outputs for an embedding ``(D, h, w)`` (SAM's decoder:
    ``heads`` attention heads over ``D // 2`` channels, first ConvTranspose to ``D // 4``
    channels, kernel 2, so ``4 * D // 4 = D`` columns)."""
    d, h, w = embedding_shape
    n, inner = h * w, d // 2
    hd = [inner, n]
    hnd = [heads, n, inner // heads]
    shapes = [hd, hnd, hd, hd, hd, hnd, hd, hd, hd, hd, hnd, [n, d], [8, n]]
    return dict(zip(PRELUDE_OUTPUTS, shapes, strict=True))


def _keys_layout(x: torch.Tensor) -> torch.Tensor:
    """``(N, H*d)`` -> ``(H*d, N)`` (contiguous)."""
    return x.t().contiguous()


def _ct1_matrix(decoder: MaskDecoder) -> tuple[torch.Tensor, torch.Tensor]:
    """First ConvTranspose (kernel 2, stride 2) as a per-pixel linear map: ``W (D, 4*C1)`` with
    columns ordered (dy, dx, c), and its bias ``(4*C1,)``. Output pixel ``(2y+dy, 2x+dx)``,
    channel ``c`` = ``X[y*w + x] @ W[:, (2*dy + dx)*C1 + c] + b[c]``."""
    ct = decoder.output_upscaling[0]
    w = ct.weight  # (D, C1, 2, 2)
    d, c1 = w.shape[:2]
    return w.permute(0, 2, 3, 1).reshape(d, 4 * c1), ct.bias.repeat(4)


def _ct2_matrix(decoder: MaskDecoder) -> tuple[torch.Tensor, torch.Tensor]:
    """Second ConvTranspose as ``W (C1, 4*C2)``, columns (ey, ex, c), and bias ``(4*C2,)``."""
    ct = decoder.output_upscaling[3]
    w = ct.weight  # (C1, C2, 2, 2)
    c1, c2 = w.shape[:2]
    return w.permute(0, 2, 3, 1).reshape(c1, 4 * c2), ct.bias.repeat(4)


class DecoderPrelude(nn.Module):
    """Image-only part of the mask decoder: ``image_embeddings (1, D, h, w)`` -> the tensors of
    :data:`PRELUDE_OUTPUTS` (run once per image; about the cost of one plain decoder call).

    Every output is linear in ``S`` except two variances, so one matrix product
    ``W_all (K, D) @ E (D, N)`` of the embedding ``E`` (already pixels-last) gives all of them in
    the pixels-last layout: the LayerNorm gains, centrings and biases are folded into ``W_all``
    and a per-row bias at construction (for ``S = E + no_mask``: ``W S = W E + W no_mask``).

    ``stats`` rows (each ``(N,)``, all divided by ``D``): 0 mean of S, 1 variance of S,
    2 ``<S_c, b_o0>``, 3 mean of ``S g1``, 4 variance of ``S g1``, 5-7 ``<(S g1)_c, v>`` for
    ``v`` = ``b_o0 g1``, ``g1``, ``beta1 + b_o1`` (``_c``: centred over channels; ``g1``/``beta1``
    block 0's norm4 gain/bias, ``b_o`` the image->token out_proj biases).
    """

    def __init__(self, prompt_encoder: PromptEncoder, decoder: MaskDecoder) -> None:
        super().__init__()
        self.heads = decoder.transformer.layers[0].cross_attn_token_to_image.num_heads
        with torch.no_grad():
            pe = prompt_encoder.dense_positions()[0].flatten(1)  # (D, N)
            no_mask = prompt_encoder.no_mask_embed.weight[0]
            w, b, sizes = self._linear_map(decoder)
            k0 = decoder.transformer.layers[0].cross_attn_token_to_image.k_proj.weight
            q0 = decoder.transformer.layers[0].cross_attn_image_to_token.q_proj.weight
            self.register_buffer("w_all", w.contiguous())  # (K, D)
            self.register_buffer("b_all", (b + w @ no_mask)[:, None].contiguous())  # (K, 1)
            self.register_buffer("pe_k0", (k0 @ pe).contiguous())  # (H*d, N)
            self.register_buffer("pe_q0", (q0 @ pe).contiguous())  # (H*d, N)
            self.register_buffer("no_mask", no_mask[:, None].clone())  # (D, 1)
            self.register_buffer("g1", decoder.transformer.layers[0].norm4.weight[:, None].clone())
        self.sizes = sizes

    @staticmethod
    def _linear_map(decoder: MaskDecoder) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Rows ``W (K, D)``, biases ``(K,)`` and block sizes of every output linear in ``S``,
        in :data:`PRELUDE_OUTPUTS` order (``stats`` rows 0, 2, 3, 5-7 last)."""
        tr = decoder.transformer
        b0, b1, fin = tr.layers[0], tr.layers[1], tr.final_attn_token_to_image
        g1, g2 = b0.norm4.weight, b1.norm4.weight
        d = g1.shape[0]
        centre = torch.eye(d, dtype=g1.dtype) - 1.0 / d  # C: x C = x - mean(x)
        wo0, bo0 = (
            b0.cross_attn_image_to_token.out_proj.weight,
            b0.cross_attn_image_to_token.out_proj.bias,
        )
        wo1, bo1 = (
            b1.cross_attn_image_to_token.out_proj.weight,
            b1.cross_attn_image_to_token.out_proj.bias,
        )
        t2i0, i2t0 = b0.cross_attn_token_to_image, b0.cross_attn_image_to_token
        t2i1, i2t1 = b1.cross_attn_token_to_image, b1.cross_attn_image_to_token
        g12 = g1 * g2
        fixed = torch.stack([bo0 * g1, g1, b0.norm4.bias + bo1])  # (3, D)
        zeros = torch.zeros
        blocks = [
            (t2i0.k_proj.weight, t2i0.k_proj.bias),  # + pe term in forward
            (t2i0.v_proj.weight, t2i0.v_proj.bias),
            (i2t0.q_proj.weight, i2t0.q_proj.bias),  # + pe term in forward
            (wo0.t() @ centre, None),  # (S C W_o0)^T
            (t2i1.k_proj.weight * g1, None),
            (t2i1.v_proj.weight * g1, None),
            (i2t1.q_proj.weight * g1, None),
            ((wo0 * g1[:, None]).t() @ centre * g1, None),  # (S g1 C (g1 W_o0))^T
            (wo1.t() @ centre * g1, None),  # (S g1 C W_o1)^T
            (fin.k_proj.weight * g12, None),
            (fin.v_proj.weight * g12, None),
            (_ct1_matrix(decoder)[0].t() * g12, None),
            (torch.ones(1, d, dtype=g1.dtype) / d, None),  # stats 0: mean S
            ((centre @ bo0)[None] / d, None),  # stats 2: <S_c, b_o0> / D
            (g1[None] / d, None),  # stats 3: mean S g1
            (fixed @ centre * g1 / d, None),  # stats 5-7: <S g1 C, v> / D
        ]
        w = torch.cat([blk for blk, _ in blocks])
        b = torch.cat([zeros(blk.shape[0]) if bias is None else bias for blk, bias in blocks])
        return w, b.to(w.dtype), [blk.shape[0] for blk, _ in blocks]

    def forward(self, image_embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hh = self.heads
        e = image_embeddings[0].flatten(1)  # (D, N), pixels last
        parts = torch.split(self.w_all @ e + self.b_all, self.sizes)
        (k0, v0, q0, r0, k1, v1, q1, r1a, r1b, kf, vf, up, mean_s, sc_bo0, mean_sg1, fixed) = parts
        # the two variances are not linear in S
        s = e + self.no_mask
        sc = s - s.mean(dim=0, keepdim=True)
        sg1 = s * self.g1
        sg1c = sg1 - sg1.mean(dim=0, keepdim=True)
        stats = torch.cat(
            [
                mean_s,
                (sc * sc).mean(dim=0)[None],
                sc_bo0,
                mean_sg1,
                (sg1c * sg1c).mean(dim=0)[None],
                fixed,
            ]
        )  # (8, N)
        return (
            k0 + self.pe_k0,
            _heads_rows(v0, hh),
            q0 + self.pe_q0,
            r0,
            k1,
            _heads_rows(v1, hh),
            q1,
            r1a,
            r1b,
            kf,
            _heads_rows(vf, hh),
            up.t(),
            stats,
        )


def _heads_rows(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(H*d, N)`` -> ``(H, N, d)`` (contiguous)."""
    c, n = x.shape
    return x.reshape(heads, c // heads, n).transpose(1, 2).contiguous()


# -- small helpers of the per-prompt graph (heads: H, tokens: T, channels per head: d) ---------
def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(T, H*d)`` -> ``(H, T, d)``."""
    t, c = x.shape
    return x.reshape(t, heads, c // heads).transpose(0, 1)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """``(H, T, d)`` -> ``(T, H*d)``."""
    h, t, d = x.shape
    return x.transpose(0, 1).reshape(t, h * d)


def _block_diag(x: torch.Tensor) -> torch.Tensor:
    """Per-head token vectors ``(H, T, d)`` -> block-diagonal ``(H*d, H*T)`` with
    ``out[h*d + j, h*T + t] = x[h, t, j]`` (zero across heads): ``Y (N, H*d) @ out`` gives every
    head's ``Y_h @ x_h^T`` side by side in one matrix product."""
    h, t, d = x.shape
    eye = torch.eye(h, dtype=x.dtype)
    return (x.transpose(1, 2)[:, :, None, :] * eye[:, None, :, None]).reshape(h * d, h * t)


def _token_softmax(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Softmax of ``(H*T, N)`` over the T tokens of each head, per pixel (written out with the
    pixel axis contiguous: onnxruntime's and OpenVINO's Softmax are slow on a 7-wide axis)."""
    c, n = x.shape
    x = x.reshape(heads, c // heads, n)
    e = torch.exp(x - x.amax(dim=1, keepdim=True))
    return (e / e.sum(dim=1, keepdim=True)).reshape(c, n)


def _token_attn(att: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Plain attention among the tokens: ``(T, D)`` each -> ``(T, D)``."""
    return att(q[None], k[None], v[None])[0]


def _head_rows(vt: torch.Tensor, wo: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows ``M`` ``(H*T, D)`` of an image->token attention's output ``P @ M + b_o``:
    ``M[h*T + t] = V_h[t] @ W_o[:, h]^T`` for token values ``vt`` ``(T, H*d)`` and out_proj
    weight ``wo`` ``(D, H*d)``."""
    vh = _split(vt, heads)  # (H, T, d)
    woh = wo.t().reshape(heads, -1, wo.shape[0])  # (H, d, D)
    return (vh @ woh).reshape(-1, wo.shape[0])


def _col_dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Column-wise dot product of two ``(k, N)`` matrices -> ``(N,)``."""
    return (u * v).sum(dim=0)


def _gram_terms(ut: torch.Tensor, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row means and row variances of the low-rank matrix ``U @ low`` (``ut = U^T`` ``(r, N)``,
    ``low`` ``(r, D)``) from an ``(r, r)`` Gram matrix, without forming the ``(N, D)`` product:
    returns ``(mean (N,), var (N,))``."""
    lm = low.mean(dim=1, keepdim=True)
    lc = low - lm
    lhs = torch.cat([lc @ lc.t() / low.shape[1], lm.t()], dim=0)  # (r + 1, r)
    prod = lhs @ ut
    r = low.shape[0]
    return prod[r], _col_dot(prod[:r], ut)


class PromptDecoder(nn.Module):
    """Per-prompt part: the prelude's tensors (:data:`PRELUDE_OUTPUTS`, in order) + ``boxes
    (1, 4)`` XYXY in model-input pixels -> (``low_res_logits (1, 1, 4h, 4w)``,
    ``iou_predictions (1, 1)``): the plain decoder's single-mask output up to float rounding."""

    def __init__(self, prompt_encoder: PromptEncoder, decoder: MaskDecoder) -> None:
        super().__init__()
        self.prompt_encoder = prompt_encoder
        self.decoder = decoder
        tr = decoder.transformer
        b0, b1, fin = tr.layers[0], tr.layers[1], tr.final_attn_token_to_image
        self.heads = b0.cross_attn_token_to_image.num_heads
        self.grid = prompt_encoder.image_embedding_size
        with torch.no_grad():
            pe = prompt_encoder.dense_positions()[0].flatten(1).t()  # (N, D)
            beta1, beta2 = b0.norm4.bias, b1.norm4.bias
            # constant parts (beta + pe) W + b of projections of the LayerNormed image stream
            k1 = b1.cross_attn_token_to_image.k_proj(beta1 + pe)
            q1 = b1.cross_attn_image_to_token.q_proj(beta1 + pe)
            kf = fin.k_proj(beta2 + pe)
            self.register_buffer("k1_const", _keys_layout(k1))  # (H*d, N)
            self.register_buffer("q1_const", _keys_layout(q1))  # (H*d, N)
            self.register_buffer("kf_const", _keys_layout(kf))  # (H*d, N)

    def _t2i(
        self,
        att: Attention,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        a: torch.Tensor | None = None,
        ut: torch.Tensor | None = None,
        b: torch.Tensor | None = None,
        v_const: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token->image attention over a factored image stream.

        Keys are ``keys`` ``(H*d, N)`` (already ``a``-scaled and with their constant part) plus
        ``(U B Wk)^T``; values are ``a * values + U (B Wv) + v_const`` with ``values``
        ``(H, N, d)``. ``q`` ``(T, D)`` token queries (with pe), ``a`` ``(N,)``, ``ut = U^T``
        ``(r, N)``, ``b`` ``(r, D)``, ``v_const`` ``(H*d,)``. Returns ``(T, D)`` after out_proj.
        """
        hh = self.heads
        qh = _split(att.q_proj(q), hh) / math.sqrt(values.shape[2])  # (H, T, d)
        ht = qh.shape[0] * qh.shape[1]
        logits = _block_diag(qh).t() @ keys  # (H*T, N)
        if ut is not None:
            bk = _split(b @ att.k_proj.weight.t(), hh)  # (H, r, d)
            logits = logits + (qh @ bk.transpose(1, 2)).reshape(ht, -1) @ ut
        w = logits.softmax(dim=-1)  # (H*T, N)
        ws = w if a is None else w * a
        out = ws.reshape(hh, -1, ws.shape[1]) @ values  # (H, T, d)
        if ut is not None:
            bv = _split(b @ att.v_proj.weight.t(), hh)  # (H, r, d)
            out = out + (w @ ut.t()).reshape(hh, -1, ut.shape[0]) @ bv
        out = _merge(out)
        return att.out_proj(out if v_const is None else out + v_const)

    def _i2t(
        self,
        att: Attention,
        tokens: torch.Tensor,
        token_pe: torch.Tensor,
        queries: torch.Tensor,
        ut: torch.Tensor | None = None,
        b: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Image->token attention over a factored image stream.

        Image queries are ``queries`` ``(H*d, N)`` (already ``a``-scaled, with their constant
        part) plus ``(U B Wq)^T``. Returns ``P^T`` ``(H*T, N)`` (softmax over the T tokens of each
        head), ``M`` ``(H*T, D)`` (the attention output is ``P @ M + out_proj.bias``) and the
        token values ``(T, H*d)``.
        """
        hh = self.heads
        kt = _split(att.k_proj(tokens + token_pe), hh)  # (H, T, d)
        kbd_t = _block_diag(kt).t() / math.sqrt(kt.shape[2])  # (H*T, H*d)
        logits = kbd_t @ queries  # (H*T, N)
        if ut is not None:
            logits = logits + (kbd_t @ (b @ att.q_proj.weight.t()).t()) @ ut
        vt = att.v_proj(tokens)
        return _token_softmax(logits, hh), _head_rows(vt, att.out_proj.weight, hh), vt

    def _heads_out(self, p: torch.Tensor, vt: torch.Tensor, dim: int) -> torch.Tensor:
        """Per-head attention output before out_proj, divided by ``dim`` (D): ``P^T`` ``(H*T, N)``
        and token values ``vt`` ``(T, H*d)`` -> ``Z^T`` ``(H*d, N)`` with ``Z[:, h] = P_h V_h``.
        For an image matrix ``Y`` and out_proj weight ``W_o``, ``<Y_n, (P M)_n> / D`` (``M`` of
        :func:`_head_rows`) is the column dot product of ``(Y W_o)^T`` with this."""
        return (_block_diag(_split(vt, self.heads)) / dim) @ p

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (t2i0_k, t2i0_v, i2t0_q, r0, t2i1_k, t2i1_v, i2t1_q, r1a, r1b, fin_k, fin_v, up, st) = (
            inputs[:-1]
        )
        boxes = inputs[-1]
        dec, tr = self.decoder, self.decoder.transformer
        b0, b1, fin = tr.layers[0], tr.layers[1], tr.final_attn_token_to_image
        sparse = self.prompt_encoder.embed_boxes(boxes)[0]  # (2, D)
        tok_pe = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight, sparse], dim=0)
        n, dim = up.shape[0], tok_pe.shape[1]
        ones = torch.ones(1, n, dtype=up.dtype)

        # ---- block 0: every image-side projection comes from the prelude ------------------
        t = b0.norm1(_token_attn(b0.self_attn, tok_pe, tok_pe, tok_pe))
        t = b0.norm2(t + self._t2i(b0.cross_attn_token_to_image, t + tok_pe, t2i0_k, t2i0_v))
        t = b0.norm3(t + b0.mlp(t))
        p1, m1, vt0 = self._i2t(b0.cross_attn_image_to_token, t, tok_pe, i2t0_q)
        bo0 = b0.cross_attn_image_to_token.out_proj.bias
        # norm4 of X1pre = S + P1 M1 + b_o0: image statistics + rank-57 terms
        lmean, lvar = _gram_terms(torch.cat([p1, ones]), torch.cat([m1, bo0[None]]))
        mean1 = st[0] + lmean
        z1 = self._heads_out(p1, vt0, dim)  # (H*d, N)
        var1 = st[1] + 2.0 * (_col_dot(r0, z1) + st[2]) + lvar
        alpha1 = torch.rsqrt(var1 + b0.norm4.eps)
        g1, beta1 = b0.norm4.weight, b0.norm4.bias
        # X1 = alpha1 * S g1 + U1 B1 + beta1
        u1 = alpha1 * torch.cat([p1, ones, -mean1[None]])  # U1^T (58, N)
        bm1 = torch.cat([m1 * g1, (bo0 * g1)[None], g1[None]])  # (58, D)

        # ---- block 1 ----------------------------------------------------------------------
        q = t + tok_pe
        t = b1.norm1(t + _token_attn(b1.self_attn, q, q, t))
        att = b1.cross_attn_token_to_image
        keys = t2i1_k * alpha1 + self.k1_const
        v_const = att.v_proj(beta1)
        t = b1.norm2(t + self._t2i(att, t + tok_pe, keys, t2i1_v, alpha1, u1, bm1, v_const))
        t = b1.norm3(t + b1.mlp(t))
        att = b1.cross_attn_image_to_token
        queries = i2t1_q * alpha1 + self.q1_const
        p2, m2, vt1 = self._i2t(att, t, tok_pe, queries, u1, bm1)
        # norm4 of X2pre = alpha1 * S g1 + [U1, P2, 1] [B1; M2; c2],  c2 = beta1 + b_o1
        c2 = beta1 + att.out_proj.bias
        u2 = torch.cat([u1, p2, ones])  # (115, N)
        bm2 = torch.cat([bm1, m2, c2[None]])  # (115, D)
        lmean, lvar = _gram_terms(u2, bm2)
        mean2 = alpha1 * st[3] + lmean
        # <(S g1)_c, rows of B2> / D: P1-rows (M1 g1), b_o0 g1, g1, P2-rows (M2), c2
        cross = alpha1 * (_col_dot(r1a, z1) + st[5] - mean1 * st[6])
        cross = cross + _col_dot(r1b, self._heads_out(p2, vt1, dim)) + st[7]
        var2 = alpha1 * alpha1 * st[4] + 2.0 * alpha1 * cross + lvar
        alpha2 = torch.rsqrt(var2 + b1.norm4.eps)
        g2, beta2 = b1.norm4.weight, b1.norm4.bias
        # X2 = (alpha1 alpha2) * S g1 g2 + U3 B3 + beta2
        a2 = alpha1 * alpha2
        u3 = alpha2 * torch.cat([u2, -mean2[None]])  # U3^T (116, N)
        bm3 = torch.cat([bm2 * g2, g2[None]])  # (116, D)

        # ---- final token->image attention ------------------------------------------------
        keys = fin_k * a2 + self.kf_const
        v_const = fin.v_proj(beta2)
        t = tr.norm_final_attn(t + self._t2i(fin, t + tok_pe, keys, fin_v, a2, u3, bm3, v_const))
        hyper = dec.output_hypernetworks_mlps[0](t[1])  # (C2,)
        iou = dec.iou_prediction_head(t[0])[0:1]

        # ---- upscaling: ConvT1 (factored), LayerNorm2d, GELU, ConvT2, GELU, mask-0 product --
        w1, bias1 = _ct1_matrix(dec)
        y = up * a2[:, None] + (beta2 @ w1 + bias1) + u3.t() @ (bm3 @ w1)  # (N, 4*C1)
        ln = dec.output_upscaling[1]
        c1 = ln.weight.shape[0]
        y = nn.functional.layer_norm(y.reshape(n * 4, c1), (c1,), ln.weight, ln.bias, ln.eps)
        w2, bias2 = _ct2_matrix(dec)
        z = nn.functional.gelu(nn.functional.gelu(y) @ w2 + bias2)  # (4N, 4*C2)
        # mask 0 = hypernetwork vector . channels, per output pixel: one (4N, 4*C2) @ (4*C2, 4)
        eye = torch.eye(4, dtype=z.dtype)
        logits = z @ (eye[:, None, :] * hyper[None, :, None]).reshape(-1, 4)  # (4N, 4)
        h, w = self.grid
        logits = logits.reshape(h, w, 2, 2, 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(4 * h, 4 * w)
        return logits[None, None], iou[None]
