"""Batched toy models: forward/grad parity with per-instance loops (and of the tiny-model fast loss), the loss closed
form, the data distribution, init from a generator, and batched training == separate single-instance training."""

import pytest
import torch

from mlreads.superposition import (
    AbsConfig,
    AbsModel,
    ToyConfig,
    ToyModel,
    importance_weighted_mse,
    sample_features,
    toy_loss_tiny,
)
from mlreads.superposition.exp_common import ToyTrain, best_of_restarts, train_toy
from mlreads.superposition.model import TINY
from mlreads.superposition.reference import (
    abs_forward_ref,
    importance_weighted_mse_ref,
    toy_forward_ref,
)

TOL = dict(atol=1e-5, rtol=1e-5)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(6, 3), (2, 1), (4, 2)], ids=["einsum", "tiny-n2m1", "tiny-n4m2"])
@pytest.mark.parametrize("kind", ["linear", "relu", "hidden_relu"])
def test_toy_forward_and_grads_match_loop(kind, shape):
    n, m = shape
    model = ToyModel(ToyConfig(n_features=n, d_hidden=m, n_instances=4, kind=kind), _gen(0))
    assert (n * m <= TINY) == (shape != (6, 3))  # the ids say which path model.loss takes
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
    model = AbsModel(AbsConfig(n_features=5, d_hidden=4, n_instances=3), _gen(0))
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


@pytest.mark.parametrize("kind", ["linear", "relu", "hidden_relu"])
@pytest.mark.parametrize("shape", [(2, 1), (4, 2), (3, 2), (6, 3)])
def test_tiny_fast_loss_equals_the_reference_loss_and_its_gradients(kind, shape):
    """toy_loss_tiny (the fast path) against loops: values and gradients of W, b; it is exact math at any size."""
    n, m = shape
    g = _gen(5)
    W = torch.randn(3, m, n, generator=g, dtype=torch.float64, requires_grad=True)
    b = (0.3 * torch.randn(3, n, generator=g, dtype=torch.float64)).requires_grad_()
    imp = torch.rand(3, n, generator=g, dtype=torch.float64)
    x = sample_features(64, torch.full((3, n), 0.4, dtype=torch.float64), g).double()  # (B, I, F)
    fast = toy_loss_tiny(W, b, x, imp, kind)
    ref = importance_weighted_mse_ref(toy_forward_ref(W, b, x, kind), x, imp)
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
    w = torch.rand(3, generator=g, dtype=torch.float64)
    g_fast = torch.autograd.grad((fast * w).sum(), (W, b))
    g_ref = torch.autograd.grad((ref * w).sum(), (W, b))
    for a, r in zip(g_fast, g_ref):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


def _train(W0, importance, prob, kind="relu", steps=150):
    model = ToyModel(ToyConfig(n_features=5, d_hidden=2, n_instances=W0.shape[0], kind=kind))
    with torch.no_grad():
        model.W.copy_(W0)
    model.set_data(importance, prob)
    train_toy(model, ToyTrain(steps=steps, batch=64))  # no ctx: fit's data seed is 0 for every call
    return model


def test_batched_training_equals_single_instance_runs():
    W0 = ToyModel(ToyConfig(5, 2, 3), _gen(11)).W.detach()  # (I, m, F)
    imp = torch.tensor([[1.0, 0.9, 0.8, 0.7, 0.6], [1.0] * 5, [0.5, 1.0, 2.0, 1.0, 0.5]])
    prob = torch.tensor([[1.0] * 5, [0.1] * 5, [0.3, 0.2, 0.1, 0.05, 0.5]])
    batched = _train(W0, imp, prob)
    for i in range(3):
        single = _train(W0[i : i + 1], imp[i : i + 1], prob[i : i + 1])
        torch.testing.assert_close(batched.W.detach()[i], single.W.detach()[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(batched.b.detach()[i], single.b.detach()[0], atol=1e-5, rtol=1e-4)
    # and training moved the weights (the comparison is not between two untouched inits)
    assert (batched.W.detach() - W0).abs().max() > 0.05


def test_init_is_a_function_of_the_generator_alone():
    state = torch.get_rng_state()
    a = ToyModel(ToyConfig(5, 2, 3), _gen(7))
    assert torch.equal(state, torch.get_rng_state())  # a generator given: the global RNG is untouched
    torch.rand(10)
    b = ToyModel(ToyConfig(5, 2, 3), _gen(7))
    torch.testing.assert_close(a.W.detach(), b.W.detach(), atol=0, rtol=0)
    assert not torch.equal(a.W.detach()[0], a.W.detach()[1])
    big = ToyModel(ToyConfig(5, 2, 2000), _gen(8)).W.detach()
    torch.testing.assert_close(big.std(), torch.tensor((2 / 7) ** 0.5), atol=0.01, rtol=0)  # per-instance xavier
    c = AbsModel(AbsConfig(5, 4, 2), _gen(7))
    d = AbsModel(AbsConfig(5, 4, 2), _gen(7))
    torch.testing.assert_close(c.W_out.detach(), d.W_out.detach(), atol=0, rtol=0)
    assert not torch.equal(c.W_in.detach()[:, :, :4], c.W_out.detach().transpose(1, 2)[:, :, :4])


def test_best_of_restarts_picks_lowest_loss_per_grid_point():
    losses = torch.tensor([0.3, 0.1, 0.2, 5.0, 4.0, 6.0])  # 2 grid points x 3 restarts
    assert best_of_restarts(losses, 3).tolist() == [1, 4]
