"""Batched toy models: forward/grad parity with per-instance loops, the loss closed form, the data distribution, and
batched training == separate single-instance training."""

import pytest
import torch

from mlreads.superposition import (
    AbsConfig,
    AbsModel,
    ToyConfig,
    ToyModel,
    ToyTrain,
    best_of_restarts,
    importance_weighted_mse,
    sample_features,
    train_toy,
)
from mlreads.superposition.reference import abs_forward_ref, importance_weighted_mse_ref, toy_forward_ref

TOL = dict(atol=1e-5, rtol=1e-5)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(6, 3), (2, 1), (4, 2)], ids=["einsum", "tiny-n2m1", "tiny-n4m2"])
@pytest.mark.parametrize("kind", ["linear", "relu", "hidden_relu"])
def test_toy_forward_and_grads_match_loop(kind, shape):
    n, m = shape
    model = ToyModel(ToyConfig(n_features=n, d_hidden=m, n_instances=4, kind=kind))
    with torch.no_grad():
        model.b.normal_(generator=_gen(3))
    model.set_data(torch.rand(4, n, generator=_gen(1)), 0.5)
    x = model.sample(32, _gen(2))  # (B, I, F)
    W = model.W.detach().clone().requires_grad_()
    b = model.b.detach().clone().requires_grad_()
    out, ref = model(x), toy_forward_ref(W, b, x, kind)
    torch.testing.assert_close(out, ref, **TOL)
    model.loss(x).sum().backward()
    importance_weighted_mse_ref(ref, x, model.importance).sum().backward()
    torch.testing.assert_close(model.W.grad, W.grad, **TOL)
    torch.testing.assert_close(model.b.grad, b.grad, **TOL)


def test_abs_forward_and_grads_match_loop():
    model = AbsModel(AbsConfig(n_features=5, d_hidden=4, n_instances=3))
    x = model.sample(16, _gen(0))
    params = [p.detach().clone().requires_grad_() for p in (model.W_in, model.W_out, model.b)]
    ref = abs_forward_ref(*params, x)
    torch.testing.assert_close(model(x), ref, **TOL)
    model.loss(x).sum().backward()
    importance_weighted_mse_ref(ref, x.abs(), model.importance).sum().backward()
    for p, q in zip((model.W_in, model.W_out, model.b), params):
        torch.testing.assert_close(p.grad, q.grad, **TOL)


def test_loss_closed_form_tiny_case():
    # one instance, two features, importance (1, 0.5); batch of two rows
    x = torch.tensor([[[1.0, 0.0]], [[0.5, 0.2]]])  # (B=2, I=1, F=2)
    out = torch.tensor([[[0.5, 0.5]], [[0.5, 0.0]]])
    imp = torch.tensor([[1.0, 0.5]])
    # (1/(B F)) * [1*(0.5^2) + 0.5*(0.5^2) + 1*0 + 0.5*(0.2^2)] = (0.25 + 0.125 + 0.02) / 4
    expected = torch.tensor([(0.25 + 0.125 + 0.02) / 4])
    torch.testing.assert_close(importance_weighted_mse(out, x, imp), expected, **TOL)
    # and a model with W = 0, b = c reconstructs the constant relu(c): loss = mean_f I_f (x_f - relu(c_f))^2
    model = ToyModel(ToyConfig(n_features=2, d_hidden=1, n_instances=1))
    with torch.no_grad():
        model.W.zero_()
        model.b.copy_(torch.tensor([[0.5, -1.0]]))
    model.set_data(imp, 1.0)
    expected = ((imp * (x - torch.tensor([0.5, 0.0])) ** 2).sum() / 4).reshape(1)
    torch.testing.assert_close(model.loss(x), expected, **TOL)


def test_loss_expectation_for_the_zero_model():
    """W = 0, b = 0 outputs 0, so E[L] = (1/F) sum_f I_f p_f E[U^2] = (1/F) sum_f I_f p_f / 3."""
    model = ToyModel(ToyConfig(n_features=3, d_hidden=2, n_instances=2))
    with torch.no_grad():
        model.W.zero_()
    imp = torch.tensor([[1.0, 0.5, 0.25], [2.0, 1.0, 1.0]])
    prob = torch.tensor([[1.0, 0.3, 0.1], [0.05, 0.5, 1.0]])
    model.set_data(imp, prob)
    loss = model.loss(model.sample(200_000, _gen(0)))
    torch.testing.assert_close(loss, (imp * prob / 3).mean(-1), atol=3e-3, rtol=0.02)


def test_sample_features_distribution():
    prob = torch.tensor([[1.0, 0.2], [0.05, 0.0]])
    x = sample_features(100_000, prob, _gen(0))  # (B, 2, 2)
    nonzero = (x != 0).float().mean(0)
    torch.testing.assert_close(nonzero, prob, atol=5e-3, rtol=0)
    assert x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(x[:, 0, 0].mean(), torch.tensor(0.5), atol=5e-3, rtol=0)
    signed = sample_features(100_000, prob, _gen(0), signed=True)
    assert signed.min() < -0.99 and signed.max() > 0.99
    torch.testing.assert_close(signed[:, 0, 0].mean(), torch.tensor(0.0), atol=1e-2, rtol=0)


def _train(seeds, importance, prob, kind="relu", steps=150):
    model = ToyModel(ToyConfig(n_features=5, d_hidden=2, n_instances=len(seeds), kind=kind), instance_seeds=seeds)
    model.set_data(importance, prob)
    torch.manual_seed(1234)  # fit seeds its data generator from the global RNG (the runner's seed)
    train_toy(model, ToyTrain(steps=steps, batch=64))
    return model


def test_batched_training_equals_single_instance_runs():
    seeds = [11, 12, 13]
    imp = torch.tensor([[1.0, 0.9, 0.8, 0.7, 0.6], [1.0] * 5, [0.5, 1.0, 2.0, 1.0, 0.5]])
    prob = torch.tensor([[1.0] * 5, [0.1] * 5, [0.3, 0.2, 0.1, 0.05, 0.5]])
    batched = _train(seeds, imp, prob)
    for i, s in enumerate(seeds):
        single = _train([s], imp[i : i + 1], prob[i : i + 1])
        torch.testing.assert_close(batched.W.detach()[i], single.W.detach()[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(batched.b.detach()[i], single.b.detach()[0], atol=1e-5, rtol=1e-4)
    # and training moved the weights (the comparison is not between two untouched inits)
    untouched = ToyModel(ToyConfig(5, 2, 3), instance_seeds=seeds)
    assert (batched.W.detach() - untouched.W.detach()).abs().max() > 0.05


def test_instance_init_depends_only_on_its_seed():
    a = ToyModel(ToyConfig(5, 2, 3), instance_seeds=[7, 8, 9])
    b = ToyModel(ToyConfig(5, 2, 1), instance_seeds=[8])
    torch.testing.assert_close(a.W.detach()[1], b.W.detach()[0], atol=0, rtol=0)
    assert not torch.equal(a.W.detach()[0], a.W.detach()[1])
    torch.testing.assert_close(a.W.detach().std(), torch.tensor((2 / 7) ** 0.5), atol=0.3, rtol=0)


def test_best_of_restarts_picks_lowest_loss_per_grid_point():
    losses = torch.tensor([0.3, 0.1, 0.2, 5.0, 4.0, 6.0])  # 2 grid points x 3 restarts
    assert best_of_restarts(losses, 3).tolist() == [1, 4]
