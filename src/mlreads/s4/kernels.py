"""SSM convolution kernels K_k = C Ā^k B̄ (k < L), the FFT convolution and the recurrent step.

Papers: S4 (arXiv 2111.00396) §3.2-3.3, Alg. 1 and Lemma C.3 (Cauchy + Woodbury + inverse FFT at the roots of
unity, with the truncation correction C̃ = C (I - Ā^L)); S4D (arXiv 2206.11893) §3.2 (Vandermonde kernel); LSSL
(arXiv 2110.13985) §3 (the dense Krylov kernel, here by repeated squaring). The official code's counterparts:
state-spaces/s4 `src/models/sequence/kernels/ssm.py` (`SSMKernelDPLR`, `SSMKernelDiag`) and
`extensions/kernels/cauchy.py` (`cauchy_naive`); The Annotated S4's `cauchy` and `kernel_DPLR`.

Glossary: c -> C (row vector, K_k = C Ā^k B̄, no conjugation), c_tilde -> C̃, a_bar -> Ā, b_bar -> B̄, lam -> Λ,
p -> P̃ (Q = P for LegS), dt -> Δ, k -> K, k_hat -> K̂ (the kernel's generating function at the roots of unity),
omega -> ω (roots of unity), g -> g(ω) = (2/Δ)(1 - ω)/(1 + ω), u -> u, d -> D (skip), H channels (one SSM per
channel), N state, F frequencies (L//2 + 1 for irfft).

Shapes are given in each docstring's "Shapes:" line, with the axis letters of `mlreads.core.shapes`.

"Conjugate half": a diagonal or DPLR system whose complex modes come in conjugate pairs is stored with one mode per
pair (N/2 of them). For diagonal systems the kernel is then 2·Re of the half sum; the DPLR kernel expands the half back
to all N modes, because the Woodbury correction couples the modes.

Deviations:
- The (H, 2, 2, F, N) Cauchy sums are computed densely from one materialised (H, F, N) Cauchy matrix (the
  official code has pykeops/CUDA kernels that never materialise it): O(H F N) memory.
- At the Nyquist root ω = -1 (even L) g(ω) and 2/(1 + ω) are infinite; dplr_kernel uses the exact limit there,
  K̂(-1) = C̃ (I + Ā)⁻¹ B̄ = (Δ/2) C̃ B for the bilinear Ā, B̄ (since I + Ā = 2 (I - Δ/2 A)⁻¹). Not an approximation,
  but not written in the paper, which evaluates Alg. 1 at every root.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "vandermonde_kernel", "cauchy", "dplr_kernel", "krylov_kernel", "c_tilde", "c_from_c_tilde", "dplr_dense",
    "fft_conv", "StepForm", "ssm_step",
]  # fmt: skip


def vandermonde_kernel(cb: Tensor, log_a_bar: Tensor, length: int) -> Tensor:
    r"""S4D Vandermonde kernel (S4D §3.2) for a conjugate-half diagonal system:

        K_l = 2 Re Σ_n (C B̄)_n Ā_n^l,   l = 0 .. L-1

    cb = C ⊙ B̄ complex, log_a_bar = log Ā (for ZOH it is ΔΛ exactly).
    Shapes: cb (H, N/2), log_a_bar (H, N/2) -> (H, L) real.
    """
    pos = torch.arange(length, dtype=log_a_bar.real.dtype)
    vand = torch.exp(log_a_bar[..., None] * pos)  # (H, N/2, L)
    return 2 * torch.einsum("hn,hnl->hl", cb, vand).real


def _full(x: Tensor) -> Tensor:
    """Conjugate half (..., N/2) -> all N modes (..., N): [x, conj x]."""
    return torch.cat([x, x.conj()], dim=-1)


def cauchy(v: Tensor, omega: Tensor, lam: Tensor) -> Tensor:
    r"""Cauchy matrix-vector product (S4 §3.3, Lemma C.3), for K vectors v at once:

        k_j = Σ_n v_n / (ω_j - λ_n)

    Shapes: v (..., K, N), omega (..., F), lam (..., N) -> (..., K, F); leading axes broadcast.
    """
    r = 1 / (omega[..., :, None] - lam[..., None, :])  # (..., F, N): the Cauchy matrix
    return torch.einsum("...kn,...fn->...kf", v, r)


def dplr_kernel(lam: Tensor, p: Tensor, b: Tensor, c_tilde: Tensor, dt: Tensor, length: int) -> Tensor:
    r"""S4 kernel for A = Λ - P̃ P̃* (bilinear), from the conjugate half: S4 Alg. 1.

        K̂(ω) = 2/(1 + ω) · [k_00(ω) - k_01(ω) (1 + k_11(ω))⁻¹ k_10(ω)]        (Woodbury, rank 1)
        k_ij(ω) = cauchy(row_i ⊙ col_j, g(ω), Λ),  rows (C̃, P̃*), columns (B, P̃),  g(ω) = (2/Δ)(1 - ω)/(1 + ω)
        K = irfft(K̂) over the roots of unity ω_j = exp(-2πij/L)

    K̂(ω) is the generating function Σ_k K_k ω^k = C̃ (I - Ā ω)⁻¹ B̄; c_tilde is C̃ = C (I - Ā^L) for the wanted C.
    Shapes: lam, p (N/2,) or (H, N/2); b, c_tilde (H, N/2) complex; dt (H,) -> (H, L) real.
    """
    lam_f, p_f, b_f, c_f = _full(lam), _full(p), _full(b), _full(c_tilde)  # (.., N)
    n_freq = length // 2 + 1
    nyquist = length % 2 == 0  # ω = -1 is a root of unity: take the exact limit there (Deviations)
    freq = torch.arange(n_freq - 1 if nyquist else n_freq, dtype=lam.real.dtype)
    omega = torch.exp(-2j * math.pi * freq / length).to(lam.dtype)  # (F',)
    g = (2 / dt[:, None]) * (1 - omega) / (1 + omega)  # (H, F')
    rows = torch.stack(torch.broadcast_tensors(c_f, p_f.conj()), dim=-2)  # (H, 2, N): C̃, P̃*
    cols = torch.stack(torch.broadcast_tensors(b_f, p_f), dim=-2)  # (H, 2, N): B, P̃
    v = rows[..., :, None, :] * cols[..., None, :, :]  # (H, 2, 2, N)
    k = cauchy(v.flatten(-3, -2), g, lam_f.expand(v.shape[0], -1))  # (H, 4, F'): k00 k01 k10 k11
    k00, k01, k10, k11 = k.unbind(-2)  # (H, F') each
    k_hat = 2 / (1 + omega) * (k00 - k01 * k10 / (1 + k11))  # (H, F')
    if nyquist:
        k_nyq = dt / 2 * (c_f * b_f).sum(-1)  # (H,): (Δ/2) C̃ B
        k_hat = torch.cat([k_hat, k_nyq[:, None].to(k_hat.dtype)], dim=-1)  # (H, F)
    return torch.fft.irfft(k_hat, n=length)  # (H, L)


def krylov_kernel(c: Tensor, a_bar: Tensor, b_bar: Tensor, length: int) -> Tensor:
    """LSSL dense kernel K_l = Re(C Ā^l B̄) by repeated squaring: [B̄] -> [B̄, ĀB̄] -> [.., Ā²(..)] (log2 L matmuls).

    Shapes: c, b_bar (H, N); a_bar (H, N, N) -> (H, L) real.
    """
    krylov = b_bar[..., None]  # (H, N, 1)
    power = a_bar
    while krylov.shape[-1] < length:
        krylov = torch.cat([krylov, power @ krylov], dim=-1)  # (H, N, 2m)
        power = power @ power
    return torch.einsum("hn,hnl->hl", c, krylov[..., :length]).real


def c_tilde(c: Tensor, a_bar: Tensor, length: int) -> Tensor:
    """Truncation correction (S4 §3.3): C̃ = C (I - Ā^L).

    Shapes: c (H, N), a_bar (H, N, N) -> (H, N).
    """
    return c - torch.einsum("hn,hnm->hm", c, torch.linalg.matrix_power(a_bar, length))


def c_from_c_tilde(c_t: Tensor, a_bar: Tensor, length: int) -> Tensor:
    """Inverse of c_tilde: C = C̃ (I - Ā^L)⁻¹ (needed for the recurrent mode of a model trained with C̃).

    Shapes: c_t (H, N), a_bar (H, N, N) -> (H, N).
    """
    eye = torch.eye(a_bar.shape[-1], dtype=a_bar.dtype)
    m = eye - torch.linalg.matrix_power(a_bar, length)  # (H, N, N)
    return torch.linalg.solve(m.transpose(-1, -2), c_t[..., None])[..., 0]  # x m = c_t  <=>  mᵀ xᵀ = c_tᵀ


def dplr_dense(lam: Tensor, p: Tensor) -> Tensor:
    """The dense complex matrix A = diag([Λ, Λ̄]) - [P̃, P̃̄][P̃, P̃̄]* of a conjugate-half DPLR system.

    Shapes: lam, p (..., N/2) -> (..., N, N).
    """
    lam_f, p_f = _full(lam), _full(p)
    return torch.diag_embed(lam_f) - p_f[..., :, None] * p_f.conj()[..., None, :]


def fft_conv(u: Tensor, k: Tensor, d: Tensor | None = None) -> Tensor:
    """Causal convolution y_t = Σ_{j<=t} K_j u_{t-j} (+ D u_t) by FFT, zero-padded to 2L so it does not wrap.

    Shapes: u (B, H, L), k (H, L), d (H,) -> (B, H, L).
    """
    length = u.shape[-1]
    n = 2 * length
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., :length]  # (B, H, L)
    return y if d is None else y + d[:, None] * u


class StepForm(NamedTuple):
    """A kernel's discrete system for the recurrent mode (`kernel.step_form(L)`).

    Diagonal: a_bar, b_bar, c (H, N'), with N' = N/2 modes of a conjugate half and scale = 2.
    Dense: a_bar (H, N, N), b_bar and c (H, N), scale = 1.
    """

    a_bar: Tensor  # Ā
    b_bar: Tensor  # B̄
    c: Tensor  # C (for S4, recovered from the trained C̃)
    diagonal: bool  # Ā is stored as its diagonal
    scale: float  # y = scale · Re(C x): 2 for a conjugate half, else 1


def ssm_step(form: StepForm, x: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """One recurrent step (S4 eq. 3): x_t = Ā x_{t-1} + B̄ u_t, y_t = scale · Re(C x_t).

    Shapes: x (B, H, N'), u (B, H) -> y (B, H), x (B, H, N').
    """
    if form.diagonal:
        x = form.a_bar * x + form.b_bar * u[..., None]
    else:
        x = torch.einsum("hnm,bhm->bhn", form.a_bar, x) + form.b_bar * u[..., None]
    return form.scale * torch.einsum("hn,bhn->bh", form.c, x).real, x
