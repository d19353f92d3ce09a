"""What the dropout experiments share: MNIST as float tensors, random minibatches, a classifier trained with fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mlreads.core.data.mnist import mnist_tensors, random_batches  # noqa: F401  (re-exported for the experiments)
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, TrainResult, fit
from mlreads.dropout.model import DropoutMLP, MLPConfig


@torch.no_grad()
def wrong(model, x: torch.Tensor, y: torch.Tensor, chunk: int = 5000) -> np.ndarray:
    """Whether the weight-scaled (deterministic) net misclassifies each image: bool (n,), for paired errors."""
    return torch.cat([model(x[i : i + chunk], mode="scale").argmax(-1) != y[i : i + chunk]
                      for i in range(0, len(x), chunk)]).numpy()  # fmt: skip


def error_pct(model, x: torch.Tensor, y: torch.Tensor, chunk: int = 5000) -> float:
    """Classification error in percent of the weight-scaled (deterministic) net."""
    return 100.0 * float(wrong(model, x, y, chunk).mean())


@dataclass(frozen=True)
class Arm:
    name: str
    mlp: MLPConfig


def train_classifier(arm: Arm, data: dict, train: TrainConfig, batch_size: int, ctx, eval_n: int,
                     data_seed: int | None = None) -> tuple:  # fmt: skip
    """Train one DropoutMLP with SGD + momentum (cfg.train), projecting onto the max-norm ball after every step.
    Logs train/test error (first `eval_n` images of each) at train.eval_every. `data_seed`: the batches' seed (fit's
    default, the run's "data" seed, when None). Returns (model, TrainResult)."""
    with init_rng(ctx.seed_for(f"init/{arm.name}")):
        model = DropoutMLP(arm.mlp)
    model.apply_max_norm()
    (xtr, ytr), (xte, yte) = data["train"], data["test"]

    def eval_fn(m) -> dict[str, float]:
        return {"train_err": error_pct(m, xtr[:eval_n], ytr[:eval_n]), "test_err": error_pct(m, xte[:eval_n], yte[:eval_n])}

    result: TrainResult = fit(
        model, train, random_batches(xtr, ytr, batch_size=batch_size), lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        eval_fn=eval_fn, ctx=ctx, desc=arm.name, after_step=lambda done, m, opt, batch: m.apply_max_norm(),
        data_seed=data_seed,
    )  # fmt: skip
    return model, result
