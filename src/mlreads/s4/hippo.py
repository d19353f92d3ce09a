"""HiPPO transition matrices, their normal-plus-low-rank (NPLR/DPLR) form, and the S4D diagonal initialisations.

Papers:
- HiPPO (Gu et al. 2020, arXiv 2008.07669), §2-3: LegT and LegS measures, dx/dt = A x + B f (LegS: divided by t).
- S4 (Gu, Goel, Ré 2021, arXiv 2111.00396), §3.1 and Thm. 1: every HiPPO matrix is NPLR, A = V Λ V* − P Q*.
- S4D (Gu et al. 2022, arXiv 2206.11893), §4: S4D-LegS, S4D-Inv, S4D-Lin.
- LSSL (Gu et al. 2021, arXiv 2110.13985), §5.4: the random-A ablation (A fixed, random entries).

Glossary (code name -> paper symbol):
    d_state      N      state size (the real state size; diagonal inits keep N/2 complex modes, one per conj pair)
    lam          Λ      diagonal part of the DPLR form (eigenvalues of the normal part A + P Pᵀ)
    p            P̃      low-rank factor in the eigenbasis, P̃ = V* P   (rank 1 for LegS, Q = P)
    b            B̃      input matrix in the eigenbasis,   B̃ = V* B
    v            V      unitary eigenvectors of A + P Pᵀ

Conventions: A is "negative" (stable), i.e. dx/dt = A x + B u with eigenvalues in the left half plane, as in the S4
code's `transition`. B is returned with shape (N,).

Deviations:
- random_a follows the LSSL code's ablation (entries N(0, 1/N²), so E[A Aᵀ] = I/N, B = 1); the paper text only says
  "random". The scale is a parameter.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["legs", "legt", "legs_rank_correction", "dplr_legs", "s4d_init", "random_a", "DPLR"]


def legs(d_state: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """HiPPO-LegS (HiPPO Thm. 2, sign flipped to stable): A_nk = -sqrt(2n+1)sqrt(2k+1) (n>k), -(n+1) (n=k), 0 (n<k)."""
    n = torch.arange(d_state, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)  # (N,)
    a = -torch.tril(r[:, None] * r[None, :], diagonal=-1) - torch.diag(n + 1)  # (N, N)
    return a.to(dtype), r.to(dtype)


def legt(d_state: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """HiPPO-LegT (HiPPO Thm. 1, window θ=1, halved like the S4 code): A_nk = -½ r_n r_k · (1 if n>=k else (-1)^(n-k))."""
    n = torch.arange(d_state, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)
    sign = torch.where(n[:, None] >= n[None, :], 1.0, (-1.0) ** (n[:, None] - n[None, :]))  # (N, N)
    a = -0.5 * r[:, None] * sign * r[None, :]
    return a.to(dtype), (0.5 * r).to(dtype)


def legs_rank_correction(d_state: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """P_n = sqrt(n + ½) (S4 §3.1): A + P Pᵀ = -½ I + S with S skew-symmetric, hence normal."""
    return torch.sqrt(torch.arange(d_state, dtype=torch.float64) + 0.5).to(dtype)


class DPLR(tuple):
    """(lam, p, b, v): the conjugate half of A = V (Λ - P̃ P̃*) V*; v is the full (N, N) unitary, columns [V_h, conj V_h]."""

    __slots__ = ()

    def __new__(cls, lam: Tensor, p: Tensor, b: Tensor, v: Tensor):
        return super().__new__(cls, (lam, p, b, v))

    lam = property(lambda s: s[0])
    p = property(lambda s: s[1])
    b = property(lambda s: s[2])
    v = property(lambda s: s[3])


def dplr_legs(d_state: int) -> DPLR:
    """Diagonalise the normal part of LegS (S4 Thm. 1) and keep one of each conjugate pair (S4 §3.3, Alg. 1).

    Returns lam (N/2,), p (N/2,), b (N/2,) as complex128 and v (N, N) complex128 with
    A = v diag([lam, conj lam]) v* - P Pᵀ. N must be even (an odd N has a real mode that has no conjugate partner).
    """
    if d_state % 2:
        raise ValueError(f"d_state must be even for the conjugate-half DPLR form, got {d_state}")
    a, b = legs(d_state)
    p = legs_rank_correction(d_state)
    normal = a + p[:, None] * p[None, :]  # (N, N) = -½ I + S
    skew = normal + 0.5 * torch.eye(d_state, dtype=torch.float64)
    # -iS is Hermitian: eigh gives real w and a unitary V; eigenvalues of S are i w, of the normal part -½ + i w.
    w, v = torch.linalg.eigh(-1j * skew.to(torch.complex128))
    keep = w > 0  # one of each conjugate pair (S real => S v̄ = -i w v̄)
    w_h, v_h = w[keep], v[:, keep]  # (N/2,), (N, N/2)
    order = torch.argsort(w_h)
    w_h, v_h = w_h[order], v_h[:, order]
    lam = torch.complex(torch.full_like(w_h, -0.5), w_h)  # (N/2,)
    v_full = torch.cat([v_h, v_h.conj()], dim=1)  # (N, N)
    p_t = v_h.conj().T @ p.to(torch.complex128)  # (N/2,)
    b_t = v_h.conj().T @ b.to(torch.complex128)  # (N/2,)
    return DPLR(lam, p_t, b_t, v_full)


def s4d_init(d_state: int, kind: str = "lin") -> tuple[Tensor, Tensor]:
    """S4D diagonal inits (S4D §4.2), N/2 complex modes n = 0..N/2-1, B = 1 unless LegS.

    lin: Λ_n = -½ + iπn;  inv: Λ_n = -½ + i (N/π)(N/(2n+1) - 1);  legs: Λ, B̃ of the DPLR LegS form.
    Returns (lam, b) complex128 of shape (N/2,).
    """
    half = d_state // 2
    n = torch.arange(half, dtype=torch.float64)
    real = torch.full((half,), -0.5, dtype=torch.float64)
    if kind == "lin":
        imag = math.pi * n
    elif kind == "inv":
        imag = d_state / math.pi * (d_state / (2 * n + 1) - 1)
    elif kind == "legs":
        form = dplr_legs(d_state)
        return form.lam, form.b
    else:
        raise ValueError(f"unknown S4D init {kind!r}; choose lin, inv or legs")
    return torch.complex(real, imag), torch.ones(half, dtype=torch.complex128)


def random_a(d_state: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """Random A for the LSSL §5.4 ablation: A_ij ~ N(0, 1/N²) (E[A Aᵀ] = I/N, as in the LSSL code), B = 1."""
    a = torch.randn(d_state, d_state, generator=generator, dtype=torch.float64) / d_state
    return a.to(dtype), torch.ones(d_state, dtype=dtype)
