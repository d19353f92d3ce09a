"""Learning-rate schedules: linear warmup, then cosine to a floor, constant, or the inverse square root; and
`recipe()`, the usual TrainConfig in one call."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from mlreads.core.train.config import TrainConfig

if TYPE_CHECKING:
    pass


def rsqrt_factor(step: int, warmup: int) -> float:
    """Linear warmup to 1 at step `warmup`, then decay as sqrt(warmup / step) (steps counted from 1): the inverse
    square-root schedule, min(step / warmup, sqrt(warmup / step))."""
    step, warmup = max(step, 1), max(warmup, 1)
    return min(step / warmup, math.sqrt(warmup / step))


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The schedule's multiplier at `step` (0-based): linear warmup, then cosine to min_lr / lr (or constant, or
    the inverse square root)."""
    if cfg.schedule == "rsqrt":
        return rsqrt_factor(step + 1, cfg.warmup)
    if cfg.warmup and step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return 1.0
    floor = cfg.min_lr / cfg.lr if cfg.lr else 0.0
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def recipe(
    steps: int,
    lr: float,
    *,
    warmup: int = 0,
    min_lr_frac: float = 0.1,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    grad_clip: float | None = 1.0,
    schedule: Literal["cosine", "constant", "rsqrt"] = "cosine",
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw",
    eval_every: int = 0,
    log_every: int = 10,
    ckpt_every: int = 0,
) -> TrainConfig:
    """The usual recipe in one call: `optimizer` at peak `lr`, linear warmup, cosine to `min_lr_frac * lr`."""
    return TrainConfig(steps=steps, lr=lr, min_lr=lr * min_lr_frac, warmup=warmup, schedule=schedule,
                       weight_decay=weight_decay, betas=betas, grad_clip=grad_clip, optimizer=optimizer,
                       eval_every=eval_every, log_every=log_every, ckpt_every=ckpt_every)  # fmt: skip
