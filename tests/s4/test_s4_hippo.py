"""HiPPO matrices (LegS, LegT), their spectra, the DPLR form of LegS and the S4D / random initialisations."""

import math

import pytest
import torch
from torch.testing import assert_close

from mlreads.s4.hippo import (
    dplr_legs,
    legs,
    legs_rank_correction,
    legt,
    random_a,
    s4d_init,
)

F64 = dict(rtol=1e-10, atol=1e-10)


def test_legs_small_matrix_by_hand():
    a, b = legs(3)
    s3, s5, s15 = math.sqrt(3), math.sqrt(5), math.sqrt(15)
    want = torch.tensor([[-1.0, 0, 0], [-s3, -2, 0], [-s5, -s15, -3]], dtype=torch.float64)
    assert_close(a, want, **F64)
    assert_close(b, torch.tensor([1.0, s3, s5], dtype=torch.float64), **F64)


def test_legt_small_matrix_by_hand():
    a, b = legt(2)
    s3 = math.sqrt(3)
    want = -0.5 * torch.tensor([[1.0, -s3], [s3, 3.0]], dtype=torch.float64)
    assert_close(a, want, **F64)
    assert_close(b, 0.5 * torch.tensor([1.0, s3], dtype=torch.float64), **F64)


@pytest.mark.parametrize("n", [4, 16, 64])
def test_legs_spectrum_is_minus_one_to_minus_n(n):
    # Lower triangular with diagonal -(n+1): eigenvalues -1, ..., -N.
    eig = torch.linalg.eigvals(legs(n)[0])
    assert_close(torch.sort(eig.real).values, -torch.arange(n, 0, -1, dtype=torch.float64), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [4, 16, 64])
def test_legt_is_stable(n):
    eig = torch.linalg.eigvals(legt(n)[0])
    assert eig.real.max() < 0


@pytest.mark.parametrize("n", [4, 16, 64])
def test_legs_plus_low_rank_is_normal_half_plus_skew(n):
    a, _ = legs(n)
    p = legs_rank_correction(n)
    m = a + p[:, None] * p[None, :]
    assert_close(m @ m.T, m.T @ m, rtol=1e-9, atol=1e-9)
    skew = m + 0.5 * torch.eye(n, dtype=torch.float64)
    assert_close(skew, -skew.T, **F64)


@pytest.mark.parametrize("n", [2, 8, 64])
def test_dplr_rebuilds_legs(n):
    form = dplr_legs(n)
    v = form.v
    assert_close(v.conj().T @ v, torch.eye(n, dtype=torch.complex128), rtol=1e-10, atol=1e-10)
    lam_full = torch.cat([form.lam, form.lam.conj()])
    p = legs_rank_correction(n).to(torch.complex128)
    rebuilt = v @ torch.diag(lam_full) @ v.conj().T - p[:, None] * p[None, :]
    a, b = legs(n)
    assert_close(rebuilt, a.to(torch.complex128), rtol=1e-9, atol=1e-9)
    # the factors are the projections of P and B onto the kept half of the eigenbasis
    assert_close(form.p, v[:, : n // 2].conj().T @ p, **F64)
    assert_close(v @ torch.cat([form.b, form.b.conj()]), b.to(torch.complex128), rtol=1e-9, atol=1e-9)
    assert_close(form.lam.real, torch.full((n // 2,), -0.5, dtype=torch.float64), **F64)
    assert (form.lam.imag > 0).all()


def test_dplr_rejects_odd_n():
    with pytest.raises(ValueError, match="even"):
        dplr_legs(5)


def test_s4d_inits():
    lam, b = s4d_init(8, "lin")
    assert_close(lam, torch.complex(torch.full((4,), -0.5, dtype=torch.float64), math.pi * torch.arange(4, dtype=torch.float64)), **F64)
    assert_close(b, torch.ones(4, dtype=torch.complex128), **F64)
    lam, _ = s4d_init(8, "inv")
    n = torch.arange(4, dtype=torch.float64)
    assert_close(lam.imag, 8 / math.pi * (8 / (2 * n + 1) - 1), **F64)
    lam, b = s4d_init(8, "legs")
    form = dplr_legs(8)
    assert_close(lam, form.lam, **F64)
    assert_close(b, form.b, **F64)
    with pytest.raises(ValueError):
        s4d_init(8, "nope")


def test_random_a_is_seeded_and_scaled_like_lssl():
    a1, b1 = random_a(256, torch.Generator().manual_seed(3))
    a2, _ = random_a(256, torch.Generator().manual_seed(3))
    assert_close(a1, a2, rtol=0, atol=0)
    assert_close(b1, torch.ones(256, dtype=torch.float64), **F64)
    # E[A Aᵀ] = I / N: the diagonal of A Aᵀ averages 1/N
    assert abs((a1 @ a1.T).diagonal().mean().item() * 256 - 1) < 0.05
