"""resnet/degradation: ResNet Fig 1 / Fig 6 (deeper plain nets have higher *training* error; residual nets do not)
and Fig 7 (residual responses are smaller), on CIFAR-style 6n+2 nets trained side by side on the same batches.

Data, model, fit, measure, figures: four nets (plain and residual, shallow and deep) are trained on the same fixed
training set of `n_train` images, on the same batches, for many epochs with a cosine schedule (the degradation
question is whether the deeper net can fit its own training set). Every `eval_every` steps each net's error on a
fixed part of that training set (eval mode, BN running statistics) and on test images is logged. The compared
training error is each image's error averaged over the last `n_last` evaluations, so one evaluation's swing does not
decide; deeper and shallower nets are compared on the same images (paired per image, with the standard error of the
mean difference). Fig 7's responses are each 3x3 conv's BN output, per-channel s.d. on test images, after training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mlreads.core.fields import choices, nonnegative, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.stats import paired
from mlreads.core.train import TrainConfig, fit, recipe
from mlreads.vision.exp_common import (
    DATASETS,
    batches,
    cross_entropy,
    error_rate,
    load_images,
    subset,
)
from mlreads.vision.figures import degradation_figure, responses_figure
from mlreads.vision.resnet import ResNet, ResNetConfig, response_stds


@dataclass(frozen=True)
class DegradationConfig:
    dataset: str = choices("fashion", DATASETS)  # "mnist" or "fashion" (CIFAR-10 is not available offline)
    pool: int = positive(2, le=28)  # 28x28 average-pooled to 14x14
    n_shallow: int = positive(3)  # 6n+2 = 20 layers
    n_deep: int = positive(9)  # 56 layers
    width: int = positive(8)  # paper: 16
    batch_size: int = positive(64)  # paper: 128
    n_train: int = nonnegative(5000, what="0 means the whole split")  # the training set every net must fit
    n_train_eval: int = positive(2500)  # the fixed part of it on which training error is measured
    n_test_eval: int = positive(1000)
    n_last: int = positive(3)  # training error = each image's error averaged over the last n_last evaluations
    n_response: int = positive(500)
    # every net takes the same number of steps (no time limit: a limit would cut the deep nets shorter); 1200 steps of
    # batch 64 = 15 epochs of 5k, cosine to 1% of the peak so the last evaluations read a settled net
    train: TrainConfig = field(default_factory=lambda: recipe(1200, 0.1, warmup=60, min_lr_frac=0.01,
                                                              weight_decay=1e-4, optimizer="sgd", betas=(0.9, 0.999),
                                                              grad_clip=None, eval_every=100))  # fmt: skip


def run_degradation(cfg: DegradationConfig, ctx: RunContext) -> dict:
    data = load_images(cfg.dataset, cfg.pool)
    x_tr, y_tr = data["train"]
    if cfg.n_train:
        x_tr, y_tr = subset(x_tr, y_tr, cfg.n_train, ctx.generator("train-subset"))
    x_ev, y_ev = x_tr[: cfg.n_train_eval], y_tr[: cfg.n_train_eval]  # the subset is already in random order
    x_te, y_te = subset(*data["test"], cfg.n_test_eval, ctx.generator("test-eval"))
    x_resp = data["test"][0][: cfg.n_response]
    to_cl = lambda t: t.contiguous(memory_format=torch.channels_last)
    x_ev, x_te, x_resp = to_cl(x_ev), to_cl(x_te), to_cl(x_resp)
    batch_fn = batches(to_cl(x_tr), y_tr, cfg.batch_size)

    metrics: dict = {"dataset": cfg.dataset, "image_side": 28 // cfg.pool, "n_train": len(x_tr)}
    histories, responses, flags = {}, {}, {}
    for kind in ("plain", "resnet"):
        for n in (cfg.n_shallow, cfg.n_deep):
            mcfg = ResNetConfig.cifar(n, residual=kind == "resnet", width=cfg.width, in_channels=1)
            name = f"{kind}-{mcfg.n_layers}"
            wrong_log: list[np.ndarray] = []

            def eval_fn(model, wrong_log=wrong_log):
                with torch.no_grad():
                    wrong = torch.cat([model(xb).argmax(1) != yb for xb, yb in zip(x_ev.split(500), y_ev.split(500))])
                wrong_log.append(wrong.numpy())
                return {"train_err": float(wrong.float().mean()), "test_err": error_rate(model, x_te, y_te)}

            with init_rng(ctx.seed_for(f"init/{name}")):
                model = ResNet(mcfg).to(memory_format=torch.channels_last)
            res = fit(model, cfg.train, batch_fn, cross_entropy, eval_fn, ctx=ctx, desc=name)
            histories[name] = res.history
            flags[name] = np.mean(wrong_log[-cfg.n_last :], axis=0)  # (n_train_eval,) each image's late error
            metrics[f"train_err_{name}"] = float(flags[name].mean())
            metrics[f"final_train_err_{name}"] = res.final["train_err"]
            metrics[f"test_err_{name}"] = res.final["test_err"]
            metrics[f"steps_{name}"] = res.steps
            ctx.save_model(name, model, dataset=cfg.dataset, image_side=28 // cfg.pool)
            model.eval()
            stds = response_stds(model, x_resp)
            responses[name] = stds
            metrics[f"response_std_{name}"] = sum(stds) / len(stds)

    s, d = 6 * cfg.n_shallow + 2, 6 * cfg.n_deep + 2
    # percentage points, for the checks' margins; paired over the same training images
    for kind in ("plain", "resnet"):
        metrics |= paired(f"degradation_pp_{kind}", 100 * flags[f"{kind}-{d}"], 100 * flags[f"{kind}-{s}"])
    metrics |= paired("resnet_gain_deep_pp", 100 * flags[f"plain-{d}"], 100 * flags[f"resnet-{d}"])
    for depth, size in ((s, "shallow"), (d, "deep")):
        ratio = metrics[f"response_std_resnet-{depth}"] / metrics[f"response_std_plain-{depth}"]
        metrics[f"response_ratio_{size}"] = ratio
        metrics[f"fig7_resnet_smaller_{size}"] = ratio < 1
    metrics["fig7_resnet_smaller"] = metrics["fig7_resnet_smaller_shallow"] and metrics["fig7_resnet_smaller_deep"]
    ctx.savefig(degradation_figure(histories, s, d, cfg.dataset, metrics), "fig1_fig6_degradation",
                caption=("Training error (thin dashed, on the training set the nets fit) and test error (bold) against "
                         f"steps for plain nets (left) and ResNets (right) of {s} and {d} layers on {cfg.dataset}, "
                         f"{len(x_tr)} training images for {cfg.train.steps} steps. Degradation is the deeper net's "
                         "dashed curve lying above the shallower one's: worse on its own training set, so not "
                         "overfitting. The claim (Figs 1, 6) predicts it for plain nets and not for ResNets."))
    ctx.savefig(responses_figure(responses, metrics["response_ratio_shallow"], metrics["response_ratio_deep"]),
                "fig7_responses",
                caption=("Standard deviation of each 3x3 layer's response (its batch-norm output, before the ReLU; "
                         "per channel over test images, root mean square over channels) after training, in depth "
                         "order (top) and sorted by size (bottom); solid lines ResNets, dashed plain nets. The claim "
                         "(Fig 7) predicts each ResNet's curve lies below the plain net's of the same depth: residual "
                         "functions stay closer to zero."))
    return metrics
