"""The Mamba block's training step as it was before issue 25 (commit 5a6c228), pinned as the training-step
benchmark's baseline: its forward (below; (B, L, E) layout with transposes into the scan's (B, E, L), the conv as
zero-padding + `F.conv1d` + SiLU, Δ's bias and softplus in PyTorch, B and C copied out of x_proj's output) on the scan
kernel of that commit, whose two sources are read from git (`git show 5a6c228:...`) and built once into the
extension cache, so that a ratio against it measures everything issue 25 changed.

    from mamba_baseline import pin_baseline;  pin_baseline(model)   # every mixer of a MambaLM runs the old step
"""

from __future__ import annotations

import subprocess
import types
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange

from mlreads.mamba import csrc
from mlreads.mamba.scan import _fused

BASE = "5a6c228"  # main before issue 25
SOURCES = ("src/mlreads/mamba/csrc/selective_scan.cpp", "src/mlreads/mamba/csrc/simd.h")


@cache
def pinned_kernel(base: str, sources: tuple[str, ...]):
    """The scan extension built from commit `base`'s `sources` (read with `git show`, the .cpp first), cached next to
    the current one, so that a benchmark can time today's kernel against a pinned earlier one in the same run."""
    from torch.utils.cpp_extension import load

    csrc.load()  # puts ninja on PATH as the project's build does
    root = Path(__file__).resolve().parents[1]
    folder = csrc.cache_dir() / f"selective_scan-base-{base}"
    folder.mkdir(parents=True, exist_ok=True)
    for path in sources:
        text = subprocess.run(["git", "show", f"{base}:{path}"], cwd=root, capture_output=True, text=True,
                              check=True).stdout
        target = folder / Path(path).name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    return load(name=f"mlreads_selective_scan_base_{base}", sources=[str(folder / Path(sources[0]).name)],
                extra_cflags=csrc.CFLAGS, extra_ldflags=csrc.LDFLAGS, build_directory=str(folder), verbose=False)


def old_kernel():
    """The scan extension of BASE (main before issue 25)."""
    return pinned_kernel(BASE, SOURCES)


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
    # selective_scan(impl="fused") of BASE: its layout preparation (B, C as (B, 1, N, L)), then the old kernel
    y, ssm_state = _fused(
        rearrange(xs, "b l e -> b e l"), rearrange(delta, "b l e -> b e l"), -torch.exp(_work(self.A_log)),
        rearrange(B, "b l n -> b 1 n l"), rearrange(C, "b l n -> b 1 n l"), self.D, rearrange(z, "b l e -> b e l"),
        None, False, None if state is None else state[1], self.cfg.chunk_size, old_kernel(),
    )
    ssm_state = self.hook_ssm_state(ssm_state)
    y = self.hook_y(rearrange(y, "b e l -> b l e"))
    return self.out_proj(y), (conv_in[..., -K:], ssm_state)


def pin_baseline(model):
    """Make every mixer of `model` (a MambaLM, selective, scan_impl "fused") run the pinned step; returns the model."""
    for block in model.blocks:
        block.mixer.forward = types.MethodType(old_forward, block.mixer)
    return model
