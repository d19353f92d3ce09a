"""dropout/sparsity (Section 7.2, Fig 8): dropout makes an autoencoder's hidden activations sparse."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from mlreads.core.fields import in_range, positive
from mlreads.core.stats import bootstrap
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, fit
from mlreads.dropout.exp_common import mnist_tensors, random_batches
from mlreads.dropout.model import Autoencoder


@dataclass(frozen=True)
class SparsityConfig:
    n_train: int = positive(50_000)
    n_test: int = positive(10_000)
    d_hidden: int = positive(256)
    p_keep: float = in_range(0.5, 0.0, 1.0, lo_open=True, hi_open=False)  # retention on the hidden layer (Section 7.2)
    epochs: int = positive(10)
    batch_size: int = positive(128)
    # lr 3e-4: the largest of {3e-3, 1e-3, 3e-4, 1e-4} at which the plain autoencoder keeps >= 90% of its units
    # alive over the full budget's 100 epochs (benchmarks/dropout_sparsity_lr_pilot.py); at 3e-3 half of them die
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=3e-4, schedule="cosine", optimizer="adam", grad_clip=None, log_every=50))  # fmt: skip


def reconstruction_loss(model, batch) -> torch.Tensor:
    """Squared error summed over pixels, averaged over the batch's images: `fit`'s loss and the test metric."""
    x, target = batch
    return F.mse_loss(model(x), target, reduction="sum") / len(x)


def run_sparsity(cfg: SparsityConfig, ctx) -> dict:
    """Train a 784-256-784 ReLU autoencoder (squared error) without and with hidden dropout; measure activations.

    Metrics: mean_act_<arm> (mean hidden activation over test images and units), median_unit_act_<arm> (median over
    units of each unit's mean activation, Fig 8's left histograms), zero_frac_<arm> (share of exact zeros),
    alive_frac_<arm> (share of units active on at least one test image: a unit that never fires died in training),
    act_ratio = mean_act_none / mean_act_dropout with a bootstrap interval over the test images (act_ratio_se,
    act_ratio_ci), recon_<arm> (test squared error per image).
    """
    from mlreads.dropout import figures

    data = mnist_tensors(cfg.n_train, cfg.n_test)
    xtr, _ = data["train"]
    xte, _ = data["test"]
    steps = cfg.epochs * cfg.n_train // cfg.batch_size
    batches = random_batches(xtr, xtr, batch_size=cfg.batch_size)
    out, acts = {}, {}
    for key, p in (("none", 1.0), ("dropout", cfg.p_keep)):
        with init_rng(ctx.seed_for("init/autoencoder")):  # the same initial weights for both arms
            model = Autoencoder(784, cfg.d_hidden, p_keep=p)
        fit(model, replace(cfg.train, steps=steps), batches,
            reconstruction_loss, ctx=ctx, desc=f"ae-{key}")  # fmt: skip
        model.eval()
        with torch.no_grad():
            h = model.code(xte)  # (N, d_hidden)
            out[f"recon_{key}"] = float(reconstruction_loss(model, (xte, xte)))
        acts[key] = h
        ctx.save_model(key, model)
        out[f"mean_act_{key}"] = float(h.mean())
        out[f"median_unit_act_{key}"] = float(h.mean(0).median())
        out[f"zero_frac_{key}"] = float((h == 0).float().mean())
        out[f"alive_frac_{key}"] = float((h.amax(0) > 0).float().mean())
    # the ratio of mean activations, with its noise over the test images (each image's mean over the units, paired)
    per_image = torch.stack([acts["none"].mean(1), acts["dropout"].mean(1)], 1).double().numpy()
    out.update(bootstrap("act_ratio", per_image, lambda x: x[:, 0].mean() / max(x[:, 1].mean(), 1e-12),
                         seed=ctx.seed_for("bootstrap")))  # fmt: skip
    out["sparser_with_dropout"] = out["zero_frac_dropout"] > out["zero_frac_none"]
    ctx.savefig(figures.activation_histograms(acts, {k: out[f"zero_frac_{k}"] for k in acts}), "fig8_activations",
                caption=(f"Hidden activations of the autoencoder's {cfg.d_hidden} ReLU units on test images, trained "
                         "without and with dropout from the same initial weights. Left: each unit's mean activation; "
                         "right: all activations (log counts). The claim predicts dropout moves both towards zero: "
                         "lower unit means and more activations exactly 0; here "
                         f"{out['zero_frac_none']:.0%} are 0 without dropout and {out['zero_frac_dropout']:.0%} "
                         "with it."))
    return out
