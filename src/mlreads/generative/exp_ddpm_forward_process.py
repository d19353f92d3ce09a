"""ddpm/forward-process: DDPM Eq 2/4 (the closed form q(x_t | x_0) equals iterating q(x_t | x_{t-1})), Section 4
(alpha_bar_T = 4.04e-5 for the linear schedule; L_T is about 1e-5 bits/dim, so the prior term is negligible) and
Eq 11 (the eps-parameterisation recovers the posterior mean).

Data, measure, figures: MNIST pixels scaled to [-1, 1]; no training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mlreads.core.fields import in_range, positive
from mlreads.core.run.runner import RunContext
from mlreads.generative import ddpm
from mlreads.generative.exp_common import mnist_tensors
from mlreads.generative.figures import forward_chain_figure


@dataclass(frozen=True)
class ForwardConfig:
    T: int = positive(1000)
    beta_1: float = in_range(1e-4, 0.0, 1.0, lo_open=True)
    beta_T: float = in_range(0.02, 0.0, 1.0, lo_open=True)
    n_images: int = positive(128)  # 128 x 784 = 100k pixel chains
    times: tuple[int, ...] = positive((1, 10, 100, 500, 1000))


def run_forward_process(cfg: ForwardConfig, ctx: RunContext) -> dict:
    s = ddpm.Schedule(ddpm.linear_betas(cfg.T, cfg.beta_1, cfg.beta_T))
    x0 = (mnist_tensors()["test"][0][: cfg.n_images].double() * 2 - 1)  # (n, 784) in [-1, 1]
    gen = ctx.generator("chain")
    metrics: dict = {"alpha_bar_T": float(s.alpha_bar[-1])}
    x = x0.clone()
    worst_mean, worst_var = 0.0, 0.0
    keep = {}
    for t in range(1, cfg.T + 1):
        x = ddpm.q_step(s, x, torch.full((len(x),), t), torch.randn(x.shape, generator=gen, dtype=x.dtype))
        if t in cfg.times:
            ab = float(s.alpha_bar[t - 1])
            resid = x - math.sqrt(ab) * x0  # should be N(0, 1 - alpha_bar_t) elementwise (Eq 4)
            se = math.sqrt((1 - ab) / resid.numel())
            worst_mean = max(worst_mean, abs(float(resid.mean())) / se)  # in standard errors
            worst_var = max(worst_var, abs(float(resid.var()) / (1 - ab) - 1))
            keep[t] = x[0].clone()
    metrics["max_mean_err_in_se"] = worst_mean
    metrics["max_rel_var_err"] = worst_var
    lt = ddpm.prior_kl(s, x0).sum(1) / x0.shape[1] / math.log(2)  # bits per dimension, per image
    metrics["L_T_bits_per_dim"] = float(lt.mean())
    metrics["L_T_bits_per_dim_max"] = float(lt.max())
    # Eq 11 with the true noise recovers mu_tilde exactly (float64)
    t = torch.randint(1, cfg.T + 1, (len(x0),), generator=gen)
    eps = torch.randn(x0.shape, generator=gen, dtype=x0.dtype)
    xt = ddpm.q_sample(s, x0, t, eps)
    metrics["eq11_max_abs_err"] = float((ddpm.mu_from_eps(s, xt, t, eps) - ddpm.posterior(s, x0, xt, t)[0]).abs().max())
    ctx.savefig(forward_chain_figure(x0[0], keep, s), "forward_chain",
                caption=("Top: one MNIST test digit under the forward process q(x_t | x_0) at increasing t; bottom: "
                         "Eq 4's signal and noise coefficients sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t). The claim "
                         f"predicts the digit dissolves into pure noise by t = {cfg.T}: here alpha_bar_T = "
                         f"{metrics['alpha_bar_T']:.1e} and L_T = {metrics['L_T_bits_per_dim']:.1e} bits/dim."))
    return metrics
