"""Slow, obviously correct twins of the fast paths in kernels.py, used by the tests.

- kernel_naive: K_l = Re(C Ā^l B̄) by l matrix-vector products (twin of vandermonde_kernel, dplr_kernel, krylov_kernel).
- causal_conv_ref: y_t = Σ_{j<=t} K_j u_{t-j} + D u_t as a double loop (twin of fft_conv).
- recurrence_ref: the state-space recurrence run step by step (the RNN view; twin of the convolution view).
- cauchy_ref: the Cauchy sum k_j = Σ_n v_n / (ω_j - λ_n) as explicit loops (twin of kernels.cauchy).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["kernel_naive", "causal_conv_ref", "recurrence_ref", "cauchy_ref"]


def kernel_naive(c: Tensor, a_bar: Tensor, b_bar: Tensor, length: int, scale: float = 1.0) -> Tensor:
    """K_l = scale · Re(C Ā^l B̄) for l < L. a_bar (H, N, N) dense or (H, N) diagonal; c, b_bar (H, N)."""
    diagonal = a_bar.dim() == c.dim()
    x = b_bar
    out = []
    for _ in range(length):
        out.append(scale * (c * x).sum(-1).real)  # (H,)
        x = a_bar * x if diagonal else torch.einsum("hnm,hm->hn", a_bar, x)
    return torch.stack(out, dim=-1)  # (H, L)


def causal_conv_ref(u: Tensor, k: Tensor, d: Tensor | None = None) -> Tensor:
    """u (B, H, L), k (H, L) -> y (B, H, L) with y_t = Σ_{j<=t} k_j u_{t-j} (+ d u_t)."""
    length = u.shape[-1]
    y = torch.zeros_like(u)
    for t in range(length):
        for j in range(t + 1):
            y[..., t] += k[:, j] * u[..., t - j]
    return y if d is None else y + d[:, None] * u


def recurrence_ref(a_bar: Tensor, b_bar: Tensor, c: Tensor, u: Tensor, scale: float = 1.0) -> Tensor:
    """x_t = Ā x_{t-1} + B̄ u_t, y_t = scale·Re(C x_t), x_{-1} = 0. u (B, H, L) -> y (B, H, L)."""
    diagonal = a_bar.dim() == c.dim()
    x = torch.zeros(u.shape[0], *b_bar.shape, dtype=b_bar.dtype)  # (B, H, N)
    ys = []
    for t in range(u.shape[-1]):
        x = (a_bar * x if diagonal else torch.einsum("hnm,bhm->bhn", a_bar, x)) + b_bar * u[..., t, None]
        ys.append(scale * (c * x).sum(-1).real)
    return torch.stack(ys, dim=-1)


def cauchy_ref(v: Tensor, omega: Tensor, lam: Tensor) -> Tensor:
    """k[h, i, j] = Σ_n v[h, i, n] / (omega[h, j] - lam[h, n]) with loops. v (H, K, N), omega (H, F), lam (H, N)."""
    out = torch.zeros(v.shape[0], v.shape[1], omega.shape[-1], dtype=torch.promote_types(v.dtype, omega.dtype))
    for h in range(v.shape[0]):
        for i in range(v.shape[1]):
            for j in range(omega.shape[-1]):
                out[h, i, j] = sum(v[h, i, n] / (omega[h, j] - lam[h, n]) for n in range(v.shape[-1]))
    return out
