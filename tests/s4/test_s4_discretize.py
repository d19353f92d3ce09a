"""ZOH and bilinear discretisation against closed forms on scalar systems; dense and diagonal agree."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mlreads.s4.discretize import bilinear, bilinear_diag, zoh, zoh_diag

F64 = dict(rtol=1e-12, atol=1e-12)


def _closed_zoh(a, b, dt):
    return math.exp(a * dt), math.expm1(a * dt) / a * b


def _closed_bilinear(a, b, dt):
    return (1 + a * dt / 2) / (1 - a * dt / 2), dt * b / (1 - a * dt / 2)


@settings(max_examples=25, deadline=None)
@given(a=st.floats(-5.0, -0.01), b=st.floats(-3.0, 3.0), dt=st.floats(1e-3, 1.0))
def test_scalar_closed_forms(a, b, dt):
    at, bt = torch.tensor([[a]], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)
    # Dense ZOH goes through torch.matrix_exp of a bordered 2x2 matrix, whose float64 truncation error we measured
    # at up to 2.6e-10 (A_bar) and 5.1e-9 (B_bar) relative over 20k random draws in this range (matrix_exp of the 1x1
    # block alone is exact); a wrong formula errs by O(dt), far above 1e-8.
    for fn, closed, rtol in ((zoh, _closed_zoh, 1e-8), (bilinear, _closed_bilinear, 1e-11)):
        a_bar, b_bar = fn(at, bt, dt)
        ca, cb = closed(a, b, dt)
        assert_close(a_bar.item(), ca, rtol=rtol, atol=1e-12)
        assert_close(b_bar.item(), cb, rtol=max(rtol, 1e-10), atol=1e-12)
    lam, bc = torch.tensor([a + 0j], dtype=torch.complex128), torch.tensor([b + 0j], dtype=torch.complex128)
    for fn, closed in ((zoh_diag, _closed_zoh), (bilinear_diag, _closed_bilinear)):
        a_bar, b_bar = fn(lam, bc, dt)
        ca, cb = closed(a, b, dt)
        assert_close(a_bar.real.item(), ca, rtol=1e-11, atol=1e-12)
        assert_close(b_bar.real.item(), cb, rtol=1e-10, atol=1e-12)


def test_zoh_is_exact_for_piecewise_constant_input():
    # x' = a x + b u with u = 1 held over [0, T], x(0) = x0: x(T) = e^{aT} x0 + (e^{aT} - 1)/a b.
    a, b, x0, dt, steps = -0.8, 2.0, 0.3, 0.05, 40
    a_bar, b_bar = zoh(torch.tensor([[a]], dtype=torch.float64), torch.tensor([b], dtype=torch.float64), dt)
    x = torch.tensor([x0], dtype=torch.float64)
    for _ in range(steps):
        x = a_bar @ x + b_bar
    t = dt * steps
    assert_close(x.item(), math.exp(a * t) * x0 + (math.exp(a * t) - 1) / a * b, rtol=1e-12, atol=1e-12)


def test_zoh_of_singular_a_is_euler_limit():
    # A = 0: Ā = I, B̄ = Δ B (the augmented exponential needs no A⁻¹)
    a_bar, b_bar = zoh(torch.zeros(2, 2, dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64), 0.1)
    assert_close(a_bar, torch.eye(2, dtype=torch.float64), **F64)
    assert_close(b_bar, torch.tensor([0.1, 0.2], dtype=torch.float64), **F64)


@pytest.mark.parametrize("dense_fn,diag_fn", [(zoh, zoh_diag), (bilinear, bilinear_diag)])
def test_dense_equals_diagonal_on_diagonal_a_with_channels(dense_fn, diag_fn):
    g = torch.Generator().manual_seed(0)
    lam = -torch.rand(5, generator=g, dtype=torch.float64) * 3 - 0.1  # (N,)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    dt = torch.tensor([0.01, 0.1, 0.7], dtype=torch.float64)  # (H,)
    a_bar, b_bar = dense_fn(torch.diag(lam), b, dt)  # (H, N, N), (H, N)
    d_a, d_b = diag_fn(lam.to(torch.complex128), b.to(torch.complex128), dt)  # (H, N)
    assert a_bar.shape == (3, 5, 5)
    assert_close(torch.diagonal(a_bar, dim1=-2, dim2=-1), d_a.real, **F64)
    assert_close(b_bar, d_b.real, rtol=1e-12, atol=1e-12)


def test_bilinear_is_trapezoid_rule():
    # (I - Δ/2 A) x_k = (I + Δ/2 A) x_{k-1} + Δ B u_k  for a 2x2 system
    a = torch.tensor([[-1.0, 2.0], [-0.5, -0.3]], dtype=torch.float64)
    b = torch.tensor([1.0, -1.0], dtype=torch.float64)
    dt, x, u = 0.2, torch.tensor([0.4, -0.2], dtype=torch.float64), 0.7
    a_bar, b_bar = bilinear(a, b, dt)
    x_new = a_bar @ x + b_bar * u
    eye = torch.eye(2, dtype=torch.float64)
    assert_close((eye - dt / 2 * a) @ x_new, (eye + dt / 2 * a) @ x + dt * b * u, **F64)
