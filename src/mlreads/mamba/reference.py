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


def _bc_at(X: Tensor, d_inner: int, t: int) -> Tensor:
    """B or C at step t, per channel: (D, N) constant -> (1, D, N); (B, N, L) -> (B, 1, N); grouped (B, G, N, L) ->
    (B, D, N), channel d reading group d // (D / G)."""
    if X.dim() == 2:
        return X[None]
    if X.dim() == 3:
        return X[:, None, :, t]
    return X[:, :, :, t].repeat_interleave(d_inner // X.shape[1], dim=1)


def _as_complex(X: Tensor, work: torch.dtype) -> Tensor:
    """mamba-ssm's complex layout: a real time-varying B/C stores (re, im) pairs along L, so its last axis is 2L."""
    if X.is_complex() or X.dim() == 2:
        return X.to(torch.promote_types(X.dtype, work))
    return torch.view_as_complex(X.to(work).unflatten(-1, (-1, 2)).contiguous())


def selective_scan_ref(
    u: Tensor,  # (B, D, L)
    delta: Tensor,  # (B, D, L)
    A: Tensor,  # (D, N), real or complex
    B: Tensor,  # (B, N, L), grouped (B, G, N, L), or (D, N) time-invariant; with complex A, L axis is 2L (re, im)
    C: Tensor,  # as B
    D: Tensor | None = None,  # (D,)
    z: Tensor | None = None,  # (B, D, L)
    delta_bias: Tensor | None = None,  # (D,)
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: Tensor | None = None,  # (B, D, N), complex when A is
):
    """y_t = C_t h_t (+ D u_t) (* silu(z_t)), h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t (Algorithm 2), by a loop.

    With complex A (conjugate pairs kept implicit, as in mamba-ssm and S4D) the output is 2 Re(C_t h_t).
    """
    dtype_in = u.dtype
    work = torch.promote_types(u.dtype, torch.float32)
    u, delta = u.to(work), delta.to(work)
    if delta_bias is not None:
        delta = delta + delta_bias.to(work)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, d_inner, length = u.shape
    d_state = A.shape[1]
    if A.is_complex():
        A, B, C = A.to(torch.promote_types(A.dtype, work)), _as_complex(B, work), _as_complex(C, work)
    h = torch.zeros(batch, d_inner, d_state, dtype=torch.promote_types(A.dtype, work)) if initial_state is None \
        else initial_state.to(torch.promote_types(initial_state.dtype, work))
    ys = []
    for t in range(length):
        dA = torch.exp(delta[:, :, t, None] * A)  # (B, D, N)
        h = dA * h + (delta[:, :, t] * u[:, :, t])[:, :, None] * _bc_at(B, d_inner, t)  # (B, D, N)
        y_t = (h * _bc_at(C, d_inner, t)).sum(-1)  # (B, D)
        ys.append(2 * y_t.real if y_t.is_complex() else y_t)
    y = torch.stack(ys, dim=2)  # (B, D, L)
    if D is not None:
        y = y + u * D.to(work)[:, None]
    if z is not None:
        y = y * F.silu(z.to(work))
    y = y.to(dtype_in)
    return (y, h) if return_last_state else y
