"""The measures the redesigned superposition checks rest on. The noise-free loss that ranks sparse restarts
(exp_common.few_active_losses): it equals a large Monte Carlo estimate of the sampled loss, leaves out exactly the
mass of three or more active features, and ranks two models the way the true loss does. The dimensions in use
(measures.dimensions_in_use): k antipodal pairs give 1/2 per feature whether or not every dimension holds one."""

import math

import torch

from mlreads.superposition.exp_common import few_active_losses
from mlreads.superposition.measures import (
    dimensions_in_use,
    dimensions_per_feature,
    dimensions_per_feature_in_use,
)
from mlreads.superposition.model import ToyConfig, ToyModel


def _model(n=6, m=2, instances=3, p=0.02, kind="relu", seed=0):
    model = ToyModel(ToyConfig(n, m, instances, kind), torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.b.copy_(0.1 * torch.randn(instances, n, generator=torch.Generator().manual_seed(seed + 1)))
    model.set_data(0.8 ** torch.arange(n, dtype=torch.float32), p)
    return model


def test_it_equals_a_large_monte_carlo_estimate():
    model = _model(p=0.05)
    exact, left_out = few_active_losses(model, n_quad=48)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        xs = [model.sample(50_000, gen) for _ in range(8)]  # (B, I, F) each
        per_sample = torch.cat([(model.importance * (x - model(x)) ** 2).mean(-1) for x in xs])  # (B, I)
    mc, se = per_sample.double().mean(0), per_sample.double().std(0) / math.sqrt(per_sample.shape[0])
    # >= 3 active features: mass ~ C(6,3) 0.05^3 = 0.0023, their loss no larger than a few times the rest
    assert torch.all((exact.double() - mc).abs() < 4 * se + 3 * left_out.double() * mc), (exact, mc, se)


def test_the_left_out_mass_is_that_of_three_or_more_active_features():
    n, p = 6, 0.05
    _, left_out = few_active_losses(_model(n=n, p=p))
    expected = 1 - sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(3))
    torch.testing.assert_close(left_out, torch.full((3,), expected), rtol=1e-4, atol=1e-7)


def test_a_model_that_drops_a_feature_ranks_worse():
    model = _model(n=4, m=4, instances=2, p=0.01)
    with torch.no_grad():
        model.W.copy_(torch.eye(4).expand(2, 4, 4))
        model.b.zero_()
        model.W[1, :, 3] = 0  # instance 1 loses feature 3 (importance 0.8^3 = 0.512)
    exact, _ = few_active_losses(model)
    assert exact[0] < 1e-6  # the identity reconstructs every input
    # Only feature 3 costs anything: 0.512 t^2 / n whenever it is active (alone, or with one other feature), with
    # E[t^2] = 1/3 - 1/(12 Q^2) under the midpoint rule on Q = 32 nodes.
    p, second_moment = 0.01, 1 / 3 - 1 / (12 * 32**2)
    expected = 0.512 * second_moment / 4 * (p * (1 - p) ** 3 + 3 * p**2 * (1 - p) ** 2)
    assert math.isclose(float(exact[1]), expected, rel_tol=1e-5)


def _digons(n_pairs: int, m: int, n: int, norm: float = 1.0) -> torch.Tensor:
    """W (m, n): feature pairs (2k, 2k+1) antipodal along hidden dimension k, the other features zero."""
    W = torch.zeros(m, n)
    for k in range(n_pairs):
        W[k, 2 * k], W[k, 2 * k + 1] = norm, -norm
    return W


def test_antipodal_pairs_give_one_half_per_used_dimension_with_or_without_an_unused_one():
    all_used, one_unused = _digons(20, 20, 200), _digons(19, 20, 200)
    assert float(dimensions_per_feature(all_used)) == 0.5
    assert abs(float(dimensions_per_feature(one_unused)) - 20 / 38) < 1e-6  # the paper's m / ||W||_F^2: 0.526
    torch.testing.assert_close(dimensions_in_use(torch.stack([all_used, one_unused])), torch.tensor([20.0, 19.0]))
    torch.testing.assert_close(dimensions_per_feature_in_use(one_unused), torch.tensor(0.5))
    # a dimension holding only a small leftover counts near 0, and norms above 1 still move the measure below 1/2
    leftover = one_unused.clone()
    leftover[19, 150] = 0.1
    assert abs(float(dimensions_in_use(leftover)) - 19) < 0.01
    torch.testing.assert_close(dimensions_per_feature_in_use(_digons(19, 20, 200, norm=1.1)), torch.tensor(0.5 / 1.21))


def test_dedicated_features_give_one():
    torch.testing.assert_close(dimensions_per_feature_in_use(torch.eye(5, 20)), torch.tensor(1.0))
