"""The online LegS memory (HiPPO §3): the state holds the Legendre coefficients of the history; a random A cannot."""

import torch
from torch.testing import assert_close

from mlreads.s4.hippo import legs, random_a
from mlreads.s4.memory import legendre_basis, legendre_reconstruct, scaled_online_states


def test_legendre_basis_is_orthonormal_for_uniform_measure():
    g = legendre_basis(8, 4000)  # (N, L), midpoint rule on [0, 1]
    assert_close(g @ g.T / 4000, torch.eye(8, dtype=torch.float64), rtol=0, atol=1e-4)


def test_legs_state_is_the_legendre_projection_of_the_history():
    length = 2000
    s = (torch.arange(length, dtype=torch.float64) + 0.5) / length
    f = torch.stack([torch.sin(6 * s) + s**2, torch.exp(-3 * s)])  # (M, L) smooth histories
    x = scaled_online_states(*legs(32), f)  # (M, N)
    projection = f @ legendre_basis(32, length).T / length  # exact coefficients c_n = ∫ f g_n ds
    assert_close(x[:, :8], projection[:, :8], rtol=0, atol=5e-3)
    err = (legendre_reconstruct(x, length) - f).square().mean() / f.var()
    assert err < 1e-3


def test_random_a_state_keeps_only_a_few_directions_of_the_history():
    # Impulse responses: the state after a unit input at step k, for every k. LegS spreads the history over all N
    # directions (its singular values decay slowly); the LSSL-scaled random A squeezes it into ~2 (they fall 1e3x).
    length, n = 300, 32
    impulses = torch.eye(length, dtype=torch.float64)
    sv_legs = torch.linalg.svdvals(scaled_online_states(*legs(n), impulses))
    sv_rand = torch.linalg.svdvals(scaled_online_states(*random_a(n, torch.Generator().manual_seed(0)), impulses))
    assert sv_legs[n - 1] / sv_legs[0] > 0.1
    assert sv_rand[3] / sv_rand[0] < 1e-2
