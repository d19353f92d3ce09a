"""Pieces of the generative experiments: the 2-D data and the metrics' sensitivity to what they should see."""

import math

import pytest
import torch

from mlreads.generative.exp_ddpm_objective_ablation import eight_gaussians
from mlreads.generative.metrics import mmd_rbf


def test_eight_gaussians_unit_variance_and_modes():
    x = eight_gaussians(20_000, torch.Generator().manual_seed(0))
    assert abs(x.var(0).mean().item() - 1.0) < 0.05
    angles = torch.atan2(x[:, 1], x[:, 0]) / (math.pi / 4)
    assert (angles - angles.round()).abs().max() < 0.2  # every point near one of the eight directions


def test_mmd_separates_modes_from_a_blur():
    g = torch.Generator().manual_seed(1)
    data, data2 = eight_gaussians(1000, g).double(), eight_gaussians(1000, g).double()
    blur = data2 + 0.3 * torch.randn(1000, 2, generator=g, dtype=torch.float64)
    assert abs(mmd_rbf(data, data2, 0.1)) < 0.01 < mmd_rbf(data, blur, 0.1)


def test_gan_official_recipe_init_and_sgd_schedule():
    from mlreads.generative.exp_gan_mnist import GanMnistConfig, official_init, official_schedule
    from mlreads.generative.gan import GAN, GANConfig

    model = GAN(GANConfig(d_gen=(32,), d_disc=(16,), n_pieces=2))
    official_init(model, 0.05, 0.005)
    g_w = torch.cat([m.weight.flatten() for m in model.gen.modules() if isinstance(m, torch.nn.Linear)])
    d_w = torch.cat([m.weight.flatten() for m in model.disc.modules() if isinstance(m, torch.nn.Linear)])
    assert 0.04 < float(g_w.detach().abs().max()) <= 0.05 and 0.004 < float(d_w.detach().abs().max()) <= 0.005
    assert all(float(m.bias.detach().abs().max()) == 0 for m in model.modules() if isinstance(m, torch.nn.Linear))
    cfg = GanMnistConfig()  # lr 0.1, momentum 0.5 -> 0.7 over 250 epochs of 500 steps, decay 1.000004
    opt = torch.optim.SGD([{"params": list(model.disc.parameters()), "lr": 0.05},
                           {"params": list(model.gen.parameters()), "lr": 0.1}], momentum=0.5)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    step = official_schedule(cfg)
    step(1000, model, opt, None)
    assert opt.param_groups[1]["base_lr"] == pytest.approx(0.1 / 1.000004**1000)
    assert opt.param_groups[0]["base_lr"] == pytest.approx(0.05 / 1.000004**1000)  # D at half G's rate
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.5 + 0.2 * 1000 / (250 * 500))
    step(10**8, model, opt, None)
    assert opt.param_groups[1]["base_lr"] == cfg.min_lr and opt.param_groups[1]["momentum"] == pytest.approx(0.7)
