"""adam/mlp-mnist (Kingma & Ba 2015, Section 6.2, Fig 2a): on a 2x1000 ReLU MLP with dropout, Adam lowers the
training cost fastest among AdaGrad, RMSProp, SGD-Nesterov and AdaDelta."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from mlreads.core.fields import in_range, nonempty, nonnegative, positive
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, fit
from mlreads.dropout import DropoutMLP, MLPConfig
from mlreads.optim.exp_common import (
    lr_grid,
    lr_grid_problem,
    mnist_tensors,
    optimizer,
    random_batches,
)


@dataclass(frozen=True)
class MLPOptConfig:
    n_train: int = positive(10_000)
    d_hidden: tuple[int, ...] = positive((1000, 1000))
    p_keep_input: float = in_range(0.8, 0.0, 1.0, lo_open=True, hi_open=False)
    p_keep_hidden: float = in_range(0.5, 0.0, 1.0, lo_open=True, hi_open=False)
    epochs: int = positive(5)
    batch_size: int = positive(128)
    # per optimiser its standard lr s (torch's default where it has one; 0.01 for AdaGrad, 0.1 for SGD-Nesterov)
    # and 3 s; the better of the two counts
    lrs: tuple[str, ...] = nonempty(("adam:1e-3/3e-3", "adagrad:1e-2/3e-2", "rmsprop:1e-3/3e-3",
                                     "sgd-nesterov:1e-1/3e-1", "adadelta:1.0/3.0"), check=lr_grid_problem)  # fmt: skip
    ckpt_every: int = nonnegative(0)  # a checkpoint every N steps of each fit (full runs: --resume continues them)


def run_mlp(cfg: MLPOptConfig, ctx) -> dict:
    """Train the same dropout MLP (same init, same batches, same masks stream) with each optimiser at its lrs.

    Metrics: cost_<opt>_<lr> per run; cost_<opt> (the better of its lrs; the mean cross-entropy of the
    weight-scaled net on the training subset at the end),
    adam_lowest (Adam's cost is the smallest), margin = best other cost - Adam's cost.
    """
    from mlreads.optim import figures

    x, y = mnist_tensors(cfg.n_train)["train"]
    steps_per_epoch = cfg.n_train // cfg.batch_size
    train_cost, out_lr, curves = {}, {}, {}
    for name, lr in ((n, lr) for n, lrs in lr_grid(cfg.lrs) for lr in lrs):
        with init_rng(ctx.seed_for("init/mlp")):
            model = DropoutMLP(MLPConfig(d_hidden=cfg.d_hidden, p_keep_input=cfg.p_keep_input,
                                         p_keep_hidden=cfg.p_keep_hidden))  # fmt: skip
        train = TrainConfig(steps=cfg.epochs * steps_per_epoch, lr=lr, schedule="constant", grad_clip=None,
                            eval_every=max(1, steps_per_epoch // 2), log_every=max(1, steps_per_epoch // 4),
                            ckpt_every=cfg.ckpt_every)  # fmt: skip
        with init_rng(ctx.seed_for("masks")):  # the global RNG (dropout masks) scoped: the same masks for every run
            res = fit(model, train, random_batches(x, y, batch_size=cfg.batch_size),
                      lambda m, b: F.cross_entropy(m(b[0]), b[1]),
                      eval_fn=lambda m: {"train_cost": float(F.cross_entropy(m(x), y))}, ctx=ctx,
                      optimizer=optimizer(name), desc=f"{name}-lr{lr:g}")  # fmt: skip
        out_lr[f"cost_{name}_{lr:g}"] = res.final["train_cost"]
        if name not in train_cost or res.final["train_cost"] < train_cost[name]:
            train_cost[name] = res.final["train_cost"]
            ctx.save_model(name, model)  # each optimiser's model at its better lr
            xs, ys = res.series("train_cost")
            curves[name] = (f"{name} (lr {lr:g})", [s / steps_per_epoch for s in xs], ys)
    curves = {label: (xs, ys) for label, xs, ys in curves.values()}
    out = {**{f"cost_{k}": v for k, v in train_cost.items()}, **out_lr}
    others = min(v for k, v in train_cost.items() if k != "adam")
    out["adam_lowest"] = train_cost["adam"] < others
    out["margin"] = others - train_cost["adam"]
    ctx.savefig(figures.training_cost(curves, "MNIST 2x1000 ReLU MLP with dropout"), "fig2a_mlp_cost",
                caption=("Training cost (log scale) against epochs for the same dropout MLP (same init, batches and "
                         "dropout masks) under each optimiser at the best learning rate of its grid. The claim holds "
                         f"if Adam's curve ends lowest; here Adam ends at {train_cost['adam']:.3f} nats and the best "
                         f"other optimiser at {others:.3f}."))
    return out
