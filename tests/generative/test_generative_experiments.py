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
    from mlreads.generative.exp_gan_mnist import (
        GanMnistConfig,
        official_init,
        official_schedule,
    )
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


def test_importance_sampler_is_uniform_until_full_then_unbiased():
    from mlreads.generative.ddpm import ImportanceSampler

    sampler = ImportanceSampler(T=4, history=2, uniform_prob=0.0)
    torch.testing.assert_close(sampler.probs(), torch.full((4,), 0.25, dtype=torch.float64))
    losses = torch.tensor([1.0, 2.0, 4.0, 8.0])  # L_t for t = 1..4
    for _ in range(2):
        sampler.update(torch.tensor([1, 2, 3]), losses[:3])
    torch.testing.assert_close(sampler.probs(), torch.full((4,), 0.25, dtype=torch.float64))  # t = 4 has no history
    for _ in range(2):
        sampler.update(torch.tensor([4, 4]), torch.tensor([8.0, 8.0]))
    p = sampler.probs()
    torch.testing.assert_close(p, (losses / losses.sum()).double())  # sqrt(E[L_t^2]) = L_t here
    t, w = sampler.sample(200_000, torch.Generator().manual_seed(0))
    assert int(t.min()) == 1 and int(t.max()) == 4
    # the weighted mean of the draws' losses estimates the uniform mean of L_t: the same objective
    assert float((losses[t - 1] * w).mean()) == pytest.approx(float(losses.mean()), rel=0.01)
    sampler.update(torch.tensor([1]), torch.tensor([3.0]))  # the newest value replaces the oldest
    assert sorted(sampler.values[0].tolist()) == [1.0, 3.0]


def test_objective_ablation_runs_every_arm_and_both_halves(tmp_path, monkeypatch):
    import dataclasses

    from mlreads.core.run.runner import RunContext
    from mlreads.core.train import recipe
    from mlreads.generative import exp_common
    from mlreads.generative.exp_ddpm_objective_ablation import (
        AblationConfig,
        run_objective_ablation,
    )
    from mlreads.generative.featnet import FeatNetConfig

    monkeypatch.setattr(exp_common, "cache_path", lambda cfg: tmp_path / "featnet.safetensors")
    tiny = recipe(30, 2e-3, optimizer="adam", grad_clip=1.0, log_every=10)
    cfg = AblationConfig(T=20, n_eval=200, n_proj=16, train=tiny, mnist_train=dataclasses.replace(tiny, steps=20),
                         mnist_model=dataclasses.replace(AblationConfig().mnist_model, d_hidden=32),
                         mnist_samples=30, n_boot=5, featnet=FeatNetConfig(d_hidden=32, steps=20, pool=2))
    m = run_objective_ablation(cfg, RunContext(tmp_path / "run", "smoke", 0, 1))
    for obj in ("eps_simple", "eps_vlb", "mu_vlb", "mu_mse"):
        assert f"trained_{obj}" in m and f"mnist_trained_{obj}" in m
    assert {"vlb_gap", "vlb_gap_se", "fid_gap_mnist", "fid_gap_mnist_se", "featnet_test_acc"} <= set(m)
    assert m["worst_sw_objective"] in ("eps_simple", "eps_vlb", "mu_vlb", "mu_mse")


def test_denoiser_skip_path_and_the_ema_tracker():
    from mlreads.generative.ddpm import DenoiserConfig, MLPDenoiser
    from mlreads.generative.exp_ddpm_mnist import ema_tracker

    torch.manual_seed(0)
    cfg = DenoiserConfig(d_data=6, d_hidden=16, n_layers=2, d_time=8)
    plain, skip = MLPDenoiser(cfg), MLPDenoiser(DenoiserConfig(**{**cfg.__dict__, "skip": True}))
    skip.load_state_dict(plain.state_dict(), strict=False)  # the same MLP; the gate starts at 0
    x, t = torch.randn(5, 6), torch.tensor([1, 10, 100, 500, 1000])
    with torch.no_grad():
        torch.testing.assert_close(skip(x, t), plain(x, t))
        skip.skip_gate.bias.fill_(0.5)  # c(t) = 0.5 for every t: the output gains 0.5 x_t
        torch.testing.assert_close(skip(x, t), plain(x, t) + 0.5 * x)
    _, cache = skip.run_with_cache(x, t)
    assert cache["hook_skip"].shape == (5, 1)
    ema, update = ema_tracker(plain, 0.9)
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(1.0)
    before = [p.clone() for p in ema.parameters()]
    update(1, plain, None, None)
    for pe, b, p in zip(ema.parameters(), before, plain.parameters()):
        torch.testing.assert_close(pe, 0.9 * b + 0.1 * p)


def test_the_moving_average_is_part_of_the_trained_module_so_checkpoints_keep_it():
    from mlreads.core.train.optim import param_groups
    from mlreads.generative.ddpm import DenoiserConfig, MLPDenoiser
    from mlreads.generative.exp_ddpm_mnist import WithEMA

    torch.manual_seed(0)
    cfg = DenoiserConfig(d_data=6, d_hidden=16, n_layers=2, d_time=8, skip=True)
    pair = WithEMA(MLPDenoiser(cfg), 0.9)
    x, t = torch.randn(5, 6), torch.tensor([1, 10, 100, 500, 1000])
    torch.testing.assert_close(pair(x, t), pair.model(x, t))  # fit trains the denoiser itself
    trained = {id(p) for g in param_groups(pair, 0.0) for p in g["params"]}
    assert trained == {id(p) for p in pair.model.parameters()}  # the average gets no optimiser state
    with torch.no_grad():
        for p in pair.model.parameters():
            p.add_(1.0)
    pair.after_step(1, pair, None, None)
    # what a checkpoint saves (the module's state) carries the average: a fresh pair loaded from it has it back
    fresh = WithEMA(MLPDenoiser(cfg), 0.9)
    fresh.load_state_dict(pair.state_dict())
    for pe, qe in zip(fresh.ema.parameters(), pair.ema.parameters(), strict=True):
        torch.testing.assert_close(pe, qe)
    assert any(k.startswith("ema.") for k in pair.state_dict())
