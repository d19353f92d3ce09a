"""Slow, obviously correct twins of the fast paths in `mlreads.mamba` (used by tests only).

Mamba, Gu & Dao 2023, arXiv 2312.00752, Section 3.2 and Algorithm 2. `selective_scan_ref` follows the semantics of
mamba-ssm's `selective_scan_ref` (our own code): a plain loop over time, one step per token.

Glossary: u = x (input), delta = Δ, A = A (diagonal, stored as (D, N)), B = B, C = C, D = D (skip), z = the gate
input; h = the SSM state; dA = Ā = exp(ΔA); dBu = B̄x = ΔBx (the simplified discretisation of the official code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def selective_scan_ref(
    u: Tensor,  # (B, D, L)
    delta: Tensor,  # (B, D, L)
    A: Tensor,  # (D, N)
    B: Tensor,  # (B, N, L), or (D, N) time-invariant
    C: Tensor,  # (B, N, L), or (D, N) time-invariant
    D: Tensor | None = None,  # (D,)
    z: Tensor | None = None,  # (B, D, L)
    delta_bias: Tensor | None = None,  # (D,)
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: Tensor | None = None,  # (B, D, N)
):
    """y_t = C_t h_t (+ D u_t) (* silu(z_t)), h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t (Algorithm 2), by a loop."""
    dtype_in = u.dtype
    work = torch.promote_types(u.dtype, torch.float32)
    u, delta = u.to(work), delta.to(work)
    if delta_bias is not None:
        delta = delta + delta_bias.to(work)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, d_inner, length = u.shape
    d_state = A.shape[1]
    h = u.new_zeros(batch, d_inner, d_state) if initial_state is None else initial_state.to(work)
    ys = []
    for t in range(length):
        dA = torch.exp(delta[:, :, t, None] * A)  # (B, D, N)
        B_t = B[None] if B.dim() == 2 else B[:, None, :, t]  # (B|1, D|1, N)
        C_t = C[None] if C.dim() == 2 else C[:, None, :, t]
        h = dA * h + (delta[:, :, t] * u[:, :, t])[:, :, None] * B_t  # (B, D, N)
        ys.append((h * C_t).sum(-1))  # (B, D)
    y = torch.stack(ys, dim=2)  # (B, D, L)
    if D is not None:
        y = y + u * D.to(work)[:, None]
    if z is not None:
        y = y * F.silu(z.to(work))
    y = y.to(dtype_in)
    return (y, h) if return_last_state else y
