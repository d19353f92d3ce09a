"""The causal depthwise conv1d + SiLU of the Mamba block (Figure 3), and the split of in_proj's output into the
scan's (B, E, L) layout.

    u, z = conv_and_gate(xz, weight, bias, prev)   xz (B, L, 2E): in_proj's output, the x half then the gate half
                                                   weight (E, 1, K) (nn.Conv1d's), bias (E,) or None
                                                   prev (B, E, K - 1): the inputs before x_0, or None (zeros)

u (B, E, L) is silu(bias + Σ_k w_k x_{t-K+1+k}), the official block's `silu(conv1d(x)[..., :L])`; z (B, E, L) is the
gate half, transposed. With the fused extension (`mlreads/mamba/csrc/causal_conv.h`) forward and backward are each
one pass over tiles of channels that reads xz in place, and backward writes the gradient of xz (B, L, 2E) in that
pass (the conv's backward recomputes the pre-activation instead of storing it). Without it, the same function in
PyTorch (split, transpose, concatenation with the left context, `F.conv1d`, `F.silu`), which the tests hold the
kernel to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _halves(xz: Tensor) -> tuple[Tensor, Tensor]:
    """xz (B, L, 2E) -> its x and z halves as (B, E, L) views."""
    x, z = xz.chunk(2, dim=-1)
    return x.transpose(1, 2), z.transpose(1, 2)


def conv_and_gate_torch(xz: Tensor, weight: Tensor, bias: Tensor | None, prev: Tensor | None
                        ) -> tuple[Tensor, Tensor]:
    """The PyTorch twin: pad x with the left context (zeros without one), depthwise conv, SiLU; z transposed."""
    x, z = _halves(xz)
    K = weight.shape[-1]
    prev = x.new_zeros(*x.shape[:2], K - 1) if prev is None else prev.to(x.dtype)
    return F.silu(F.conv1d(torch.cat([prev, x], dim=-1), weight, bias, groups=x.shape[1])), z.contiguous()


class FusedConvGate(torch.autograd.Function):
    """The extension's `conv_fwd` / `conv_bwd` on in_proj's output xz (B, L, 2E), read and written in place."""

    @staticmethod
    def forward(ctx, ext, xz, weight, bias, prev):
        none = xz.new_empty(0)
        args = (weight.reshape(weight.shape[0], -1).contiguous(), none if bias is None else bias.contiguous(),
                none if prev is None else prev.to(xz.dtype).contiguous())
        ctx.save_for_backward(xz, *args)
        ctx.ext, ctx.w_shape, ctx.has = ext, weight.shape, (bias is not None, prev is not None)
        x, z = _halves(xz)
        return tuple(ext.conv_fwd(x, *args, z))

    @staticmethod
    def backward(ctx, du, dz):
        xz, w, bias, prev = ctx.saved_tensors
        x, _ = _halves(xz)
        dxz = torch.empty_like(xz)
        dx_view, dz_view = _halves(dxz)
        du = torch.zeros_like(x) if du is None else du.contiguous()
        dz = torch.zeros_like(x) if dz is None else dz.contiguous()
        dw, dbias, dprev = ctx.ext.conv_bwd(x, w, bias, prev, du, dz, dx_view, dz_view)
        has_bias, has_prev = ctx.has
        return None, dxz, dw.reshape(ctx.w_shape), dbias if has_bias else None, dprev if has_prev else None


def conv_and_gate(xz: Tensor, weight: Tensor, bias: Tensor | None = None, prev: Tensor | None = None,
                  fused: bool = True) -> tuple[Tensor, Tensor]:
    """(silu(causal depthwise conv1d(x)), z), each (B, E, L) contiguous in xz's dtype, from xz (B, L, 2E); see the
    module docstring. `fused=False`, or no extension, runs the PyTorch twin."""
    if fused:
        from mlreads.mamba import csrc

        ext = csrc.load()
        if ext is not None:
            return FusedConvGate.apply(ext, xz, weight.to(xz.dtype), None if bias is None else bias.to(xz.dtype),
                                       prev)
    return conv_and_gate_torch(xz, weight, bias, prev)
