"""Discretisation of x' = A x + B u with step Δ: zero-order hold and bilinear (Tustin), dense and diagonal.

Papers: LSSL (arXiv 2110.13985) §2.1 eq. (3) (the generalised bilinear transform); S4 (arXiv 2111.00396) §2 eq. (3)
(bilinear); S4D (arXiv 2206.11893) §3.2 and Table 1 (ZOH and bilinear for diagonal A).

Glossary: a -> A, b -> B, dt -> Δ, a_bar -> Ā, b_bar -> B̄, lam -> Λ (diagonal of A).

Shapes: dense a (..., N, N), b (..., N), dt (...) broadcast against the leading axes. Diagonal lam and b (..., N) with
dt (...) broadcast as dt[..., None]. All functions are differentiable in every argument.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["zoh", "bilinear", "zoh_diag", "bilinear_diag"]


def zoh(a: Tensor, b: Tensor, dt: Tensor | float) -> tuple[Tensor, Tensor]:
    """ZOH: Ā = exp(ΔA), B̄ = A⁻¹(exp(ΔA) - I) B, both read off one exponential of [[A, B], [0, 0]]·Δ (no A⁻¹)."""
    n = a.shape[-1]
    dt = torch.as_tensor(dt, dtype=a.dtype)
    lead = torch.broadcast_shapes(a.shape[:-2], b.shape[:-1], dt.shape)
    top = torch.cat([a.expand(*lead, n, n), b.expand(*lead, n)[..., None]], dim=-1)  # (..., N, N+1)
    aug = torch.cat([top, torch.zeros(*lead, 1, n + 1, dtype=a.dtype)], dim=-2)  # (..., N+1, N+1)
    e = torch.linalg.matrix_exp(aug * dt[..., None, None])
    return e[..., :n, :n], e[..., :n, n]


def bilinear(a: Tensor, b: Tensor, dt: Tensor | float) -> tuple[Tensor, Tensor]:
    """Bilinear: Ā = (I - Δ/2 A)⁻¹(I + Δ/2 A), B̄ = (I - Δ/2 A)⁻¹ Δ B."""
    n = a.shape[-1]
    dt = torch.as_tensor(dt, dtype=a.dtype)[..., None, None]
    eye = torch.eye(n, dtype=a.dtype)
    left = eye - dt / 2 * a  # (..., N, N)
    a_bar = torch.linalg.solve(left, eye + dt / 2 * a)
    b_bar = torch.linalg.solve(left, (dt[..., 0] * b)[..., None])[..., 0]
    return a_bar, b_bar


def zoh_diag(lam: Tensor, b: Tensor, dt: Tensor | float) -> tuple[Tensor, Tensor]:
    """Diagonal ZOH (S4D eq. 6): Ā = exp(ΔΛ), B̄ = (exp(ΔΛ) - 1)/Λ · B."""
    dt = torch.as_tensor(dt, dtype=lam.real.dtype)[..., None]
    dtlam = dt * lam
    a_bar = torch.exp(dtlam)
    return a_bar, torch.expm1(dtlam) / lam * b


def bilinear_diag(lam: Tensor, b: Tensor, dt: Tensor | float) -> tuple[Tensor, Tensor]:
    """Diagonal bilinear: Ā = (1 + ΔΛ/2)/(1 - ΔΛ/2), B̄ = Δ/(1 - ΔΛ/2) · B."""
    dt = torch.as_tensor(dt, dtype=lam.real.dtype)[..., None]
    denom = 1 - dt * lam / 2
    return (1 + dt * lam / 2) / denom, dt / denom * b
