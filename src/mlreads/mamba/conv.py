"""The causal depthwise conv1d + SiLU of the Mamba block (Figure 3), in the (B, E, L) layout the scan reads.

    u = causal_conv1d_silu(x, weight, bias, prev)      x (B, E, L), any strides; weight (E, 1, K) (nn.Conv1d's);
                                                       bias (E,) or None; prev (B, E, K - 1), the inputs before x_0,
                                                       or None (zeros)

u_t = silu(bias + Σ_k w_k x_{t-K+1+k}): the official block's `silu(conv1d(x)[..., :L])`. With the fused extension
(`mlreads/mamba/csrc/causal_conv.h`) forward and backward are each one pass over tiles of channels, and backward
recomputes the pre-activation instead of storing it; torch's path (a concatenation with the left context, an mkldnn
depthwise conv whose weight gradient alone was 8-10% of a quick recipe's training step, and a separate SiLU) is
`conv1d_silu_torch`, which the tests hold the kernel to and which runs without the extension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def conv1d_silu_torch(x: Tensor, weight: Tensor, bias: Tensor | None, prev: Tensor | None) -> Tensor:
    """The PyTorch twin: pad with the left context (zeros without one), depthwise conv, SiLU. (B, E, L)."""
    K = weight.shape[-1]
    prev = x.new_zeros(*x.shape[:2], K - 1) if prev is None else prev.to(x.dtype)
    return F.silu(F.conv1d(torch.cat([prev, x], dim=-1), weight, bias, groups=x.shape[1]))


class FusedConv(torch.autograd.Function):
    """The extension's `conv_fwd` / `conv_bwd`; x is read in place with any strides."""

    @staticmethod
    def forward(ctx, ext, x, weight, bias, prev):
        none = x.new_empty(0)
        args = (x, weight.reshape(weight.shape[0], -1).contiguous(), none if bias is None else bias.contiguous(),
                none if prev is None else prev.to(x.dtype).contiguous())
        ctx.save_for_backward(*args)
        ctx.ext, ctx.w_shape, ctx.has = ext, weight.shape, (bias is not None, prev is not None)
        return ext.conv_fwd(*args)

    @staticmethod
    def backward(ctx, dout):
        dx, dw, dbias, dprev = ctx.ext.conv_bwd(*ctx.saved_tensors, dout.contiguous())
        has_bias, has_prev = ctx.has
        return None, dx, dw.reshape(ctx.w_shape), dbias if has_bias else None, dprev if has_prev else None


def causal_conv1d_silu(x: Tensor, weight: Tensor, bias: Tensor | None = None, prev: Tensor | None = None,
                       fused: bool = True) -> Tensor:
    """silu(causal depthwise conv1d(x)) (B, E, L) contiguous in x's dtype; see the module docstring. `fused=False`,
    or no extension, runs the PyTorch twin."""
    if fused:
        from mlreads.mamba import csrc

        ext = csrc.load()
        if ext is not None:
            return FusedConv.apply(ext, x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype), prev)
    return conv1d_silu_torch(x, weight, bias, prev)
