"""Online function approximation with HiPPO (HiPPO arXiv 2008.07669, §2-3, App. B.3): the state x(t) of
dx/dt = (1/t)(A x + B f(t)) (the scaled measure of LegS) holds the Legendre coefficients of f on [0, t].

Glossary: a, b -> A, B (stable sign convention, hippo.py); f -> f; states -> c(t) (the coefficients); coef -> c_n.

Deviations:
- The time-varying ODE is discretised with the bilinear rule at step Δ_k = 1/k (the HiPPO paper's LegS recurrence
  uses the same 1/k scaling; it compares several discretisations, we use one).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mlreads.s4.discretize import bilinear

__all__ = ["scaled_online_states", "legendre_basis", "legendre_reconstruct"]


def scaled_online_states(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """Run x_k = Ā_k x_{k-1} + B̄_k f_k with (Ā_k, B̄_k) = bilinear(A, B, 1/k), k = 1..L. f (M, L) -> final x (M, N)."""
    length = f.shape[-1]
    steps = 1.0 / torch.arange(1, length + 1, dtype=a.dtype)  # (L,) Δ_k = 1/k
    a_bars, b_bars = bilinear(a, b, steps)  # (L, N, N), (L, N)
    x = torch.zeros(f.shape[0], a.shape[0], dtype=a.dtype)  # (M, N)
    for k in range(length):
        x = x @ a_bars[k].T + f[:, k, None] * b_bars[k]
    return x


def legendre_basis(d_state: int, length: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """g_n(s) = sqrt(2n+1) P_n(2s/t - 1) at the L sample midpoints of [0, t]: (N, L), orthonormal for ds/t."""
    s = (torch.arange(length, dtype=dtype) + 0.5) / length * 2 - 1  # (L,) in (-1, 1)
    n = torch.arange(d_state)
    p = torch.stack([torch.special.legendre_polynomial_p(s, int(k)) for k in n])  # (N, L)
    return torch.sqrt(2 * n.to(dtype) + 1)[:, None] * p


def legendre_reconstruct(coef: Tensor, length: int) -> Tensor:
    """f(s) ≈ Σ_n c_n g_n(s): coefficients (M, N) -> the reconstructed history (M, L)."""
    return coef @ legendre_basis(coef.shape[-1], length, coef.dtype)
