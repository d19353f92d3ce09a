"""gan/mnist: GAN Table 1 (Parzen-window log-likelihood on MNIST, 225 +- 2 nats) and Fig 2 (samples are not copies of
training images), with mode collapse measured (the complaint users of GAN code raise most).

Data, model, fit, measure, figures: G (MLP) and D (maxout with dropout) trained as two `Phase`s of one `fit` (k D
steps, then one G step, Algorithm 1) on MNIST train[0:50k]; then 10k samples are scored: the Parzen estimate on
the 10k test images with sigma chosen on 1k validation images (the official protocol), the same estimate with real
held-out images as centres (Theis et al. 2016: Parzen rewards the wrong things), class coverage and confidence of
the cached feature net, the Frechet distance in its feature space, and nearest-training-neighbour distances
against those of real test images.

The training recipe is the official one (goodfeli/adversarial `mnist.yaml`, `recipe="official"`): weights uniform in
+-0.05 for G and +-0.005 for D, biases 0 (G's output bias from the data's marginals), SGD at lr 0.1 divided by
1.000004 every step (floor 1e-6), momentum from 0.5 rising linearly to 0.7 over 250 epochs, D's objective halved (its
gradient at half G's rate), k D steps per G step. A run where D wins completely (its mean output on generated images
under 0.01 late in training) has not trained a generator: the experiment's precondition reads `d_fake_min_late`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from mlreads.core.fields import choices, in_range, nonnegative, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import Phase, TrainConfig, fit, recipe
from mlreads.generative.exp_common import load_or_train, mnist_tensors, sample_quality
from mlreads.generative.featnet import FeatNetConfig
from mlreads.generative.figures import gan_curves_figure, image_grid, neighbours_grid
from mlreads.generative.gan import GAN, GANConfig, d_loss, g_loss, joint_loss
from mlreads.generative.metrics import nearest_distances, parzen_estimate


@dataclass(frozen=True)
class GanMnistConfig:
    model: GANConfig = GANConfig(d_gen=(600, 600), d_disc=(240, 240), n_pieces=4, noise="uniform")
    k: int = positive(1)  # Algorithm 1's D steps per G step (the paper used k = 1)
    # "simultaneous": the official code's update, both players' gradients from one graph, applied together
    # (gan.joint_loss; needs k = 1); "alternating": Algorithm 1's D step, then G's step against the updated D
    updates: str = choices("simultaneous", ("simultaneous", "alternating"))
    output_bias_clip: float = in_range(1e-7, 0.0, 0.5, lo_open=True)  # G's output bias: data means clipped (pylearn2)
    # "official": mnist.yaml's init ranges, SGD with its momentum ramp and lr decay, D's halved objective;
    # "torch": torch's default init and `train` as configured (Adam, say)
    recipe: str = choices("official", ("official", "torch"))
    g_init_range: float = positive(0.05)  # mnist.yaml: irange .05 for G's layers
    d_init_range: float = positive(0.005)  # irange .005 for D's
    momentum_final: float = in_range(0.7, 0.0, 1.0)  # MomentumAdjustor: final_momentum .7 ...
    momentum_saturate_epochs: float = positive(250.0)  # ... reached at epoch 250 (from train.betas[0] = 0.5)
    lr_decay: float = positive(1.000004)  # ExponentialDecay: lr / decay_factor every step ...
    min_lr: float = positive(1e-6)  # ... down to min_lr
    d_lr_scale: float = positive(0.5)  # the official d_obj = 0.5 * (...): under SGD, half the rate for D
    n_train: int = positive(50_000)  # for the epochs of the momentum ramp
    late_fraction: float = in_range(0.25, 0.0, 1.0, lo_open=True)  # d_fake_min_late: min over this last share
    g_loss: str = choices("non_saturating", ("non_saturating", "saturating"))
    batch_size: int = positive(100)
    init_output_bias: bool = True
    n_samples: int = positive(10_000)  # Parzen centres
    n_val: int = positive(1000)  # bandwidth selection
    n_test: int = nonnegative(10_000, what="0 means off")
    # samples (and test images) compared with all 50k training images
    n_nearest: int = nonnegative(2000, what="0 means off")
    metrics_featnet: bool = True
    featnet: FeatNetConfig = FeatNetConfig()
    train: TrainConfig = field(default_factory=lambda: recipe(3000, 0.1, schedule="constant", optimizer="sgd",
                                                              betas=(0.5, 0.999), grad_clip=None, log_every=50))


def official_init(model: GAN, g_range: float, d_range: float) -> None:
    """mnist.yaml's init: every weight uniform in +-irange (G 0.05, D 0.005), every bias 0."""
    with torch.no_grad():
        for part, r in ((model.gen, g_range), (model.disc, d_range)):
            for m in part.modules():
                if isinstance(m, torch.nn.Linear):
                    m.weight.uniform_(-r, r)
                    m.bias.zero_()


def official_schedule(cfg: GanMnistConfig):
    """`after_step` for the official SGD: lr_t = lr_0 / decay^t (floor min_lr) and momentum from train.betas[0]
    linearly to momentum_final at momentum_saturate_epochs, per parameter group (fit multiplies base_lr by its
    constant schedule's 1)."""
    m0 = cfg.train.betas[0]
    steps_per_epoch = cfg.n_train / cfg.batch_size

    def after_step(done, model, opt, batch):
        ramp = min(1.0, done / (cfg.momentum_saturate_epochs * steps_per_epoch))
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["base_lr"])
            g["base_lr"] = max(cfg.min_lr, g["initial_lr"] / cfg.lr_decay**done)
            g["momentum"] = m0 + (cfg.momentum_final - m0) * ramp

    return after_step


def run_gan_mnist(cfg: GanMnistConfig, ctx: RunContext) -> dict:
    data = mnist_tensors()
    x_tr = data["train"][0]
    with init_rng(ctx.seed_for("init/gan")):
        model = GAN(cfg.model)
        if cfg.recipe == "official":
            official_init(model, cfg.g_init_range, cfg.d_init_range)
    if cfg.init_output_bias:
        model.init_output_bias(x_tr.mean(0), cfg.output_bias_clip)
    gen_eval = ctx.generator("samples")
    z_fixed = model.noise(512, ctx.generator("z-fixed"))
    x_real_probe = x_tr[:512]
    mean_pixels = x_tr.mean(0)

    @torch.no_grad()
    def probe(m: GAN) -> dict:
        fake = m.gen(z_fixed)
        real_logit, fake_logit = m.disc(x_real_probe), m.disc(fake)
        ones, zeros = torch.ones_like(real_logit), torch.zeros_like(real_logit)
        return {"d_real": torch.sigmoid(real_logit).mean(), "d_fake": torch.sigmoid(fake_logit).mean(),
                "mean_pixel_err": (fake.mean(0) - mean_pixels).abs().mean(),
                # both players' losses on the fixed probe (D without dropout): what the curves show
                "probe_loss_d": F.binary_cross_entropy_with_logits(real_logit, ones)
                + F.binary_cross_entropy_with_logits(fake_logit, zeros),
                "probe_loss_g": F.binary_cross_entropy_with_logits(fake_logit, ones),
                # G's saturated outputs (< 0.01 or > 0.99), the first sign of a generator breaking
                "saturated_frac": ((fake < 0.01) | (fake > 0.99)).float().mean()}  # fmt: skip

    init = probe(model.eval())

    def batch_fn(step, gen):
        idx = torch.randint(0, len(x_tr), (cfg.batch_size,), generator=gen)
        return x_tr[idx], model.noise(cfg.batch_size, gen)

    if cfg.updates == "simultaneous":
        if cfg.k != 1:
            raise ValueError(f"updates='simultaneous' takes one D step per G step (k = 1), got k = {cfg.k}")
        phases = [Phase("gan", lambda m, b: joint_loss(m, b, cfg.g_loss))]
    else:
        phases = [Phase("d", d_loss, params=lambda m: m.disc.parameters(), repeats=cfg.k),
                  Phase("g", lambda m, b: g_loss(m, b, cfg.g_loss), params=lambda m: m.gen.parameters())]  # fmt: skip
    eval_every = max(1, cfg.train.steps // 20)
    official = cfg.recipe == "official"
    groups = ([{"params": list(model.disc.parameters()), "lr": cfg.train.lr * cfg.d_lr_scale},
               {"params": list(model.gen.parameters()), "lr": cfg.train.lr}] if official else None)  # fmt: skip
    res = fit(model, replace(cfg.train, eval_every=eval_every), batch_fn, phases, probe, ctx=ctx, desc="gan",
              groups=groups, after_step=official_schedule(cfg) if official else None)  # fmt: skip
    model.eval()
    ctx.save_model("gan", model, image_side=28, pixel_range=[0, 1])
    final = res.final
    metrics: dict = {"d_real": final["d_real"], "d_fake": final["d_fake"], "mean_pixel_err": final["mean_pixel_err"],
                     "mean_pixel_err_init": float(init["mean_pixel_err"]), "steps": res.steps}  # fmt: skip
    # D's health: the lowest mean D(G(z)) over the last evaluations (D winning outright drives it to 0)
    probes = [float(r["d_fake"]) for r in res.history if "d_fake" in r]
    metrics["d_fake_min_late"] = min(probes[-max(1, round(cfg.late_fraction * len(probes))) :])
    metrics["mean_pixel_err_ratio"] = metrics["mean_pixel_err"] / metrics["mean_pixel_err_init"]
    metrics["d_real_gt_fake"] = metrics["d_real"] > metrics["d_fake"]
    with torch.no_grad():
        samples = torch.cat([model.sample(1000, gen_eval) for _ in range(max(1, cfg.n_samples // 1000))])
    curves = gan_curves_figure(res.history)
    curves.suptitle(f"at the end D(x) = {metrics['d_real']:.2f}, D(G(z)) = {metrics['d_fake']:.3f}; lowest D(G(z)) "
                    f"over the last quarter {metrics['d_fake_min_late']:.3f}", fontsize=9)
    curves.tight_layout()
    ctx.savefig(curves, "training_curves",
                caption=("Left: the discriminator's and generator's losses against steps, the dashed line at log 4 "
                         "(D's loss when it outputs 1/2 everywhere); right: D's mean output on real and generated "
                         "images, with the game's equilibrium D = 1/2 dashed. Look for bounded losses and neither "
                         f"output stuck at 0 or 1; at the end D(x) = {metrics['d_real']:.2f} and D(G(z)) = "
                         f"{metrics['d_fake']:.2f}."))

    if cfg.n_test:
        x_val, x_te = data["val"][0][: cfg.n_val], data["test"][0][: cfg.n_test]
        p = parzen_estimate(samples, x_val, x_te)
        metrics.update(parzen_ll=p["ll"], parzen_se=p["se"], parzen_sigma=p["sigma"])
        # real held-out images as centres (val[1000:]), the yardstick Theis et al. 2016 ask for
        p_real = parzen_estimate(data["val"][0][cfg.n_val : cfg.n_val + len(samples)], x_val, x_te)
        metrics.update(parzen_ll_real_centres=p_real["ll"], parzen_sigma_real=p_real["sigma"])
    if cfg.n_nearest:
        d_s, idx = nearest_distances(samples[: cfg.n_nearest], x_tr)
        d_t, _ = nearest_distances(data["test"][0][: cfg.n_nearest], x_tr)
        metrics["nn_dist_median_samples"] = float(d_s.median())
        metrics["nn_dist_median_test"] = float(d_t.median())
        metrics["nn_dist_ratio"] = metrics["nn_dist_median_samples"] / metrics["nn_dist_median_test"]
        ctx.savefig(neighbours_grid(samples[:8], x_tr[idx[:8]]), "fig2_nearest_training_images",
                    caption=("Top row: 8 GAN samples; bottom row: the training image nearest to each. The claim "
                             "(Fig 2) predicts the pairs differ, the samples are not copies; the samples' median "
                             "distance to their nearest training image is "
                             f"{metrics['nn_dist_ratio']:.2f}x that of real test images."))
    if cfg.metrics_featnet:
        featnet, info = load_or_train(cfg.featnet, data)
        metrics["featnet_test_acc"], metrics["featnet_sha256"] = info["test_acc"], info["sha256"]
        q = sample_quality(samples, featnet, data, ctx.generator("gauss-ceiling"))
        metrics.update(q)
        metrics["fid_over_ceiling"] = q["fid_feat"] / q["fid_feat_ceiling_gaussian"]
    ctx.savefig(image_grid(samples[:100], _samples_title(metrics)), "samples",
                caption=("The first 100 GAN samples, not cherry-picked: they should look like handwritten digits "
                         "of varied classes and styles, not noise or one digit repeated (mode collapse). The "
                         "Parzen-window log-likelihood the claim quotes is a metric, not this picture."))
    return metrics


def _samples_title(metrics: dict) -> str:
    """What the sample grid shows, in numbers: the feature net's digit coverage (the mode-collapse check) and FID."""
    title = "GAN samples, the first 100 (not cherry-picked)"
    if "n_classes_covered" in metrics:
        title += (f"\n{metrics['n_classes_covered']} of 10 digits at >= 3%, the rarest "
                  f"{100 * metrics['min_class_fraction']:.1f}%; FID {metrics['fid_over_ceiling']:.2f}x the ceiling")
    return title
