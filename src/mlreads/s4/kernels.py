"""SSM convolution kernels K_k = C Ā^k B̄ (k < L), the FFT convolution and the recurrent step.

Papers: S4 (arXiv 2111.00396) §3.2-3.3, Alg. 1 (Cauchy + Woodbury + inverse FFT at the roots of unity, with the
truncation correction C̃ = C (I - Ā^L)); S4D (arXiv 2206.11893) §3.2 (Vandermonde kernel); LSSL (arXiv 2110.13985)
§3 (the dense Krylov kernel, here by repeated squaring).

Glossary: c -> C (row vector, K_k = C Ā^k B̄, no conjugation), c_tilde -> C̃, a_bar -> Ā, b_bar -> B̄, lam -> Λ,
p -> P̃ (Q = P for LegS), dt -> Δ, k -> K, u -> u, d -> D (skip), H channels (one SSM per channel), N state.

"Conjugate half": a diagonal or DPLR system whose complex modes come in conjugate pairs is stored with one mode per
pair (N/2 of them). For diagonal systems the kernel is then 2·Re of the half sum; the DPLR kernel expands the half back
to all N modes, because the Woodbury correction couples the modes.

Deviations:
- dplr_kernel writes the Cauchy sums with denominators (1 - z) - (Δ/2)(1 + z)λ. That is c(z)(g(z) - λ)⁻¹ of S4 eq. (7)
  multiplied through by (Δ/2)(1 + z), and it stays finite at z = -1 (the Nyquist root for even L), where g and c are
  infinite. The (H, L/2+1, N) Cauchy matrix is materialised (no pykeops/CUDA kernel).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "vandermonde_kernel", "dplr_kernel", "krylov_kernel", "c_tilde", "c_from_c_tilde", "dplr_dense", "fft_conv",
    "ssm_step",
]  # fmt: skip


def vandermonde_kernel(cb: Tensor, log_a_bar: Tensor, length: int) -> Tensor:
    """S4D Vandermonde kernel for a conjugate-half diagonal system: K_l = 2 Re Σ_n (C B̄)_n Ā_n^l.

    cb = C ⊙ B̄ (H, N/2) complex, log_a_bar = log Ā (H, N/2) (for ZOH it is ΔΛ exactly). Returns (H, L) real.
    """
    pos = torch.arange(length, dtype=log_a_bar.real.dtype)
    vand = torch.exp(log_a_bar[..., None] * pos)  # (H, N/2, L)
    return 2 * torch.einsum("hn,hnl->hl", cb, vand).real


def _full(x: Tensor) -> Tensor:
    """Conjugate half (..., N/2) -> all N modes (..., N): [x, conj x]."""
    return torch.cat([x, x.conj()], dim=-1)


def dplr_kernel(lam: Tensor, p: Tensor, b: Tensor, c_tilde: Tensor, dt: Tensor, length: int) -> Tensor:
    """S4 kernel (bilinear) for A = Λ - P̃ P̃*, from the conjugate half: Cauchy sums, Woodbury, irfft (S4 Alg. 1).

    lam, p (N/2,) or (H, N/2); b, c_tilde (H, N/2); dt (H,). c_tilde is C̃ = C (I - Ā^L) for the wanted C.
    The generating function Σ_k K_k z^k at the roots of unity z_j = exp(-2πij/L) equals C̃ (I - Ā z)⁻¹ B̄, which for the
    bilinear Ā, B̄ is Δ C̃ [(1 - z) I - (Δ/2)(1 + z) A]⁻¹ B; with A = Λ - P̃P̃* the inverse is diagonal + rank 1.
    Returns (H, L) real.
    """
    lam_f, p_f, b_f, c_f = _full(lam), _full(p), _full(b), _full(c_tilde)
    freq = torch.arange(length // 2 + 1, dtype=lam.real.dtype)
    z = torch.exp(-2j * math.pi * freq / length).to(lam.dtype)  # (Lf,)
    s = dt[:, None] / 2 * (1 + z)  # (H, Lf)
    r = 1 / ((1 - z)[None, :, None] - s[..., None] * lam_f[..., None, :])  # (H, Lf, N): the Cauchy matrix
    lhs = torch.stack(torch.broadcast_tensors(c_f, p_f.conj()), dim=-2)  # (H, 2, N): rows C̃, P̃*
    rhs = torch.stack(torch.broadcast_tensors(b_f, p_f), dim=-2)  # (H, 2, N): columns B, P̃
    prod = lhs[..., :, None, :] * rhs[..., None, :, :]  # (H, 2, 2, N)
    k = torch.einsum("hijn,hfn->hijf", prod, r)  # (H, 2, 2, Lf): k00 k01 / k10 k11
    k00, k01, k10, k11 = k[:, 0, 0], k[:, 0, 1], k[:, 1, 0], k[:, 1, 1]
    k_hat = dt[:, None] * (k00 - s * k01 * k10 / (1 + s * k11))  # (H, Lf), Woodbury with rank 1
    return torch.fft.irfft(k_hat, n=length)  # (H, L)


def krylov_kernel(c: Tensor, a_bar: Tensor, b_bar: Tensor, length: int) -> Tensor:
    """Dense kernel K_l = Re(C Ā^l B̄) by repeated squaring: [B̄] -> [B̄, ĀB̄] -> [.., Ā²(..)] (log2 L matmuls).

    c, b_bar (H, N); a_bar (H, N, N). Returns (H, L) (real part).
    """
    krylov = b_bar[..., None]  # (H, N, 1)
    power = a_bar
    while krylov.shape[-1] < length:
        krylov = torch.cat([krylov, power @ krylov], dim=-1)  # (H, N, 2m)
        power = power @ power
    return torch.einsum("hn,hnl->hl", c, krylov[..., :length]).real


def c_tilde(c: Tensor, a_bar: Tensor, length: int) -> Tensor:
    """Truncation correction (S4 §3.3): C̃ = C (I - Ā^L); c (H, N), a_bar (H, N, N) dense."""
    return c - torch.einsum("hn,hnm->hm", c, torch.linalg.matrix_power(a_bar, length))


def c_from_c_tilde(c_t: Tensor, a_bar: Tensor, length: int) -> Tensor:
    """Inverse of c_tilde: C = C̃ (I - Ā^L)⁻¹ (needed for the recurrent mode of a model trained with C̃)."""
    eye = torch.eye(a_bar.shape[-1], dtype=a_bar.dtype)
    m = eye - torch.linalg.matrix_power(a_bar, length)  # (H, N, N)
    return torch.linalg.solve(m.transpose(-1, -2), c_t[..., None])[..., 0]  # x m = c_t  <=>  mᵀ xᵀ = c_tᵀ


def dplr_dense(lam: Tensor, p: Tensor) -> Tensor:
    """The dense complex (…, N, N) matrix diag([Λ, Λ̄]) - [P̃, P̃̄][P̃, P̃̄]* of a conjugate-half DPLR system."""
    lam_f, p_f = _full(lam), _full(p)
    return torch.diag_embed(lam_f) - p_f[..., :, None] * p_f.conj()[..., None, :]


def fft_conv(u: Tensor, k: Tensor, d: Tensor | None = None) -> Tensor:
    """Causal convolution y_t = Σ_{j<=t} K_j u_{t-j} (+ D u_t) by FFT, zero-padded to 2L so it does not wrap.

    u (B, H, L), k (H, L), d (H,). Returns (B, H, L).
    """
    length = u.shape[-1]
    n = 2 * length
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., :length]  # (B, H, L)
    return y if d is None else y + d[:, None] * u


def ssm_step(a_bar: Tensor, b_bar: Tensor, c: Tensor, x: Tensor, u: Tensor, diagonal: bool, scale: float = 1.0):
    """One recurrent step x_t = Ā x_{t-1} + B̄ u_t, y_t = scale · Re(C x_t).

    Diagonal: a_bar, b_bar, c (H, N'); dense: a_bar (H, N, N). x (B, H, N'), u (B, H). scale = 2 for a conjugate half.
    Returns (y (B, H), x).
    """
    if diagonal:
        x = a_bar * x + b_bar * u[..., None]
    else:
        x = torch.einsum("hnm,bhm->bhn", a_bar, x) + b_bar * u[..., None]
    return scale * torch.einsum("hn,bhn->bh", c, x).real, x
