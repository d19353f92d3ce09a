"""The parts of transformer/scaled-dot-product: the softmax Jacobian's norm, the variance estimate with its standard
error, and the powered trend test along the d_k sweep."""

import math

import pytest
import torch

from mlreads.transformer.exp_scaled_dot_product import (
    ScaledDotConfig,
    separated_falls,
    softmax_jacobian_norm,
    variance_ratio,
)


def test_jacobian_norm_is_zero_one_hot_and_half_at_a_two_way_tie():
    p = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
    norms = softmax_jacobian_norm(p)
    # diag(p) - p p^T: one-hot -> 0; a tie (1/2, 1/2) -> [[1/4, -1/4], [-1/4, 1/4]], norm 1/2; uniform over n ->
    # sqrt((n-1)/n^2)
    torch.testing.assert_close(norms, torch.tensor([0.0, 0.5, math.sqrt(2) / 3], dtype=torch.float64))


def test_variance_ratio_is_one_within_its_standard_error():
    gen = torch.Generator().manual_seed(0)
    ratio, se = variance_ratio(64, 20_000, gen, chunk=3000)
    assert 0.005 < se < 0.02  # the relative s.e. of a sample variance of near-normal values: sqrt(2 / n) = 0.01
    assert abs(ratio - 1) < 4 * se


def test_separated_falls_needs_each_interval_below_the_one_before():
    assert separated_falls([[0.9, 1.1], [0.5, 0.7], [0.01, 0.02]])
    assert not separated_falls([[0.9, 1.1], [0.5, 0.95], [0.01, 0.02]])  # overlapping: within the noise
    assert not separated_falls([[0.5, 0.7], [0.9, 1.1]])  # a rise


def test_the_checked_d_k_must_be_on_the_rising_sweep():
    with pytest.raises(ValueError, match="must be one of"):
        ScaledDotConfig(d_ks=(16, 64), d_k_saturation=512)
    with pytest.raises(ValueError, match="rise strictly"):
        ScaledDotConfig(d_ks=(512, 64))
