"""adam/regret-counterexample (Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond", Section 3): the
online problem f_t(x) = C x for t mod 3 = 1, -x otherwise, on [-1, 1], where Adam's average regret does not vanish,
against Kingma & Ba's Theorem 4.1 (O(sqrt T) regret); AMSGrad (max of v) converges to the optimum x* = -1."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlreads.core.fields import in_range, nonnegative, positive
from mlreads.optim.adam import Adam


@dataclass(frozen=True)
class RegretConfig:
    C: float = positive(3.0)
    steps: int = positive(30_000)
    lr: float = positive(0.1)  # alpha; alpha_t = alpha / sqrt(t)
    beta1: float = in_range(0.0, 0.0, 1.0)  # Reddi et al. Theorem 1: beta_1 = 0, beta_2 = 1 / (1 + C^2)
    x0: float = nonnegative(0.0)


def online_run(cfg: RegretConfig, amsgrad: bool) -> tuple[list[float], list[float]]:
    """Projected online Adam (Algorithm 1 plus the projection of Theorem 4.1) on Reddi's sequence. Returns the
    iterates x_t and the average regret R_t / t against x* = -1."""
    beta2 = 1 / (1 + cfg.C**2)
    x = torch.nn.Parameter(torch.tensor([cfg.x0], dtype=torch.float64))
    opt = Adam([x], lr=cfg.lr, betas=(cfg.beta1, beta2), amsgrad=amsgrad)
    xs, avg_regret, regret = [], [], 0.0
    for t in range(1, cfg.steps + 1):
        g = cfg.C if t % 3 == 1 else -1.0  # f_t(x) = g x
        regret += g * (x.item() - (-1.0))
        x.grad = torch.tensor([g], dtype=torch.float64)
        for group in opt.param_groups:
            group["lr"] = cfg.lr / t**0.5
        opt.step()
        with torch.no_grad():
            x.clamp_(-1.0, 1.0)  # projection onto the feasible set
        xs.append(x.item())
        avg_regret.append(regret / t)
    return xs, avg_regret


def run_regret(cfg: RegretConfig, ctx) -> dict:
    """Metrics: x_adam, x_amsgrad (mean of the last 3000 iterates), avg_regret_adam, avg_regret_amsgrad (R_T / T)."""
    from mlreads.optim import figures

    xs_a, r_a = online_run(cfg, amsgrad=False)
    xs_m, r_m = online_run(cfg, amsgrad=True)
    tail = max(3, cfg.steps // 10)
    out = {
        "x_adam": sum(xs_a[-tail:]) / tail,
        "x_amsgrad": sum(xs_m[-tail:]) / tail,
        "avg_regret_adam": r_a[-1],
        "avg_regret_amsgrad": r_m[-1],
    }
    ctx.savefig(figures.regret({"Adam": (xs_a, r_a), "AMSGrad": (xs_m, r_m)}), "reddi_counterexample",
                caption=("Reddi et al.'s online problem. Left: the iterate x_t against the step t, with the optimum "
                         "x* = -1 dashed; right: the average regret R_t / t. The claim predicts Adam's iterate drifts "
                         "to the worst point +1 and its average regret stays above 0, while AMSGrad's iterate goes to "
                         "-1 and its average regret falls towards 0."))
    return out
