"""ddpm/objective-ablation: DDPM Table 2 (and Table 1's trade-off): eps-prediction with L_simple gives the best
samples, the variational bound gives the better likelihood, and predicting mu_tilde with an unweighted MSE is worst
or unstable.

Data, model, fit, measure, figures: four denoisers (eps + L_simple, eps + VLB, mu + VLB, mu + MSE), the same MLP with
a time-conditioned skip path from x_t to the output (`DenoiserConfig.skip`, for both parameterisations: eps ~ x_t
and mu ~ x_t / sqrt(alpha_t) at large t), the same init seed and the same data batches. The VLB arms draw t by
importance (Nichol & Dhariwal 2021: p_t proportional to sqrt(E[L_t^2]), each draw weighted by 1 / (T p_t), an
unbiased estimate of the same bound with far less variance than uniform t); L_simple and the MSE draw t uniformly,
as the paper does. Two halves:

- 2-D (eight Gaussians on a ring): the likelihood half. The full bound L (Eq 5) on held-out points, the same x_t
  draws for every model, so two models' bounds are paired per point (`vlb_gap`, with its standard error); the MSE
  row's samples by sliced Wasserstein-1 and an RBF MMD.
- MNIST pooled to 14x14: the sample-quality half, which 2-D cannot test (its samples have no perceptible detail
  for L_simple to trade away). Samples by Algorithm 2 (sigma^2 = beta, x_0 clipped for the eps arms as the official
  code does) judged by a feature net trained on the same pooled images (its accuracy is the precondition): the
  Frechet distance in its feature space, and the gap to the best other arm with a bootstrap standard error.

Table 2's "unstable" is about training: an arm whose training loss goes non-finite (`trained_<obj>` false). An arm
whose samples blow up at sampling time is reported (`samples_finite_<obj>`) and left out of "worst".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from mlreads.core.errors import NonFiniteLoss
from mlreads.core.fields import choices, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.stats import paired
from mlreads.core.train import TrainConfig, fit, recipe
from mlreads.generative import ddpm
from mlreads.generative.exp_common import load_or_train, mnist_tensors
from mlreads.generative.featnet import FeatNetConfig, pool_up
from mlreads.generative.figures import ablation_figure, image_grid
from mlreads.generative.metrics import (
    frechet_distance,
    gaussian_stats,
    mmd_rbf,
    sliced_wasserstein,
)

OBJECTIVES = ("eps_simple", "eps_vlb", "mu_vlb", "mu_mse")


@dataclass(frozen=True)
class AblationConfig:
    T: int = positive(1000)
    model: ddpm.DenoiserConfig = field(default_factory=lambda: ddpm.DenoiserConfig(d_data=2, d_hidden=128, n_layers=3,
                                                                                   d_time=64, skip=True))
    batch_size: int = positive(256)
    n_eval: int = positive(2000)
    n_proj: int = positive(128)
    mmd_bandwidth: float = positive(0.1)  # about three mode widths: sees whether samples sit on the modes
    eval_vlb: bool = True
    importance: bool = True  # the VLB arms draw t by importance (Nichol & Dhariwal 2021)
    objectives: tuple[str, ...] = choices(OBJECTIVES, OBJECTIVES)
    train: TrainConfig = field(default_factory=lambda: recipe(6000, 2e-3, warmup=100, min_lr_frac=0.1,
                                                              optimizer="adam", grad_clip=1.0, log_every=50))
    # the sample-quality half on MNIST average-pooled by 2 (196 pixels)
    mnist: bool = True
    mnist_model: ddpm.DenoiserConfig = field(default_factory=lambda: ddpm.DenoiserConfig(
        d_data=196, d_hidden=512, n_layers=3, d_time=64, skip=True))  # fmt: skip
    mnist_batch_size: int = positive(128)
    mnist_samples: int = positive(400)
    n_boot: int = positive(50)  # bootstrap resamples of the FID gap
    mnist_train: TrainConfig = field(default_factory=lambda: recipe(4000, 1e-3, warmup=50, min_lr_frac=0.1,
                                                                    optimizer="adam", grad_clip=1.0, log_every=50))
    featnet: FeatNetConfig = field(default_factory=lambda: FeatNetConfig(steps=6000, pool=2))


def eight_gaussians(n: int, gen: torch.Generator) -> torch.Tensor:
    """Eight Gaussians (std 0.05 before scaling) at angles k pi / 4 on a circle of radius 2, scaled by 1/sqrt(2)
    so each axis has about unit variance."""
    k = torch.randint(0, 8, (n,), generator=gen).float()
    centres = 2 * torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], 1)
    return (centres + 0.05 * torch.randn(n, 2, generator=gen)) / math.sqrt(2)


def train_arm(obj: str, draw, model_cfg: ddpm.DenoiserConfig, train: TrainConfig, batch_size: int, s: ddpm.Schedule,
              importance: bool, ctx: RunContext, desc: str) -> ddpm.MLPDenoiser | None:  # fmt: skip
    """Train one objective's denoiser on batches `draw(n, gen)` (the same for every arm), from the half's shared init.
    None when its training loss went non-finite: Table 2's "unstable"."""
    sampler = ddpm.ImportanceSampler(s.T) if importance and obj.endswith("vlb") else None

    def batch_fn(step, gen):
        x0 = draw(batch_size, gen)
        if sampler is None:
            t, w = torch.randint(1, s.T + 1, (batch_size,), generator=gen), torch.ones(batch_size)
        else:
            t, w = sampler.sample(batch_size, gen)
        return x0, t, torch.randn(x0.shape, generator=gen), w

    def loss_fn(m, b):
        x0, t, eps, w = b
        terms = ddpm.loss_terms(m, s, x0, t, eps, obj, sigma2="beta")
        if sampler is not None:
            sampler.update(t, terms)
        return (terms * w).mean()

    with init_rng(ctx.seed_for(f"init/{desc.split('/')[0]}")):  # the same init for every objective of a half
        model = ddpm.MLPDenoiser(model_cfg)
    try:
        fit(model, train, batch_fn, loss_fn, ctx=ctx, desc=desc)
    except NonFiniteLoss as e:
        ctx.log(unstable=desc, error=str(e)[:200])
        return None
    return model.eval()


def run_objective_ablation(cfg: AblationConfig, ctx: RunContext) -> dict:
    s = ddpm.Schedule(ddpm.linear_betas(cfg.T))
    held_out = eight_gaussians(cfg.n_eval, ctx.generator("held-out"))
    metrics: dict = {}
    samples, bounds = {}, {}
    for obj in cfg.objectives:
        model = train_arm(obj, eight_gaussians, cfg.model, cfg.train, cfg.batch_size, s, cfg.importance, ctx,
                          f"2d/{obj}")  # fmt: skip
        metrics[f"trained_{obj}"] = model is not None
        param = "eps" if obj.startswith("eps") else "mu"
        x0 = None
        if model is not None:
            ctx.save_model(obj, model, T=cfg.T, betas="linear", param=param)
            x0, _ = ddpm.sample(model, s, (cfg.n_eval, 2), ctx.generator("sampling"), sigma2="beta", param=param)
            if cfg.eval_vlb:  # the same generator seed for every model: the bounds are paired per held-out point
                bounds[obj] = ddpm.vlb(model, s, held_out, ctx.generator("vlb"), param, per_example=True)
                metrics[f"vlb_{obj}"] = float(bounds[obj].mean())
        metrics[f"samples_finite_{obj}"] = x0 is not None and bool(torch.isfinite(x0).all())
        if metrics[f"samples_finite_{obj}"]:
            samples[obj] = x0
            metrics[f"sw_{obj}"] = sliced_wasserstein(x0.double(), held_out.double(), cfg.n_proj,
                                                      ctx.generator("projections"))  # fmt: skip
            metrics[f"mmd_{obj}"] = mmd_rbf(x0.double(), held_out.double(), cfg.mmd_bandwidth)
    noise = torch.randn(cfg.n_eval, 2, generator=ctx.generator("noise-baseline"))
    metrics["sw_noise_baseline"] = sliced_wasserstein(noise.double(), held_out.double(), cfg.n_proj,
                                                      ctx.generator("projections"))  # fmt: skip
    metrics["mmd_noise_baseline"] = mmd_rbf(noise.double(), held_out.double(), cfg.mmd_bandwidth)
    if "eps_simple" in samples:
        metrics["sw_ratio_to_noise_eps_simple"] = metrics["sw_eps_simple"] / metrics["sw_noise_baseline"]
    if "eps_vlb" in bounds and "eps_simple" in bounds:  # nats/dim, < 0 when the VLB-trained bound is lower
        metrics |= paired("vlb_gap", bounds["eps_vlb"].numpy(), bounds["eps_simple"].numpy())
    metrics |= worst_or_unstable(metrics, cfg.objectives)
    fig = ablation_figure(held_out, samples, metrics)
    fig.suptitle(f"2-D: samples of each arm whose samples stayed finite; worst SW: {metrics['worst_sw_objective']}; "
                 f"bound eps+VLB - eps+L_simple = {metrics.get('vlb_gap', float('nan')):+.3f} nats/dim",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    unstable = [o for o in cfg.objectives if not metrics[f"trained_{o}"]]
    blown = [o for o in cfg.objectives if metrics[f"trained_{o}"] and not metrics[f"samples_finite_{o}"]]
    ctx.savefig(fig, "table2_samples",
                caption=("Held-out 2-D data (left) and samples from the diffusion model trained with each objective "
                         "whose samples stayed finite, titled with the sliced Wasserstein distance to the held-out "
                         "data (SW, lower = better samples) and the variational bound (lower = better likelihood). "
                         "The claim predicts the VLB-trained eps model has the lower bound, and mu-tilde with an "
                         "unweighted MSE the worst samples or unstable training. Unstable to train: "
                         f"{', '.join(unstable) or 'none'}; trained but samples not finite: "
                         f"{', '.join(blown) or 'none'}."))
    if cfg.mnist:
        metrics |= mnist_half(cfg, s, ctx)
    return {k: (v if not (isinstance(v, float) and math.isinf(v)) else 1e9) for k, v in metrics.items()}


def worst_or_unstable(metrics: dict, objectives) -> dict:
    """Table 2's mu + MSE row: unstable to train, or the worst SW among the arms whose samples stayed finite."""
    finite = {o: metrics[f"sw_{o}"] for o in objectives if metrics.get(f"samples_finite_{o}")}
    worst = max(finite, key=finite.get) if finite else "none"
    mse_bad = "mu_mse" in objectives and (not metrics["trained_mu_mse"] or worst == "mu_mse")
    return {"worst_sw_objective": worst, "mu_mse_worst_or_unstable": mse_bad}


def mnist_half(cfg: AblationConfig, s: ddpm.Schedule, ctx: RunContext) -> dict:
    """Each objective on MNIST pooled by 2, its samples judged in a feature net's space (trained on the same pooled
    images); `fid_gap_mnist` = the best other arm's Frechet distance minus eps + L_simple's, bootstrapped."""
    pool = cfg.featnet.pool
    data = mnist_tensors()
    x_tr = F.avg_pool2d(data["train"][0].view(-1, 1, 28, 28), pool).flatten(1) * 2 - 1  # (n, 196) in [-1, 1]
    side = 28 // pool

    def draw(n, gen):
        return x_tr[torch.randint(0, len(x_tr), (n,), generator=gen)]

    featnet, info = load_or_train(cfg.featnet, data)
    acc, n_test = float(info["test_acc"]), len(data["test"][0])
    out: dict = {"featnet_test_acc": acc, "featnet_test_acc_se": math.sqrt(acc * (1 - acc) / n_test),
                 "featnet_sha256": info["sha256"]}  # fmt: skip
    with torch.no_grad():
        ref = featnet.features(pool_up(data["test"][0][:5000], pool)).double().numpy()
    feats, grids = {}, {}
    for obj in cfg.objectives:
        model = train_arm(obj, draw, cfg.mnist_model, cfg.mnist_train, cfg.mnist_batch_size, s, cfg.importance, ctx,
                          f"mnist/{obj}")  # fmt: skip
        out[f"mnist_trained_{obj}"] = model is not None
        if model is None:
            continue
        ctx.save_model(f"mnist-{obj}", model, image_side=side, pixel_range=[-1, 1], T=cfg.T, betas="linear",
                       param="eps" if obj.startswith("eps") else "mu")  # fmt: skip
        param = "eps" if obj.startswith("eps") else "mu"
        x0, _ = ddpm.sample(model, s, (cfg.mnist_samples, side * side), ctx.generator("mnist-sampling"), sigma2="beta",
                            param=param, clip_x0=param == "eps")  # fmt: skip
        if not bool(torch.isfinite(x0).all()):
            out[f"mnist_samples_finite_{obj}"] = False
            continue
        out[f"mnist_samples_finite_{obj}"] = True
        img = ((x0.clamp(-1, 1) + 1) / 2).view(-1, 1, side, side)
        up = F.interpolate(img, scale_factor=pool, mode="nearest").flatten(1)  # (n, 784), what the feature net reads
        grids[obj] = img.flatten(1)
        with torch.no_grad():
            feats[obj] = featnet.features(up).double().numpy()
        out[f"fid_mnist_{obj}"] = _fid(feats[obj], ref)
    others = {o: out[f"fid_mnist_{o}"] for o in feats if o != "eps_simple"}
    if "eps_simple" in feats and others:
        best = min(others, key=others.get)
        out["fid_mnist_best_other"], out["best_other_objective"] = others[best], best
        out |= fid_gap(feats[best], feats["eps_simple"], ref, cfg.n_boot, ctx.generator("fid-bootstrap"))
    for obj, g in grids.items():
        ctx.savefig(image_grid(g[:64], f"{obj}: feature FID {out[f'fid_mnist_{obj}']:.1f} (the first 64 samples)",
                               side), f"mnist_samples_{obj}",
                    caption=(f"The first 64 samples of the {obj} arm on MNIST pooled to {side}x{side}, not "
                             "cherry-picked. The claim (Table 2) predicts eps + L_simple's look best and have the "
                             "lowest Frechet distance in the feature net's space."))  # fmt: skip
    return out


def _fid(a: np.ndarray, ref: np.ndarray) -> float:
    fa, fr = gaussian_stats(torch.from_numpy(a)), gaussian_stats(torch.from_numpy(ref))
    return frechet_distance(*fa, *fr)


def fid_gap(other: np.ndarray, simple: np.ndarray, ref: np.ndarray, n_boot: int, gen: torch.Generator) -> dict:
    """`fid_gap_mnist` = FID(other) - FID(eps + L_simple) against the same reference features, with a bootstrap
    standard error and percentile interval over resamples of both sample sets (the reference held fixed)."""
    value = _fid(other, ref) - _fid(simple, ref)
    boots = []
    for _ in range(n_boot):
        i = torch.randint(0, len(other), (len(other),), generator=gen).numpy()
        j = torch.randint(0, len(simple), (len(simple),), generator=gen).numpy()
        boots.append(_fid(other[i], ref) - _fid(simple[j], ref))
    se = float(np.std(boots, ddof=1))
    lo, hi = np.percentile(boots, [2.275, 97.725])
    return {"fid_gap_mnist": value, "fid_gap_mnist_se": se, "fid_gap_mnist_ci": [float(lo), float(hi)]}
