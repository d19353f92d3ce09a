"""Pieces of the Adam / Sophia experiments: the toy's closed-form derivatives, the step-ratio reader, the
counterexample's online run, and the optimiser factories."""

import math

import pytest
import torch

from mlreads.optim.exp_adam_regret_counterexample import RegretConfig, online_run
from mlreads.optim.exp_common import optimizer
from mlreads.optim.exp_sophia_char_lm import steps_to_reach
from mlreads.optim.exp_sophia_toy_2d import grad, hess_diag, loss


def test_toy_derivatives_equal_autograd():
    for a, b in [(0.2, 0.0), (-0.65, 3.0), (1.0, 4.0), (0.37, -1.2)]:
        t = torch.tensor([a, b], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(loss(t[0], t[1]), t)
        H = torch.autograd.functional.hessian(lambda u: loss(u[0], u[1]), t.detach())
        torch.testing.assert_close(grad(t.detach()), g, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(hess_diag(t.detach()), H.diagonal(), rtol=1e-12, atol=1e-12)
    # the facts the experiment relies on: global minimum 1, local maximum 0 (L1 = 8), local minimum near -0.654
    assert float(grad(torch.tensor([0.0, 4.0], dtype=torch.float64)).abs().max()) < 1e-12
    assert float(hess_diag(torch.tensor([0.0, 4.0], dtype=torch.float64))[0]) < 0
    assert float(loss(torch.tensor(1.0), torch.tensor(4.0))) == 0.0


def test_steps_to_reach_interpolates_and_reports_never():
    assert steps_to_reach([50, 100, 150], [3.0, 2.0, 1.0], 1.5) == pytest.approx(125.0)
    assert steps_to_reach([50, 100], [1.0, 0.5], 2.0) == 50.0
    assert math.isinf(steps_to_reach([50, 100], [3.0, 2.5], 2.0))


def test_reddi_counterexample_adam_drifts_to_plus_one_amsgrad_to_minus_one():
    cfg = RegretConfig(steps=3000)
    xs_adam, r_adam = online_run(cfg, amsgrad=False)
    xs_ams, r_ams = online_run(cfg, amsgrad=True)
    assert xs_adam[-1] > 0.9 and xs_ams[-1] < -0.9
    assert r_adam[-1] > 0.5 > r_ams[-1]


@pytest.mark.parametrize("name,cls", [("adagrad", torch.optim.Adagrad), ("rmsprop", torch.optim.RMSprop),
                                      ("adadelta", torch.optim.Adadelta), ("sgd-nesterov", torch.optim.SGD)])
def test_baseline_factories_are_torch_optimizers_with_the_group_lr(name, cls):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = optimizer(name)([{"params": [p], "lr": 0.123, "weight_decay": 0.0}])
    assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == 0.123
    if name == "sgd-nesterov":
        assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizer("lion")


def test_vae_per_example_elbo_and_the_bias_correction_ratio():
    import numpy as np

    from mlreads.optim.exp_adam_bias_correction import VAE, BiasCorrectionConfig, _ratio

    torch.manual_seed(0)
    vae, x, eps = VAE(), (torch.rand(16, 784) > 0.5).float(), torch.randn(16, 50)
    each = vae.neg_elbo_each(x, eps)
    assert each.shape == (16,)
    torch.testing.assert_close(each.mean(), vae.neg_elbo(x, eps))

    class Ctx:
        def seed_for(self, name):
            return 7

    cfg = BiasCorrectionConfig(n_boot=200)
    rng = np.random.default_rng(0)
    b = 100 + rng.normal(0, 10, 2000)
    a = 1.05 * b + rng.normal(0, 1, 2000)  # 5% worse on every image, with a little per-image noise
    r = _ratio("gap", a, b, cfg, Ctx())
    assert r["gap"] == pytest.approx(0.05, abs=2e-3)
    assert 0 < r["gap_se"] < 0.002 and r["gap_ci"][0] < r["gap"] < r["gap_ci"][1]
    assert _ratio("gap", None, b, cfg, Ctx()) == {"gap": 1e9, "gap_se": 0.0, "gap_ci": [1e9, 1e9]}  # diverged
    assert _ratio("gap", a, None, cfg, Ctx()) == {"gap": None}  # its reference diverged: unmeasured


def test_sophia_rho_rule_and_full_schedules():
    from mlreads.optim.exp_sophia_char_lm import SophiaLMConfig, pick_rho, schedule

    rates = {0.03: 0.05, 0.1: 0.18, 0.3: 0.41, 1.0: 0.8}
    assert pick_rho(rates, 0.1, 0.5) == 0.3  # 0.41 is nearest the middle, 0.3
    assert pick_rho({0.03: 0.01, 0.1: 0.02}, 0.1, 0.5) == 0.1  # none in range: the nearest (the precondition fails)
    cfg = SophiaLMConfig()
    for steps in (500, 800, 1000):  # every budget anneals over its own steps: 5% warmup, cosine to 0.05 x
        t = schedule(cfg, steps, 1e-3, "adamw", 0.1)
        assert t.steps == steps and t.warmup == round(0.05 * steps) and t.min_lr == pytest.approx(5e-5)


def test_bias_correction_grid_must_hold_the_lr_the_checks_read():
    from mlreads.optim.exp_adam_bias_correction import BiasCorrectionConfig

    BiasCorrectionConfig(lrs=(1e-3, 3e-3), check_lr=3e-3)
    with pytest.raises(ValueError, match="check_lr"):
        BiasCorrectionConfig(lrs=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1), check_lr=3e-3)  # the earlier full grid
