"""DDPM: closed forms against iteration and Bayes' rule, and parity with diffusers' DDPMScheduler."""

import math

import pytest
import torch

from mlreads.generative import ddpm
from mlreads.generative.reference import forward_chain_ref, posterior_ref

S = ddpm.Schedule(ddpm.linear_betas())


def test_alpha_bar_T_and_prior_kl():
    assert abs(S.alpha_bar[-1].item() - 4.0358e-5) < 1e-8
    # L_T at |x_0| = 1 in bits per dimension: the closed form gives about 2.9e-5
    lt = ddpm.prior_kl(S, torch.ones(1, dtype=torch.float64)).item() / math.log(2)
    assert 2.5e-5 < lt < 3.2e-5


@pytest.mark.parametrize("t", [1, 10, 100, 500, 1000])
def test_closed_form_equals_iterated_forward_process(t):
    g = torch.Generator().manual_seed(t)
    x0 = torch.full((40_000,), 0.7, dtype=torch.float64)
    xt = forward_chain_ref(S.betas, x0, t, g)
    ab = S.alpha_bar[t - 1]
    assert abs(xt.mean().item() - ab.sqrt().item() * 0.7) < 4 * math.sqrt((1 - ab).item() / 40_000) + 1e-12
    assert abs(xt.var().item() - (1 - ab).item()) < 0.03 * (1 - ab).item() + 1e-12


@pytest.mark.parametrize("t", [1, 2, 50, 999, 1000])
def test_posterior_is_bayes_rule(t):
    g = torch.Generator().manual_seed(0)
    x0, xt = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    mean, var = ddpm.posterior(S, x0, xt, torch.full((5,), t))
    mean_ref, var_ref = posterior_ref(S.betas, x0, xt, t)
    torch.testing.assert_close(mean, mean_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(var.squeeze(), var_ref.expand_as(var.squeeze()), rtol=1e-10, atol=1e-14)


def test_eps_mu_identity_eq11():
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 2, 3, 300, 999, 1000])
    xt = ddpm.q_sample(S, x0, t, eps)
    # with the true eps, Eq 11's mu_theta is the posterior mean mu_tilde(x_t, x_0)
    torch.testing.assert_close(ddpm.mu_from_eps(S, xt, t, eps), ddpm.posterior(S, x0, xt, t)[0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ddpm.x0_from_eps(S, xt, t, eps), x0, rtol=1e-9, atol=1e-9)


def _diffusers(variance_type, float64=False, clip=False):
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                                  variance_type=variance_type, clip_sample=clip)  # fmt: skip
    if float64:  # the same formulas evaluated on our float64 schedule
        sch.betas = S.betas.clone()
        sch.alphas = S.alphas.clone()
        sch.alphas_cumprod = S.alpha_bar.clone()
        sch.one = torch.tensor(1.0, dtype=torch.float64)
    return sch


def test_schedule_matches_diffusers_float32():
    sch = _diffusers("fixed_small")
    torch.testing.assert_close(sch.betas.double(), S.betas, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(sch.alphas_cumprod.double(), S.alpha_bar, rtol=2e-5, atol=1e-9)


def test_add_noise_matches_diffusers():
    sch = _diffusers("fixed_small", float64=True)
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(4, 8, generator=g, dtype=torch.float64), torch.randn(4, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 17, 500, 1000])
    torch.testing.assert_close(ddpm.q_sample(S, x0, t, eps), sch.add_noise(x0, eps, t - 1), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("t", [2, 10, 500, 1000])
def test_posterior_variance_and_mean_match_diffusers(t):
    sch = _diffusers("fixed_small", float64=True)
    # diffusers recomputes beta_t as 1 - alpha_bar_t / alpha_bar_{t-1}: a float64 cancellation of about 3e-13
    torch.testing.assert_close(sch._get_variance(t - 1).reshape(()), S.beta_tilde[t - 1], rtol=1e-11, atol=1e-20)
    g = torch.Generator().manual_seed(t)
    x0, xt = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    # diffusers' step with prediction_type="sample" and t-1 = 0 noise gives mu_tilde(x_t, x_0) plus sigma z
    sch.register_to_config(prediction_type="sample")
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    out = sch.step(x0, t - 1, xt, generator=g1).prev_sample
    z = torch.randn(x0.shape, generator=g2, dtype=torch.float64)
    mean, var = ddpm.posterior(S, x0, xt, torch.full((3,), t))
    torch.testing.assert_close(out, mean + var.sqrt() * z, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variance_type,sigma2", [("fixed_small", "beta_tilde"), ("fixed_large", "beta")])
@pytest.mark.parametrize("t", [1, 2, 300, 1000])
def test_sampling_step_matches_diffusers(variance_type, sigma2, t):
    sch = _diffusers(variance_type, float64=True)
    g = torch.Generator().manual_seed(t)
    xt, eps = torch.randn(3, 6, generator=g, dtype=torch.float64), torch.randn(3, 6, generator=g, dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    theirs = sch.step(eps, t - 1, xt, generator=g1).prev_sample
    noise = torch.randn(xt.shape, generator=g2, dtype=torch.float64)
    torch.testing.assert_close(ddpm.step(S, eps, t, xt, noise, sigma2), theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("t", [2, 40, 1000])
def test_clipped_sampling_step_matches_diffusers_clip_sample(t):
    sch = _diffusers("fixed_large", float64=True, clip=True)
    g = torch.Generator().manual_seed(t)
    xt, eps = 3 * torch.randn(3, 6, generator=g, dtype=torch.float64), torch.randn(3, 6, generator=g, dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    theirs = sch.step(eps, t - 1, xt, generator=g1).prev_sample
    noise = torch.randn(xt.shape, generator=g2, dtype=torch.float64)
    ours = ddpm.step(S, eps, t, xt, noise, "beta", clip_x0=True)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert (ours - ddpm.step(S, eps, t, xt, noise, "beta")).abs().max() > 1e-3  # clipping is active here


def test_vlb_term_is_zero_kl_for_the_true_mean_and_prior():
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(4, 2, generator=g, dtype=torch.float64)
    xt = torch.randn(4, 2, generator=g, dtype=torch.float64)
    t = torch.full((4,), 300)
    mu, _ = ddpm.posterior(S, x0, xt, t)
    # with sigma^2 = beta_tilde and the exact mean the KL vanishes; with sigma^2 = beta it is the variance mismatch
    torch.testing.assert_close(ddpm.vlb_term(S, x0, mu, mu, t, "beta_tilde"), torch.zeros(4, dtype=torch.float64),
                               rtol=0, atol=1e-12)  # fmt: skip
    r = (S.beta_tilde[299] / S.betas[299]).item()
    expected = 2 * 0.5 * (-math.log(r) + r - 1)
    torch.testing.assert_close(ddpm.vlb_term(S, x0, mu, mu, t, "beta"), torch.full((4,), expected, dtype=torch.float64),
                               rtol=1e-10, atol=0)  # fmt: skip
