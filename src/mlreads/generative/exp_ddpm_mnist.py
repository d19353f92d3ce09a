"""ddpm/mnist: DDPM Algorithms 1 and 2 on MNIST: training with L_simple and ancestral sampling give data-like
samples, and sigma_t^2 = beta_t and beta_tilde_t give similar samples (Section 3.2).

Data, model, fit, measure, figures: MNIST scaled to [-1, 1]; an MLP eps_theta with a sinusoidal time embedding and a
time-conditioned skip path from x_t to the output, trained with L_simple (Eq 14, Algorithm 1), with an exponential
moving average of its weights (the paper's EMA) that samples; samples by Algorithm 2 with both variances from the
same noise; sample quality in the cached feature net's space (class coverage, confidence, a Frechet distance with a
floor and ceiling). The feature net's own test accuracy is reported (`featnet_test_acc`, with its standard error):
the sample checks mean something only when it classifies real digits well (the experiment's precondition).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

from mlreads.core.fields import choices, in_range, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, fit, recipe
from mlreads.generative import ddpm
from mlreads.generative.exp_common import load_or_train, mnist_tensors, sample_quality
from mlreads.generative.featnet import FeatNetConfig
from mlreads.generative.figures import image_grid, reverse_chain_figure


@dataclass(frozen=True)
class DdpmMnistConfig:
    T: int = positive(1000)
    model: ddpm.DenoiserConfig = ddpm.DenoiserConfig(d_data=784, d_hidden=1024, n_layers=3, d_time=128, skip=True)
    ema: float = in_range(0.995, 0.0, 1.0, hi_open=True)  # 0: sample from the trained weights themselves
    batch_size: int = positive(128)
    pool: int = positive(1, le=28)  # average-pool the 28x28 images (smoke: 2, so 196 pixels)
    n_samples: int = positive(400)
    sigma2_kinds: tuple[str, ...] = choices(("beta", "beta_tilde"), ("beta", "beta_tilde"))
    clip_x0: bool = True  # the official code's clipping of the predicted x_0 (Algorithm 2 has none)
    metrics_featnet: bool = True
    # 6000 steps (15 epochs): 98.4% on the real test digits; the 1200-step default of gan/mnist reaches 97.5%
    featnet: FeatNetConfig = FeatNetConfig(steps=6000)
    train: TrainConfig = field(default_factory=lambda: recipe(3500, 1e-3, warmup=50, min_lr_frac=0.1,
                                                              optimizer="adam", grad_clip=1.0, log_every=20))


def ema_tracker(model: torch.nn.Module, decay: float):
    """(the averaged copy, an `after_step` that updates it): theta_ema <- decay theta_ema + (1 - decay) theta."""
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.requires_grad_(False)

    def after_step(done, m, opt, batch):
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), m.parameters()):
                pe.lerp_(p, 1 - decay)

    return ema, after_step


class WithEMA(torch.nn.Module):
    """The trained denoiser and its moving average in one module, so that a checkpoint holds the average and a
    resumed run samples from it (an average kept outside the trained module would restart from the initial weights
    on --resume). The forward is the trained denoiser's; the average has no gradient, so no optimiser group."""

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__()
        self.model = model
        self.ema, self._update = ema_tracker(model, decay)

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def after_step(self, done, m, opt, batch) -> None:
        self._update(done, self.model, opt, batch)


def run_ddpm_mnist(cfg: DdpmMnistConfig, ctx: RunContext) -> dict:
    data = mnist_tensors()
    side = 28 // cfg.pool
    x_tr = data["train"][0]
    if cfg.pool > 1:
        x_tr = torch.nn.functional.avg_pool2d(x_tr.view(-1, 1, 28, 28), cfg.pool).flatten(1)  # (n, side^2)
    x_tr = x_tr * 2 - 1  # in [-1, 1]
    d = side * side
    s = ddpm.Schedule(ddpm.linear_betas(cfg.T))
    with init_rng(ctx.seed_for("init/denoiser")):
        model = ddpm.MLPDenoiser(cfg.model)

    def batch_fn(step, gen):  # Algorithm 1: x_0 ~ q(x_0), t ~ Uniform({1..T}), eps ~ N(0, I)
        idx = torch.randint(0, len(x_tr), (cfg.batch_size,), generator=gen)
        t = torch.randint(1, cfg.T + 1, (cfg.batch_size,), generator=gen)
        return x_tr[idx], t, torch.randn(cfg.batch_size, d, generator=gen)

    trained = WithEMA(model, cfg.ema) if cfg.ema > 0 else model
    res = fit(trained, cfg.train, batch_fn, lambda m, b: ddpm.loss_terms(m, s, *b, "eps_simple").mean(), ctx=ctx,
              desc="ddpm", after_step=trained.after_step if cfg.ema > 0 else None)  # fmt: skip
    model = trained.ema if cfg.ema > 0 else model  # Algorithm 2 samples from the averaged weights
    ctx.save_model("ddpm", model, image_side=side, pixel_range=[-1, 1], T=cfg.T, betas="linear", param="eps")
    losses = [r["loss"] for r in res.history if "loss" in r]
    metrics: dict = {"loss_first": losses[0], "loss_last": losses[-1], "steps": res.steps,
                     "background_frac_data": float((x_tr[:5000] < -0.5).float().mean())}  # fmt: skip
    model.eval()
    featnet = None
    if cfg.metrics_featnet:
        featnet, info = load_or_train(cfg.featnet, data)
        acc, n_test = float(info["test_acc"]), len(data["test"][0])
        metrics["featnet_test_acc"], metrics["featnet_sha256"] = acc, info["sha256"]
        metrics["featnet_test_acc_se"] = math.sqrt(acc * (1 - acc) / n_test)
    keep = (1000, 750, 500, 250, 100, 50, 0) if cfg.T == 1000 else (cfg.T, 0)
    for kind in cfg.sigma2_kinds:
        x0, chain = ddpm.sample(model, s, (cfg.n_samples, d), ctx.generator("sampling"), sigma2=kind, keep=keep,
                                  clip_x0=cfg.clip_x0)  # fmt: skip
        metrics[f"finite_{kind}"] = bool(torch.isfinite(x0).all())
        metrics[f"in_range_frac_{kind}"] = float((x0.abs() <= 1.5).float().mean())
        # MNIST is mostly background (-1 here): about 80% of training pixels are below -0.5; noise has about 30%
        metrics[f"background_frac_{kind}"] = float((x0 < -0.5).float().mean())
        img = ((x0 + 1) / 2).clamp(0, 1)
        shown = f"the first {min(100, len(img))} of {len(img)}" if len(img) > 100 else f"all {len(img)}"
        ctx.savefig(image_grid(img[:100], f"DDPM samples, sigma^2 = {kind} ({shown})", side), f"samples_{kind}",
                    caption=(f"DDPM samples ({shown}) with reverse-process variance sigma^2 = {kind} "
                             "(Algorithm 2), not cherry-picked. The claim predicts digit-like strokes on a plain "
                             "background, and samples that look alike for both choices of sigma^2; here "
                             f"{metrics[f'background_frac_{kind}']:.0%} of sample pixels are background (below "
                             f"-0.5 in [-1, 1]), against {metrics['background_frac_data']:.0%} of training pixels."))
        if kind == cfg.sigma2_kinds[0]:
            ctx.savefig(reverse_chain_figure(chain, min(6, cfg.n_samples), side, kind), "reverse_chain",
                        caption=("A few samples along the reverse process (Algorithm 2, sigma^2 = "
                                 f"{kind}), one per row, from pure noise at t = T (left) to x_0 (right): the noise "
                                 "should resolve into a digit as t falls to 0."))
        if featnet is not None:
            q = sample_quality(img, featnet, data, ctx.generator("gauss-ceiling"))
            for k, v in q.items():
                metrics[f"{k}_{kind}" if not k.startswith("fid_feat_") else k] = v
            metrics[f"fid_over_ceiling_{kind}"] = q["fid_feat"] / q["fid_feat_ceiling_gaussian"]
    metrics["background_frac"] = metrics[f"background_frac_{cfg.sigma2_kinds[0]}"]  # the smoke check's, any kind
    if featnet is not None and len(cfg.sigma2_kinds) == 2:
        a, b = (metrics[f"fid_feat_{k}"] for k in cfg.sigma2_kinds)
        metrics["fid_rel_diff_beta_vs_tilde"] = abs(a - b) / a
    return metrics
