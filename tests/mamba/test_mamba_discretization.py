"""The discretisation-cost experiment's two ZOH paths: equal when the dense A is diagonal, and Euler's B̄ = ΔB is
ZOH's to first order in Δ (the official simplification named in mlreads.mamba.scan's Deviations)."""

import torch

from mlreads.mamba.exp_discretization_cost import fit_exponent, zoh_dense, zoh_diag


def test_dense_zoh_of_a_diagonal_matrix_is_the_diagonal_zoh():
    g = torch.Generator().manual_seed(0)
    a = -torch.rand(6, generator=g, dtype=torch.float64) * 3 - 0.1
    delta = torch.rand(5, generator=g, dtype=torch.float64) * 0.5 + 0.01
    B = torch.randn(5, 6, generator=g, dtype=torch.float64)
    Ad, Bd = zoh_dense(delta, torch.diag(a), B)
    Ag, Bg = zoh_diag(delta, a, B)
    torch.testing.assert_close(Ad, torch.diag_embed(Ag), rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(Bd, Bg, rtol=1e-12, atol=1e-13)


def test_dense_zoh_matches_the_defining_integral():
    """B̄ = ∫_0^Δ exp(sA) ds B (ZOH), by the trapezoid rule on a fine grid, for a non-diagonal A."""
    g = torch.Generator().manual_seed(1)
    M = torch.randn(4, 4, generator=g, dtype=torch.float64)
    A = M - M.T - torch.eye(4, dtype=torch.float64)
    delta, B = torch.tensor([0.3], dtype=torch.float64), torch.randn(1, 4, generator=g, dtype=torch.float64)
    s = torch.linspace(0, 0.3, 2001, dtype=torch.float64)
    integrand = torch.linalg.matrix_exp(s[:, None, None] * A) @ B[0]  # (S, N)
    integral = torch.trapezoid(integrand, s, dim=0)
    torch.testing.assert_close(zoh_dense(delta, A, B)[1][0], integral, rtol=1e-6, atol=1e-8)


def test_euler_b_is_zoh_to_first_order():
    a = torch.tensor([-1.0, -4.0], dtype=torch.float64)
    B = torch.ones(1, 2, dtype=torch.float64)
    gaps = [float(((d * B - zoh_diag(torch.tensor([d], dtype=torch.float64), a, B)[1]).abs() / d).max())
            for d in (1e-2, 1e-3)]
    assert 9 < gaps[0] / gaps[1] < 11  # the relative gap shrinks linearly with Δ (it is Δ|a|/2 + O(Δ²))


def test_fit_exponent_recovers_a_power_law():
    ns = [8, 16, 32, 64]
    assert abs(fit_exponent(ns, [3e-6 * n**2.5 for n in ns]) - 2.5) < 1e-9
