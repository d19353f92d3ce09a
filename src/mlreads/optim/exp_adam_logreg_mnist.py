"""adam/logreg-mnist (Kingma & Ba 2015, Section 6.1, Fig 1 left): on L2-regularised multiclass logistic regression,
Adam converges like SGD with Nesterov momentum, and both faster than AdaGrad."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from mlreads.core.fields import nonempty, nonnegative, positive
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
class LogRegConfig:
    n_train: int = positive(50_000)
    epochs: int = positive(20)
    batch_size: int = positive(128)  # Section 6.1
    l2: float = nonnegative(1e-4)  # lambda / 2 ||W||^2 added to the mean cross-entropy
    lrs: tuple[str, ...] = nonempty(("adam:3e-3/1e-2/3e-2", "adagrad:3e-2/1e-1/3e-1", "sgd-nesterov:3e-2/1e-1/3e-1"),
                                    check=lr_grid_problem)  # fmt: skip


def run_logreg(cfg: LogRegConfig, ctx) -> dict:
    """Each optimiser at each lr of its grid, with alpha_t = alpha / sqrt(t), on the same batches and init; the
    best lr per optimiser by final training cost (the full training set's regularised loss).

    Metrics: cost_<opt> (best over its grid), lr_<opt> (the best lr), cost_<opt>_<lr> for every run.
    """
    from mlreads.optim import figures

    data = mnist_tensors(cfg.n_train)
    x, y = data["train"]
    steps_per_epoch = cfg.n_train // cfg.batch_size

    def cost(m, xb, yb):
        return F.cross_entropy(m(xb), yb) + 0.5 * cfg.l2 * m.layers[0].weight.pow(2).sum()

    def eval_fn(m):
        return {"train_cost": float(cost(m, x, y))}

    out, curves = {}, {}
    for name, lrs in lr_grid(cfg.lrs):
        best = None
        for lr in lrs:
            with init_rng(ctx.seed_for("init/logreg")):  # multiclass logistic regression: an MLP with no hidden layer
                model = DropoutMLP(MLPConfig(d_hidden=()))  # one nn.Linear(784, 10), the same init; hooks, saveable
            train = TrainConfig(steps=cfg.epochs * steps_per_epoch, lr=lr, schedule="rsqrt", grad_clip=None,
                                eval_every=steps_per_epoch, log_every=steps_per_epoch)  # fmt: skip
            res = fit(model, train, random_batches(x, y, batch_size=cfg.batch_size),
                      lambda m, b: cost(m, *b), eval_fn=eval_fn, ctx=ctx, optimizer=optimizer(name),
                      desc=f"{name}-lr{lr:g}")  # fmt: skip
            c = res.final["train_cost"]
            out[f"cost_{name}_{lr:g}"] = c
            if best is None or c < best[0]:
                best = (c, lr, res.series("train_cost"))
                ctx.save_model(name, model)  # each optimiser's model at its best lr
        out[f"cost_{name}"], out[f"lr_{name}"] = best[0], best[1]
        curves[f"{name} (lr {best[1]:g})"] = ([s / steps_per_epoch for s in best[2][0]], best[2][1])
    out["sgd_bound"] = 1.02 * out["cost_sgd-nesterov"]
    ctx.savefig(figures.training_cost(curves, "MNIST logistic regression (L2)"), "fig1_logreg_cost",
                caption=("Training cost (log scale) of L2-regularised logistic regression on MNIST against epochs, "
                         "each optimiser at the best learning rate of its grid with alpha / sqrt(t) decay, from the "
                         "same init on the same batches. The claim predicts Adam's curve tracks SGD-Nesterov's and "
                         "both end below AdaGrad's."))
    return out
