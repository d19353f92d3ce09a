"""resnet/degradation: ResNet Fig 1 / Fig 6 (deeper plain nets have higher *training* error; residual nets do not)
and Fig 7 (residual responses are smaller), on CIFAR-style 6n+2 nets trained side by side on the same batches.

Data, model, fit, measure, figures: four nets (plain and residual, shallow and deep) see the same batches; every
`eval_every` steps each net's error on a fixed training subset (eval mode, BN running statistics) and on the test
set is logged. Fig 7's responses are the per-layer std of each 3x3 conv's BN output on a fixed batch of test images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mlreads.core.fields import choices, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
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
    n_train_eval: int = positive(2000)  # the fixed training subset on which training error is measured
    n_test_eval: int = positive(2000)
    n_response: int = positive(500)
    # every net takes the same number of steps (no time limit: a limit would cut the deep nets shorter)
    train: TrainConfig = field(default_factory=lambda: recipe(400, 0.1, warmup=20, min_lr_frac=0.1, weight_decay=1e-4,
                                                              optimizer="sgd", betas=(0.9, 0.999), grad_clip=None,
                                                              eval_every=50))  # fmt: skip


def run_degradation(cfg: DegradationConfig, ctx: RunContext) -> dict:
    data = load_images(cfg.dataset, cfg.pool)
    x_tr, y_tr = data["train"]
    x_ev, y_ev = subset(x_tr, y_tr, cfg.n_train_eval, ctx.generator("train-eval"))
    x_te, y_te = subset(*data["test"], cfg.n_test_eval, ctx.generator("test-eval"))
    x_resp = data["test"][0][: cfg.n_response]
    to_cl = lambda t: t.contiguous(memory_format=torch.channels_last)
    x_ev, x_te, x_resp = to_cl(x_ev), to_cl(x_te), to_cl(x_resp)
    batch_fn = batches(to_cl(x_tr), y_tr, cfg.batch_size)

    def eval_fn(model):
        return {"train_err": error_rate(model, x_ev, y_ev), "test_err": error_rate(model, x_te, y_te)}

    metrics: dict = {"dataset": cfg.dataset, "image_side": 28 // cfg.pool}
    histories, responses = {}, {}
    for kind in ("plain", "resnet"):
        for n in (cfg.n_shallow, cfg.n_deep):
            mcfg = ResNetConfig.cifar(n, residual=kind == "resnet", width=cfg.width, in_channels=1)
            name = f"{kind}-{mcfg.n_layers}"
            with init_rng(ctx.seed_for(f"init/{name}")):
                model = ResNet(mcfg).to(memory_format=torch.channels_last)
            res = fit(model, cfg.train, batch_fn, cross_entropy, eval_fn, ctx=ctx, desc=name)
            histories[name] = res.history
            metrics[f"train_err_{name}"] = res.final["train_err"]
            metrics[f"test_err_{name}"] = res.final["test_err"]
            metrics[f"steps_{name}"] = res.steps
            ctx.save_model(name, model, dataset=cfg.dataset, image_side=28 // cfg.pool)
            model.eval()
            stds = response_stds(model, x_resp)
            responses[name] = stds
            metrics[f"response_std_{name}"] = sum(stds) / len(stds)

    s, d = 6 * cfg.n_shallow + 2, 6 * cfg.n_deep + 2
    # percentage points, for the checks' margins
    for kind in ("plain", "resnet"):
        metrics[f"degradation_pp_{kind}"] = 100 * (metrics[f"train_err_{kind}-{d}"] - metrics[f"train_err_{kind}-{s}"])
    metrics["resnet_gain_deep_pp"] = 100 * (metrics[f"train_err_plain-{d}"] - metrics[f"train_err_resnet-{d}"])
    metrics["fig7_resnet_smaller_shallow"] = metrics[f"response_std_resnet-{s}"] < metrics[f"response_std_plain-{s}"]
    metrics["fig7_resnet_smaller_deep"] = metrics[f"response_std_resnet-{d}"] < metrics[f"response_std_plain-{d}"]
    metrics["fig7_resnet_smaller"] = metrics["fig7_resnet_smaller_shallow"] and metrics["fig7_resnet_smaller_deep"]
    ctx.savefig(degradation_figure(histories, s, d, cfg.dataset), "fig1_fig6_degradation",
                caption=("Training error (thin dashed) and test error (bold) against steps for plain nets (left) and "
                         f"ResNets (right) of {s} and {d} layers on {cfg.dataset}. Degradation is the deeper net's "
                         "dashed curve lying above the shallower one's: worse on its own training set, so not "
                         "overfitting. The claim predicts it for plain nets and not for ResNets; here deeper minus "
                         f"shallower final training error is {metrics['degradation_pp_plain']:+.1f} points (plain) "
                         f"and {metrics['degradation_pp_resnet']:+.1f} (ResNet)."))
    ctx.savefig(responses_figure(responses), "fig7_responses",
                caption=("Standard deviation of each 3x3 layer's response (its batch-norm output, before the ReLU) on "
                         "a batch of images, in depth order (top) and sorted by size (bottom); solid lines ResNets, "
                         "dashed plain nets. The claim (Fig 7) predicts each ResNet's curve lies below the plain net's "
                         "of the same depth: residual functions stay closer to zero."))
    return metrics
