"""gan/optimal-discriminator: GAN Prop 1 (D*_G = p_data / (p_data + p_g)) and Thm 1 (max_D V = -log 4 + 2 JSD), on
1-D Gaussians with G held fixed: a discriminator trained on samples with Algorithm 1's D objective should approach
D* and its value V(D, G) should approach the closed-form C(G); with p_g = p_data, D = 1/2 and V = -log 4.

Data, model, fit, measure, figures: two discriminators (p_g = N(0, 1) and p_g = p_data) trained with `fit` on fresh
samples every step; V(D, G) and |D - D*| are computed by quadrature on a grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from mlreads.core.fields import nonnegative, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, fit, recipe
from mlreads.generative.figures import discriminator_figure
from mlreads.generative.gan import (
    Discriminator,
    GANConfig,
    normal_pdf,
    optimal_discriminator,
    value,
    virtual_training_criterion,
)


@dataclass(frozen=True)
class OptimalDConfig:
    mean_data: float = nonnegative(2.0)
    std_data: float = positive(0.5)
    mean_g: float = nonnegative(0.0)
    std_g: float = positive(1.0)
    d_hidden: tuple[int, ...] = positive((64, 64))
    batch_size: int = positive(512)
    train: TrainConfig = field(default_factory=lambda: recipe(1500, 3e-3, min_lr_frac=0.05, optimizer="adam",
                                                              grad_clip=None))


def _grid():
    x = torch.linspace(-6, 8, 14_001)
    return x, float(x[1] - x[0])


def _train_d(cfg: OptimalDConfig, mean_g: float, std_g: float, ctx: RunContext, name: str) -> Discriminator:
    dcfg = GANConfig(d_data=1, d_disc=cfg.d_hidden, disc_kind="mlp", disc_input_keep=1.0, disc_hidden_keep=1.0)
    with init_rng(ctx.seed_for(f"init/{name}")):
        disc = Discriminator(dcfg)

    def batch_fn(step, gen):
        real = cfg.mean_data + cfg.std_data * torch.randn(cfg.batch_size, 1, generator=gen)
        fake = mean_g + std_g * torch.randn(cfg.batch_size, 1, generator=gen)
        return real, fake

    def loss_fn(d, batch):  # Algorithm 1's D step: -[log D(x) + log(1 - D(G(z)))]
        real, fake = d(batch[0]), d(batch[1])
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))  # fmt: skip

    fit(disc, cfg.train, batch_fn, loss_fn, ctx=ctx, desc=name)
    ctx.save_model(name, disc, mean_g=mean_g, std_g=std_g)  # D of p_data against p_g = N(mean_g, std_g^2)
    return disc.eval()


def run_optimal_discriminator(cfg: OptimalDConfig, ctx: RunContext) -> dict:
    x, dx = _grid()
    xd = x.double()
    pd = normal_pdf(xd, cfg.mean_data, cfg.std_data)
    pg = normal_pdf(xd, cfg.mean_g, cfg.std_g)
    d_star = optimal_discriminator(pd, pg)
    metrics: dict = {}
    disc = _train_d(cfg, cfg.mean_g, cfg.std_g, ctx, "disc")
    with torch.no_grad():
        d = torch.sigmoid(disc(x[:, None])).double()
    # the central 98% of the mass of the mixture (p_data + p_g) / 2
    cdf = torch.cumsum((pd + pg) / 2 * dx, 0)
    central = (cdf >= 0.01) & (cdf <= 0.99)
    metrics["max_abs_d_minus_dstar"] = float((d - d_star)[central].abs().max())
    metrics["value_learned"] = float(value(d, pd, pg, dx))
    metrics["c_of_g"] = float(virtual_training_criterion(pd, pg, dx))
    metrics["value_gap"] = abs(metrics["value_learned"] - metrics["c_of_g"])
    metrics["jsd"] = (metrics["c_of_g"] + math.log(4)) / 2

    disc_eq = _train_d(cfg, cfg.mean_data, cfg.std_data, ctx, "disc-equal")
    with torch.no_grad():
        d_eq = torch.sigmoid(disc_eq(x[:, None])).double()
    central_eq = (torch.cumsum(pd * dx, 0) >= 0.01) & (torch.cumsum(pd * dx, 0) <= 0.99)
    metrics["equal_max_abs_d_minus_half"] = float((d_eq - 0.5)[central_eq].abs().max())
    metrics["equal_value"] = float(value(d_eq, pd, pd, dx))
    metrics["equal_value_gap"] = abs(metrics["equal_value"] + math.log(4))
    ctx.savefig(discriminator_figure(x, pd, pg, d_star, d, d_eq, (cfg.mean_data, cfg.std_data), (cfg.mean_g, cfg.std_g)),
                "fig1_optimal_discriminator",
                caption=("Left: p_data, p_g, the optimal discriminator D* = p_data / (p_data + p_g) (thick pale "
                         "line) and the trained D (dashed); right: the same with p_g = p_data, where D* = 1/2. The "
                         "claim predicts each dashed curve lies on its thick one wherever the densities have mass; "
                         "over the central 98% of the mass the largest gap is "
                         f"{metrics['max_abs_d_minus_dstar']:.3f} (left) and "
                         f"{metrics['equal_max_abs_d_minus_half']:.3f} (right)."))
    return metrics
