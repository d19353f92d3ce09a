"""What the superposition experiments share: training batched toy models with `mlreads.core.train.fit`, and picking
the best of k restarts.

Paper: Elhage et al. 2022, "Toy Models of Superposition" (arXiv 2209.10652), Section 2 and the paper's notebook:
AdamW, lr 1e-3, constant schedule, batch 1024, 10,000 steps. Restarts are just more instances: a grid of G points
with k restarts is G * k instances laid out grid-major (instance g * k + r), and the restart with the lowest loss on
a fresh evaluation batch stands for its grid point, as the paper does.

The loss handed to fit is the SUM over instances of the per-instance losses: each instance's parameters get exactly
their own gradient, Adam acts elementwise, and gradient clipping (which would couple instances through the global
norm) is off. Weight decay 0.01 is torch's AdamW default, which the notebook uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from mlreads.core.fields import nonnegative, positive
from mlreads.core.train import TrainConfig, TrainResult, fit, recipe

if TYPE_CHECKING:
    from mlreads.core.run.runner import RunContext


@dataclass(frozen=True)
class ToyTrain:
    steps: int = positive(10_000)
    batch: int = positive(1024)
    lr: float = positive(1e-3)
    weight_decay: float = nonnegative(0.01)  # torch AdamW default, as in the paper's notebook
    eval_batch: int = positive(8192)  # fresh samples per instance used to rank restarts


def train_config(t: ToyTrain) -> TrainConfig:
    """The notebook's recipe: AdamW at a constant lr, no gradient clipping (it would couple the instances)."""
    return recipe(t.steps, t.lr, schedule="constant", weight_decay=t.weight_decay, grad_clip=None, optimizer="adamw",
                  log_every=max(1, t.steps // 50))  # fmt: skip


def train_toy(model: nn.Module, t: ToyTrain, ctx: RunContext | None = None, desc: str = "toy models") -> TrainResult:
    """Train every instance of `model` (a ToyModel or AbsModel) at once with fit(); batches come from fit's data
    generator (the run's "data" seed inside an experiment). Returns fit's result."""

    def batch_fn(step: int, gen: torch.Generator) -> Tensor:
        return model.sample(t.batch, gen)  # (B, I, F)

    def loss_fn(m: nn.Module, x: Tensor) -> Tensor:
        return m.loss(x).sum()  # sum over instances: independent gradients

    return fit(model, train_config(t), batch_fn, loss_fn, ctx=ctx, desc=desc)


@torch.no_grad()
def eval_losses(model: nn.Module, gen: torch.Generator, n_samples: int = 8192, chunk: int = 1024) -> Tensor:
    """Per-instance loss on `n_samples` fresh samples drawn from `gen`. (I,)."""
    total, seen = None, 0
    while seen < n_samples:
        n = min(chunk, n_samples - seen)
        loss = model.loss(model.sample(n, gen)) * n  # (I,)
        total = loss if total is None else total + loss
        seen += n
    return total / n_samples


def logspace(lo: float, hi: float, n: int) -> torch.Tensor:
    """n points from lo to hi, evenly spaced in log10."""
    return torch.logspace(torch.log10(torch.tensor(lo)).item(), torch.log10(torch.tensor(hi)).item(), n)


def best_of_restarts(losses: Tensor, restarts: int) -> Tensor:
    """Instance index of the lowest-loss restart of each grid point: losses (G * k,) -> (G,)."""
    grid = losses.reshape(-1, restarts)  # (G, k)
    return grid.argmin(dim=1) + torch.arange(grid.shape[0]) * restarts


def grid_instances(values: Tensor, restarts: int) -> Tensor:
    """Repeat each grid point's row `restarts` times, grid-major: (G, ...) -> (G * k, ...)."""
    return values.repeat_interleave(restarts, dim=0)


def train_grid(model: nn.Module, importance: Tensor, density: Tensor, restarts: int, t: ToyTrain, ctx: RunContext,
               desc: str = "toy models") -> tuple[Tensor, Tensor]:
    """Give a (G, F) grid of importance / density to G * k instances, train them, and return the best restart of each
    grid point, ranked on fresh samples from the run's "eval" generator: (indices (G,), their eval losses (G,))."""
    model.set_data(grid_instances(importance, restarts), grid_instances(density, restarts))
    train_toy(model, t, ctx, desc=desc)
    losses = eval_losses(model, ctx.generator("eval"), t.eval_batch)
    best = best_of_restarts(losses, restarts)
    return best, losses[best]
