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
from mlreads.superposition.model import toy_forward

if TYPE_CHECKING:
    from mlreads.core.run.runner import RunContext


@dataclass(frozen=True)
class ToyTrain:
    steps: int = positive(10_000)
    batch: int = positive(1024)
    lr: float = positive(1e-3)
    weight_decay: float = nonnegative(0.01)  # torch AdamW default, as in the paper's notebook
    eval_batch: int = positive(8192)  # fresh samples per instance used to rank restarts
    ckpt_every: int = nonnegative(0)  # a checkpoint every N steps (full runs: `mlreads run --resume` continues them)


def train_config(t: ToyTrain) -> TrainConfig:
    """The notebook's recipe: AdamW at a constant lr, no gradient clipping (it would couple the instances)."""
    return recipe(t.steps, t.lr, schedule="constant", weight_decay=t.weight_decay, grad_clip=None, optimizer="adamw",
                  log_every=max(1, t.steps // 50), ckpt_every=t.ckpt_every)  # fmt: skip


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


MAX_NEGLECTED = 0.01  # few_active_losses ranks restarts where P(>= 3 features active) is below this


@torch.no_grad()
def few_active_losses(model: nn.Module, n_quad: int = 32, pair_chunk: int = 16) -> tuple[Tensor, Tensor]:
    """The expected loss of each instance of a ToyModel with at most two features active, without sampling noise:
    (losses (I,), the probability mass left out (I,), that of >= 3 active features).

    E[L] = sum over the active set A (|A| <= 2) of P(A) E[L | A], where P(A) = prod_{i in A} p_i prod_{j not in A}
    (1 - p_j) and the values of the active features are U[0, 1], integrated by the midpoint rule on n_quad nodes per
    feature (the loss is piecewise quadratic in them: the ReLU's kinks cost O(1 / n_quad^2)). At 1-S = 0.001 and
    n = 20 an 8,192-sample estimate sees about 8 non-zero values per feature, too few to rank restarts that differ
    in their weak features (importance 0.7^13 ~ 0.01); this sees every feature exactly. Computed in float64."""
    W, b = model.W.detach().double(), model.b.detach().double()  # (I, m, F), (I, F)
    imp, p = model.importance.double(), model.feature_prob.double()  # (I, F)
    n_inst, n_feat = p.shape
    t = (torch.arange(n_quad, dtype=torch.float64) + 0.5) / n_quad  # (Q,) midpoint nodes on [0, 1]
    odds = p / (1 - p)  # (I, F): P(i active and the rest fixed) / P(i inactive and the rest fixed)
    w0 = (1 - p).prod(-1)  # (I,): nothing active

    def mean_loss(x: Tensor) -> Tensor:  # x (B, F) shared by the instances -> mean loss per instance (I,)
        x = x[:, None, :].expand(-1, n_inst, -1)  # (B, I, F)
        out = toy_forward(W, b, x, model.cfg.kind)  # (B, I, F)
        return (imp * (x - out) ** 2).mean(-1).mean(0)  # (I,)

    total = w0 * mean_loss(torch.zeros(1, n_feat, dtype=torch.float64))
    mass = w0.clone()
    for i in range(n_feat):  # exactly one active
        x = torch.zeros(n_quad, n_feat, dtype=torch.float64)
        x[:, i] = t
        total += w0 * odds[:, i] * mean_loss(x)
        mass += w0 * odds[:, i]
    pairs = [(i, j) for i in range(n_feat) for j in range(i + 1, n_feat)]
    ti, tj = torch.meshgrid(t, t, indexing="ij")  # (Q, Q)
    for start in range(0, len(pairs), pair_chunk):  # exactly two active
        chunk = pairs[start : start + pair_chunk]
        x = torch.zeros(len(chunk), n_quad * n_quad, n_feat, dtype=torch.float64)  # (P, Q*Q, F)
        for c, (i, j) in enumerate(chunk):
            x[c, :, i], x[c, :, j] = ti.flatten(), tj.flatten()
        per_pair = toy_forward(W, b, x.reshape(-1, n_feat)[:, None, :].expand(-1, n_inst, -1), model.cfg.kind)
        err = (imp * (x.reshape(-1, n_feat)[:, None, :] - per_pair) ** 2).mean(-1)  # (P*Q*Q, I)
        err = err.reshape(len(chunk), n_quad * n_quad, n_inst).mean(1)  # (P, I)
        weight = torch.stack([w0 * odds[:, i] * odds[:, j] for i, j in chunk])  # (P, I)
        total += (weight * err).sum(0)
        mass += weight.sum(0)
    return total.float(), (1 - mass).float()


def rank_losses(model: nn.Module, t: ToyTrain, ctx: RunContext) -> Tensor:
    """Per-instance losses to rank restarts: the sampled loss on t.eval_batch fresh samples, replaced by the
    noise-free `few_active_losses` wherever at most MAX_NEGLECTED of the probability is left out (sparse instances,
    where sampling sees too few non-zero features). (I,)."""
    sampled = eval_losses(model, ctx.generator("eval"), t.eval_batch)
    exact, left_out = few_active_losses(model)
    return torch.where(left_out < MAX_NEGLECTED, exact, sampled)


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
               desc: str = "toy models", noise_free: bool = False) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Give a (G, F) grid of importance / density to G * k instances, train them, and return the best restart of each
    grid point, ranked on fresh samples from the run's "eval" generator (with `noise_free`, by `rank_losses`):
    (indices (G,), their losses (G,))."""
    model.set_data(grid_instances(importance, restarts), grid_instances(density, restarts))
    train_toy(model, t, ctx, desc=desc)
    losses = rank_losses(model, t, ctx) if noise_free else eval_losses(model, ctx.generator("eval"), t.eval_batch)
    best = best_of_restarts(losses, restarts)
    return best, losses[best]
