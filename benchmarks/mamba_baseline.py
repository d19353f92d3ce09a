"""The Mamba block's forward as it was before issue 25 (commit 5a6c228), pinned as the training-step benchmark's
baseline: (B, L, E) layout with transposes into the scan's (B, E, L), the conv as zero-padding + `F.conv1d` + SiLU, Δ's
bias and softplus in PyTorch, B and C copied out of x_proj's output. It runs on the same scan kernel (issue 25 did not
change the scan's arithmetic), so a ratio against it measures the block around the scan.

    from mamba_baseline import pin_baseline;  pin_baseline(model)   # every mixer of a MambaLM runs the old forward
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from einops import rearrange

from mlreads.mamba.scan import selective_scan


def _work(t):
    return t.to(torch.promote_types(t.dtype, torch.float32))


def old_ssm_params(self, x):
    if self.cfg.selective:
        dt, B, C = self.x_proj(x).split([self.cfg.rank, self.cfg.d_state, self.cfg.d_state], dim=-1)
        delta = F.softplus(_work(F.linear(dt, self.dt_proj.weight)) + _work(self.dt_proj.bias))  # (B, L, E)
    else:
        shape = (*x.shape[:-1], self.cfg.d_state)
        delta = F.softplus(_work(self.dt_bias)).expand(x.shape)
        B, C = self.B_param.expand(shape), self.C_param.expand(shape)
    return self.hook_delta(delta), self.hook_B(B), self.hook_C(C)


def old_forward(self, x, state=None):
    K = self.cfg.d_conv
    xs, z = self.in_proj(x).chunk(2, dim=-1)
    xs = rearrange(xs, "b l e -> b e l")
    prev = xs.new_zeros(*xs.shape[:2], K - 1) if state is None else state[0][..., 1:].to(xs.dtype)
    conv_in = torch.cat([prev, xs], dim=-1)
    xs = F.conv1d(conv_in, self.conv1d.weight, self.conv1d.bias, groups=self.cfg.d_inner)
    xs = self.hook_x(rearrange(F.silu(xs), "b e l -> b l e"))
    delta, B, C = old_ssm_params(self, xs)
    z = self.hook_gate(z)
    y, ssm_state = selective_scan(
        rearrange(xs, "b l e -> b e l"), rearrange(delta, "b l e -> b e l"), -torch.exp(_work(self.A_log)),
        rearrange(B, "b l n -> b n l"), rearrange(C, "b l n -> b n l"), self.D, rearrange(z, "b l e -> b e l"),
        return_last_state=True, initial_state=None if state is None else state[1],
        impl=self.cfg.scan_impl, chunk_size=self.cfg.chunk_size,
    )
    ssm_state = self.hook_ssm_state(ssm_state)
    y = self.hook_y(rearrange(y, "b e l -> b l e"))
    return self.out_proj(y), (conv_in[..., -K:], ssm_state)


def pin_baseline(model):
    """Make every mixer of `model` (a MambaLM) run the pinned forward; returns the model."""
    for block in model.blocks:
        block.mixer.forward = types.MethodType(old_forward, block.mixer)
    return model
