"""The three kernels (naive dense powers, S4D Vandermonde, S4 Cauchy + Woodbury + irfft) agree on the same system,
in values and gradients; the truncation correction C̃ matters; float32 stays within the documented tolerance."""

import pytest
import torch
from torch.testing import assert_close

from mlreads.s4.discretize import bilinear, bilinear_diag, zoh_diag
from mlreads.s4.hippo import dplr_legs, legs, s4d_init
from mlreads.s4.kernels import (
    c_from_c_tilde,
    c_tilde,
    cauchy,
    dplr_dense,
    dplr_kernel,
    krylov_kernel,
    vandermonde_kernel,
)  # fmt: skip
from mlreads.s4.reference import cauchy_ref, kernel_naive

C128 = torch.complex128
TOL = dict(rtol=1e-8, atol=1e-10)


def _system(n=16, h=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    a, b = legs(n)
    c = torch.randn(h, n, generator=g, dtype=torch.float64)
    dt = torch.tensor([0.01, 0.05, 0.3], dtype=torch.float64)[:h]
    return a, b, c, dt


@pytest.mark.parametrize("length", [1, 7, 64, 257])
def test_three_kernels_agree_on_legs(length):
    n = 16
    a, b, c, dt = _system(n)
    a_bar, b_bar = bilinear(a, b, dt)  # (H, N, N), (H, N)
    k_naive = kernel_naive(c, a_bar, b_bar, length)  # (H, L)

    # LSSL dense kernel by repeated squaring
    assert_close(krylov_kernel(c, a_bar, b_bar, length), k_naive, **TOL)

    # S4: the same system in the DPLR eigenbasis, C V_h and C̃ = C (I - Ā^L), Cauchy + Woodbury
    form = dplr_legs(n)
    c_half = c.to(C128) @ form.v[:, : n // 2]  # (H, N/2)
    a_full = dplr_dense(form.lam, form.p)  # (N, N)
    b_full = torch.cat([form.b, form.b.conj()])
    abf, _ = bilinear(a_full, b_full, dt.to(C128))
    c_t = c_tilde(torch.cat([c_half, c_half.conj()], -1), abf, length)[:, : n // 2]
    k_s4 = dplr_kernel(form.lam, form.p, form.b.expand(3, -1), c_t, dt, length)
    assert_close(k_s4, k_naive, **TOL)

    # S4D: the same system diagonalised numerically (all N real modes, so halve C B̄ against the 2 Re of the half)
    w, u = torch.linalg.eig(a.to(C128))
    b_eig = torch.linalg.solve(u, b.to(C128))
    c_eig = c.to(C128) @ u
    a_d, b_d = bilinear_diag(w, b_eig, dt)  # (H, N)
    k_s4d = vandermonde_kernel(c_eig * b_d / 2, torch.log(a_d), length)
    assert_close(k_s4d, k_naive, rtol=1e-4, atol=1e-5)  # LegS eigenvectors are ill-conditioned (cond ~1e11 at N=16)


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_s4d_vandermonde_equals_naive_and_cauchy_without_low_rank(disc):
    n, h, length = 32, 4, 100
    g = torch.Generator().manual_seed(1)
    lam, b = s4d_init(n, "inv")
    lam = lam.expand(h, -1)
    c = torch.randn(h, n // 2, generator=g, dtype=C128)
    dt = torch.logspace(-3, -1, h, dtype=torch.float64)
    a_d, b_d = (zoh_diag if disc == "zoh" else bilinear_diag)(lam, b, dt)
    log_a = dt[:, None] * lam if disc == "zoh" else torch.log(a_d)
    k_vand = vandermonde_kernel(c * b_d, log_a, length)
    assert_close(k_vand, kernel_naive(c, a_d, b_d, length, scale=2.0), **TOL)
    if disc == "bilinear":  # the Cauchy kernel with P = 0 is the bilinear diagonal kernel
        a_full, _ = bilinear(torch.diag_embed(torch.cat([lam, lam.conj()], -1)), torch.cat([b, b.conj()]), dt.to(C128))
        c_t = c_tilde(torch.cat([c, c.conj()], -1), a_full, length)[:, : n // 2]
        k_cauchy = dplr_kernel(lam[0], torch.zeros(n // 2, dtype=C128), b.expand(h, -1), c_t, dt, length)
        assert_close(k_cauchy, k_vand, **TOL)


def test_truncation_correction_matters_and_inverts():
    n, length = 8, 16
    form = dplr_legs(n)
    dt = torch.tensor([0.05], dtype=torch.float64)  # small Δ·L: Ā^L is far from 0
    g = torch.Generator().manual_seed(2)
    c = torch.randn(1, n // 2, generator=g, dtype=C128)
    c_full = torch.cat([c, c.conj()], -1)
    abf, bbf = bilinear(dplr_dense(form.lam, form.p), torch.cat([form.b, form.b.conj()]), dt.to(C128))
    k_true = kernel_naive(c_full, abf, bbf, length)
    c_t = c_tilde(c_full, abf, length)
    k_uncorrected = dplr_kernel(form.lam, form.p, form.b[None], c, dt, length)
    k_corrected = dplr_kernel(form.lam, form.p, form.b[None], c_t[:, : n // 2], dt, length)
    assert_close(k_corrected, k_true, **TOL)
    assert (k_uncorrected - k_true).abs().max() > 1e-3
    assert_close(c_from_c_tilde(c_t, abf, length), c_full, **TOL)


def test_gradients_of_fast_kernels_match_naive():
    n, h, length = 8, 2, 40
    form = dplr_legs(n)
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(h, length, generator=g, dtype=torch.float64)
    dt = torch.tensor([0.05, 0.2], dtype=torch.float64)

    def leaves():
        lam = form.lam.clone().requires_grad_()
        p = form.p.clone().requires_grad_()
        b = form.b.expand(h, -1).clone().requires_grad_()
        c = torch.randn(h, n // 2, generator=torch.Generator().manual_seed(4), dtype=C128).requires_grad_()
        return lam, p, b, c

    # S4 (Cauchy) against naive powers of the dense Ā, C taken as the C̃ of the naive system: K = Re(C̃ Σ...) is not
    # the same function, so compare against naive with C = C̃ (I - Ā^L)^{-1} built inside the graph.
    lam, p, b, c = leaves()
    k_fast = dplr_kernel(lam, p, b, c, dt, length)
    grads_fast = torch.autograd.grad((k_fast * weight).sum(), (lam, p, b, c))
    lam, p, b, c = leaves()
    a_bar, b_bar = bilinear(dplr_dense(lam, p), torch.cat([b, b.conj()], -1), dt.to(C128))
    c_full = c_from_c_tilde(torch.cat([c, c.conj()], -1), a_bar, length)
    k_ref = kernel_naive(c_full, a_bar, b_bar, length)
    grads_ref = torch.autograd.grad((k_ref * weight).sum(), (lam, p, b, c))
    assert_close(k_fast, k_ref, **TOL)
    for gf, gr in zip(grads_fast, grads_ref):
        assert_close(gf, gr, rtol=1e-7, atol=1e-9)

    # S4D (Vandermonde, ZOH) against the naive diagonal loop
    lam, _, b, c = leaves()
    lam2 = lam.detach().clone().requires_grad_()
    b2, c2 = b.detach().clone().requires_grad_(), c.detach().clone().requires_grad_()
    a_d, b_d = zoh_diag(lam, b, dt)
    k1 = vandermonde_kernel(c * b_d, dt[:, None] * lam, length)
    g1 = torch.autograd.grad((k1 * weight).sum(), (lam, b, c))
    a_d2, b_d2 = zoh_diag(lam2, b2, dt)
    k2 = kernel_naive(c2, a_d2, b_d2, length, scale=2.0)
    g2 = torch.autograd.grad((k2 * weight).sum(), (lam2, b2, c2))
    for x, y in zip(g1, g2):
        assert_close(x, y, rtol=1e-8, atol=1e-10)


def test_float32_kernels_within_documented_tolerance():
    n, h, length = 64, 4, 784
    form = dplr_legs(n)
    g = torch.Generator().manual_seed(5)
    c = torch.randn(h, n // 2, generator=g, dtype=C128)
    dt = torch.logspace(-3, -1, h, dtype=torch.float64)
    k64 = dplr_kernel(form.lam, form.p, form.b.expand(h, -1), c, dt, length)
    k32 = dplr_kernel(form.lam.to(torch.complex64), form.p.to(torch.complex64), form.b.expand(h, -1).to(torch.complex64),
                      c.to(torch.complex64), dt.float(), length)  # fmt: skip
    scale = k64.abs().max()
    assert (k32.double() - k64).abs().max() / scale < 1e-3
    lam, b = s4d_init(n, "lin")
    a_d, b_d = zoh_diag(lam, b, dt)
    v64 = vandermonde_kernel(c * b_d, dt[:, None] * lam, length)
    a_d, b_d = zoh_diag(lam.to(torch.complex64), b.to(torch.complex64), dt.float())
    v32 = vandermonde_kernel(c.to(torch.complex64) * b_d, dt.float()[:, None] * lam.to(torch.complex64), length)
    assert (v32.double() - v64).abs().max() / v64.abs().max() < 1e-4


def test_cauchy_equals_the_double_loop_and_the_nyquist_limit():
    g = torch.Generator().manual_seed(6)
    v = torch.randn(3, 4, 10, generator=g, dtype=C128)  # (H, K, N)
    omega = torch.randn(3, 7, generator=g, dtype=C128)  # (H, F)
    lam = torch.randn(3, 10, generator=g, dtype=C128)  # (H, N)
    assert_close(cauchy(v, omega, lam), cauchy_ref(v, omega, lam), **TOL)
    # K̂(-1) = (Δ/2) C̃ B (the value dplr_kernel uses at the Nyquist root) is the limit of Alg. 1 as ω -> -1
    n, h = 8, 2
    form = dplr_legs(n)
    c = torch.randn(h, n // 2, generator=g, dtype=C128)
    dt = torch.tensor([0.05, 0.3], dtype=torch.float64)
    k = dplr_kernel(form.lam, form.p, form.b.expand(h, -1), c, dt, 16)  # (H, L), even L
    k_hat_nyquist = torch.fft.rfft(k, n=16)[:, -1]  # (H,)
    b_f, c_f = torch.cat([form.b, form.b.conj()]), torch.cat([c, c.conj()], -1)
    assert_close(k_hat_nyquist, (dt / 2 * (c_f * b_f).sum(-1)).to(C128), **TOL)
    a_bar, b_bar = bilinear(dplr_dense(form.lam, form.p), b_f, dt.to(C128))
    eye = torch.eye(n, dtype=C128)
    direct = torch.einsum("hn,hn->h", c_f, torch.linalg.solve(eye + a_bar, b_bar[..., None])[..., 0])
    assert_close(k_hat_nyquist, direct, **TOL)  # C̃ (I + Ā)⁻¹ B̄, the generating function at ω = -1
